//! The outbox: what one look means for one incident, from its settled state (DESIGN §7).

use crate::alert::InstanceFinding;
use crate::incident::{Incident, IncidentKey, Notice, State};
use crate::remediation::ActionOutcome;

use super::event_time::{ended_by_its_events, later_failure};
use super::types::{Look, Settings};

/// What one look means for one incident.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Nothing,
    Write(Incident),
    /// A record that neither opens nor closes an incident (what the ledger remembers).
    Mark(Incident),
    Send(Incident, Notice),
    /// Newly owed an alert: its group decides whether it pages now or waits.
    Due(Incident),
}

/// What the silences say of an incident now (read by `hold.rs`): whether they hold its
/// reminders, and the silence (until, on what) its resolved notice tells.
pub struct Silence {
    pub reminders_held: bool,
    pub told: Option<(String, String)>,
}

/// What one look means for one incident, from its settled state.
pub fn step(current: Option<&Incident>, key: &IncidentKey, look: &Look, s: &Settings, silence: &Silence) -> Step {
    let Some(stored) = current.filter(|i| i.is_open()) else {
        return first(current, key, look, s.now);
    };
    // What is written next starts from the settled state: a dead sender's lease is gone.
    let settled = stored.settled(s.now);
    let next = Incident {
        version: stored.version + 1,
        state: settled,
        lease: None,
        ..stored.clone()
    };
    match settled {
        State::Pending | State::Due => owed(stored, next, look, s.now),
        State::Sending => match look {
            Look::Over { how, at, .. } if stored.ended_at == 0 => Step::Write(Incident {
                ended_at: at.unwrap_or(s.now),
                resolution: Some(how.clone()),
                lease: stored.lease.clone(),
                ..next
            }),
            _ => Step::Nothing,
        },
        State::Notified => notified(stored, next, look, s, silence),
        State::ResolveDue => resolve_due(stored, next, look),
        State::Closed => Step::Nothing,
    }
}

/// A look at an incident the ledger has not open: it opens (pending while the sweep's grace
/// period runs), or nothing happens.
fn first(current: Option<&Incident>, key: &IncidentKey, look: &Look, now: u64) -> Step {
    let version = current.map_or(0, |i| i.version) + 1;
    // An agent's returns of the last hour outlive its closed incident (`plan/flaps.rs`).
    let kept = current.map(|i| i.finding.flaps.clone()).unwrap_or_default();
    let kept_events = current.map(|i| i.finding.flap_events.clone()).unwrap_or_default();
    let fresh = |state, finding: &InstanceFinding| Incident {
        version,
        ..Incident::new(
            key.clone(),
            state,
            InstanceFinding {
                flaps: if finding.flaps.is_empty() {
                    kept.clone()
                } else {
                    finding.flaps.clone()
                },
                flap_events: kept_events.clone(),
                ..finding.clone()
            },
            now,
        )
    };
    match look {
        Look::Confirmed { finding, hold } if *hold > 0 => Step::Write(fresh(State::Pending, finding)),
        Look::Confirmed { finding, .. } => Step::Due(fresh(State::Due, finding)),
        // A deployment's success is remembered with nothing open: a failure older than it,
        // redelivered late, is then stale rather than opening what no event would end.
        // Over an older closed record, the newer end wins: a failure between the two would
        // otherwise be judged by the old end, and open what no event would end.
        Look::Over { how, at, .. } if ended_by_its_events(key) => {
            let record = current
                .cloned()
                .unwrap_or_else(|| fresh(State::Closed, &InstanceFinding::default()));
            let end = at.unwrap_or(now).max(record.ended_at).max(record.closed_at);
            Step::Mark(closed(
                Incident {
                    version,
                    ended_at: end,
                    ..record
                },
                how,
                end,
            ))
        }
        Look::Over { .. } | Look::Owed | Look::Companion => Step::Nothing,
    }
}

