//! Races found by hand (helper `races`): named interleavings of the real executor over the
//! fakes, each a schedule the simulation did not reach.

use crate::alert::{AlertKind, InstanceFinding};
use crate::ports::Ledger;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use serde_json::Value;

use super::fakes::*;
use super::*;
use crate::incident::{Group, GroupKey, Incident, IncidentKey, State};
use crate::ports::{AwsError, Batch, Settle, Written};

const START: u64 = 1_800_000_000;

/// The fake ledger, with a sweep's digest step (owed groups, then `send_due`, exactly as
/// `Sweep::run` does it) let in just before the run's first incident write. `atomic`: the run
/// writes the group record and its incidents in one transaction, as DynamoDB does, and the
/// digest comes just before it; otherwise one after the other (the fallback of a ledger without
/// transactions, which the simulation's ledger runs), and the digest comes between them.
struct DigestBetween {
    inner: &'static FakeLedger,
    notifier: &'static FakeNotifier,
    clock: &'static AtomicU64,
    armed: AtomicBool,
    atomic: bool,
}

impl DigestBetween {
    async fn sweep_digests(&self) {
        let io = adapters(
            FakeInventory::default(),
            self.notifier,
            Some(self.inner),
            Some(self.clock),
        );
        let now = self.clock.load(Ordering::SeqCst);
        let (_, groups) = (&self.inner).owed(now).await.unwrap_or_default();
        let s = plan::Settings {
            now,
            remind_after: 0,
            group_interval: 300,
            lease: 300,
            token: "sweep".into(),
            silences: Default::default(),
            critical_percent: 20,
            cluster_sizes: Default::default(),
            flap_threshold: 3,
            dashboard: None,
        };
        let mut report = BatchReport::default();
        let home = crate::config::Place::new("123456789012", "eu-west-1");
        group::send_due(&io, &self.inner, &home, groups, &s, &mut report).await;
    }
}

#[async_trait]
impl Ledger for DigestBetween {
    async fn get(&self, keys: &[IncidentKey]) -> Result<Vec<Incident>, AwsError> {
        (&self.inner).get(keys).await
    }
    async fn put(&self, incidents: &[Incident]) -> Result<Vec<bool>, AwsError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.sweep_digests().await;
        }
        (&self.inner).put(incidents).await
    }
    async fn write(&self, batch: &Batch) -> Result<Written, AwsError> {
        if !self.atomic {
            return crate::ports::one_by_one::write(self, batch).await;
        }
        if self.armed.swap(false, Ordering::SeqCst) {
            self.sweep_digests().await;
        }
        (&self.inner).write(batch).await
    }
    async fn settle(&self, settles: &[Settle]) -> Result<Vec<bool>, AwsError> {
        (&self.inner).settle(settles).await
    }
    async fn open_incidents(&self, cluster: &str) -> Result<Vec<IncidentKey>, AwsError> {
        (&self.inner).open_incidents(cluster).await
    }
    async fn count_open(&self, cluster: &str, delta: i64) -> Result<i64, AwsError> {
        (&self.inner).count_open(cluster, delta).await
    }
    async fn groups(&self, keys: &[GroupKey]) -> Result<Vec<Group>, AwsError> {
        (&self.inner).groups(keys).await
    }
    async fn put_group(&self, group: &Group) -> Result<bool, AwsError> {
        (&self.inner).put_group(group).await
    }
    async fn held(&self, key: &GroupKey) -> Result<Vec<Incident>, AwsError> {
        (&self.inner).held(key).await
    }
    async fn owed(&self, now: u64) -> Result<(Vec<Incident>, Vec<Group>), AwsError> {
        (&self.inner).owed(now).await
    }
}

/// Whether any message the topic received names this container instance.
fn told(notifier: &FakeNotifier, instance: &str) -> bool {
    notifier.sent.lock().unwrap().iter().any(|alert| {
        let finding: Value = serde_json::from_str(&alert.default).unwrap_or_default();
        finding["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["containerInstanceArn"].as_str() == Some(instance))
    })
}

/// Schedule: cluster A's group has a digest due (A/1 held). Monitor run M confirms A/2: it
/// reads the group (digest due: hold) and writes the group record (version 4) and A/2 held.
/// A sweep sends the due digest at the worst moment: it leases the group, reads what is held
/// (A/1 only: A/2 is not written yet), publishes, marks A/1 told and gives the lease back. Were
/// A/2 then written held by a group with no digest due, outside the outbox index, no later
/// sweep, event or digest would ever tell it (promise 1, never lost).
///
/// Written one after the other, the digest comes between M's group write and its incident
/// write; written together (one transaction), the digest comes before it, M's group condition
/// fails, and M plans A/2 again on the group as the digest left it.
#[tokio::test]
async fn when_a_digest_is_sent_between_a_holds_group_write_and_its_incident_write_then_the_held_incident_is_still_told()
{
    held_incident_told_after_a_digest_race(false).await;
}

#[tokio::test]
async fn when_a_digest_is_sent_just_before_a_hold_and_its_group_are_written_together_then_the_held_incident_is_still_told()
 {
    held_incident_told_after_a_digest_race(true).await;
}

async fn held_incident_told_after_a_digest_race(atomic: bool) {
    let clock = leak(AtomicU64::new(START));
    let (notifier, inner) = (leak(FakeNotifier::default()), leak(FakeLedger::default()));
    let group = GroupKey::new(A, AlertKind::AgentDisconnected);
    inner.groups.lock().unwrap().insert(
        group.id(),
        Group {
            version: 3,
            window_end: START - 60,
            digest_due: START - 60,
            last_held: START - 200,
            ..Group::none(group.clone())
        },
    );
    let first = IncidentKey::new(A, AlertKind::AgentDisconnected, &arn(A, 1), None);
    let finding = InstanceFinding {
        container_instance_arn: arn(A, 1),
        ..Default::default()
    };
    inner.incidents.lock().unwrap().insert(
        first.id(),
        Incident {
            version: 2,
            held: true,
            ..Incident::new(first.clone(), State::Due, finding, START - 200)
        },
    );
    let fleet = || FakeInventory::default().disconnected(A, 1).disconnected(A, 2);
    let mut io = adapters(fleet(), notifier, None, Some(clock));
    io.ledger = Some(Box::new(DigestBetween {
        inner,
        notifier,
        clock,
        armed: AtomicBool::new(true),
        atomic,
    }));
    let failures = Monitor::new(config(), "eu-west-1", io)
        .process(&[agent(A, 2)])
        .await
        .failures;
    assert!(failures.is_empty(), "the event was decided: {failures:?}");
    assert!(told(notifier, &arn(A, 1)), "the due digest went out");

    // Faults over; the problem lasts: sweeps every five minutes for an hour.
    for round in 1..=12 {
        clock.store(START + round * 300, Ordering::SeqCst);
        let sweep = Sweep::new(
            config(),
            "eu-west-1",
            adapters(fleet(), notifier, Some(inner), Some(clock)),
        );
        sweep.run().await;
    }
    let second = IncidentKey::new(A, AlertKind::AgentDisconnected, &arn(A, 2), None);
    let stored = inner.incidents.lock().unwrap().get(&second.id()).cloned();
    let digest_due = inner.groups.lock().unwrap().get(&group.id()).map(|g| g.digest_due);
    assert!(
        told(notifier, &arn(A, 2)),
        "A/2 disconnected for an hour and never told: stored {:?} held {:?} due_at {:?}, group digest_due {digest_due:?}",
        stored.as_ref().map(|i| i.state),
        stored.as_ref().map(|i| i.held),
        stored.as_ref().map(Incident::due_at),
    );
}
