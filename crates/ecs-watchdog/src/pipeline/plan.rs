//! Plan: what the ledger must write and which notices go out, from what it holds and what a
//! run saw (DESIGN §7). Pure: stored incidents and groups, looks, now and the settings in;
//! records to write and leases to send out. The executor ([`super::ledger`]) carries it out.

use std::collections::{BTreeMap, HashMap};

use crate::alert::InstanceFinding;
use crate::incident::{Group, GroupKey, Incident, IncidentKey, Lease, Notice, State};
use crate::remediation::ActionOutcome;
use crate::silence::Silences;

use super::hold;

/// What a run plans with besides what it saw.
#[derive(Debug, Clone)]
pub struct Settings {
    /// UNIX seconds.
    pub now: u64,
    /// Seconds; 0: never remind.
    pub remind_after: u64,
    /// Seconds a page groups what joins its cluster and kind; 0: no grouping.
    pub group_interval: u64,
    /// How long a lease lasts: at least the function's timeout, less than the queue's
    /// visibility timeout, so a redelivery finds a dead sender's lease expired.
    pub lease: u64,
    /// This run's lease token.
    pub token: String,
    /// The silence tags this run read (`ecs-watchdog-silence-until`).
    pub silences: Silences,
    /// `CRITICAL_PERCENT`, and the registered container instances of the clusters this run
    /// counted (by cluster ARN): an outage's share of its cluster, for its severity.
    pub critical_percent: u8,
    pub cluster_sizes: HashMap<String, usize>,
    /// The stack's dashboard, linked from alerts.
    pub dashboard: Option<&'static str>,
}

impl Settings {
    /// What the severity rule knows of a cluster now.
    pub fn facts(&self, cluster_arn: &str) -> crate::alert::Facts {
        crate::alert::Facts {
            critical_percent: self.critical_percent,
            cluster_instances: self.cluster_sizes.get(cluster_arn).copied(),
            dashboard: self.dashboard,
            ..crate::alert::Facts::at(self.now)
        }
    }
}

impl Settings {
    pub fn lease(&self) -> Lease {
        Lease {
            token: self.token.clone(),
            until: self.now + self.lease,
        }
    }
}

/// What a run saw of one incident.
#[derive(Debug, Clone, PartialEq)]
pub enum Look {
    /// The problem is there; `hold`: how long it must have lasted since first sight before it
    /// alerts (0 for an event, whose queue delay was the grace period).
    Confirmed { finding: Box<InstanceFinding>, hold: u64 },
    /// It is over, as `how` says; `at`: since when, where an event decides it by itself (a
    /// deployment's success, by its EventBridge time); none: a look at the current state, of now.
    Over { how: String, at: Option<u64> },
    /// Nothing seen, but the ledger says something is owed (the sweep's outbox query).
    Owed,
    /// Read for another incident's rule only (the agent incident an impaired one may fold
    /// into): batched with the others, it changes nothing.
    Companion,
}

/// One record to write, on condition that the stored version is still `version - 1` (0: none).
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub incident: Incident,
    /// Written only once this group's record was: it decided whether the incident pages or waits.
    pub group: Option<GroupKey>,
    /// Leased to send this notice.
    pub sends: Option<Notice>,
    /// A new incident (opened), or one closed now.
    pub opens: bool,
    pub closes: bool,
    /// A silence holds its alert now for the first time (counted `Silenced`).
    pub silenced: bool,
}

/// What a run writes: group records first, then the incidents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub groups: Vec<Group>,
    pub moves: Vec<Move>,
    /// Instance-impaired incidents folded into their instance's agent-disconnected incident:
    /// nothing written, no alert (counted `Folded`).
    pub folded: Vec<IncidentKey>,
    /// Looks to take again after this run: a deployment's failure that came while the
    /// incident's resolved notice is owed (its messages go back to the queue, and the
    /// redelivery opens it anew once the notice went out: no look but its event would).
    pub later: Vec<IncidentKey>,
}

/// What one look means for one incident.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Nothing,
    Write(Incident),
    /// A record that neither opens nor closes an incident (what the ledger remembers).
    Mark(Incident),
    Send(Incident, Notice),
    /// Newly owed an alert: its group decides whether it pages now or waits.
    Due(Incident),
}

