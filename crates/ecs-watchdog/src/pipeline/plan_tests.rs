use super::outbox::merged;
use super::*;
use crate::alert::{AlertKind, InstanceFinding};
use crate::incident::{Lease, Notice};
use crate::remediation::{ActionOutcome, ActionTaken};

const NOW: u64 = 100_000;

fn settings() -> Settings {
    Settings {
        now: NOW,
        remind_after: 4 * 3600,
        group_interval: 300,
        lease: 300,
        token: "run-1".to_owned(),
        silences: Default::default(),
        critical_percent: 20,
        cluster_sizes: Default::default(),
        flap_threshold: 3,
        dashboard: None,
    }
}

fn key(n: usize) -> IncidentKey {
    IncidentKey::new(
        "arn:aws:ecs:eu-west-1:1:cluster/prod",
        AlertKind::AgentDisconnected,
        &format!("ci/{n}"),
        None,
    )
}

fn stored(state: State) -> Incident {
    Incident {
        version: 3,
        notified_at: if matches!(state, State::Notified | State::ResolveDue) {
            NOW - 60
        } else {
            0
        },
        ..Incident::new(key(1), state, InstanceFinding::default(), NOW - 600)
    }
}

fn confirmed(hold: u64) -> Look {
    Look::Confirmed {
        finding: Box::default(),
        hold,
    }
}

fn over() -> Look {
    Look::Over {
        how: "recovered".to_owned(),
        at: None,
        event: None,
    }
}

/// (state written, notice leased) for one look at one stored incident, grouping off.
fn one(current: Option<Incident>, look: Look) -> Option<(State, Option<Notice>)> {
    let s = Settings {
        group_interval: 0,
        ..settings()
    };
    let stored: HashMap<IncidentKey, Incident> = current.into_iter().map(|i| (i.key.clone(), i)).collect();
    let plan = plan(&stored, &HashMap::new(), &[(key(1), look)], &s);
    plan.moves.first().map(|m| (m.incident.state, m.sends))
}

