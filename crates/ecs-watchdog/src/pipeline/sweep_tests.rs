//! The sweep against the in-memory fakes: a partial view is reported, never judged as the
//! whole, and what it could not call is counted and alerted once.

use crate::alert::{Alert, AlertKind, InstanceFinding};
use crate::incident::IncidentKey;
use std::sync::atomic::AtomicU64;

use super::fakes::*;
use super::*;
use crate::alert::Status;
use crate::incident::{Incident, State};
use crate::metrics::Metric;

const START: u64 = 1_800_000_000;

fn sweep(
    inventory: FakeInventory,
    notifier: &'static FakeNotifier,
    ledger: &'static FakeLedger,
    clock: &'static AtomicU64,
) -> Sweep {
    Sweep::new(
        config(),
        "eu-west-1",
        adapters(inventory, notifier, Some(ledger), Some(clock)),
    )
}

fn open(ledger: &FakeLedger, cluster: &str, n: usize, notified_at: u64) {
    let key = IncidentKey::new(cluster, AlertKind::AgentDisconnected, &arn(cluster, n), None);
    let finding = InstanceFinding {
        container_instance_arn: arn(cluster, n),
        ..Default::default()
    };
    let state = if notified_at > 0 {
        State::Notified
    } else {
        State::Pending
    };
    let incident = Incident {
        version: 1,
        notified_at,
        ..Incident::new(key.clone(), state, finding, START - 3600)
    };
    ledger.incidents.lock().unwrap().insert(key.id(), incident);
}

#[tokio::test]
async fn when_one_cluster_cannot_be_listed_then_the_others_are_swept_and_it_is_reported_unseen() {
    let mut inventory = FakeInventory::default().disconnected(A, 1).disconnected(B, 1);
    inventory.failing.insert("ecs:ListContainerInstances/b");
    let (notifier, ledger) = (leak(FakeNotifier::default()), leak(FakeLedger::default()));
    // B had an open incident: a cluster not seen must not close it.
    open(ledger, B, 1, START - 3000);
    let sweep = sweep(inventory, notifier, ledger, leak(AtomicU64::new(START)));

    let run = sweep.run().await;

    assert_eq!((run.clusters, run.unseen.clone()), (1, vec![B.to_owned()]));
    let tally = &run.report.tally;
    assert_eq!(tally.get(Some("a"), Metric::DisconnectedAgents), 1);
    assert!(
        !tally.has("b", Metric::DisconnectedAgents),
        "no gauge for a cluster not seen"
    );
    // What it could not call, by operation: B's list, and (the fakes have no Managed Daemons) A's
    // ListDaemons.
    let mut impaired: Vec<String> = tally
        .data()
        .iter()
        .filter(|d| d.name == "MonitorImpaired" && !d.dimensions.is_empty())
        .map(|d| d.dimensions[0].1.clone())
        .collect();
    impaired.sort();
    assert_eq!(impaired, vec!["ecs:ListContainerInstances/b", "ecs:ListDaemons"]);
    let sent = notifier.sent.lock().unwrap();
    let kinds: Vec<(&str, Status)> = sent.iter().map(|a| (a.kind.as_str(), a.status)).collect();
    assert_eq!(
        kinds,
        vec![("monitor-impaired", Status::Firing)],
        "A is within its grace period"
    );
    assert!(sent[0].email.contains("ecs:ListContainerInstances/b"));
    let items = ledger.incidents.lock().unwrap();
    let b = IncidentKey::new(B, AlertKind::AgentDisconnected, &arn(B, 1), None);
    assert!(items[&b.id()].is_open(), "B's incident stays open");
    let a = IncidentKey::new(A, AlertKind::AgentDisconnected, &arn(A, 1), None);
    assert_eq!(
        (items[&a.id()].state, items[&a.id()].notified_at),
        (State::Pending, 0),
        "A's first sight is recorded, nobody told yet"
    );
}

