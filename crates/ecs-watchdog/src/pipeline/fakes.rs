//! In-memory fakes of the ports, for the pipeline's and the sweep's unit tests: each can be told
//! which operations fail. The emulator tests prove the real adapters.

use crate::alert::Alert;
use crate::config::Config;
use crate::incident::IncidentKey;
use crate::inventory::cluster_name;
use crate::ports::{Clock, Daemons, Inventory, Ledger, MetricsSink, Notifier, Quarantine};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::alert::{AlertKind, InstanceFinding};
use crate::incident::{Group, GroupKey, Incident, Lease, Notice, State};
use crate::inventory::{
    ClusterInfo, ClusterInstances, ContainerInstance, Daemon, DaemonPlacement, Ec2State, Ec2States, InstanceStatus,
    Task, TaskFilter,
};
use crate::metrics::MetricDatum;
use crate::ports::{Answer, AwsError, Batch, ClusterRecord, Keys, Quarantined, Settle, Stored, Written};

pub(super) const A: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/a";
pub(super) const B: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/b";

pub(crate) fn arn(cluster: &str, n: usize) -> String {
    format!(
        "arn:aws:ecs:eu-west-1:123456789012:container-instance/{}/{n:04}",
        cluster_name(cluster)
    )
}

/// What ECS and EC2 say, and which operations fail.
#[derive(Default)]
pub(super) struct FakeInventory {
    pub(super) instances: HashMap<String, ContainerInstance>,
    pub(super) failing: HashSet<&'static str>,
    /// Tags by cluster ARN (`DescribeClusters`).
    pub(super) cluster_tags: HashMap<String, Vec<(String, String)>>,
    /// How many `DescribeClusters` calls it answered.
    pub(super) described_clusters: std::sync::atomic::AtomicUsize,
}

impl FakeInventory {
    pub(super) fn disconnected(mut self, cluster: &str, n: usize) -> Self {
        let arn = arn(cluster, n);
        self.instances.insert(
            arn.clone(),
            ContainerInstance {
                arn,
                status: InstanceStatus::Active,
                agent_connected: false,
                version: 2,
                ec2_instance_id: Some(format!("i-{n:04}")),
                running_tasks_count: 1,
                agent_version: None,
                availability_zone: None,
                capacity_provider_name: None,
                health: None,
                tags: Vec::new(),
            },
        );
        self
    }

    pub(super) fn reconnected(mut self) -> Self {
        for instance in self.instances.values_mut() {
            instance.agent_connected = true;
        }
        self
    }

