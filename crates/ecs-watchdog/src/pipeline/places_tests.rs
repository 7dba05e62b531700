//! The sweep of every place the ledger knows (DESIGN §8 "Places"), its heartbeat, its
//! monitor-impaired alert across Lambda instances, and what it may replace, over the fakes.

use crate::alert::{Alert, AlertKind, InstanceFinding};
use crate::config::Place;
use crate::incident::IncidentKey;
use crate::remediation::RemediationStep;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;

use super::fakes::*;
use super::*;
use crate::alert::Status;
use crate::incident::{Incident, State};
use crate::inventory::InstanceStatus;
use crate::metrics::{Metric, MetricDatum};
use crate::ports::AwsError;
use crate::remediation::{ActionTaken, StepOutcome, Target};

const START: u64 = 1_800_000_000;
const MEMBER: &str = "111111111111";

fn member() -> Place {
    Place::new(MEMBER, "eu-west-1")
}

/// Metrics kept to be read.
#[derive(Default)]
struct Published(Mutex<Vec<MetricDatum>>);

#[async_trait]
impl crate::ports::MetricsSink for &'static Published {
    async fn publish(&self, data: &[MetricDatum]) -> Result<(), AwsError> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(())
    }
}

impl Published {
    /// The heartbeats published without a place: what the stack's alarm watches.
    fn heartbeats(&self) -> usize {
        let data = self.0.lock().unwrap();
        data.iter()
            .filter(|d| d.name == Metric::SweepCompleted.name() && d.dimensions.is_empty())
            .count()
    }
}

/// A member place reached through fakes that share the hub's ledger, topic and clock; its
/// ListClusters fails when `blind`.
struct Members {
    blind: bool,
    notifier: &'static FakeNotifier,
    ledger: &'static FakeLedger,
    clock: &'static AtomicU64,
    built: AtomicUsize,
}

#[async_trait]
impl Reach for &'static Members {
    async fn ready(&self, _: &Place) -> Result<(), AwsError> {
        Ok(())
    }
    fn adapters(&self, _: &Place) -> Adapters {
        self.built.fetch_add(1, Ordering::SeqCst);
        let mut inventory = FakeInventory::default();
        if self.blind {
            inventory.failing.insert("ecs:ListClusters");
        }
        adapters(inventory, self.notifier, Some(self.ledger), Some(self.clock))
    }
}

struct Bed {
    notifier: &'static FakeNotifier,
    ledger: &'static FakeLedger,
    clock: &'static AtomicU64,
    published: &'static Published,
}

impl Bed {
    fn new() -> Self {
        Self {
            notifier: leak(FakeNotifier::default()),
            ledger: leak(FakeLedger::default()),
            clock: leak(AtomicU64::new(START)),
            published: leak(Published::default()),
        }
    }

    fn members(&self, blind: bool) -> &'static Members {
        leak(Members {
            blind,
            notifier: self.notifier,
            ledger: self.ledger,
            clock: self.clock,
            built: AtomicUsize::new(0),
        })
    }

    /// The hub's sweep: its own place over `inventory`, members through `members`.
    fn sweep(&self, inventory: FakeInventory, members: &'static Members) -> HubSweep {
        let mut io = adapters(inventory, self.notifier, Some(self.ledger), Some(self.clock));
        io.metrics = Box::new(self.published);
        HubSweep::new(Sweep::new(config(), "eu-west-1", io), Box::new(members))
    }

    fn impaired_alerts(&self) -> Vec<Alert> {
        let sent = self.notifier.sent.lock().unwrap();
        sent.iter()
            .filter(|a| a.kind == AlertKind::MonitorImpaired)
            .cloned()
            .collect()
    }
}