#[test]
fn when_a_look_meets_an_incident_then_it_moves_as_the_outbox_says() {
    let sending = |notice: Notice, until: u64| Incident {
        lease: Some((
            Lease {
                token: "other".into(),
                until,
            },
            notice,
        )),
        ..stored(State::Sending)
    };
    let ended = Incident {
        ended_at: NOW - 10,
        ..stored(State::Notified)
    };
    type Case = (&'static str, Option<Incident>, Look, Option<(State, Option<Notice>)>);
    let cases: Vec<Case> = vec![
        (
            "an event, nothing stored",
            None,
            confirmed(0),
            Some((State::Sending, Some(Notice::Alert))),
        ),
        (
            "the sweep's first sight",
            None,
            confirmed(180),
            Some((State::Pending, None)),
        ),
        (
            "pending, within its grace",
            Some(stored(State::Pending)),
            confirmed(900),
            None,
        ),
        (
            "pending, lasted its grace",
            Some(stored(State::Pending)),
            confirmed(180),
            Some((State::Sending, Some(Notice::Alert))),
        ),
        (
            "pending, over: nobody was told",
            Some(stored(State::Pending)),
            over(),
            Some((State::Closed, None)),
        ),
        (
            "due, over before its alert",
            Some(stored(State::Due)),
            over(),
            Some((State::Closed, None)),
        ),
        (
            "due, owed",
            Some(stored(State::Due)),
            Look::Owed,
            Some((State::Sending, Some(Notice::Alert))),
        ),
        (
            "a live lease",
            Some(sending(Notice::Alert, NOW + 1)),
            confirmed(0),
            None,
        ),
        (
            "a live lease, over: marked ended",
            Some(sending(Notice::Alert, NOW + 1)),
            over(),
            Some((State::Sending, None)),
        ),
        (
            "a dead sender's alert",
            Some(sending(Notice::Alert, NOW)),
            confirmed(0),
            Some((State::Sending, Some(Notice::Alert))),
        ),
        (
            "a dead sender's resolved notice",
            Some(sending(Notice::Resolved, NOW)),
            Look::Owed,
            Some((State::Sending, Some(Notice::Resolved))),
        ),
        ("notified, again", Some(stored(State::Notified)), confirmed(0), None),
        (
            "notified, over",
            Some(stored(State::Notified)),
            over(),
            Some((State::Sending, Some(Notice::Resolved))),
        ),
        (
            "notified, seen over while sending",
            Some(ended.clone()),
            Look::Owed,
            Some((State::Sending, Some(Notice::Resolved))),
        ),
        (
            "seen over while sending, back again before its resolved notice was tried",
            Some(ended),
            confirmed(0),
            Some((State::Notified, None)),
        ),
        (
            "resolved notice tried (it may have reached on-call), back again: it goes out",
            Some(stored(State::ResolveDue)),
            confirmed(0),
            Some((State::Sending, Some(Notice::Resolved))),
        ),
        ("closed, over", Some(stored(State::Closed)), over(), None),
        (
            "closed, again",
            Some(stored(State::Closed)),
            confirmed(0),
            Some((State::Sending, Some(Notice::Alert))),
        ),
    ];
    for (name, current, look, expected) in cases {
        assert_eq!(one(current, look), expected, "{name}");
    }
}

#[test]
fn when_a_reminder_is_due_then_it_is_leased_and_zero_turns_it_off() {
    let old = Incident {
        notified_at: NOW - 4 * 3600,
        ..stored(State::Notified)
    };
    assert_eq!(
        one(Some(old.clone()), confirmed(0)),
        Some((State::Sending, Some(Notice::Reminder)))
    );
    let s = Settings {
        remind_after: 0,
        ..settings()
    };
    let stored = HashMap::from([(key(1), old)]);
    assert!(
        plan(&stored, &HashMap::new(), &[(key(1), confirmed(0))], &s)
            .moves
            .is_empty()
    );
}

#[test]
fn when_remediation_words_change_but_not_its_steps_then_nothing_is_written() {
    let action = |detail: &str, outcome| ActionTaken {
        step: "guard".into(),
        outcome,
        detail: detail.into(),
        at: None,
    };
    let with = |a: ActionTaken| InstanceFinding {
        remediation: Some(a.text()),
        remediation_actions: vec![a],
        ..Default::default()
    };
    let told = with(action("held back: 1 of 10 DRAINING", ActionOutcome::HeldBack));
    let words = with(action("held back: 2 of 10 DRAINING", ActionOutcome::HeldBack));
    let drained = with(action("drained", ActionOutcome::Done));
    assert!(!merged(&told, &words).1, "live counts are words, not steps");
    assert!(merged(&told, &drained).1);
    assert!(
        !merged(&told, &InstanceFinding::default()).1,
        "a look without remediation keeps what was done"
    );
}

#[test]
fn when_incidents_become_due_in_a_quiet_group_then_they_page_and_in_its_window_they_wait() {
    let s = settings();
    let gk = GroupKey::new(&key(1).cluster_arn, AlertKind::AgentDisconnected);
    let looks: Vec<(IncidentKey, Look)> = (1..=3).map(|n| (key(n), confirmed(0))).collect();
    let quiet = HashMap::from([(gk.clone(), Group::none(gk.clone()))]);
    let paged = plan(&HashMap::new(), &quiet, &looks, &s);
    assert_eq!(paged.groups[0].window_end, NOW + 300);
    assert!(
        paged
            .moves
            .iter()
            .all(|m| m.sends == Some(Notice::Alert) && m.group.as_ref() == Some(&gk))
    );

    let open = HashMap::from([(
        gk.clone(),
        Group {
            window_end: NOW + 100,
            version: 2,
            ..Group::none(gk.clone())
        },
    )]);
    let held = plan(&HashMap::new(), &open, &looks, &s);
    assert_eq!((held.groups[0].digest_due, held.groups[0].version), (NOW + 100, 3));
    assert!(
        held.moves
            .iter()
            .all(|m| m.sends.is_none() && m.incident.held && m.incident.state == State::Due)
    );
}

#[test]
fn when_an_event_is_older_than_what_the_incident_knows_then_it_is_stale() {
    let closed = Incident {
        closed_at: NOW,
        ..stored(State::Closed)
    };
    let ended = Incident {
        ended_at: NOW,
        ..stored(State::Notified)
    };
    // (stored, look, event time) -> stale
    let cases = [
        (None, confirmed(0), Some(NOW - 999), false),
        (Some(&closed), confirmed(0), Some(NOW - 1), true),
        (Some(&closed), confirmed(0), Some(NOW), false),
        (Some(&closed), confirmed(0), None, false),
        (Some(&ended), confirmed(0), Some(NOW - 1), true),
        (Some(&ended), over(), Some(NOW - 1), false),
        (Some(&stored(State::Notified)), confirmed(0), Some(NOW - 999), false),
    ];
    for (i, (incident, look, time, expected)) in cases.into_iter().enumerate() {
        assert_eq!(stale(incident, &look, time), expected, "case {i}");
    }
}

/// A daemon's deployments, told only by their events (the simulation with deployments close
/// together found both, `SIM_DEPLOYMENTS_APART=0`, seeds 607, 851, 1259): a deployment's end is
/// its success event's time, not when it was processed or its notice went out, so a later
/// deployment's failure processed after both still opens; a success older than the failure an
/// incident tells cannot end it; a failure that meets the resolved notice its incident owes is
/// taken again after it (no sweep would see it).
#[test]
fn when_deployments_follow_each_other_then_each_failure_is_judged_by_event_time() {
    let deployment = IncidentKey::new(
        "arn:aws:ecs:eu-west-1:1:cluster/prod",
        AlertKind::DaemonDeploymentFailed,
        "arn:aws:ecs:eu-west-1:1:daemon/prod/log-router",
        Some("log-router"),
    );
    let succeeded_at = NOW - 600;
    let told = Incident {
        key: deployment.clone(),
        ended_at: succeeded_at,
        closed_at: NOW,
        ..stored(State::Closed)
    };
    // A failure after the success, processed after the resolved notice went out: not stale.
    assert!(!stale(Some(&told), &confirmed(0), Some(succeeded_at + 60)));
    // The failure the success ended, redelivered: stale.
    assert!(stale(Some(&told), &confirmed(0), Some(succeeded_at - 60)));
    // A success older than the failure an open incident tells does not end it.
    let failing = Incident {
        key: deployment.clone(),
        finding: InstanceFinding {
            since: Some("1970-01-02T03:46:40Z".to_owned()), // NOW
            ..Default::default()
        },
        ..stored(State::Notified)
    };
    let success = |at| Look::Over {
        how: "recovered: a later deployment of the daemon succeeded".to_owned(),
        at: Some(at),
        event: None,
    };
    assert!(stale(Some(&failing), &success(NOW - 1), None));
    assert!(!stale(Some(&failing), &success(NOW + 1), None));
    // A failure meeting the resolved notice still owed: the notice goes, the failure comes back.
    let resolving = Incident {
        key: deployment.clone(),
        ended_at: NOW - 5,
        ..stored(State::ResolveDue)
    };
    let stored = HashMap::from([(deployment.clone(), resolving)]);
    let plan = plan(
        &stored,
        &HashMap::new(),
        &[(deployment.clone(), confirmed(0))],
        &settings(),
    );
    assert_eq!(plan.later, vec![deployment]);
    assert_eq!(plan.moves.first().and_then(|m| m.sends), Some(Notice::Resolved));
}
