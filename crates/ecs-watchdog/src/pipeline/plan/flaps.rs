//! The flap step, before the outbox: an agent's returns counted on its agent-disconnected
//! record, and the `agent-flapping` looks they make (`kinds::agent_flapping` has the rule).
//!
//! A recovered look at an agent incident reads that record anyway (a look that finds a problem
//! over is read before it is planned), so the count costs no read; it rides on the record's
//! write when the look closes the incident, and is one more write of the same transaction when
//! the disconnect recovered inside the queue's delay (no incident was open: nothing else would
//! be written). The flapping incident itself is not read: a look that opens it is put on
//! condition none is stored, and one that is fails the transaction, which brings it back and
//! plans the batch again, knowing it.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::alert::InstanceFinding;
use crate::incident::{Incident, IncidentKey, State};
use crate::kind::AlertKind;
use crate::kinds::{self, agent_flapping};

use super::types::{EventSeen, Look, Settings};

/// What the flap step gives the outbox: the records as they stand with the returns counted,
/// the looks to plan, and the records it writes itself (nothing else would write them).
pub struct Flaps<'a> {
    pub stored: Cow<'a, HashMap<IncidentKey, Incident>>,
    pub looks: Cow<'a, [(IncidentKey, Look)]>,
    pub marks: Vec<Incident>,
}

/// Counts each return the looks see, opens or moves on the flapping incident it makes, and
/// turns the sweep's look at an open flapping incident into its end after a quiet hour.
pub fn flaps<'a>(
    stored: &'a HashMap<IncidentKey, Incident>,
    looks: &'a [(IncidentKey, Look)],
    s: &Settings,
) -> Flaps<'a> {
    let mut out = Flaps {
        stored: Cow::Borrowed(stored),
        looks: Cow::Borrowed(looks),
        marks: Vec::new(),
    };
    let mut told = Vec::new();
    for (key, look) in looks {
        if let (AlertKind::AgentDisconnected, Look::Over { how, event, .. }) = (key.kind, look)
            && returned(how)
            && !counted_before(out.stored.get(key), event.as_ref())
        {
            told.extend(returns(&mut out, key, how, event.as_ref(), s));
        }
    }
    for n in 0..out.looks.len() {
        let (key, look) = &out.looks[n];
        if key.kind != AlertKind::AgentFlapping || *look != Look::Owed {
            continue;
        }
        let quiet = out
            .stored
            .get(key)
            .filter(|i| i.settled(s.now) == State::Notified)
            .map(|i| agent_flapping::quiet(&i.finding.flaps, s.now));
        let instead = match quiet {
            Some(true) => Look::Over {
                how: agent_flapping::QUIET.to_owned(),
                at: None,
                event: None,
            },
            // Still flapping: the look changes nothing (an alerted incident is not owed).
            Some(false) => Look::Companion,
            None => continue,
        };
        out.looks.to_mut()[n].1 = instead;
    }
    // An open flapping incident told of a return: written as it stands, unless a look of this
    // run writes it anyway.
    for key in told {
        let looked = out.looks.iter().any(|(k, l)| *k == key && *l != Look::Companion);
        if let (false, Some(open)) = (looked, out.stored.get(&key)) {
            let mark = Incident {
                version: open.version + 1,
                ..open.clone()
            };
            out.marks.push(mark);
        }
    }
    out
}

/// Whether the event of a return was counted already: one older than the record's close (the
/// look that closed it counted that return, or it is older than what the record knows), or one
/// the record lists (a redelivery of the same event). A look without an event (the sweep's, of
/// now) is always new.
fn counted_before(record: Option<&Incident>, event: Option<&EventSeen>) -> bool {
    let (Some(record), Some(event)) = (record, event) else {
        return false;
    };
    let closed = !record.is_open() && event.time < record.closed_at;
    closed || record.finding.flap_events.contains(&event.id)
}

/// The ids of the events counted, the newest last, as many as a record keeps.
fn with_event(before: &[String], event: Option<&EventSeen>) -> Vec<String> {
    let mut ids = before.to_vec();
    ids.extend(event.map(|e| e.id.clone()));
    let extra = ids.len().saturating_sub(FLAP_EVENTS_KEPT);
    ids.drain(..extra);
    ids
}

