//! The seven ways issue 21 found to lose, repeat or misorder an alert, each as a schedule over
//! the fakes: the real monitor and sweep, a crash where a port call never returns (the
//! invocation's future is dropped there), interleavings by polling one run while another waits.

use crate::alert::{Alert, AlertKind};
use crate::incident::IncidentKey;
use crate::ports::{Ledger, Notifier};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll, Waker};

use async_trait::async_trait;

use super::fakes::*;
use super::*;
use crate::alert::Status;
use crate::incident::{Group, GroupKey, Incident};
use crate::ports::AwsError;
use crate::remediation::{RemediationStep, StepOutcome, Target};

const START: u64 = 1_800_000_000;
/// Past the function's timeout and the queue's visibility timeout: a redelivery or a later look.
const LATER: u64 = 15 * 60;

/// Runs `run` until it waits on a port call that never returns: the invocation died there.
fn crash_at_hang<F: Future>(run: F) {
    let mut run = pin!(run);
    assert!(
        run.as_mut()
            .poll(&mut TaskContext::from_waker(Waker::noop()))
            .is_pending(),
        "the run was meant to die in a call that hangs"
    );
}

fn statuses(notifier: &FakeNotifier) -> Vec<Status> {
    notifier.sent.lock().unwrap().iter().map(|a| a.status).collect()
}

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

/// A remediation step whose words carry a live count, as the guard's do ("N of M DRAINING").
struct Counting(AtomicUsize);

#[async_trait]
impl RemediationStep for Counting {
    fn name(&self) -> &str {
        "drain"
    }
    async fn apply(&self, _: &str, targets: &[Target], _: bool) -> Vec<StepOutcome> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        targets
            .iter()
            .map(|_| StepOutcome::Done(format!("drained ({n} of 10 DRAINING)")))
            .collect()
    }
}

fn remediating(
    inventory: FakeInventory,
    notifier: &'static FakeNotifier,
    ledger: &'static FakeLedger,
    clock: &'static AtomicU64,
) -> Monitor {
    let mut io = adapters(inventory, notifier, Some(ledger), Some(clock));
    io.steps.push(Box::new(Counting(AtomicUsize::new(0))));
    Monitor::new(config(), "eu-west-1", io)
}

/// Case 1: the invocation dies while publishing; the redelivered event must still alert once,
/// and the resolved notice follow that alert.
#[tokio::test]
async fn case_1_when_an_invocation_dies_while_publishing_then_the_redelivery_alerts_once() {
    let (notifier, ledger, clock) = (
        leak(FakeNotifier::default()),
        leak(FakeLedger::default()),
        leak(AtomicU64::new(START)),
    );
    notifier.hang_next.store(true, Ordering::SeqCst);
    crash_at_hang(monitor_at(fleet(), notifier, Some(ledger), Some(clock)).process(&[agent(A, 1)]));
    clock.fetch_add(LATER, Ordering::SeqCst);
    monitor_at(fleet(), notifier, Some(ledger), Some(clock))
        .process(&[agent(A, 1)])
        .await;
    monitor_at(fleet().reconnected(), notifier, Some(ledger), Some(clock))
        .process(&[agent(A, 1)])
        .await;
    assert_eq!(statuses(notifier), vec![Status::Firing, Status::Resolved]);
}

/// Case 2: a storm in a cluster the sweep never lists (a member account, another region, a
/// cluster deleted or untagged since): its held incidents must still get their digest.
#[tokio::test]
async fn case_2_when_a_storm_is_held_in_a_cluster_the_sweep_does_not_list_then_the_next_sweep_sends_its_digest() {
    // A member account's: a cluster of the sweep's own place that it does not list is deleted,
    // and its incidents close (sweep_tests.rs).
    const M: &str = "arn:aws:ecs:eu-west-1:111111111111:cluster/member";
    let (notifier, ledger, clock) = (
        leak(FakeNotifier::default()),
        leak(FakeLedger::default()),
        leak(AtomicU64::new(START)),
    );
    let storm = || (1..=3).fold(FakeInventory::default(), |f, n| f.disconnected(M, n));
    let monitor = monitor_at(storm(), notifier, Some(ledger), Some(clock));
    monitor.process(&[agent(M, 1)]).await;
    clock.fetch_add(60, Ordering::SeqCst);
    monitor.process(&[agent(M, 2), agent(M, 3)]).await;
    assert_eq!(statuses(notifier).len(), 1, "the first pages, the others are held");
    clock.fetch_add(LATER, Ordering::SeqCst);
    sweep(fleet(), notifier, ledger, clock).run().await;
    let sent = notifier.sent.lock().unwrap();
    let about_m: Vec<&Alert> = sent.iter().filter(|a| a.cluster_name == "member").collect();
    assert_eq!(
        about_m.len(),
        2,
        "the page and the digest of the 2 held: {:?}",
        sent.iter().map(|a| &a.subject).collect::<Vec<_>>()
    );
}

