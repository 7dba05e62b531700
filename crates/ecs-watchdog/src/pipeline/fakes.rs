//! In-memory fakes of the ports, for the pipeline's and the sweep's unit tests: each can be told
//! which operations fail. The emulator tests prove the real adapters.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::incident::{Group, GroupKey, Incident};
use crate::inventory::{
    ClusterInfo, ClusterInstances, ContainerInstance, Daemon, DaemonPlacement, Ec2State, Ec2States, InstanceStatus,
    Task, TaskFilter,
};
use crate::metrics::MetricDatum;
use crate::ports::{AwsError, Quarantined};

pub(super) const A: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/a";
pub(super) const B: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/b";

pub(super) fn arn(cluster: &str, n: usize) -> String {
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
    async fn describe_clusters(&self, _: &[String]) -> Result<Vec<ClusterInfo>, AwsError> {
        unreachable!("every cluster is monitored here")
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
}

#[async_trait]
impl Notifier for &'static FakeNotifier {
    async fn publish(&self, alert: &Alert) -> Result<(), AwsError> {
        if self.refuse_next.swap(false, Ordering::SeqCst) {
            return Err(AwsError::new("sns:Publish", "injected"));
        }
        self.sent.lock().unwrap().push(alert.clone());
        Ok(())
    }
}

pub(super) struct KeepAll;

#[async_trait]
impl Quarantine for KeepAll {
    async fn quarantine(&self, _: &[Quarantined]) -> Vec<String> {
        Vec::new()
    }
}

pub(super) struct Discard;

#[async_trait]
impl MetricsSink for Discard {
    async fn publish(&self, _: &[MetricDatum]) -> Result<(), AwsError> {
        Ok(())
    }
}

/// The ledger's conditional semantics, in memory; reads fail while `unreadable` is set.
#[derive(Default)]
pub(super) struct FakeLedger(
    pub(super) Mutex<HashMap<String, Incident>>,
    pub(super) AtomicBool,
    pub(super) Mutex<HashMap<String, Group>>,
);

#[async_trait]
impl Ledger for &'static FakeLedger {
    async fn get(&self, keys: &[IncidentKey]) -> Result<Vec<Incident>, AwsError> {
        if self.1.load(Ordering::SeqCst) {
            return Err(AwsError::new("dynamodb:BatchGetItem", "injected"));
        }
        let items = self.0.lock().unwrap();
        Ok(keys.iter().filter_map(|k| items.get(&k.id()).cloned()).collect())
    }
    async fn open_incidents(&self, cluster: &str) -> Result<Vec<IncidentKey>, AwsError> {
        let items = self.0.lock().unwrap();
        Ok(items
            .values()
            .filter(|i| i.open && i.key.cluster_arn == cluster)
            .map(|i| i.key.clone())
            .collect())
    }
    async fn open(&self, incident: &Incident) -> Result<bool, AwsError> {
        let mut items = self.0.lock().unwrap();
        if items.get(&incident.key.id()).is_some_and(|i| i.open) {
            return Ok(false);
        }
        items.insert(incident.key.id(), incident.clone());
        Ok(true)
    }
    async fn claim(&self, incident: &Incident, expected: u64) -> Result<bool, AwsError> {
        let mut items = self.0.lock().unwrap();
        match items.get_mut(&incident.key.id()) {
            Some(i) if i.open && i.notified_at == expected => {
                *i = incident.clone();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn release(&self, key: &IncidentKey, claimed: u64, to: u64) -> Result<bool, AwsError> {
        let mut items = self.0.lock().unwrap();
        match items.get_mut(&key.id()) {
            Some(i) if i.open && i.notified_at == claimed => {
                i.notified_at = to;
                i.remediation_reported = false;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn close(&self, key: &IncidentKey, now: u64, how: &str, hold: Option<&GroupKey>) -> Result<bool, AwsError> {
        let mut items = self.0.lock().unwrap();
        Ok(items
            .get_mut(&key.id())
            .filter(|i| i.open)
            .map(|i| {
                i.open = false;
                i.closed_at = now;
                i.resolution = Some(how.to_owned());
                if let Some(group) = hold {
                    i.held = Some(group.status);
                }
            })
            .is_some())
    }
    async fn reopen(&self, key: &IncidentKey, _: u64) -> Result<bool, AwsError> {
        let mut items = self.0.lock().unwrap();
        Ok(items
            .get_mut(&key.id())
            .filter(|i| !i.open)
            .map(|i| i.open = true)
            .is_some())
    }
    async fn count_open(&self, _: &str, delta: i64) -> Result<i64, AwsError> {
        let items = self.0.lock().unwrap();
        let _ = delta;
        Ok(items.values().filter(|i| i.open).count() as i64)
    }
    async fn groups(&self, keys: &[GroupKey]) -> Result<Vec<Group>, AwsError> {
        let groups = self.2.lock().unwrap();
        Ok(keys.iter().filter_map(|k| groups.get(&k.id()).cloned()).collect())
    }
    async fn set_window(&self, key: &GroupKey, expected: u64, to: u64) -> Result<bool, AwsError> {
        let mut groups = self.2.lock().unwrap();
        let group = groups.entry(key.id()).or_insert_with(|| Group::none(key.clone()));
        Ok((group.window_end == expected).then(|| group.window_end = to).is_some())
    }
    async fn count_held(&self, key: &GroupKey, delta: i64, now: u64) -> Result<(), AwsError> {
        let mut groups = self.2.lock().unwrap();
        let group = groups.entry(key.id()).or_insert_with(|| Group::none(key.clone()));
        group.held = group.held.saturating_add_signed(delta);
        if delta > 0 {
            group.last_held = now;
        }
        Ok(())
    }
    async fn held(&self, key: &GroupKey) -> Result<Vec<Incident>, AwsError> {
        let items = self.0.lock().unwrap();
        Ok(items
            .values()
            .filter(|i| i.held == Some(key.status) && i.key.cluster_arn == key.cluster_arn && i.key.kind == key.kind)
            .cloned()
            .collect())
    }
    async fn told(&self, key: &IncidentKey, _: &GroupKey, now: u64) -> Result<bool, AwsError> {
        let mut items = self.0.lock().unwrap();
        Ok(items
            .get_mut(&key.id())
            .filter(|i| i.held.is_some())
            .map(|i| {
                i.held = None;
                i.notified_at = now;
                i.remediation_reported = true;
            })
            .is_some())
    }
}

pub(super) fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// A clock the test moves.
pub(super) struct Moved(pub(super) &'static std::sync::atomic::AtomicU64);

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
pub(super) fn config() -> Config {
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

pub(super) fn message(id: &str, detail_type: &str, detail: serde_json::Value) -> Message {
    let body =
        json!({"source": "aws.ecs", "detail-type": detail_type, "detail": detail, "time": "2026-12-01T10:00:00Z"});
    Message::new(id, body.to_string())
}

pub(super) fn fleet() -> FakeInventory {
    FakeInventory::default()
        .disconnected(A, 1)
        .disconnected(A, 2)
        .disconnected(B, 1)
}