/// How many counted event ids a record keeps: more than an hour of returns holds (the grace
/// period is at least a minute), so a redelivery within the hour is always known.
const FLAP_EVENTS_KEPT: usize = 64;

/// Whether the look found the agent back (not the instance gone).
fn returned(how: &str) -> bool {
    kinds::of(AlertKind::AgentDisconnected).recovered() == Some(how)
}

/// One return of the agent of `key`: counted on its record, and the flapping incident opened
/// or told of it when the count reaches the threshold (returned: the open one told).
fn returns(
    out: &mut Flaps<'_>,
    key: &IncidentKey,
    how: &str,
    event: Option<&EventSeen>,
    s: &Settings,
) -> Option<IncidentKey> {
    let finding = count(out, key, how, event, s);
    if !agent_flapping::flapping(&finding.flaps, s.flap_threshold) {
        return None;
    }
    flapping(out, key, finding, s)
}

/// Counts the return on the agent's record and keeps the record as it now stands in `out`;
/// returns its finding, the count in it.
fn count(
    out: &mut Flaps<'_>,
    key: &IncidentKey,
    how: &str,
    event: Option<&EventSeen>,
    s: &Settings,
) -> InstanceFinding {
    let current = out.stored.get(key).cloned();
    let before = current.as_ref().map_or(&[][..], |i| i.finding.flaps.as_slice());
    let flaps = agent_flapping::counted(before, s.now);
    let events = with_event(current.as_ref().map_or(&[][..], |i| &i.finding.flap_events), event);
    let record = match current {
        // Open: the outbox writes it as the look closes it, with the count.
        Some(open) if open.is_open() => Incident {
            finding: InstanceFinding {
                flaps,
                flap_events: events,
                ..open.finding
            },
            ..open
        },
        // None open (the disconnect recovered inside the queue's delay): only the count moves.
        other => {
            // A new record is closed as of its event (the return it tells), so that the
            // events after it count, however late the queue delivered this one.
            let at = event.map_or(s.now, |e| e.time.min(s.now));
            let mark = closed_with(other, key, how, (&flaps, events), at);
            out.marks.push(mark.clone());
            mark
        }
    };
    let finding = record.finding.clone();
    out.stored.to_mut().insert(key.clone(), record);
    finding
}

/// The agent of `key` flaps (its record's finding has the count): its open flapping incident
/// learns of this return (returned: to be written), or a look opens one.
fn flapping(out: &mut Flaps<'_>, key: &IncidentKey, finding: InstanceFinding, s: &Settings) -> Option<IncidentKey> {
    let flapping = IncidentKey {
        kind: AlertKind::AgentFlapping,
        daemon: None,
        ..key.clone()
    };
    let flaps = finding.flaps.clone();
    match out.stored.get(&flapping).filter(|i| i.is_open()).cloned() {
        // Open already: it learns of this return (its quiet hour starts again).
        Some(open) if open.settled(s.now) != State::Sending => {
            let open = Incident {
                finding: InstanceFinding { flaps, ..open.finding },
                ..open
            };
            out.stored.to_mut().insert(flapping.clone(), open);
            return Some(flapping);
        }
        Some(_) => {}
        None if out.looks.iter().any(|(k, _)| *k == flapping) => {}
        None => out.looks.to_mut().push((
            flapping,
            Look::Confirmed {
                finding: Box::new(InstanceFinding {
                    remediation: None,
                    remediation_actions: Vec::new(),
                    // Flapping since the first return it counts.
                    since: flaps.first().map(|t| crate::silence::iso(*t)),
                    flaps,
                    // The agent's record keeps them; the flapping alert has no use for them.
                    flap_events: Vec::new(),
                    ..finding
                }),
                hold: 0,
            },
        )),
    }
    None
}