#[tokio::test]
async fn when_a_cluster_is_deleted_between_sweeps_then_its_incidents_close_with_one_notice() {
    // B's instances are gone: ListContainerInstances of a deleted cluster answers none.
    let inventory = FakeInventory::default().disconnected(A, 1);
    let (notifier, ledger) = (leak(FakeNotifier::default()), leak(FakeLedger::default()));
    open(ledger, B, 1, START - 3000);
    open(ledger, B, 2, START - 3000);
    let sweep = sweep(inventory, notifier, ledger, leak(AtomicU64::new(START)));

    let run = sweep.run().await;

    assert_eq!(run.clusters, 2);
    let sent = notifier.sent.lock().unwrap();
    let resolved: Vec<&Alert> = sent.iter().filter(|a| a.status == Status::Resolved).collect();
    assert_eq!(resolved.len(), 1, "one notice for the cluster and kind");
    assert!(
        resolved[0]
            .subject
            .starts_with("Resolved: ECS agent disconnected on 2 instances in b")
    );
    assert_eq!(run.report.tally.get(Some("b"), Metric::IncidentsResolved), 2);
    assert_eq!(run.report.tally.get(Some("b"), Metric::OpenIncidents), 0);
    assert!(run.report.tally.has("b", Metric::OpenIncidents), "published as zero");
}

/// What the ledger leaves undecided in a sweep (here: SNS refused the resolved notice) is
/// counted in `CheckErrors` for its cluster, once per incident, as the monitor counts the
/// messages it gives back; the incidents stay open for the next sweep.
#[tokio::test]
async fn when_a_notice_of_the_sweep_is_refused_then_its_incidents_count_as_check_errors_of_their_cluster() {
    let inventory = FakeInventory::default().disconnected(A, 1);
    let (notifier, ledger) = (leak(FakeNotifier::default()), leak(FakeLedger::default()));
    open(ledger, B, 1, START - 3000);
    open(ledger, B, 2, START - 3000);
    notifier.refuse_next.store(true, std::sync::atomic::Ordering::SeqCst);

    let run = sweep(inventory, notifier, ledger, leak(AtomicU64::new(START)))
        .run()
        .await;

    let sent = notifier.sent.lock().unwrap();
    assert!(!sent.iter().any(|a| a.status == Status::Resolved), "refused");
    let tally = &run.report.tally;
    assert_eq!(tally.get(Some("b"), Metric::CheckErrors), 2, "{:?}", tally.data());
    assert_eq!(tally.get(Some("a"), Metric::CheckErrors), 0);
    assert_eq!(run.undecided, 2);
    assert!(
        run.report.undecided.is_empty(),
        "counted once, not left for another count"
    );
    let items = ledger.incidents.lock().unwrap();
    let first = IncidentKey::new(B, AlertKind::AgentDisconnected, &arn(B, 1), None);
    assert_ne!(items[&first.id()].state, State::Closed, "the next sweep tells it");
}

const C: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/c";

/// The sweep's own looks with no work item behind them (a cluster gone from the listing, what the
/// table owes, a timed look) count too when their notice is refused: they used to go uncounted.
#[tokio::test]
async fn when_the_resolved_notice_of_a_deleted_cluster_is_refused_then_it_counts_as_a_check_error() {
    let inventory = FakeInventory::default().disconnected(A, 1);
    let (notifier, ledger) = (leak(FakeNotifier::default()), leak(FakeLedger::default()));
    open(ledger, C, 1, START - 3000);
    notifier.refuse_next.store(true, std::sync::atomic::Ordering::SeqCst);

    let run = sweep(inventory, notifier, ledger, leak(AtomicU64::new(START)))
        .run()
        .await;

    let tally = &run.report.tally;
    assert_eq!(tally.get(Some("c"), Metric::CheckErrors), 1, "{:?}", tally.data());
    assert_eq!(run.undecided, 1);
    let items = ledger.incidents.lock().unwrap();
    let told = IncidentKey::new(C, AlertKind::AgentDisconnected, &arn(C, 1), None);
    assert_ne!(items[&told.id()].state, State::Closed, "the next sweep tells it");
}

