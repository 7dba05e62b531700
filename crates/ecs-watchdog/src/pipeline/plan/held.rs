//! What may hold a newly owed alert before its group decides (issue 24, item 6): a silence on
//! its cluster or container instance, and the fold of an instance-impaired that only repeats an
//! agent-disconnected incident of the same instance. Pure rules of the plan; where the silences
//! come from, and what they keep from remediation, is [`crate::pipeline::hold`]'s.

use std::collections::HashMap;

use super::types::{Look, Move, Plan, Settings};
use crate::alert::AlertKind;
use crate::incident::{Incident, IncidentKey, State};
use crate::silence::{Hold, iso};

/// The health check an agent-disconnected incident already tells.
pub const AGENT_CONNECTIVITY: &str = "AGENT_CONNECTIVITY";

/// A newly owed alert, through the silences and the fold rule: returns it when its group
/// decides next; otherwise what it comes to is in `plan` (a held write, a fold, or nothing).
pub fn owed_alert(
    stored: &HashMap<IncidentKey, Incident>,
    looks: &[(IncidentKey, Look)],
    incident: Incident,
    opens: bool,
    s: &Settings,
    plan: &mut Plan,
) -> Option<Incident> {
    let current = stored.get(&incident.key).filter(|i| i.is_open());
    // Only what was never owed before folds: an alert owed already goes out as owed.
    let never_owed = current.is_none_or(|i| i.state == State::Pending);
    if never_owed && folds(stored, looks, &incident.key, &incident) {
        plan.folded.push(incident.key.clone());
        return None;
    }
    let mut incident = incident;
    match s.silences.of(&incident.key, s.now) {
        Hold::Until { end, on } => {
            let until = iso(end);
            // Held already until then (the sweep's look at a silenced problem): nothing to write.
            let unchanged = current.is_some_and(|i| {
                i.settled(s.now) == State::Due && i.finding.silenced_until.as_deref() == Some(until.as_str())
            });
            if !unchanged {
                // Counted once, when a silence first holds it (an extension is not a new hold).
                let silenced = incident.finding.silenced_until.is_none();
                incident.finding.silenced_until = Some(until);
                incident.finding.silenced_on = Some(on);
                incident.finding.silence_refused = None;
                plan.moves.push(Move {
                    incident: Incident {
                        state: State::Due,
                        held: false,
                        lease: None,
                        ..incident
                    },
                    group: None,
                    sends: None,
                    opens,
                    closes: false,
                    silenced,
                });
            }
            None
        }
        Hold::Refused(why) => {
            incident.finding.silence_refused = Some(why);
            Some(incident)
        }
        Hold::None => {
            incident.finding.silence_refused = None;
            Some(incident)
        }
    }
}

/// Whether an instance-impaired incident only repeats an agent-disconnected incident of the same
/// container instance: its only failing check is AGENT_CONNECTIVITY, and that incident is open
/// (stored, and not ending) or opens in this plan. The agent incident's notices tell it; once
/// that incident closes, an impaired still there opens and alerts as any other.
fn folds(
    stored: &HashMap<IncidentKey, Incident>,
    looks: &[(IncidentKey, Look)],
    key: &IncidentKey,
    incident: &Incident,
) -> bool {
    let checks = &incident.finding.health_checks;
    if !crate::kinds::of(key.kind).may_repeat_agent()
        || checks.is_empty()
        || checks.iter().any(|c| c.check != AGENT_CONNECTIVITY)
    {
        return false;
    }
    let agent = agent_key(key);
    let open = stored
        .get(&agent)
        .is_some_and(|i| i.is_open() && i.ended_at == 0 && i.state != State::ResolveDue);
    let opening = looks
        .iter()
        .any(|(k, look)| *k == agent && matches!(look, Look::Confirmed { .. }));
    open || opening
}

/// The agent-disconnected incident of the instance an incident is about.
pub fn agent_key(key: &IncidentKey) -> IncidentKey {
    IncidentKey {
        kind: AlertKind::AgentDisconnected,
        daemon: None,
        ..key.clone()
    }
}

/// Whether a silence holds the incident's reminders now.
pub fn reminders_held(key: &IncidentKey, s: &Settings) -> bool {
    matches!(s.silences.of(key, s.now), Hold::Until { .. })
}

/// The silence a resolved notice tells, when one holds the incident now: on-call learns it
/// ended, and that the place is under planned work.
pub fn told_silence(key: &IncidentKey, s: &Settings) -> Option<(String, String)> {
    match s.silences.of(key, s.now) {
        Hold::Until { end, on } => Some((iso(end), on)),
        _ => None,
    }
}

#[cfg(test)]
#[path = "held_tests.rs"]
mod tests;