/// The closed record of an agent with no open incident, its count moved; a new one closed `now`.
fn closed_with(
    current: Option<Incident>,
    key: &IncidentKey,
    how: &str,
    (flaps, events): (&[u64], Vec<String>),
    now: u64,
) -> Incident {
    let version = current.as_ref().map_or(0, |i| i.version) + 1;
    let record = current.unwrap_or_else(|| Incident {
        closed_at: now,
        resolution: Some(how.to_owned()),
        ..Incident::new(key.clone(), State::Closed, unknown(key), now)
    });
    Incident {
        version,
        finding: InstanceFinding {
            flaps: flaps.to_vec(),
            flap_events: events,
            ..record.finding.clone()
        },
        ..record
    }
}

/// What is known of an instance no incident told yet: its container instance ARN, in the
/// form ECS gives it (`arn:aws:ecs:<region>:<account>:container-instance/<cluster>/<id>`).
fn unknown(key: &IncidentKey) -> InstanceFinding {
    let arn = key
        .cluster_arn
        .replacen(":cluster/", ":container-instance/", 1)
        .to_owned()
        + "/"
        + &key.instance;
    InstanceFinding {
        container_instance_arn: arn,
        ..InstanceFinding::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Plan, plan};
    use super::*;
    use crate::incident::Notice;

    const NOW: u64 = 100_000;
    const CLUSTER: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/prod";

    fn settings(now: u64) -> Settings {
        Settings {
            now,
            remind_after: 4 * 3600,
            group_interval: 0,
            lease: 300,
            token: "run-1".to_owned(),
            silences: Default::default(),
            critical_percent: 20,
            cluster_sizes: Default::default(),
            flap_threshold: 3,
            dashboard: None,
        }
    }

    fn key(kind: AlertKind) -> IncidentKey {
        IncidentKey::new(CLUSTER, kind, &format!("{CLUSTER}/ci-1"), None)
    }

    fn back() -> Look {
        Look::Over {
            how: kinds::of(AlertKind::AgentDisconnected).recovered().unwrap().to_owned(),
            at: None,
            event: None,
        }
    }

    fn record(kind: AlertKind, state: State, flaps: Vec<u64>) -> Incident {
        Incident {
            version: 4,
            notified_at: NOW - 3_000,
            ..Incident::new(
                key(kind),
                state,
                InstanceFinding {
                    flaps,
                    ..InstanceFinding::default()
                },
                NOW - 3_000,
            )
        }
    }

    fn run(stored: Vec<Incident>, looks: Vec<(IncidentKey, Look)>, now: u64) -> Plan {
        let stored = stored.into_iter().map(|i| (i.key.clone(), i)).collect();
        plan(&stored, &HashMap::new(), &looks, &settings(now))
    }

    fn written(plan: &Plan, kind: AlertKind) -> Option<&Incident> {
        plan.moves.iter().map(|m| &m.incident).find(|i| i.key.kind == kind)
    }

    /// A disconnect that came back inside the queue's delay has no incident: its return is
    /// kept on a closed record, one write, and nothing is alerted.
    #[test]
    fn when_an_agent_comes_back_with_no_incident_open_then_the_return_is_kept_on_a_closed_record() {
        let plan = run(Vec::new(), vec![(key(AlertKind::AgentDisconnected), back())], NOW);
        assert_eq!(plan.moves.len(), 1, "{plan:?}");
        let kept = &plan.moves[0];
        assert_eq!((kept.incident.state, kept.incident.version), (State::Closed, 1));
        assert_eq!(kept.incident.finding.flaps, vec![NOW]);
        assert!(
            kept.incident
                .finding
                .container_instance_arn
                .ends_with(":container-instance/prod/ci-1")
        );
        assert!(!kept.opens && !kept.closes && kept.sends.is_none());
    }

    /// The third return within the hour opens `agent-flapping` and alerts it; the agent
    /// incident the look closes carries the count.
    #[test]
    fn when_the_third_return_within_an_hour_comes_then_agent_flapping_alerts_once() {
        let agent = record(
            AlertKind::AgentDisconnected,
            State::Notified,
            vec![NOW - 3_000, NOW - 1_000],
        );
        let plan = run(vec![agent], vec![(key(AlertKind::AgentDisconnected), back())], NOW);
        let closed = written(&plan, AlertKind::AgentDisconnected).unwrap();
        assert_eq!(closed.finding.flaps, vec![NOW - 3_000, NOW - 1_000, NOW]);
        let flapping = plan
            .moves
            .iter()
            .find(|m| m.incident.key.kind == AlertKind::AgentFlapping)
            .expect("agent-flapping opened");
        assert_eq!(flapping.sends, Some(Notice::Alert));
        assert!(flapping.opens);
        assert_eq!(flapping.incident.finding.flaps.len(), 3);
        // Open already (as a conflict brings it back): it learns of the return, nothing more.
        let open = record(
            AlertKind::AgentFlapping,
            State::Notified,
            vec![NOW - 3_000, NOW - 1_000],
        );
        let agent = record(
            AlertKind::AgentDisconnected,
            State::Closed,
            vec![NOW - 3_000, NOW - 1_000],
        );
        let plan = run(
            vec![agent, open],
            vec![(key(AlertKind::AgentDisconnected), back())],
            NOW,
        );
        let told = written(&plan, AlertKind::AgentFlapping).unwrap();
        assert_eq!((told.state, told.version), (State::Notified, 5));
        assert_eq!(told.finding.flaps.last(), Some(&NOW));
        assert!(plan.moves.iter().all(|m| m.sends.is_none()), "{plan:?}");
    }

    /// Two returns in the hour, or returns spread over more than one, open nothing; a look
    /// that finds the instance gone is no return.
    #[test]
    fn when_returns_are_fewer_or_spread_or_the_instance_is_gone_then_nothing_flaps() {
        for (flaps, look) in [
            (vec![NOW - 1_000], back()),
            (vec![NOW - 5_000, NOW - 3_700], back()),
            (
                vec![NOW - 2_000, NOW - 1_000],
                Look::Over {
                    how: "gone: instance gone".to_owned(),
                    at: None,
                    event: None,
                },
            ),
        ] {
            let agent = record(AlertKind::AgentDisconnected, State::Closed, flaps.clone());
            let plan = run(vec![agent], vec![(key(AlertKind::AgentDisconnected), look)], NOW);
            assert!(
                written(&plan, AlertKind::AgentFlapping).is_none(),
                "{flaps:?}: {plan:?}"
            );
        }
    }

    /// The sweep's look at an open flapping incident ends it after a quiet hour, not before.
    #[test]
    fn when_the_sweep_looks_at_a_flapping_agent_then_it_ends_after_a_quiet_hour() {
        let open = record(
            AlertKind::AgentFlapping,
            State::Notified,
            vec![NOW - 2_000, NOW - 1_000, NOW],
        );
        let looks = vec![(key(AlertKind::AgentFlapping), Look::Owed)];
        let early = run(vec![open.clone()], looks.clone(), NOW + agent_flapping::WINDOW - 1);
        assert!(early.moves.is_empty(), "{early:?}");
        let quiet = run(vec![open], looks, NOW + agent_flapping::WINDOW);
        let resolved = &quiet.moves[0];
        assert_eq!(resolved.sends, Some(Notice::Resolved));
        assert_eq!(resolved.incident.resolution.as_deref(), Some(agent_flapping::QUIET));
    }

    /// A disconnect that lasted past the grace period opens its incident anew over the closed
    /// record: the returns of the hour stay, so its own return counts with them.
    #[test]
    fn when_a_disconnect_opens_an_incident_between_returns_then_the_count_goes_on() {
        let agent = record(
            AlertKind::AgentDisconnected,
            State::Closed,
            vec![NOW - 2_000, NOW - 1_000],
        );
        let confirmed = Look::Confirmed {
            finding: Box::default(),
            hold: 0,
        };
        let plan = run(
            vec![agent],
            vec![(key(AlertKind::AgentDisconnected), confirmed)],
            NOW - 600,
        );
        let opened = written(&plan, AlertKind::AgentDisconnected).unwrap().clone();
        assert_eq!(opened.finding.flaps, vec![NOW - 2_000, NOW - 1_000]);
        let notified = Incident {
            state: State::Notified,
            lease: None,
            ..opened
        };
        let plan = run(vec![notified], vec![(key(AlertKind::AgentDisconnected), back())], NOW);
        assert!(written(&plan, AlertKind::AgentFlapping).is_some(), "{plan:?}");
    }

    fn back_from(time: u64, id: &str) -> Look {
        match back() {
            Look::Over { how, at, .. } => Look::Over {
                how,
                at,
                event: Some(EventSeen {
                    time,
                    id: id.to_owned(),
                }),
            },
            other => other,
        }
    }

    /// The agent's record after a run: what the plan wrote of it, or what was stored.
    fn after(plan: &Plan, stored: Incident) -> Incident {
        written(plan, AlertKind::AgentDisconnected).cloned().unwrap_or(stored)
    }

    /// A return is counted from an event no older than the record's close only: the look that
    /// closed it counted the return its event tells, and an event older than the close is old
    /// news (review finding: every recovered event was counted, whatever its time).
    #[test]
    fn when_a_return_s_event_is_older_than_the_close_then_it_is_not_counted() {
        let closed = Incident {
            closed_at: NOW - 100,
            ..record(AlertKind::AgentDisconnected, State::Closed, vec![NOW - 100])
        };
        for (time, counted) in [
            (NOW - 500, false),
            (NOW - 101, false),
            (NOW - 100, true),
            (NOW - 99, true),
        ] {
            let plan = run(
                vec![closed.clone()],
                vec![(key(AlertKind::AgentDisconnected), back_from(time, "e-1"))],
                NOW,
            );
            let flaps = after(&plan, closed.clone()).finding.flaps;
            assert_eq!(flaps.len(), if counted { 2 } else { 1 }, "event at {time}: {flaps:?}");
        }
    }

    /// The same event delivered again (SQS redelivers, EventBridge delivers at least once) is
    /// counted once, however many runs see it, whether an incident was open or not; another
    /// event is counted. Over generated delivery orders.
    #[test]
    fn when_the_same_event_comes_again_then_its_return_is_counted_once() {
        for case in 0..500u64 {
            let mut seed = case;
            let events = 1 + (crate::seeded::splitmix(&mut seed) % 4) as usize;
            let mut stored = record(AlertKind::AgentDisconnected, State::Closed, Vec::new());
            let mut delivered = Vec::new();
            for n in 0..(events * 3) {
                // Each event at least once, in order, some again right after or later.
                let id = match n < events {
                    true => n,
                    false => (crate::seeded::splitmix(&mut seed) % events as u64) as usize,
                };
                delivered.push(id);
                let now = NOW + n as u64 * 60;
                let look = back_from(NOW - 1_000 + id as u64, &format!("e-{id}"));
                let plan = run(
                    vec![stored.clone()],
                    vec![(key(AlertKind::AgentDisconnected), look)],
                    now,
                );
                stored = after(&plan, stored);
            }
            assert_eq!(
                stored.finding.flaps.len(),
                events,
                "case {case}: deliveries {delivered:?}: {:?}",
                stored.finding.flap_events
            );
        }
    }

    /// Returns told by events whose disconnects came before the first was delivered (the queue
    /// delays each by the grace period) are each counted: the record the first one made is
    /// closed as of its event, not of its delivery.
    #[test]
    fn when_returns_come_faster_than_the_queue_delivers_them_then_each_counts() {
        let first = run(
            Vec::new(),
            vec![(key(AlertKind::AgentDisconnected), back_from(NOW - 600, "e-1"))],
            NOW,
        );
        let stored = written(&first, AlertKind::AgentDisconnected).unwrap().clone();
        assert_eq!(stored.closed_at, NOW - 600);
        let second = run(
            vec![stored.clone()],
            vec![(key(AlertKind::AgentDisconnected), back_from(NOW - 600, "e-2"))],
            NOW + 60,
        );
        assert_eq!(after(&second, stored).finding.flaps.len(), 2, "{second:?}");
    }
}