/// The plan for these looks (one per incident) over what the ledger holds. A group missing
/// from `groups` was not read: its incidents page at once rather than wait on nothing.
pub fn plan(
    stored: &HashMap<IncidentKey, Incident>,
    groups: &HashMap<GroupKey, Group>,
    looks: &[(IncidentKey, Look)],
    s: &Settings,
) -> Plan {
    let mut plan = Plan::default();
    let mut due: BTreeMap<GroupKey, Vec<(Incident, bool)>> = BTreeMap::new();
    for (key, look) in looks.iter().filter(|(_, look)| *look != Look::Companion) {
        let current = stored.get(key);
        let opens = current.is_none_or(|i| !i.is_open());
        if comes_back_later(current, key, look) {
            plan.later.push(key.clone());
        }
        match step(current, key, look, s) {
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
            Step::Send(incident, notice) => plan.moves.push(leased(incident, notice, None, opens, s)),
            Step::Due(incident) => {
                if let Some(incident) = hold::owed_alert(stored, looks, incident, opens, s, &mut plan) {
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
    plan
}

/// Incidents newly owed an alert, of one group: the first of a quiet group pages and opens its
/// window; while the window is open, or others wait, they are held for the digest.
fn group(stored: Option<&Group>, key: GroupKey, incidents: Vec<(Incident, bool)>, s: &Settings, plan: &mut Plan) {
    let Some(current) = stored.filter(|_| s.group_interval > 0) else {
        for (incident, opens) in incidents {
            plan.moves.push(leased(incident, Notice::Alert, None, opens, s));
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
                .push(leased(incident, Notice::Alert, Some(key.clone()), opens, s));
        }
    }
}

fn leased(incident: Incident, notice: Notice, group: Option<GroupKey>, opens: bool, s: &Settings) -> Move {
    Move {
        incident: Incident {
            state: State::Sending,
            lease: Some((s.lease(), notice)),
            ..incident
        },
        group,
        sends: Some(notice),
        opens,
        closes: false,
        silenced: false,
    }
}

fn step(current: Option<&Incident>, key: &IncidentKey, look: &Look, s: &Settings) -> Step {
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
            Look::Over { how, at } if stored.ended_at == 0 => Step::Write(Incident {
                ended_at: at.unwrap_or(s.now),
                resolution: Some(how.clone()),
                lease: stored.lease.clone(),
                ..next
            }),
            _ => Step::Nothing,
        },
        State::Notified => notified(stored, next, look, s),
        State::ResolveDue => resolve_due(stored, next, look),
        State::Closed => Step::Nothing,
    }
}

/// A look at an incident the ledger has not open: it opens (pending while the sweep's grace
/// period runs), or nothing happens.
fn first(current: Option<&Incident>, key: &IncidentKey, look: &Look, now: u64) -> Step {
    let version = current.map_or(0, |i| i.version) + 1;
    let fresh = |state, finding: &InstanceFinding| Incident {
        version,
        ..Incident::new(key.clone(), state, finding.clone(), now)
    };
    match look {
        Look::Confirmed { finding, hold } if *hold > 0 => Step::Write(fresh(State::Pending, finding)),
        Look::Confirmed { finding, .. } => Step::Due(fresh(State::Due, finding)),
        // A deployment's success is remembered with nothing open: a failure older than it,
        // redelivered late, is then stale rather than opening what no event would end.
        // Over an older closed record, the newer end wins: a failure between the two would
        // otherwise be judged by the old end, and open what no event would end.
        Look::Over { how, at } if ended_by_its_events(key) => {
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
        (_, Look::Over { how, at }) => Step::Write(closed(next, how, at.unwrap_or(now))),
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
fn notified(stored: &Incident, next: Incident, look: &Look, s: &Settings) -> Step {
    match look {
        Look::Confirmed { finding, .. } => {
            let (finding, changed) = match later_failure(stored, finding) {
                Some(newer) => (newer, true),
                None => merged(&stored.finding, finding),
            };
            // A silence holds reminders; the first look after it reminds if one is due by then.
            let reminder = s.remind_after > 0
                && s.now.saturating_sub(stored.notified_at) >= s.remind_after
                && !hold::reminders_held(&stored.key, s);
            match (reminder, changed) {
                (true, _) => Step::Send(Incident { finding, ..next }, Notice::Reminder),
                (false, true) => Step::Write(Incident { finding, ..next }),
                (false, false) => Step::Nothing,
            }
        }
        Look::Over { how, at } => {
            let mut finding = next.finding.clone();
            if let Some((until, on)) = hold::told_silence(&stored.key, s) {
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

/// Promise 2's event-time rule (DESIGN §7): an event older than what the incident already
/// knows (the end a look saw, its close) cannot reopen it, nor call back a resolved notice
/// that is owed. A look without an event time (the sweep's, of now) is never stale.
///
/// A deployment's end is its success event's time (`Look::Over::at`), so a failure after that
/// success opens anew however late it is processed; and a success older than the failure the
/// incident tells (`since`) cannot end it.
pub fn stale(stored: Option<&Incident>, look: &Look, event_time: Option<u64>) -> bool {
    // The end a look saw, rather than when its notice went out after it.
    let known = stored.map_or(0, |i| if i.ended_at > 0 { i.ended_at } else { i.closed_at });
    match look {
        Look::Confirmed { .. } => event_time.is_some_and(|t| t < known),
        Look::Over { at: Some(at), .. } => stored
            .filter(|i| i.is_open())
            .and_then(|i| seconds(i.finding.since.as_deref()?))
            .is_some_and(|since| *at < since),
        _ => false,
    }
}

/// A later deployment's failure while the incident is alerted: the incident tells it from now
/// on (its `since` is the newest failure's), so a success older than it cannot end it.
fn later_failure(stored: &Incident, seen: &InstanceFinding) -> Option<InstanceFinding> {
    let at = |f: &InstanceFinding| f.since.as_deref().and_then(seconds);
    let newer = ended_by_its_events(&stored.key) && at(seen) > at(&stored.finding);
    newer.then(|| InstanceFinding {
        remediation: stored.finding.remediation.clone(),
        remediation_actions: stored.finding.remediation_actions.clone(),
        ..seen.clone()
    })
}

/// Whether a look must be taken again after this run: a deployment's failure, newer than the
/// end its open incident knows, meeting the resolved notice that end owes.
fn comes_back_later(current: Option<&Incident>, key: &IncidentKey, look: &Look) -> bool {
    ended_by_its_events(key)
        && matches!(look, Look::Confirmed { .. })
        && current.is_some_and(|i| i.is_open() && i.ended_at > 0)
}

/// A kind that only its own events end, as of their time (a daemon deployment's success).
fn ended_by_its_events(key: &IncidentKey) -> bool {
    crate::kinds::of(key.kind).ended_by_its_events()
}

/// An ISO-8601 time (`2026-12-05T10:21:00Z`, as ECS writes them) in UNIX seconds.
fn seconds(text: &str) -> Option<u64> {
    use aws_smithy_types::date_time::{DateTime, Format};
    u64::try_from(DateTime::from_str(text, Format::DateTime).ok()?.secs()).ok()
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

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