/// Case 4: a redelivered event whose remediation words changed (a live count) must not alert
/// again: what was done is compared as steps, not as text.
#[tokio::test]
async fn case_4_when_an_event_is_redelivered_and_the_guard_words_changed_then_it_does_not_alert_again() {
    let (notifier, ledger, clock) = (
        leak(FakeNotifier::default()),
        leak(FakeLedger::default()),
        leak(AtomicU64::new(START)),
    );
    let monitor = remediating(fleet(), notifier, ledger, clock);
    monitor.process(&[agent(A, 1)]).await;
    clock.fetch_add(60, Ordering::SeqCst);
    monitor.process(&[agent(A, 1)]).await;
    assert_eq!(statuses(notifier), vec![Status::Firing]);
}

/// Case 5: remediation on, an incident the sweep alerted; a delayed event that finds the
/// instance DRAINING must not alert it a second time.
#[tokio::test]
async fn case_5_when_a_delayed_event_finds_an_alerted_instance_draining_then_it_does_not_alert_again() {
    let (notifier, ledger, clock) = (
        leak(FakeNotifier::default()),
        leak(FakeLedger::default()),
        leak(AtomicU64::new(START)),
    );
    let lone = || FakeInventory::default().disconnected(A, 1);
    sweep(lone(), notifier, ledger, clock).run().await;
    clock.fetch_add(3_600, Ordering::SeqCst);
    sweep(lone(), notifier, ledger, clock).run().await;
    let firing = |n: &FakeNotifier| {
        n.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.kind == AlertKind::AgentDisconnected)
            .count()
    };
    assert_eq!(firing(notifier), 1, "the sweep alerted once it lasted");
    let mut draining = lone();
    for instance in draining.instances.values_mut() {
        instance.status = crate::inventory::InstanceStatus::Draining;
    }
    clock.fetch_add(60, Ordering::SeqCst);
    remediating(draining, notifier, ledger, clock)
        .process(&[agent(A, 1)])
        .await;
    assert_eq!(firing(notifier), 1, "no second alert for the same incident");
}

/// Case 6: the event path claims and publishes; the sweep sees the agent back meanwhile; the
/// event path's publish then fails. On-call must not get a "Resolved:" without its alert.
#[tokio::test]
async fn case_6_when_the_sweep_sees_recovery_while_the_alert_is_in_flight_and_it_fails_then_no_lone_resolved_notice() {
    let (notifier, ledger, clock) = (
        leak(FakeNotifier::default()),
        leak(FakeLedger::default()),
        leak(AtomicU64::new(START)),
    );
    let monitor = monitor_at(
        FakeInventory::default().disconnected(A, 1),
        notifier,
        Some(ledger),
        Some(clock),
    );
    let batch = [agent(A, 1)];
    notifier.hang_next.store(true, Ordering::SeqCst);
    let mut event = pin!(monitor.process(&batch));
    let mut cx = TaskContext::from_waker(Waker::noop());
    assert!(event.as_mut().poll(&mut cx).is_pending(), "publishing");
    let recovered = FakeInventory::default().disconnected(A, 1).reconnected();
    sweep(
        FakeInventory::default().disconnected(A, 1).reconnected(),
        notifier,
        ledger,
        clock,
    )
    .run()
    .await;
    notifier.fail_hung.store(true, Ordering::SeqCst);
    let Poll::Ready(report) = event.as_mut().poll(&mut cx) else {
        panic!("the refused publish returns");
    };
    assert_eq!(
        report.failures,
        vec!["agent-a-1"],
        "the refused alert goes back to the queue"
    );
    clock.fetch_add(LATER, Ordering::SeqCst);
    monitor_at(recovered, notifier, Some(ledger), Some(clock))
        .process(&batch)
        .await;
    sweep(
        FakeInventory::default().disconnected(A, 1).reconnected(),
        notifier,
        ledger,
        clock,
    )
    .run()
    .await;
    let told: Vec<Status> = notifier
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.kind == AlertKind::AgentDisconnected)
        .map(|a| a.status)
        .collect();
    assert!(
        told.is_empty() || told == [Status::Firing, Status::Resolved],
        "told: {told:?}"
    );
}