#[tokio::test]
async fn when_a_member_sent_an_event_then_the_hub_notes_it_once_an_hour_and_the_next_sweep_covers_it() {
    let bed = Bed::new();
    let members = bed.members(false);
    let hub = Hub::new(
        monitor_at(
            FakeInventory::default(),
            bed.notifier,
            Some(bed.ledger),
            Some(bed.clock),
        ),
        Box::new(members),
    );
    let mut event = agent(A, 1);
    let mut body: serde_json::Value = serde_json::from_str(&event.body).unwrap();
    body["account"] = MEMBER.into();
    body["region"] = "eu-west-1".into();
    event.body = body.to_string();

    hub.process(std::slice::from_ref(&event)).await;
    bed.clock.fetch_add(600, Ordering::SeqCst);
    hub.process(std::slice::from_ref(&event)).await;

    let noted = bed.ledger.places.lock().unwrap().clone();
    assert_eq!(noted, HashMap::from([(member(), START)]), "noted once within the hour");

    // The sweep, with no SWEEP_ACCOUNTS, covers the member.
    let sweep_members = bed.members(false);
    bed.sweep(FakeInventory::default(), sweep_members).run().await;
    assert_eq!(sweep_members.built.load(Ordering::SeqCst), 1, "the member was swept");

    // A day after its last event, with nothing open there, it is no longer swept.
    bed.clock.fetch_add(places::SEEN_FOR_SECONDS, Ordering::SeqCst);
    let later = bed.members(false);
    bed.sweep(FakeInventory::default(), later).run().await;
    assert_eq!(later.built.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn when_a_members_clusters_cannot_be_listed_then_no_heartbeat_and_the_alert_names_the_place() {
    let bed = Bed::new();
    bed.ledger.places.lock().unwrap().insert(member(), START - 60);

    let blind = bed.sweep(FakeInventory::default(), bed.members(true)).run().await;

    assert!(!blind.complete);
    assert_eq!(
        bed.published.heartbeats(),
        0,
        "the home place alone is not the whole watch"
    );
    // The fakes have no Managed Daemons: the home place says so too; the member names itself.
    let alerts = bed.impaired_alerts();
    let blind: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.subject.contains("ecs:ListClusters"))
        .collect();
    assert_eq!(blind.len(), 1, "{alerts:?}");
    assert_eq!(
        blind[0].subject,
        format!("ECS Watchdog cannot call ecs:ListClusters ({MEMBER}, eu-west-1)")
    );

    // Once the member can be listed again, the heartbeat is back: one for the whole sweep.
    let seeing = bed.sweep(FakeInventory::default(), bed.members(false)).run().await;
    assert!(seeing.complete);
    assert_eq!(bed.published.heartbeats(), 1);
}

/// Two warm Lambda instances (two sweeps, each with its own memory) share the ledger: the
/// monitor-impaired alert goes once a day, not once per instance.
#[tokio::test]
async fn when_two_lambda_instances_see_the_same_impaired_call_then_one_alert_a_day() {
    let bed = Bed::new();
    let blind = || {
        let mut inventory = FakeInventory::default();
        inventory.failing.insert("ecs:ListClusters");
        bed.sweep(inventory, bed.members(false))
    };
    let (first, second) = (blind(), blind());

    first.run().await;
    second.run().await;
    bed.clock.fetch_add(3600, Ordering::SeqCst);
    second.run().await;
    first.run().await;
    assert_eq!(bed.impaired_alerts().len(), 1, "one alert for both instances");

    bed.clock.fetch_add(24 * 3600, Ordering::SeqCst);
    second.run().await;
    first.run().await;
    let alerts = bed.impaired_alerts();
    assert_eq!(alerts.len(), 2, "a day later, one reminder: {alerts:?}");
    assert_eq!(alerts[1].status, Status::Firing);
}

/// A replace step that counts its calls and skips (the instance is in no Auto Scaling group).
struct Skipping(&'static AtomicUsize);

#[async_trait]
impl RemediationStep for Skipping {
    fn name(&self) -> &str {
        REPLACE_STEP
    }
    async fn apply(&self, _: &str, targets: &[Target], _: bool) -> Vec<StepOutcome> {
        self.0.fetch_add(targets.len(), Ordering::SeqCst);
        targets
            .iter()
            .map(|_| StepOutcome::Skipped("not in an Auto Scaling group".into()))
            .collect()
    }
}

struct Named(&'static str);

#[async_trait]
impl RemediationStep for Named {
    fn name(&self) -> &str {
        self.0
    }
    async fn apply(&self, _: &str, _: &[Target], _: bool) -> Vec<StepOutcome> {
        unreachable!("only its name is read")
    }
}

#[test]
fn when_the_sweep_is_built_then_it_keeps_only_the_replace_step_and_none_in_a_dry_run() {
    let steps = || -> Vec<Box<dyn RemediationStep>> { vec![Box::new(Named("drain")), Box::new(Named(REPLACE_STEP))] };
    let mut live = steps();
    keep_for_sweep(&mut live, false);
    assert_eq!(live.iter().map(|s| s.name()).collect::<Vec<_>>(), [REPLACE_STEP]);
    let mut dry = steps();
    keep_for_sweep(&mut dry, true);
    assert!(dry.is_empty(), "a dry run replaces nothing");
    // restart-then-drain: the sweep drains what a restart did not bring back; it restarts nothing.
    let mut restarts: Vec<Box<dyn RemediationStep>> =
        vec![Box::new(Named(super::RESTART_STEP)), Box::new(Named("drain"))];
    keep_for_sweep(&mut restarts, false);
    assert_eq!(restarts.iter().map(|s| s.name()).collect::<Vec<_>>(), ["drain"]);
}

/// An instance the monitor drained, still DRAINING: a skipped replacement is asked again every
/// sweep (a skip may wait: "after 15 min", a group tagged later), but the same answer is told
/// and written once, not every five minutes.
#[tokio::test]
async fn when_a_replacement_is_skipped_then_each_sweep_asks_again_and_the_same_answer_is_written_once() {
    let bed = Bed::new();
    let mut inventory = FakeInventory::default().disconnected(A, 1);
    for instance in inventory.instances.values_mut() {
        instance.status = InstanceStatus::Draining;
    }
    let key = IncidentKey::new(A, AlertKind::AgentDisconnected, &arn(A, 1), None);
    let mut finding = InstanceFinding {
        container_instance_arn: arn(A, 1),
        ..Default::default()
    };
    finding
        .remediation_actions
        .push(ActionTaken::of("drain", &StepOutcome::Done("drained".into())));
    let incident = Incident {
        version: 1,
        notified_at: START - 3000,
        ..Incident::new(key.clone(), State::Notified, finding, START - 7200)
    };
    bed.ledger.incidents.lock().unwrap().insert(key.id(), incident);
    let asked = leak(AtomicUsize::new(0));
    let mut io = adapters(inventory, bed.notifier, Some(bed.ledger), Some(bed.clock));
    io.steps.push(Box::new(Skipping(asked)));
    let sweep = Sweep::new(config(), "eu-west-1", io);

    let first = sweep.run().await;
    let written = bed.ledger.incidents.lock().unwrap()[&key.id()].version;
    bed.clock.fetch_add(300, Ordering::SeqCst);
    let second = sweep.run().await;

    assert_eq!(asked.load(Ordering::SeqCst), 2, "asked again");
    assert_eq!((first.replaced.len(), second.replaced.len()), (1, 0), "told once");
    let stored = bed.ledger.incidents.lock().unwrap()[&key.id()].clone();
    assert_eq!(stored.version, written, "not written again");
    let replace = stored
        .finding
        .remediation_actions
        .iter()
        .find(|a| a.step == REPLACE_STEP);
    assert_eq!(
        replace.map(|a| a.outcome),
        Some(crate::remediation::ActionOutcome::Skipped)
    );
}

/// A ledger that cannot be read may hide places with open incidents or recent events: the run
/// did not see the whole watch, so no heartbeat (DESIGN §8), though every listing worked.
#[tokio::test]
async fn when_the_ledger_cannot_be_read_then_the_sweep_sends_no_heartbeat() {
    let bed = Bed::new();
    bed.ledger.unreadable.store(true, Ordering::SeqCst);

    let unread = bed.sweep(FakeInventory::default(), bed.members(false)).run().await;

    assert!(!unread.complete);
    assert_eq!(bed.published.heartbeats(), 0);

    bed.ledger.unreadable.store(false, Ordering::SeqCst);
    let read = bed.sweep(FakeInventory::default(), bed.members(false)).run().await;
    assert!(read.complete);
    assert_eq!(bed.published.heartbeats(), 1);
}
