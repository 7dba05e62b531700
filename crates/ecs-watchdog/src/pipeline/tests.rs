//! The whole pipeline against in-memory fakes of its ports: each partial failure leaves only
//! the messages that needed the failed call undecided. The emulator tests prove the adapters.

use crate::alert::AlertKind;
use crate::metrics::Metric;
use std::sync::atomic::Ordering;

use super::fakes::*;
use super::*;
use crate::alert::Status;

#[tokio::test]
async fn when_each_look_up_fails_alone_then_only_the_messages_that_needed_it_go_back() {
    let batch = [agent(A, 1), daemon(A, 2), agent(B, 1)];
    let cases: Vec<(&str, &[&str], usize)> = vec![
        ("nothing fails", &[], 3),
        ("cluster b's instances", &["agent-b-1"], 2),
        ("EC2 (agents only)", &["agent-a-1", "agent-b-1"], 1),
        ("ListTasks (daemons only)", &["daemon-a-2"], 2),
    ];
    let failing: [&[&'static str]; 4] = [
        &[],
        &["ecs:DescribeContainerInstances/b"],
        &["ec2:DescribeInstances"],
        &["ecs:ListTasks"],
    ];
    for ((name, undecided, alerted), failing) in cases.into_iter().zip(failing) {
        let notifier = leak(FakeNotifier::default());
        let mut inventory = fleet();
        inventory.failing = failing.iter().copied().collect();
        let report = monitor(inventory, notifier, None).process(&batch).await;
        let mut failures = report.failures.clone();
        failures.sort();
        assert_eq!(failures, undecided, "{name}");
        let named: usize = notifier
            .sent
            .lock()
            .unwrap()
            .iter()
            .map(|a| a.default.matches("containerInstanceArn").count())
            .sum();
        assert_eq!(named, alerted, "{name}: instances alerted");
        assert_eq!(
            report.tally.get(None, Metric::CheckErrors),
            undecided.len() as u64,
            "{name}"
        );
    }
}

#[tokio::test]
async fn when_publish_fails_then_the_messages_go_back_and_the_retry_alerts_once() {
    let notifier = leak(FakeNotifier::default());
    let ledger = leak(FakeLedger::default());
    let clock = leak(std::sync::atomic::AtomicU64::new(1_800_000_000));
    let monitor = monitor_at(fleet(), notifier, Some(ledger), Some(clock));
    let batch = [agent(A, 1)];
    notifier.refuse_next.store(true, Ordering::SeqCst);
    let report = monitor.process(&batch).await;
    assert_eq!(report.failures, vec!["agent-a-1"]);
    assert!(notifier.sent.lock().unwrap().is_empty());

    // The failed page opened its group's window: the retries tell it once, by the time the
    // window ends (the alert is owed, never lost; a page that went out meanwhile is not repeated).
    for _ in 0..2 {
        let report = monitor.process(&batch).await;
        assert!(report.failures.is_empty());
        clock.fetch_add(5 * 60, Ordering::SeqCst);
    }
    let sent = notifier.sent.lock().unwrap();
    assert_eq!(sent.len(), 1, "the retry alerts, the duplicate does not");
    assert_eq!(sent[0].status, Status::Firing);
}

#[tokio::test]
async fn when_the_ledger_is_off_then_every_confirmation_alerts_as_before_incidents() {
    let notifier = leak(FakeNotifier::default());
    let monitor = monitor(fleet(), notifier, None);
    for _ in 0..2 {
        monitor.process(&[agent(A, 1)]).await;
    }
    assert_eq!(notifier.sent.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn when_the_ledger_cannot_be_read_then_a_look_that_would_resolve_goes_back_to_the_queue() {
    let notifier = leak(FakeNotifier::default());
    let ledger = leak(FakeLedger::default());
    monitor(fleet(), notifier, Some(ledger)).process(&[agent(A, 1)]).await;
    assert_eq!(notifier.sent.lock().unwrap().len(), 1, "the incident opened");

    // The agent reconnected, but the ledger cannot be read: the incident cannot be closed now.
    let after = monitor(fleet().reconnected(), notifier, Some(ledger));
    ledger.unreadable.store(true, Ordering::SeqCst);
    let report = after.process(&[agent(A, 1)]).await;
    assert_eq!(report.failures, vec!["agent-a-1"], "kept for a retry, not acknowledged");
    assert_eq!(notifier.sent.lock().unwrap().len(), 1);

    // The retry closes it with its notice.
    ledger.unreadable.store(false, Ordering::SeqCst);
    let report = after.process(&[agent(A, 1)]).await;
    assert!(report.failures.is_empty());
    let sent = notifier.sent.lock().unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].status, Status::Resolved);
}

#[tokio::test]
async fn when_a_reminder_goes_out_then_the_ledger_keeps_the_finding_without_its_duration() {
    let notifier = leak(FakeNotifier::default());
    let ledger = leak(FakeLedger::default());
    let clock = leak(std::sync::atomic::AtomicU64::new(1_800_000_000));
    let monitor = monitor_at(fleet(), notifier, Some(ledger), Some(clock));
    monitor.process(&[agent(A, 1)]).await;
    clock.fetch_add(240 * 60, Ordering::SeqCst);
    monitor.process(&[agent(A, 1)]).await;

    let sent = notifier.sent.lock().unwrap();
    assert_eq!(sent.len(), 2);
    assert!(
        sent[1].email.contains("still open after 4 h 0 min (reminder)"),
        "{}",
        sent[1].email
    );
    let stored = ledger.incidents.lock().unwrap();
    let incident = stored.values().next().expect("the incident");
    assert_eq!(
        incident.notified_at,
        1_800_000_000 + 240 * 60,
        "the reminder was claimed"
    );
    assert_eq!(
        incident.finding.open_for, None,
        "a later alert must not say it is a reminder"
    );
}

/// Grouping across invocations, per cluster and kind: the first of each pages, what joins in
/// the window waits, and the first run after it sends one digest per kind.
#[tokio::test]
async fn when_incidents_of_two_kinds_join_within_the_window_then_each_kind_pages_once_and_digests_once() {
    let notifier = leak(FakeNotifier::default());
    let ledger = leak(FakeLedger::default());
    let now = leak(std::sync::atomic::AtomicU64::new(1_000));
    let fleet = || {
        (1..=4)
            .fold(FakeInventory::default(), |f, n| f.disconnected(A, n))
            .reconnected()
    };
    let agents = || (1..=4).fold(FakeInventory::default(), |f, n| f.disconnected(A, n));
    let sent = || {
        notifier
            .sent
            .lock()
            .unwrap()
            .iter()
            .map(|a| a.subject.clone())
            .collect::<Vec<_>>()
    };
    // Daemons on connected instances, agents on disconnected ones: one monitor each, one ledger.
    let daemons = monitor_at(fleet(), notifier, Some(ledger), Some(now));
    let agents = monitor_at(agents(), notifier, Some(ledger), Some(now));
    daemons.process(&[daemon(A, 1)]).await;
    agents.process(&[agent(A, 1)]).await;
    assert_eq!(sent().len(), 2, "{:?}", sent());
    now.store(1_060, Ordering::SeqCst);
    daemons.process(&[daemon(A, 2), daemon(A, 3)]).await;
    agents.process(&[agent(A, 2), agent(A, 3)]).await;
    assert_eq!(sent().len(), 2, "held: {:?}", sent());
    now.store(1_400, Ordering::SeqCst);
    daemons.process(&[daemon(A, 1)]).await;
    agents.process(&[agent(A, 1)]).await;
    let subjects = sent();
    assert_eq!(subjects.len(), 4, "{subjects:?}");
    assert!(
        subjects[2..].iter().all(|s| s.contains(" on 2 more instances ")),
        "{subjects:?}"
    );
}

/// A group whose record says a digest is due but whose index shows nothing held: right after a
/// hold the index may lag, so it stays due; once it has settled, nothing waits.
#[tokio::test]
async fn when_a_digest_finds_nothing_held_then_it_waits_for_the_index_before_it_clears() {
    use crate::incident::{Group, GroupKey};
    let notifier = leak(FakeNotifier::default());
    let ledger = leak(FakeLedger::default());
    let io = adapters(fleet(), notifier, Some(ledger), None);
    let key = GroupKey::new(A, AlertKind::AgentDisconnected);
    let place = crate::config::Place::new("123456789012", "eu-west-1");
    let stored = Group {
        version: 1,
        window_end: 1_000,
        digest_due: 1_000,
        last_held: 1_005,
        ..Group::none(key.clone())
    };
    for (now, cleared) in [(1_010, false), (1_100, false), (1_400, true)] {
        ledger.groups.lock().unwrap().insert(key.id(), stored.clone());
        let settings = plan::Settings {
            now,
            remind_after: 0,
            group_interval: 300,
            lease: 300,
            token: "t".into(),
            silences: Default::default(),
            critical_percent: 20,
            cluster_sizes: Default::default(),
            flap_threshold: 3,
            dashboard: None,
        };
        let mut report = BatchReport::default();
        group::send_due(&io, &ledger, &place, [stored.clone()], &settings, &mut report).await;
        let after = ledger.groups.lock().unwrap()[&key.id()].clone();
        assert!(notifier.sent.lock().unwrap().is_empty());
        assert_eq!(after.digest_due == 0, cleared, "at {now}: {after:?}");
        assert_eq!(after.lease, None, "at {now}");
    }
}

/// A sink that refuses every finding, as PutEvents does past its retries.
struct RefusingSink;

#[async_trait::async_trait]
impl crate::ports::FindingSink for RefusingSink {
    async fn send(&self, _: &[&crate::alert::Alert]) -> Result<(), crate::ports::AwsError> {
        Err(crate::ports::AwsError::new(
            "events:PutEvents",
            "injected: entries still failed",
        ))
    }
}

#[tokio::test]
async fn when_the_findings_bus_refuses_after_its_retries_then_the_alerted_messages_go_back_and_do_not_alert_again() {
    // Given a bus that refuses findings, and an incident ledger.
    let (notifier, ledger) = (leak(FakeNotifier::default()), leak(FakeLedger::default()));
    let mut io = adapters(fleet(), notifier, Some(ledger), None);
    io.findings.push(Box::new(RefusingSink));
    let monitor = Monitor::new(config(), "eu-west-1", io);

    // When a batch alerts, then comes back.
    let batch = [agent(A, 1), agent(B, 1)];
    let first = monitor.process(&batch).await;
    let again = monitor.process(&batch).await;

    // Then the messages are not dropped (they go back, and past the receive count to the
    // dead-letter queue), and the redelivery finds them told: no second alert.
    let mut failures = first.failures.clone();
    failures.sort();
    assert_eq!(failures, ["agent-a-1", "agent-b-1"]);
    assert_eq!(notifier.sent.lock().unwrap().len(), 2, "one alert per cluster, once");
    assert_eq!((again.alerts.len(), again.failures.len()), (0, 0));
}