/// Case 7: the sweep saw a storm first; the events that confirm it must still group: one page,
/// then one digest, not one page per batch.
#[tokio::test]
async fn case_7_when_the_sweep_saw_a_storm_first_then_the_events_still_page_once() {
    let (notifier, ledger, clock) = (
        leak(FakeNotifier::default()),
        leak(FakeLedger::default()),
        leak(AtomicU64::new(START)),
    );
    let storm = || (1..=3).fold(FakeInventory::default(), |f, n| f.disconnected(A, n));
    sweep(storm(), notifier, ledger, clock).run().await;
    for n in 1..=3 {
        clock.fetch_add(20, Ordering::SeqCst);
        monitor_at(storm(), notifier, Some(ledger), Some(clock))
            .process(&[agent(A, n)])
            .await;
    }
    let firing = notifier
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.kind == AlertKind::AgentDisconnected)
        .count();
    assert_eq!(firing, 1, "one page; the rest wait for the digest");
}

fn old_key() -> IncidentKey {
    IncidentKey::new(A, crate::alert::AlertKind::AgentDisconnected, &arn(A, 1), None)
}

/// A fresh ledger and topic where `event` alerted at START.
async fn alerted_by(event: &Message) -> (&'static AtomicU64, &'static FakeNotifier, &'static FakeLedger) {
    let clock = leak(AtomicU64::new(START));
    let (notifier, ledger) = (leak(FakeNotifier::default()), leak(FakeLedger::default()));
    monitor_at(fleet(), notifier, Some(ledger), Some(clock))
        .process(std::slice::from_ref(event))
        .await;
    (clock, notifier, ledger)
}

/// What the topic said of disconnected agents (the sweep also files monitor-impaired here).
fn agent_statuses(notifier: &FakeNotifier) -> Vec<Status> {
    let sent = notifier.sent.lock().unwrap();
    sent.iter()
        .filter(|a| a.kind == crate::alert::AlertKind::AgentDisconnected)
        .map(|a| a.status)
        .collect()
}

/// Promise 2's event-time rule (DESIGN §7): an event older than what the incident knows (the
/// sweep closed it after the event happened) cannot reopen it nor alert again, even while the
/// agent is disconnected once more; an event newer than the close does.
#[tokio::test]
async fn when_an_event_older_than_the_close_comes_again_then_it_does_not_reopen_and_a_newer_one_does() {
    let old = happened_at(&agent(A, 1), START - 200);
    let (clock, notifier, ledger) = alerted_by(&old).await;
    clock.store(START + 600, Ordering::SeqCst);
    sweep(fleet().reconnected(), notifier, ledger, clock).run().await;
    assert_eq!(agent_statuses(notifier), [Status::Firing, Status::Resolved]);

    // The agent disconnected again; the old event is redelivered first.
    clock.store(START + 1_200, Ordering::SeqCst);
    let again = monitor_at(fleet(), notifier, Some(ledger), Some(clock))
        .process(&[old])
        .await;
    assert!(again.failures.is_empty(), "the old event is done with");
    assert_eq!(
        agent_statuses(notifier),
        [Status::Firing, Status::Resolved],
        "no reopening"
    );

    let newer = happened_at(&agent(A, 1), START + 1_000);
    monitor_at(fleet(), notifier, Some(ledger), Some(clock))
        .process(&[newer])
        .await;
    assert_eq!(
        agent_statuses(notifier),
        [Status::Firing, Status::Resolved, Status::Firing]
    );
}

