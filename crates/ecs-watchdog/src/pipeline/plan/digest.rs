//! Digests: incidents newly owed an alert go through their cluster and kind's group, which
//! pages the first and holds what follows in its window for one digest.

use crate::incident::{Group, GroupKey, Incident, Notice};

use super::types::{Move, Plan, Settings};

/// Incidents newly owed an alert, of one group: the first of a quiet group pages and opens its
/// window; while the window is open, or others wait, they are held for the digest.
pub fn group(stored: Option<&Group>, key: GroupKey, incidents: Vec<(Incident, bool)>, s: &Settings, plan: &mut Plan) {
    let Some(current) = stored.filter(|_| s.group_interval > 0) else {
        for (incident, opens) in incidents {
            plan.moves.push(Move::leased(incident, Notice::Alert, None, opens, s));
        }
        return;
    };
    let mut next = Group {
        version: current.version + 1,
        ..current.clone()
    };
    let holds = current.holds(s.now);
    if holds {
        next.digest_due = if current.digest_due > 0 {
            current.digest_due
        } else {
            current.window_end.max(s.now)
        };
        next.last_held = s.now;
    } else {
        next.window_end = s.now + s.group_interval;
    }
    plan.groups.push(next);
    for (incident, opens) in incidents {
        if holds {
            plan.moves.push(Move {
                incident: Incident { held: true, ..incident },
                group: Some(key.clone()),
                sends: None,
                opens,
                closes: false,
                silenced: false,
            });
        } else {
            plan.moves
                .push(Move::leased(incident, Notice::Alert, Some(key.clone()), opens, s));
        }
    }
}