    pub(super) fn fail(&self, operation: &'static str) -> Result<(), AwsError> {
        match self.failing.contains(operation) {
            true => Err(AwsError::new(operation, "injected")),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl Inventory for FakeInventory {
    async fn list_clusters(&self) -> Result<Vec<String>, AwsError> {
        self.fail("ecs:ListClusters")?;
        Ok(vec![A.to_owned(), B.to_owned()])
    }
    async fn describe_clusters(&self, arns: &[String]) -> Result<Vec<ClusterInfo>, AwsError> {
        self.fail("ecs:DescribeClusters")?;
        self.described_clusters.fetch_add(1, Ordering::SeqCst);
        Ok(arns
            .iter()
            .map(|arn| ClusterInfo {
                arn: arn.clone(),
                status: "ACTIVE".to_owned(),
                tags: self.cluster_tags.get(arn).cloned().unwrap_or_default(),
                registered_instances: self.instances.len(),
                capacity_providers: Vec::new(),
            })
            .collect())
    }
    async fn describe_container_instances(&self, cluster: &str, arns: &[String]) -> Result<ClusterInstances, AwsError> {
        self.fail(if cluster == B {
            "ecs:DescribeContainerInstances/b"
        } else {
            "ecs:DescribeContainerInstances"
        })?;
        let found = arns
            .iter()
            .filter_map(|a| self.instances.get(a))
            .map(|i| (crate::inventory::instance_key(&i.arn).to_owned(), i.clone()))
            .collect();
        Ok(ClusterInstances::Found(found))
    }
    async fn describe_ec2_instances(&self, ids: &[String]) -> Result<Ec2States, AwsError> {
        self.fail("ec2:DescribeInstances")?;
        Ok(ids.iter().map(|id| (id.clone(), Ec2State::Running)).collect())
    }
    async fn describe_managed_nodes(&self, ids: &[String]) -> Result<crate::inventory::HostStates, AwsError> {
        self.fail("ssm:DescribeInstanceInformation")?;
        Ok(ids
            .iter()
            .map(|id| (id.clone(), crate::inventory::PingStatus::Online))
            .collect())
    }
    async fn list_container_instances(&self, cluster: &str) -> Result<Vec<String>, AwsError> {
        self.fail(if cluster == B {
            "ecs:ListContainerInstances/b"
        } else {
            "ecs:ListContainerInstances"
        })?;
        let name = cluster_name(cluster);
        let mut arns: Vec<String> = self
            .instances
            .keys()
            .filter(|arn| arn.contains(&format!("/{name}/")))
            .cloned()
            .collect();
        arns.sort();
        Ok(arns)
    }
    async fn list_tasks(&self, _: &str, _: &TaskFilter) -> Result<Vec<String>, AwsError> {
        self.fail("ecs:ListTasks")?;
        Ok(Vec::new())
    }
    async fn describe_tasks(&self, _: &str, _: &[String]) -> Result<Vec<Task>, AwsError> {
        Ok(Vec::new())
    }
    async fn describe_capacity_providers(
        &self,
        _: &[String],
    ) -> Result<HashMap<String, crate::inventory::CapacityProviderType>, AwsError> {
        Ok(HashMap::new())
    }
}

pub(super) struct NoDaemonApis;

#[async_trait]
impl Daemons for NoDaemonApis {
    async fn list_daemons(&self, _: &str) -> Result<Vec<Daemon>, AwsError> {
        Err(AwsError::unavailable("ecs:ListDaemons", "not in this region"))
    }
    async fn describe_daemon(&self, _: &str) -> Result<DaemonPlacement, AwsError> {
        Err(AwsError::unavailable("ecs:DescribeDaemon", "not in this region"))
    }
    async fn deployment_in_progress(&self, _: &str) -> Result<bool, AwsError> {
        Err(AwsError::unavailable("ecs:ListDaemonDeployments", "not in this region"))
    }
}

#[derive(Default)]
pub(super) struct FakeNotifier {
    pub(super) sent: Mutex<Vec<Alert>>,
    pub(super) refuse_next: AtomicBool,
    /// The next publish never returns (a crash there), until `fail_hung`: then SNS refuses it.
    pub(super) hang_next: AtomicBool,
    pub(super) fail_hung: AtomicBool,
}

#[async_trait]
impl Notifier for &'static FakeNotifier {
    async fn publish(&self, alert: &Alert) -> Result<(), AwsError> {
        if self.refuse_next.swap(false, Ordering::SeqCst) {
            return Err(AwsError::new("sns:Publish", "injected"));
        }
        if self.hang_next.swap(false, Ordering::SeqCst) {
            std::future::poll_fn(|_| match self.fail_hung.load(Ordering::SeqCst) {
                true => std::task::Poll::Ready(()),
                false => std::task::Poll::Pending,
            })
            .await;
            return Err(AwsError::new("sns:Publish", "timed out"));
        }
        self.sent.lock().unwrap().push(alert.clone());
        Ok(())
    }
}

pub(crate) struct KeepAll;

#[async_trait]
impl Quarantine for KeepAll {
    async fn quarantine(&self, _: &[Quarantined]) -> Vec<String> {
        Vec::new()
    }
}

pub(crate) struct Discard;

#[async_trait]
impl MetricsSink for Discard {
    async fn publish(&self, _: &[MetricDatum]) -> Result<(), AwsError> {
        Ok(())
    }
}

/// The ledger's conditional semantics, in memory: incidents and groups by id, each write
/// checked against the stored version (or the lease token) as DynamoDB's conditions do.
/// Reads fail while `unreadable` is set.
#[derive(Default)]
pub(crate) struct FakeLedger {
    pub(super) incidents: Mutex<HashMap<String, Incident>>,
    pub(super) groups: Mutex<HashMap<String, Group>>,
    pub(super) unreadable: AtomicBool,
    /// When an event of each place was last noted.
    pub(super) places: Mutex<HashMap<crate::config::Place, u64>>,
    /// What the sweep last saw of each cluster, by ARN.
    pub(super) clusters: Mutex<HashMap<String, ClusterRecord>>,
}

impl FakeLedger {
    /// A copy of what it holds now (the simulation's lagging index reads one).
    pub(crate) fn snapshot(&self) -> FakeLedger {
        FakeLedger {
            incidents: Mutex::new(self.incidents.lock().unwrap().clone()),
            groups: Mutex::new(self.groups.lock().unwrap().clone()),
            unreadable: AtomicBool::new(false),
            places: Mutex::new(self.places.lock().unwrap().clone()),
            clusters: Mutex::new(self.clusters.lock().unwrap().clone()),
        }
    }

    /// What the cluster index holds open of a cluster.
    pub(crate) fn open_in(&self, cluster: &str) -> Vec<IncidentKey> {
        let items = self.incidents.lock().unwrap();
        let mut keys: Vec<IncidentKey> = items
            .values()
            .filter(|i| i.is_open() && i.key.cluster_arn == cluster)
            .map(|i| i.key.clone())
            .collect();
        keys.sort();
        keys
    }

    /// What the held index holds of a group.
    pub(crate) fn held_by(&self, key: &GroupKey) -> Vec<Incident> {
        let items = self.incidents.lock().unwrap();
        let mut held: Vec<Incident> = items
            .values()
            .filter(|i| i.held && i.key.cluster_arn == key.cluster_arn && i.key.kind == key.kind)
            .cloned()
            .collect();
        held.sort_by(|a, b| a.key.cmp(&b.key));
        held
    }

    /// What the outbox index holds due by `now`.
    pub(crate) fn owed_by(&self, now: u64) -> (Vec<Incident>, Vec<Group>) {
        let due = |at: u64| at > 0 && at <= now;
        let mut incidents: Vec<Incident> = self
            .incidents
            .lock()
            .unwrap()
            .values()
            .filter(|i| due(i.due_at()))
            .cloned()
            .collect();
        incidents.sort_by(|a, b| a.key.cmp(&b.key));
        let mut groups: Vec<Group> = self
            .groups
            .lock()
            .unwrap()
            .values()
            .filter(|g| due(g.due_at()))
            .cloned()
            .collect();
        groups.sort_by(|a, b| a.key.cmp(&b.key));
        (incidents, groups)
    }

    /// What a transaction does: every condition checked, then everything written or nothing,
    /// with what is stored in place of each record whose condition failed.
    pub(crate) fn write_all(&self, batch: &Batch) -> Written {
        let mut incidents = self.incidents.lock().unwrap();
        let mut groups = self.groups.lock().unwrap();
        let mut written = Written::untouched(batch);
        for (g, answer) in batch.groups.iter().zip(&mut written.groups) {
            let stored = groups.get(&g.key.id());
            if stored.map_or(0, |x| x.version) + 1 != g.version {
                *answer = Answer::Moved;
                written.found.groups.extend(stored.cloned());
            }
        }
        for (i, answer) in batch.incidents.iter().zip(&mut written.incidents) {
            let stored = incidents.get(&i.key.id());
            if stored.map_or(0, |x| x.version) + 1 != i.version {
                *answer = Answer::Moved;
                written.found.incidents.extend(stored.cloned());
            }
        }
        if written
            .groups
            .iter()
            .chain(&written.incidents)
            .any(|a| *a == Answer::Moved)
        {
            return written;
        }
        for g in &batch.groups {
            groups.insert(g.key.id(), g.clone());
        }
        for i in &batch.incidents {
            incidents.insert(i.key.id(), i.clone());
        }
        written.groups.fill(Answer::Written);
        written.incidents.fill(Answer::Written);
        written
    }

    fn readable(&self, operation: &'static str) -> Result<(), AwsError> {
        match self.unreadable.load(Ordering::SeqCst) {
            true => Err(AwsError::new(operation, "injected")),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl Ledger for &'static FakeLedger {
    async fn get(&self, keys: &[IncidentKey]) -> Result<Vec<Incident>, AwsError> {
        self.readable("dynamodb:BatchGetItem")?;
        let items = self.incidents.lock().unwrap();
        Ok(keys.iter().filter_map(|k| items.get(&k.id()).cloned()).collect())
    }
    /// The counts are the open incidents themselves: a fake moves no counter.
    async fn read(&self, keys: &Keys) -> Result<Stored, AwsError> {
        self.readable("dynamodb:BatchGetItem")?;
        let incidents = self.incidents.lock().unwrap();
        let groups = self.groups.lock().unwrap();
        let clusters = self.clusters.lock().unwrap();
        let open = |c: &str| {
            let open = incidents.values().filter(|i| i.is_open() && i.key.cluster_arn == c);
            open.count() as i64
        };
        Ok(Stored {
            incidents: keys
                .incidents
                .iter()
                .filter_map(|k| incidents.get(&k.id()).cloned())
                .collect(),
            groups: keys
                .groups
                .iter()
                .filter_map(|k| groups.get(&k.id()).cloned())
                .collect(),
            counts: keys.counts.iter().map(|c| (c.clone(), open(c))).collect(),
            clusters: keys.clusters.iter().filter_map(|c| clusters.get(c).cloned()).collect(),
        })
    }
    async fn write(&self, batch: &Batch) -> Result<Written, AwsError> {
        Ok(self.write_all(batch))
    }
    async fn put(&self, incidents: &[Incident]) -> Result<Vec<bool>, AwsError> {
        let mut items = self.incidents.lock().unwrap();
        Ok(incidents
            .iter()
            .map(|incident| {
                let stored = items.get(&incident.key.id()).map_or(0, |i| i.version);
                let ok = stored + 1 == incident.version;
                if ok {
                    items.insert(incident.key.id(), incident.clone());
                }
                ok
            })
            .collect())
    }
    async fn settle(&self, settles: &[Settle]) -> Result<Vec<bool>, AwsError> {
        let mut items = self.incidents.lock().unwrap();
        Ok(settles
            .iter()
            .map(|s| match items.get_mut(&s.key.id()) {
                Some(i) if i.lease.as_ref().is_some_and(|(l, _)| l.token == s.token) => {
                    settled(i, s);
                    true
                }
                _ => false,
            })
            .collect())
    }
    async fn open_incidents(&self, cluster: &str) -> Result<Vec<IncidentKey>, AwsError> {
        self.readable("dynamodb:Query")?;
        Ok(self.open_in(cluster))
    }
    async fn count_open(&self, cluster: &str, _: i64) -> Result<i64, AwsError> {
        let items = self.incidents.lock().unwrap();
        Ok(items
            .values()
            .filter(|i| i.is_open() && i.key.cluster_arn == cluster)
            .count() as i64)
    }
    async fn groups(&self, keys: &[GroupKey]) -> Result<Vec<Group>, AwsError> {
        self.readable("dynamodb:BatchGetItem")?;
        let groups = self.groups.lock().unwrap();
        Ok(keys.iter().filter_map(|k| groups.get(&k.id()).cloned()).collect())
    }
    async fn put_group(&self, group: &Group) -> Result<bool, AwsError> {
        let mut groups = self.groups.lock().unwrap();
        let stored = groups.get(&group.key.id()).map_or(0, |g| g.version);
        let ok = stored + 1 == group.version;
        if ok {
            groups.insert(group.key.id(), group.clone());
        }
        Ok(ok)
    }
    async fn held(&self, key: &GroupKey) -> Result<Vec<Incident>, AwsError> {
        self.readable("dynamodb:Query")?;
        Ok(self.held_by(key))
    }
    async fn owed(&self, now: u64) -> Result<(Vec<Incident>, Vec<Group>), AwsError> {
        self.readable("dynamodb:Query")?;
        Ok(self.owed_by(now))
    }
    async fn open_everywhere(&self) -> Result<Vec<IncidentKey>, AwsError> {
        self.readable("dynamodb:Scan")?;
        let items = self.incidents.lock().unwrap();
        let mut keys: Vec<IncidentKey> = items.values().filter(|i| i.is_open()).map(|i| i.key.clone()).collect();
        keys.sort();
        Ok(keys)
    }
    async fn note_place(&self, place: &crate::config::Place, now: u64) -> Result<(), AwsError> {
        self.places.lock().unwrap().insert(place.clone(), now);
        Ok(())
    }
    async fn note_clusters(&self, records: &[ClusterRecord]) -> Result<(), AwsError> {
        let mut clusters = self.clusters.lock().unwrap();
        clusters.extend(records.iter().map(|r| (r.cluster_arn.clone(), r.clone())));
        Ok(())
    }
    async fn places_seen(&self, since: u64) -> Result<Vec<crate::config::Place>, AwsError> {
        self.readable("dynamodb:BatchGetItem")?;
        let places = self.places.lock().unwrap();
        let mut seen: Vec<_> = places
            .iter()
            .filter(|(_, at)| **at >= since)
            .map(|(p, _)| p.clone())
            .collect();
        seen.sort();
        Ok(seen)
    }
}

/// What the adapter's settling update does to the record.
fn settled(i: &mut Incident, s: &Settle) {
    i.version += 1;
    i.lease = None;
    i.state = s.state;
    match s.state {
        State::Notified => {
            i.notified_at = s.at;
            i.held = false;
        }
        State::Closed => i.closed_at = s.at,
        _ => {}
    }
}

pub(crate) fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// A clock the test moves.
pub(crate) struct Moved(pub(crate) &'static std::sync::atomic::AtomicU64);

impl Clock for Moved {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub(super) fn monitor(
    inventory: FakeInventory,
    notifier: &'static FakeNotifier,
    ledger: Option<&'static FakeLedger>,
) -> Monitor {
    monitor_at(inventory, notifier, ledger, None)
}

pub(super) fn monitor_at(
    inventory: FakeInventory,
    notifier: &'static FakeNotifier,
    ledger: Option<&'static FakeLedger>,
    clock: Option<&'static std::sync::atomic::AtomicU64>,
) -> Monitor {
    Monitor::new(config(), "eu-west-1", adapters(inventory, notifier, ledger, clock))
}

/// The configuration the fakes run with: the required variables and the incident table.
pub(crate) fn config() -> Config {
    Config::from_lookup(|name| match name {
        "ALERT_TOPIC_ARN" => Some("arn:aws:sns:eu-west-1:123456789012:alerts".into()),
        "DEAD_LETTER_QUEUE_URL" => Some("https://sqs.eu-west-1.amazonaws.com/123456789012/dlq".into()),
        "INCIDENT_TABLE_NAME" => Some("incidents".into()),
        _ => None,
    })
    .expect("a valid configuration")
}

/// The fakes as the adapters: no Managed Daemons, every message kept, metrics discarded.
pub(super) fn adapters(
    inventory: FakeInventory,
    notifier: &'static FakeNotifier,
    ledger: Option<&'static FakeLedger>,
    clock: Option<&'static std::sync::atomic::AtomicU64>,
) -> Adapters {
    let mut io = Adapters::new(
        Box::new(inventory),
        Box::new(NoDaemonApis),
        Box::new(notifier),
        Box::new(KeepAll),
        Box::new(Discard),
    );
    io.ledger = ledger.map(|l| Box::new(l) as Box<dyn Ledger>);
    if let Some(clock) = clock {
        io.clock = Box::new(Moved(clock));
    }
    io
}

pub(super) fn agent(cluster: &str, n: usize) -> Message {
    let detail = json!({"clusterArn": cluster, "containerInstanceArn": arn(cluster, n), "agentConnected": false,
                        "status": "ACTIVE", "version": 2});
    message(
        &format!("agent-{}-{n}", cluster_name(cluster)),
        "ECS Container Instance State Change",
        detail,
    )
}

pub(super) fn daemon(cluster: &str, n: usize) -> Message {
    let detail = json!({"clusterArn": cluster, "containerInstanceArn": arn(cluster, n), "group": "daemon:log-router",
                        "lastStatus": "STOPPED", "taskArn": format!("task-{n}"), "version": 3});
    message(
        &format!("daemon-{}-{n}", cluster_name(cluster)),
        "ECS Task State Change",
        detail,
    )
}

pub(crate) fn message(id: &str, detail_type: &str, detail: serde_json::Value) -> Message {
    message_at(id, detail_type, detail, 1_796_119_200)
}

/// An event that happened at `time` (UNIX seconds), as EventBridge's `time` says it.
pub(crate) fn message_at(id: &str, detail_type: &str, detail: serde_json::Value, time: u64) -> Message {
    use aws_smithy_types::date_time::{DateTime, Format};
    let time = DateTime::from_secs(time as i64)
        .fmt(Format::DateTime)
        .unwrap_or_default();
    let body = json!({"source": "aws.ecs", "detail-type": detail_type, "detail": detail, "time": time});
    Message::new(id, body.to_string())
}

/// The same event, as if it happened at `time`.
pub(crate) fn happened_at(message: &Message, time: u64) -> Message {
    let body: serde_json::Value = serde_json::from_str(&message.body).unwrap_or_default();
    message_at(
        &message.id,
        body["detail-type"].as_str().unwrap_or_default(),
        body["detail"].clone(),
        time,
    )
}

pub(super) fn fleet() -> FakeInventory {
    FakeInventory::default()
        .disconnected(A, 1)
        .disconnected(A, 2)
        .disconnected(B, 1)
}

/// The ledger's contract, shared with the emulator test of the DynamoDB adapter.
#[path = "ledger_contract.rs"]
mod contract;

#[tokio::test]
async fn when_the_contract_script_runs_over_the_fake_ledger_then_it_answers_as_dynamodb_does() {
    contract::script(&leak(FakeLedger::default())).await;
}