/// An incident whose alert has not gone out: confirmed past its grace, over, or still owed.
fn owed(stored: &Incident, next: Incident, look: &Look, now: u64) -> Step {
    match (next.state, look) {
        (State::Pending, Look::Confirmed { finding, hold }) if now.saturating_sub(stored.opened_at) >= *hold => {
            Step::Due(Incident {
                state: State::Due,
                finding: (**finding).clone(),
                ..next
            })
        }
        (_, Look::Over { how, at, .. }) => Step::Write(closed(next, how, at.unwrap_or(now))),
        (State::Due, Look::Owed) if stored.ended_at > 0 => {
            let how = stored.resolution.clone().unwrap_or_default();
            Step::Write(closed(next, &how, now))
        }
        // Owed and not sent (its sender failed or died): it goes through its group again, so
        // a page that went out meanwhile holds it for the digest rather than paging twice.
        (State::Due, Look::Confirmed { .. } | Look::Owed) if !stored.held => {
            let finding = look_finding(look).map_or(stored.finding.clone(), |f| merged(&stored.finding, f).0);
            Step::Due(Incident {
                ended_at: 0,
                resolution: None,
                finding,
                ..next
            })
        }
        _ => Step::Nothing,
    }
}

/// An alerted incident: a reminder when due, what remediation did since, or its resolved notice.
fn notified(stored: &Incident, next: Incident, look: &Look, s: &Settings, silence: &Silence) -> Step {
    match look {
        Look::Confirmed { finding, .. } => {
            let (finding, changed) = match later_failure(stored, finding) {
                Some(newer) => (newer, true),
                None => merged(&stored.finding, finding),
            };
            // A silence holds reminders; the first look after it reminds if one is due by then.
            let reminder = s.remind_after > 0
                && s.now.saturating_sub(stored.notified_at) >= s.remind_after
                && !silence.reminders_held;
            match (reminder, changed) {
                (true, _) => Step::Send(Incident { finding, ..next }, Notice::Reminder),
                (false, true) => Step::Write(Incident { finding, ..next }),
                (false, false) => Step::Nothing,
            }
        }
        Look::Over { how, at, .. } => {
            let mut finding = next.finding.clone();
            if let Some((until, on)) = silence.told.clone() {
                finding.silenced_until = Some(until);
                finding.silenced_on = Some(on);
            }
            Step::Send(
                Incident {
                    ended_at: at.unwrap_or(s.now),
                    resolution: Some(how.clone()),
                    finding,
                    ..next
                },
                Notice::Resolved,
            )
        }
        // A settled alert the adapter left in the outbox index (it cannot tell there whether a
        // resolved notice is owed): written again, out of it.
        Look::Owed if stored.due_at() == 0 && stored.ended_at == 0 => Step::Write(next),
        Look::Owed | Look::Companion => Step::Nothing,
    }
}

/// An incident over whose resolved notice is owed. Back before that notice was tried: it
/// lasts, nobody is told it ended. One tried already (given back, or its sender died) may have
/// reached on-call: it goes out (again), and what is seen now is a new incident, told as one.
/// A deployment's end is told whatever follows: its events alone tell it, and a later failure is
/// taken again after the notice (`comes_back_later`).
fn resolve_due(stored: &Incident, next: Incident, look: &Look) -> Step {
    let deployment = ended_by_its_events(&stored.key);
    match look {
        Look::Confirmed { .. } if stored.state == State::Notified && !deployment => Step::Write(Incident {
            state: State::Notified,
            ended_at: 0,
            resolution: None,
            ..next
        }),
        _ => Step::Send(next, Notice::Resolved),
    }
}

fn look_finding(look: &Look) -> Option<&InstanceFinding> {
    match look {
        Look::Confirmed { finding, .. } => Some(&**finding),
        _ => None,
    }
}

/// Closed now; a held one stays held, so its digest says it ended before it was told.
fn closed(next: Incident, how: &str, now: u64) -> Incident {
    Incident {
        state: State::Closed,
        closed_at: now,
        resolution: Some(how.to_owned()),
        ..next
    }
}

/// The stored finding with what remediation did now, and whether that changed: compared as
/// steps and outcomes, never as words (words carry live counts, "2 of 10 DRAINING").
pub fn merged(stored: &InstanceFinding, seen: &InstanceFinding) -> (InstanceFinding, bool) {
    let steps = |f: &InstanceFinding| -> Vec<(String, ActionOutcome)> {
        f.remediation_actions
            .iter()
            .map(|a| (a.step.clone(), a.outcome))
            .collect()
    };
    if seen.remediation_actions.is_empty() || steps(seen) == steps(stored) {
        return (stored.clone(), false);
    }
    let finding = InstanceFinding {
        remediation: seen.remediation.clone(),
        remediation_actions: seen.remediation_actions.clone(),
        ..stored.clone()
    };
    (finding, true)
}