/// Issue 21: the sweep read incidents only of the clusters it listed, so a deleted cluster's
/// incidents stayed open for good (no resolved notice, no reminder, a gauge of 0 while the
/// ledger held them).
#[tokio::test]
async fn when_a_cluster_is_gone_from_the_listing_then_a_told_incident_is_resolved_saying_why_and_an_untold_one_closes_silently()
 {
    // Given cluster C, no longer listed, with one incident told and one still in its grace.
    let inventory = FakeInventory::default().disconnected(A, 1);
    let (notifier, ledger) = (leak(FakeNotifier::default()), leak(FakeLedger::default()));
    open(ledger, C, 1, START - 3000);
    open(ledger, C, 2, 0);

    let run = sweep(inventory, notifier, ledger, leak(AtomicU64::new(START)))
        .run()
        .await;

    let sent = notifier.sent.lock().unwrap();
    let resolved: Vec<&Alert> = sent.iter().filter(|a| a.status == Status::Resolved).collect();
    assert_eq!(
        resolved.len(),
        1,
        "{:?}",
        sent.iter().map(|a| &a.subject).collect::<Vec<_>>()
    );
    assert!(
        resolved[0]
            .subject
            .starts_with("Resolved: ECS agent disconnected on 1 instance in c")
    );
    let finding: serde_json::Value = serde_json::from_str(&resolved[0].default).unwrap();
    assert_eq!(
        finding["instances"][0]["resolution"],
        places::CLUSTER_DELETED,
        "{finding}"
    );
    let items = ledger.incidents.lock().unwrap();
    let told = IncidentKey::new(C, AlertKind::AgentDisconnected, &arn(C, 1), None);
    let untold = IncidentKey::new(C, AlertKind::AgentDisconnected, &arn(C, 2), None);
    assert_eq!(items[&told.id()].state, State::Closed);
    assert_eq!(
        (items[&untold.id()].state, items[&untold.id()].notified_at),
        (State::Closed, 0)
    );
    // The gauge agrees with the ledger: C's open incidents are counted until they close.
    let open_now = items
        .values()
        .filter(|i| i.is_open() && i.key.kind != AlertKind::MonitorImpaired)
        .count() as u64;
    let tally = &run.report.tally;
    assert_eq!(tally.get(Some("c"), Metric::OpenIncidents), 0);
    assert_eq!(tally.get(None, Metric::OpenIncidents), open_now, "{:?}", tally.data());
    assert_eq!(tally.get(None, Metric::SweepCompleted), 1);
}

#[tokio::test]
async fn when_the_clusters_cannot_be_listed_then_no_incident_is_closed_and_no_heartbeat_goes_out() {
    let mut inventory = FakeInventory::default().disconnected(A, 1);
    inventory.failing.insert("ecs:ListClusters");
    let (notifier, ledger) = (leak(FakeNotifier::default()), leak(FakeLedger::default()));
    open(ledger, C, 1, START - 3000);

    let run = sweep(inventory, notifier, ledger, leak(AtomicU64::new(START)))
        .run()
        .await;

    assert!(!run.complete);
    assert_eq!(run.report.tally.get(None, Metric::SweepCompleted), 0);
    let key = IncidentKey::new(C, AlertKind::AgentDisconnected, &arn(C, 1), None);
    assert!(
        ledger.incidents.lock().unwrap()[&key.id()].is_open(),
        "not seen is not gone"
    );
    let sent = notifier.sent.lock().unwrap();
    assert_eq!(sent.len(), 1, "the monitor-impaired alert only");
    assert!(sent[0].email.contains("ecs:ListClusters"), "{}", sent[0].email);
}
