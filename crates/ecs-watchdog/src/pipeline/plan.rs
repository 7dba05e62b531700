//! Plan: what the ledger must write and which notices go out, from what it holds and what a
//! run saw (DESIGN §7). Pure: stored incidents and groups, looks, now and the settings in;
//! records to write and leases to send out. The executor ([`super::ledger`]) carries it out.

use std::collections::{BTreeMap, HashMap};

use crate::incident::{Group, GroupKey, Incident, IncidentKey, State};

mod digest;
mod event_time;
mod flaps;
mod held;
mod outbox;
mod types;

use digest::group;
use event_time::comes_back_later;
pub use event_time::stale;
pub use held::{AGENT_CONNECTIVITY, agent_key};
use outbox::{Silence, Step, step};
pub use types::{EventSeen, Look, Move, Plan, Settings};

/// The plan for these looks (one per incident) over what the ledger holds. A group missing
/// from `groups` was not read: its incidents page at once rather than wait on nothing.
pub fn plan(
    stored: &HashMap<IncidentKey, Incident>,
    groups: &HashMap<GroupKey, Group>,
    looks: &[(IncidentKey, Look)],
    s: &Settings,
) -> Plan {
    let mut plan = Plan::default();
    let flaps = flaps::flaps(stored, looks, s);
    let (stored, looks) = (&*flaps.stored, &*flaps.looks);
    let mut due: BTreeMap<GroupKey, Vec<(Incident, bool)>> = BTreeMap::new();
    for (key, look) in looks.iter().filter(|(_, look)| *look != Look::Companion) {
        let current = stored.get(key);
        let opens = current.is_none_or(|i| !i.is_open());
        if comes_back_later(current, key, look) {
            plan.later.push(key.clone());
        }
        let silence = Silence {
            reminders_held: held::reminders_held(key, s),
            told: held::told_silence(key, s),
        };
        match step(current, key, look, s, &silence) {
            Step::Nothing => {}
            Step::Write(incident) => plan.moves.push(Move {
                closes: incident.state == State::Closed,
                incident,
                group: None,
                sends: None,
                opens,
                silenced: false,
            }),
            Step::Mark(incident) => plan.moves.push(Move {
                incident,
                group: None,
                sends: None,
                opens: false,
                closes: false,
                silenced: false,
            }),
            Step::Send(incident, notice) => plan.moves.push(Move::leased(incident, notice, None, opens, s)),
            Step::Due(incident) => {
                if let Some(incident) = held::owed_alert(stored, looks, incident, opens, s, &mut plan) {
                    due.entry(GroupKey::new(&key.cluster_arn, key.kind))
                        .or_default()
                        .push((incident, opens));
                }
            }
        }
    }
    for (key, incidents) in due {
        group(groups.get(&key), key, incidents, s, &mut plan);
    }
    // What only the flap step writes, unless another rule wrote the record this run.
    for mark in flaps.marks {
        if !plan.moves.iter().any(|m| m.incident.key == mark.key) {
            plan.moves.push(Move::mark(mark));
        }
    }
    plan
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