/// The rule's other half: an old event cannot call back a resolved notice that is owed (the
/// sweep saw the agent reconnected while the alert was out).
#[tokio::test]
async fn when_an_old_event_meets_an_owed_resolved_notice_then_the_notice_still_goes_out() {
    let old = happened_at(&agent(A, 1), START - 200);
    let (clock, notifier, ledger) = alerted_by(&old).await;
    // Seen over at START + 600, its resolved notice refused: it stays owed.
    clock.store(START + 600, Ordering::SeqCst);
    notifier.refuse_next.store(true, Ordering::SeqCst);
    sweep(fleet().reconnected(), notifier, ledger, clock).run().await;
    assert_eq!(agent_statuses(notifier), [Status::Firing]);

    clock.store(START + 700, Ordering::SeqCst);
    monitor_at(fleet(), notifier, Some(ledger), Some(clock))
        .process(&[old])
        .await;
    let stored = ledger.incidents.lock().unwrap().get(&old_key().id()).cloned();
    let stored = stored.expect("the incident is kept");
    assert_eq!(
        (stored.state, stored.ended_at),
        (crate::incident::State::ResolveDue, START + 600),
        "still owed"
    );
    clock.store(START + 900, Ordering::SeqCst);
    sweep(fleet().reconnected(), notifier, ledger, clock).run().await;
    assert_eq!(agent_statuses(notifier), [Status::Firing, Status::Resolved]);
}

/// SNS that holds each digest until `go`, then takes it: a digest in flight that another run
/// races.
struct SlowDigests {
    inner: &'static FakeNotifier,
    go: &'static std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Notifier for SlowDigests {
    async fn publish(&self, alert: &Alert) -> Result<(), AwsError> {
        if alert.message_status == crate::alert::MessageStatus::Digest {
            std::future::poll_fn(|_| match self.go.load(Ordering::SeqCst) {
                true => Poll::Ready(()),
                false => Poll::Pending,
            })
            .await;
        }
        self.inner.publish(alert).await
    }
}

/// What the topic said of one instance, in order.
fn told_of(notifier: &FakeNotifier, instance: &str) -> Vec<Status> {
    let sent = notifier.sent.lock().unwrap();
    sent.iter()
        .filter(|a| a.default.contains(instance))
        .map(|a| a.status)
        .collect()
}

/// Found by the simulation (seed 1255 once the fleet had three kinds): a digest read a held
/// incident, and before SNS took the digest a sweep saw the problem end and closed it
/// silently (never told). The digest then named it firing, and its "told" write failed; when
/// the problem came back before the next digest, the reopen wiped the held line that would
/// have said it ended, and it alerted a second time with no resolved notice between (and with
/// no comeback, no resolved notice ever). Fixed: the digest writes what it named but found
/// closed silently as told and ended, so its resolved notice is owed.
/// Failed before the fix: `left: [Firing, Firing, Resolved]`, `right: [Firing, Resolved]`.
#[tokio::test]
async fn when_a_held_incident_closes_while_its_digest_is_in_flight_then_a_resolved_notice_follows_it() {
    let (notifier, ledger, clock) = (
        leak(FakeNotifier::default()),
        leak(FakeLedger::default()),
        leak(AtomicU64::new(START)),
    );
    let both = || FakeInventory::default().disconnected(A, 1).disconnected(A, 2);
    let first_back = || {
        let mut fleet = both();
        fleet.instances.get_mut(&arn(A, 2)).unwrap().agent_connected = true;
        fleet
    };
    let monitor = monitor_at(both(), notifier, Some(ledger), Some(clock));
    monitor.process(&[agent(A, 1)]).await;
    clock.fetch_add(60, Ordering::SeqCst);
    monitor.process(&[agent(A, 2)]).await;
    assert_eq!(
        told_of(notifier, &arn(A, 2)),
        vec![],
        "the second is held for the digest"
    );

    clock.fetch_add(LATER, Ordering::SeqCst);
    let go = leak(std::sync::atomic::AtomicBool::new(false));
    let mut io = adapters(both(), notifier, Some(ledger), Some(clock));
    io.notifier = Box::new(SlowDigests { inner: notifier, go });
    let digesting = Sweep::new(config(), "eu-west-1", io);
    let mut digesting = pin!(digesting.run());
    let mut cx = TaskContext::from_waker(Waker::noop());
    assert!(digesting.as_mut().poll(&mut cx).is_pending(), "the digest waits on SNS");
    sweep(first_back(), notifier, ledger, clock).run().await;
    go.store(true, Ordering::SeqCst);
    digesting.await;

    clock.fetch_add(60, Ordering::SeqCst);
    let back = happened_at(&agent(A, 2), clock.load(Ordering::SeqCst));
    monitor_at(both(), notifier, Some(ledger), Some(clock))
        .process(&[back])
        .await;
    clock.fetch_add(LATER, Ordering::SeqCst);
    sweep(both(), notifier, ledger, clock).run().await;
    clock.fetch_add(LATER, Ordering::SeqCst);
    sweep(first_back(), notifier, ledger, clock).run().await;
    assert_eq!(told_of(notifier, &arn(A, 2)), vec![Status::Firing, Status::Resolved]);
}

