//! The simulated outside: a fleet whose agents disconnect and reconnect on a timeline, and the
//! ports over it. Every port call first passes the scheduler's gate, which may let it through,
//! make it wait (another run goes meanwhile), fail it (throttling), or kill the run there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use async_trait::async_trait;

use super::super::fakes::{FakeLedger, arn};
use super::super::*;
use crate::incident::{Group, GroupKey, Incident};
use crate::inventory::{
    CapacityProviderType, ClusterInfo, ClusterInstances, ContainerInstance, Daemon, DaemonPlacement, Ec2State,
    Ec2States, HostStates, InstanceStatus, PingStatus, Task, TaskFilter,
};
use crate::ports::{AwsError, Settle};

/// splitmix64: small, seeded, the same sequence on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// In `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// True with probability `percent` in 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What the gate does with one port call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    Go,
    Wait,
    Fail,
    Crash,
}

/// What SNS does with one publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publish {
    Accept,
    Refuse,
    /// Accepted, but the caller sees a timeout.
    TimeoutAfterAccept,
    /// Accepted, and the run dies before it hears back.
    CrashAfterAccept,
}

/// One message the topic took.
#[derive(Debug, Clone)]
pub struct Sent {
    pub at: u64,
    pub alert: Alert,
    /// The run that published it.
    pub run: usize,
    /// The sender never heard it was accepted: a repeat of what it names is allowed.
    pub unheard: bool,
}

/// The scheduler's shared state: the seeded choices, the clock, the fleet, the topic.
pub struct Gate {
    pub rng: Rng,
    /// Percent chances per port call, while faults are on.
    pub faults: bool,
    pub now: &'static std::sync::atomic::AtomicU64,
    pub crashed: Vec<bool>,
    /// Runs in which a group record could not be read (their pages are ungrouped on purpose).
    pub ungrouped: Vec<bool>,
    pub topic: Vec<Sent>,
    /// What the table's indexes show: the table as it was at a moment, for a little while
    /// (a global secondary index lags its table by well under a minute).
    pub index: Option<(u64, FakeLedger)>,
    /// When the faults stopped (0: not yet).
    pub calm_from: u64,
    /// Per container instance ARN: the times its agent disconnects and reconnects, in order
    /// (even index: disconnect).
    pub timeline: HashMap<String, Vec<u64>>,
}

pub type Shared = Arc<Mutex<Gate>>;

impl Gate {
    fn turn(&mut self, run: usize, operation: &str) -> Turn {
        if !self.faults {
            return if self.rng.chance(20) { Turn::Wait } else { Turn::Go };
        }
        match self.rng.below(1000) {
            0..=14 => {
                self.crashed[run] = true;
                Turn::Crash
            }
            15..=44 if operation != "sns:Publish" => {
                if operation == "dynamodb:groups" {
                    self.ungrouped[run] = true;
                }
                Turn::Fail
            }
            45..=344 => Turn::Wait,
            _ => Turn::Go,
        }
    }

    /// What happens after a write DynamoDB applied: the caller hears it, times out, or dies.
    fn after_write(&mut self, run: usize) -> Turn {
        if !self.faults {
            return Turn::Go;
        }
        match self.rng.below(1000) {
            0..=9 => {
                self.crashed[run] = true;
                Turn::Crash
            }
            10..=29 => Turn::Fail,
            _ => Turn::Go,
        }
    }

    /// Whether an index query sees the lagging copy; refreshes it when it is too old.
    fn lagging(&mut self, table: &FakeLedger) -> bool {
        const LAG: u64 = 30;
        let now = self.now();
        let fresh = self.index.as_ref().is_some_and(|(at, _)| now <= at + LAG);
        if !fresh {
            self.index = Some((now, table.snapshot()));
        }
        self.faults && self.rng.chance(40)
    }

    fn publish(&mut self) -> Publish {
        if !self.faults {
            return Publish::Accept;
        }
        match self.rng.below(100) {
            0..=4 => Publish::Refuse,
            5..=7 => Publish::TimeoutAfterAccept,
            8..=9 => Publish::CrashAfterAccept,
            _ => Publish::Accept,
        }
    }