/// A Managed Daemons deployment event of cluster A's daemon, as EventBridge delivers it at `at`.
fn deployment(name: &str, deployment: &str, at: u64) -> Message {
    let daemon = "arn:aws:ecs:eu-west-1:123456789012:daemon/a/log-router";
    let detail = serde_json::json!({"eventType": "INFO", "eventName": name, "clusterArn": A, "daemonArn": daemon,
        "daemonDeploymentArn": format!("{daemon}/{deployment}")});
    message_at(
        &format!("{deployment}-{name}"),
        crate::kinds::daemon_deployment_failed::DAEMON_DEPLOYMENT_STATE_CHANGE,
        detail,
        at,
    )
}

const ROLLING_BACK: &str = "DAEMON_DEPLOYMENT_ROLLBACK_IN_PROGRESS";
const SUCCEEDED: &str = "DAEMON_DEPLOYMENT_SUCCESSFUL";

/// Found by the simulation (seed 203 once deployments were simulated): a batch held a
/// redelivered failure, the success that ended it, and a later deployment's failure. The later
/// failure was taken for a repeat of the first (deployment events carry no version) and dropped,
/// and the fold let whichever look came last win: nothing was told of a daemon whose last
/// deployment failed. Failed before the fix: `left: []`, `right: [Firing]`.
#[tokio::test]
async fn when_a_batch_holds_a_failure_its_success_and_a_later_failure_then_the_later_failure_alerts() {
    let (notifier, ledger, clock) = (
        leak(FakeNotifier::default()),
        leak(FakeLedger::default()),
        leak(AtomicU64::new(START + 1_000)),
    );
    let batch = [
        deployment(ROLLING_BACK, "d1", START),
        deployment(SUCCEEDED, "d2", START + 400),
        deployment(ROLLING_BACK, "d3", START + 700),
    ];
    monitor_at(FakeInventory::default(), notifier, Some(ledger), Some(clock))
        .process(&batch)
        .await;
    assert_eq!(statuses(notifier), vec![Status::Firing]);
}

/// Found by the simulation (seed 111): the success of a deployment came before the failure it
/// ended (the failure's invocation died, SQS redelivered it later). With nothing open, the
/// success left no trace, and the late failure opened an incident that no event would close:
/// alerted, never resolved. The success is now remembered (a closed record, opened and closed
/// by nobody), so the older failure is stale. Failed before the fix: `left: [Firing]`,
/// `right: []`.
#[tokio::test]
async fn when_a_deployments_success_comes_before_its_failure_then_nothing_is_told() {
    let (notifier, ledger, clock) = (
        leak(FakeNotifier::default()),
        leak(FakeLedger::default()),
        leak(AtomicU64::new(START + 600)),
    );
    let monitor = monitor_at(FakeInventory::default(), notifier, Some(ledger), Some(clock));
    monitor.process(&[deployment(SUCCEEDED, "d2", START + 400)]).await;
    clock.fetch_add(LATER, Ordering::SeqCst);
    monitor.process(&[deployment(ROLLING_BACK, "d1", START)]).await;
    assert_eq!(statuses(notifier), vec![]);
    let open = ledger.open_in(A);
    assert!(open.is_empty(), "nothing open: {open:?}");
}