    pub fn now(&self) -> u64 {
        self.now.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether the instance's agent is connected at `now`.
    pub fn connected(&self, instance: &str, now: u64) -> bool {
        let flips = self
            .timeline
            .get(instance)
            .map_or(0, |t| t.iter().filter(|at| **at <= now).count());
        flips.is_multiple_of(2)
    }
}

/// The doors one run uses: each call passes the gate first.
#[derive(Clone)]
pub struct Door {
    pub gate: Shared,
    pub run: usize,
}

impl Door {
    async fn pass(&self, operation: &'static str) -> Result<(), AwsError> {
        let turn = self.gate.lock().unwrap().turn(self.run, operation);
        match turn {
            Turn::Go => Ok(()),
            Turn::Wait => {
                let mut waited = false;
                std::future::poll_fn(|_| match std::mem::replace(&mut waited, true) {
                    false => Poll::Pending,
                    true => Poll::Ready(()),
                })
                .await;
                Ok(())
            }
            Turn::Fail => Err(AwsError::new(operation, "injected: throttled")),
            Turn::Crash => std::future::pending().await,
        }
    }
}

pub struct SimInventory {
    pub door: Door,
    pub clusters: Vec<String>,
    pub instances: usize,
}

impl SimInventory {
    fn instance(&self, arn: &str, connected: bool) -> ContainerInstance {
        ContainerInstance {
            arn: arn.to_owned(),
            status: InstanceStatus::Active,
            agent_connected: connected,
            version: 2,
            ec2_instance_id: Some(format!("i-{}", crate::inventory::instance_key(arn))),
            running_tasks_count: 1,
            agent_version: None,
            availability_zone: None,
            capacity_provider_name: None,
            health: None,
            tags: Vec::new(),
        }
    }
}

#[async_trait]
impl Inventory for SimInventory {
    async fn list_clusters(&self) -> Result<Vec<String>, AwsError> {
        self.door.pass("ecs:ListClusters").await?;
        Ok(self.clusters.clone())
    }
    async fn describe_clusters(&self, _: &[String]) -> Result<Vec<ClusterInfo>, AwsError> {
        Ok(Vec::new())
    }
    async fn describe_container_instances(&self, _: &str, arns: &[String]) -> Result<ClusterInstances, AwsError> {
        self.door.pass("ecs:DescribeContainerInstances").await?;
        let gate = self.door.gate.lock().unwrap();
        let now = gate.now();
        Ok(ClusterInstances::Found(
            arns.iter()
                .map(|a| {
                    let key = crate::inventory::instance_key(a).to_owned();
                    (key, self.instance(a, gate.connected(a, now)))
                })
                .collect(),
        ))
    }
    async fn describe_ec2_instances(&self, ids: &[String]) -> Result<Ec2States, AwsError> {
        self.door.pass("ec2:DescribeInstances").await?;
        Ok(ids.iter().map(|id| (id.clone(), Ec2State::Running)).collect())
    }
    async fn describe_managed_nodes(&self, ids: &[String]) -> Result<HostStates, AwsError> {
        Ok(ids.iter().map(|id| (id.clone(), PingStatus::Online)).collect())
    }
    async fn list_container_instances(&self, cluster: &str) -> Result<Vec<String>, AwsError> {
        self.door.pass("ecs:ListContainerInstances").await?;
        Ok((1..=self.instances).map(|n| arn(cluster, n)).collect())
    }
    async fn list_tasks(&self, _: &str, _: &TaskFilter) -> Result<Vec<String>, AwsError> {
        Ok(Vec::new())
    }
    async fn describe_tasks(&self, _: &str, _: &[String]) -> Result<Vec<Task>, AwsError> {
        Ok(Vec::new())
    }
    async fn describe_capacity_providers(
        &self,
        _: &[String],
    ) -> Result<HashMap<String, CapacityProviderType>, AwsError> {
        Ok(HashMap::new())
    }
}

/// A region with Managed Daemons and none deployed.
pub struct NoDaemons;

#[async_trait]
impl Daemons for NoDaemons {
    async fn list_daemons(&self, _: &str) -> Result<Vec<Daemon>, AwsError> {
        Ok(Vec::new())
    }
    async fn describe_daemon(&self, _: &str) -> Result<DaemonPlacement, AwsError> {
        Err(AwsError::unavailable("ecs:DescribeDaemon", "none deployed"))
    }
    async fn deployment_in_progress(&self, _: &str) -> Result<bool, AwsError> {
        Ok(false)
    }
}

pub struct SimNotifier(pub Door);

#[async_trait]
impl Notifier for SimNotifier {
    async fn publish(&self, alert: &Alert) -> Result<(), AwsError> {
        self.0.pass("sns:Publish").await?;
        let what = {
            let mut gate = self.0.gate.lock().unwrap();
            let what = gate.publish();
            if what != Publish::Refuse {
                let at = gate.now();
                gate.topic.push(Sent {
                    at,
                    alert: alert.clone(),
                    run: self.0.run,
                    unheard: what != Publish::Accept,
                });
            }
            if what == Publish::CrashAfterAccept {
                gate.crashed[self.0.run] = true;
            }
            what
        };
        match what {
            Publish::Accept => Ok(()),
            Publish::Refuse => Err(AwsError::new("sns:Publish", "injected: refused")),
            Publish::TimeoutAfterAccept => Err(AwsError::new("sns:Publish", "injected: timed out")),
            Publish::CrashAfterAccept => std::future::pending().await,
        }
    }
}

/// The fake ledger behind the gate.
pub struct SimLedger {
    pub door: Door,
    pub inner: &'static FakeLedger,
}

impl SimLedger {
    /// A write the ledger applied; then the caller may time out or die before it hears so.
    async fn applied<T>(&self, operation: &'static str, answer: T) -> Result<T, AwsError> {
        let turn = self.door.gate.lock().unwrap().after_write(self.door.run);
        match turn {
            Turn::Fail => {
                self.unheard();
                Err(AwsError::new(operation, "injected: timed out after it was applied"))
            }
            Turn::Crash => std::future::pending().await,
            Turn::Go | Turn::Wait => Ok(answer),
        }
    }

    /// Reads an index: the table now, or as it was a little while ago.
    fn index<T>(&self, read: impl Fn(&FakeLedger) -> T) -> T {
        let mut gate = self.door.gate.lock().unwrap();
        match gate.lagging(self.inner) {
            true => read(gate.index.as_ref().map_or(self.inner, |(_, lagging)| lagging)),
            false => read(self.inner),
        }
    }

    /// A write after a publish failed: SNS accepted, the ledger did not record it, so what
    /// this run sent may go out again.
    fn unheard(&self) {
        let mut gate = self.door.gate.lock().unwrap();
        for sent in gate.topic.iter_mut().filter(|s| s.run == self.door.run) {
            sent.unheard = true;
        }
    }
}

#[async_trait]
impl Ledger for SimLedger {
    async fn get(&self, keys: &[IncidentKey]) -> Result<Vec<Incident>, AwsError> {
        self.door.pass("dynamodb:BatchGetItem").await?;
        (&self.inner).get(keys).await
    }
    async fn put(&self, incidents: &[Incident]) -> Result<Vec<bool>, AwsError> {
        // A digest's incidents are marked told after SNS took it.
        self.door
            .pass("dynamodb:TransactWriteItems")
            .await
            .inspect_err(|_| self.unheard())?;
        let answer = (&self.inner).put(incidents).await?;
        self.applied("dynamodb:TransactWriteItems", answer).await
    }
    async fn settle(&self, settles: &[Settle]) -> Result<Vec<bool>, AwsError> {
        self.door
            .pass("dynamodb:TransactWriteItems")
            .await
            .inspect_err(|_| self.unheard())?;
        let answer = (&self.inner).settle(settles).await?;
        self.applied("dynamodb:TransactWriteItems", answer).await
    }
    async fn open_incidents(&self, cluster: &str) -> Result<Vec<IncidentKey>, AwsError> {
        self.door.pass("dynamodb:Query").await?;
        Ok(self.index(|table| table.open_in(cluster)))
    }
    async fn count_open(&self, cluster: &str, delta: i64) -> Result<i64, AwsError> {
        self.door.pass("dynamodb:UpdateItem").await?;
        (&self.inner).count_open(cluster, delta).await
    }
    async fn groups(&self, keys: &[GroupKey]) -> Result<Vec<Group>, AwsError> {
        self.door.pass("dynamodb:groups").await?;
        (&self.inner).groups(keys).await
    }
    async fn put_group(&self, group: &Group) -> Result<bool, AwsError> {
        self.door.pass("dynamodb:PutItem").await?;
        let answer = (&self.inner).put_group(group).await?;
        self.applied("dynamodb:PutItem", answer).await
    }
    async fn held(&self, key: &GroupKey) -> Result<Vec<Incident>, AwsError> {
        self.door.pass("dynamodb:Query").await?;
        Ok(self.index(|table| table.held_by(key)))
    }
    async fn owed(&self, now: u64) -> Result<(Vec<Incident>, Vec<Group>), AwsError> {
        self.door.pass("dynamodb:Query").await?;
        Ok(self.index(|table| table.owed_by(now)))
    }
}