/// The fake ledger whose first incident write waits until `go`: another run goes meanwhile.
struct SlowFirstPut {
    inner: &'static FakeLedger,
    go: &'static std::sync::atomic::AtomicBool,
    waited: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Ledger for SlowFirstPut {
    async fn get(&self, keys: &[IncidentKey]) -> Result<Vec<Incident>, AwsError> {
        self.inner.get(keys).await
    }
    async fn put(&self, incidents: &[Incident]) -> Result<Vec<bool>, AwsError> {
        if !self.waited.swap(true, Ordering::SeqCst) {
            std::future::poll_fn(|_| match self.go.load(Ordering::SeqCst) {
                true => Poll::Ready(()),
                false => Poll::Pending,
            })
            .await;
        }
        self.inner.put(incidents).await
    }
    async fn settle(&self, settles: &[crate::ports::Settle]) -> Result<Vec<bool>, AwsError> {
        self.inner.settle(settles).await
    }
    async fn open_incidents(&self, cluster: &str) -> Result<Vec<IncidentKey>, AwsError> {
        self.inner.open_incidents(cluster).await
    }
    async fn count_open(&self, cluster: &str, delta: i64) -> Result<i64, AwsError> {
        self.inner.count_open(cluster, delta).await
    }
    async fn groups(&self, keys: &[GroupKey]) -> Result<Vec<Group>, AwsError> {
        self.inner.groups(keys).await
    }
    async fn put_group(&self, group: &Group) -> Result<bool, AwsError> {
        self.inner.put_group(group).await
    }
    async fn held(&self, key: &GroupKey) -> Result<Vec<Incident>, AwsError> {
        self.inner.held(key).await
    }
    async fn owed(&self, now: u64) -> Result<(Vec<Incident>, Vec<Group>), AwsError> {
        self.inner.owed(now).await
    }
}

/// Found by the simulation (seed 691): a deployment's failure and its success were handled by
/// two invocations at once. The success's write lost the race to the failure's (the record
/// moved meanwhile), and its event was acknowledged as "that run's to tell"; but only events
/// tell a deployment, so the failure stayed open, alerted and never resolved. The success now
/// goes back to the queue and its redelivery closes what the failure opened. Failed before the
/// fix: `left: [Firing]`, `right: [Firing, Resolved]`.
#[tokio::test]
async fn when_a_deployments_success_races_its_failure_then_its_redelivery_resolves_it() {
    let (notifier, ledger, clock) = (
        leak(FakeNotifier::default()),
        leak(FakeLedger::default()),
        leak(AtomicU64::new(START + 600)),
    );
    let go = leak(std::sync::atomic::AtomicBool::new(false));
    let mut io = adapters(FakeInventory::default(), notifier, None, Some(clock));
    io.ledger = Some(Box::new(SlowFirstPut {
        inner: ledger,
        go,
        waited: Default::default(),
    }));
    let success = [deployment(SUCCEEDED, "d2", START + 30)];
    let succeeding = Monitor::new(config(), "eu-west-1", io);
    let mut succeeding = pin!(succeeding.process(&success));
    let mut cx = TaskContext::from_waker(Waker::noop());
    assert!(
        succeeding.as_mut().poll(&mut cx).is_pending(),
        "the success's write waits"
    );
    monitor_at(FakeInventory::default(), notifier, Some(ledger), Some(clock))
        .process(&[deployment(ROLLING_BACK, "d1", START)])
        .await;
    go.store(true, Ordering::SeqCst);
    let report = succeeding.await;
    clock.fetch_add(LATER, Ordering::SeqCst);
    let redelivered: Vec<Message> = success
        .iter()
        .filter(|m| report.failures.contains(&m.id))
        .cloned()
        .collect();
    monitor_at(FakeInventory::default(), notifier, Some(ledger), Some(clock))
        .process(&redelivered)
        .await;
    assert_eq!(statuses(notifier), vec![Status::Firing, Status::Resolved]);
}
