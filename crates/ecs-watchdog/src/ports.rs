//! The few doors to the outside: each trait has one AWS adapter in [`crate::aws`].

use std::collections::HashMap;

use async_trait::async_trait;

use crate::alert::Alert;
use crate::incident::{Group, GroupKey, Incident, IncidentKey};
use crate::inventory::{
    AutoScalingGroup, CapacityProviderType, ClusterInfo, ClusterInstances, Daemon, DaemonPlacement, Ec2States,
    HostStates, Task, TaskFilter,
};
use crate::metrics::MetricDatum;

pub(crate) mod one_by_one;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An AWS call that still failed after the SDK's retries. The SDK error is kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed")]
pub struct AwsError {
    pub operation: &'static str,
    pub kind: ErrorKind,
    #[source]
    pub source: BoxError,
}

/// Whether trying again later can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Throttling, timeouts, server errors, the network: the message goes back to the queue.
    Transient,
    /// The API is not there for this caller: unknown in the region, or not permitted.
    Unavailable,
}

impl AwsError {
    pub fn new(operation: &'static str, source: impl Into<BoxError>) -> Self {
        Self {
            operation,
            kind: ErrorKind::Transient,
            source: source.into(),
        }
    }

    pub fn unavailable(operation: &'static str, source: impl Into<BoxError>) -> Self {
        Self {
            operation,
            kind: ErrorKind::Unavailable,
            source: source.into(),
        }
    }
}

/// Renders an error with all its sources, for logs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Reads the current state of clusters, container instances and EC2 instances. Each method is
/// one API call; the caller batches (at most [`crate::pipeline::DESCRIBE_LIMIT`] names a call).
#[async_trait]
pub trait Inventory: Send + Sync {
    /// `ListClusters`, every page (100 a call): the ARNs of the region's clusters.
    async fn list_clusters(&self) -> Result<Vec<String>, AwsError>;
    async fn describe_clusters(&self, cluster_arns: &[String]) -> Result<Vec<ClusterInfo>, AwsError>;
    async fn describe_container_instances(
        &self,
        cluster_arn: &str,
        container_instance_arns: &[String],
    ) -> Result<ClusterInstances, AwsError>;
    async fn describe_ec2_instances(&self, instance_ids: &[String]) -> Result<Ec2States, AwsError>;
    /// `DescribeInstanceInformation` for ECS Anywhere hosts (the caller sends at most
    /// [`crate::pipeline::MANAGED_NODE_LIMIT`] ids), every page.
    async fn describe_managed_nodes(&self, node_ids: &[String]) -> Result<HostStates, AwsError>;
    /// `ListContainerInstances` (every status but INACTIVE), every page (100 a call); a deleted
    /// cluster has none.
    async fn list_container_instances(&self, cluster_arn: &str) -> Result<Vec<String>, AwsError>;
    /// `ListTasks` with desired status RUNNING, all pages (100 a call).
    async fn list_tasks(&self, cluster_arn: &str, filter: &TaskFilter) -> Result<Vec<String>, AwsError>;
    async fn describe_tasks(&self, cluster_arn: &str, task_arns: &[String]) -> Result<Vec<Task>, AwsError>;
    /// `DescribeCapacityProviders`: each named provider's type (the caller sends at most 100).
    async fn describe_capacity_providers(
        &self,
        names: &[String],
    ) -> Result<HashMap<String, CapacityProviderType>, AwsError>;

    /// `DescribeCapacityProviders`: the Auto Scaling group ARN of each named EC2 Auto Scaling
    /// provider (the caller sends at most 10, a page). The default: no Auto Scaling provider, for
    /// fakes of fleets without one.
    async fn capacity_provider_groups(&self, _names: &[String]) -> Result<HashMap<String, String>, AwsError> {
        Ok(HashMap::new())
    }

    /// `DescribeAutoScalingGroups`, every page: the named groups' `InService` instances (the
    /// caller sends at most [`crate::pipeline::AUTO_SCALING_GROUP_LIMIT`]). Default: none.
    async fn describe_auto_scaling_groups(&self, _names: &[String]) -> Result<Vec<AutoScalingGroup>, AwsError> {
        Ok(Vec::new())
    }

    /// `DescribeInstances`: each EC2 instance's `LaunchTime`, UNIX seconds (at most 100 ids).
    /// Default: none known.
    async fn ec2_launch_times(&self, _instance_ids: &[String]) -> Result<HashMap<String, u64>, AwsError> {
        Ok(HashMap::new())
    }
}

/// The ECS Managed Daemons APIs, which older regions and narrow permissions lack.
#[async_trait]
pub trait Daemons: Send + Sync {
    /// `ListDaemons` of a cluster, all pages.
    async fn list_daemons(&self, cluster_arn: &str) -> Result<Vec<Daemon>, AwsError>;
    /// `DescribeDaemon`: the capacity providers the daemon runs on.
    async fn describe_daemon(&self, daemon_arn: &str) -> Result<DaemonPlacement, AwsError>;
    /// Whether `ListDaemonDeployments` shows a deployment of the daemon that is not finished.
    async fn deployment_in_progress(&self, daemon_arn: &str) -> Result<bool, AwsError>;
}

/// Sends an alert.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn publish(&self, alert: &Alert) -> Result<(), AwsError>;
}

/// A message body kept aside because it cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub message_id: String,
    pub body: String,
    pub reason: String,
}

/// Keeps unusable messages in the dead-letter queue.
#[async_trait]
pub trait Quarantine: Send + Sync {
    /// Returns the ids of the messages that could not be kept (they must be retried).
    async fn quarantine(&self, messages: &[Quarantined]) -> Vec<String>;
}

/// Publishes metric data.
#[async_trait]
pub trait MetricsSink: Send + Sync {
    async fn publish(&self, data: &[MetricDatum]) -> Result<(), AwsError>;
}

/// Sends findings on for custom remediation: an EventBridge bus, a hook function.
#[async_trait]
pub trait FindingSink: Send + Sync {
    /// Sends each alert's finding (its `default` JSON).
    async fn send(&self, alerts: &[&Alert]) -> Result<(), AwsError>;
}

/// Moving a leased incident on: only the run that still holds `token` may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settle {
    pub key: IncidentKey,
    pub token: String,
    /// `Notified` or `Closed` once SNS accepted the notice; the state the lease was taken from
    /// when it did not (the lease is given back).
    pub state: crate::incident::State,
    /// When the notice went out (`notified_at`, or `closed_at` for a resolved notice).
    pub at: u64,
}

/// Keys to read in one go: incidents, group records, clusters whose open-incident count is
/// wanted, and clusters whose record (what the sweep last saw of them) is wanted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Keys {
    pub incidents: Vec<IncidentKey>,
    pub groups: Vec<GroupKey>,
    pub counts: Vec<String>,
    pub clusters: Vec<String>,
}

impl Keys {
    pub fn len(&self) -> usize {
        self.incidents.len() + self.groups.len() + self.counts.len() + self.clusters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the ledger holds of some keys: the records that exist, and each cluster's count of open
/// incidents that could be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stored {
    pub incidents: Vec<Incident>,
    pub groups: Vec<Group>,
    pub counts: Vec<(String, i64)>,
    pub clusters: Vec<ClusterRecord>,
}

/// What the sweep saw of a cluster with `DescribeClusters`, kept in the ledger so the monitor
/// need not ask again while it is fresh (`TAG_CACHE_TTL_SECONDS`): the tags the monitor reads
/// (silence; monitoring tag, as the filter judged it) and the cluster's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRecord {
    pub cluster_arn: String,
    /// The filter it was judged by (`all`, or `<key>=<value>`): a monitor configured otherwise
    /// does not take the record's word.
    pub filter: String,
    pub monitored: bool,
    /// The value of `ecs-watchdog-silence-until`, when the cluster carries it.
    pub silence: Option<String>,
    /// `registeredContainerInstancesCount`, when ECS described the cluster.
    pub registered: Option<usize>,
    /// When `DescribeClusters` answered (UNIX seconds).
    pub seen_at: u64,
}

/// How many cluster records one write takes (`BatchWriteItem`'s limit).
pub const CLUSTER_RECORDS_PER_WRITE: usize = 25;

/// Records written together, each on condition that the stored version is one less than its
/// own (0: none stored): in DynamoDB one `TransactWriteItems`, all or nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub groups: Vec<Group>,
    pub incidents: Vec<Incident>,
    /// What each incident, once written, adds to its cluster's count of open incidents (1 opened,
    /// -1 closed, 0), in order.
    pub opens: Vec<i64>,
}

/// What a write did with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Written,
    /// Its condition failed: another version is stored, the one in [`Written::found`] (none
    /// there: no record is stored).
    Moved,
    /// Not written, its condition unknown or met: the batch was cancelled by another record.
    Untouched,
}

/// What a [`Ledger::write`] did: one answer per group and per incident, in order, and what is
/// stored in place of each record that moved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Written {
    pub groups: Vec<Answer>,
    pub incidents: Vec<Answer>,
    pub found: Stored,
}

impl Written {
    /// Nothing written yet.
    pub fn untouched(batch: &Batch) -> Self {
        Self {
            groups: vec![Answer::Untouched; batch.groups.len()],
            incidents: vec![Answer::Untouched; batch.incidents.len()],
            found: Stored::default(),
        }
    }
}

/// The incident ledger (DESIGN §7). Every write is conditional: a record is written only if the
/// stored version is still the one read, a lease is settled only by its holder. `false` says
/// the condition did not hold (another run moved it).
#[async_trait]
pub trait Ledger: Send + Sync {
    /// The incidents of these keys that exist (`BatchGetItem`; the caller sends at most 100).
    async fn get(&self, keys: &[IncidentKey]) -> Result<Vec<Incident>, AwsError>;
    /// Incidents, group records and open-incident counts in one `BatchGetItem` (the caller
    /// sends at most 100 keys in all). A ledger without counts answers none.
    async fn read(&self, keys: &Keys) -> Result<Stored, AwsError> {
        one_by_one::read(self, keys).await
    }
    /// Writes the batch in one `TransactWriteItems`, all or nothing, with the counts' moves and,
    /// for each record whose condition failed, the record stored instead (the caller sends at
    /// most 100 records and counted clusters in all, each key once). A ledger that cannot write
    /// them together writes the groups first, then the incidents of the groups written (as
    /// the executor did before transactions): some may be written and others not.
    async fn write(&self, batch: &Batch) -> Result<Written, AwsError> {
        one_by_one::write(self, batch).await
    }
    /// Writes each record if the stored version is still one less than its own (0: none yet);
    /// one answer each, in order (`TransactWriteItems`; the caller sends at most 100).
    async fn put(&self, incidents: &[Incident]) -> Result<Vec<bool>, AwsError>;
    /// Settles leases (the caller sends at most 100); one answer each, in order.
    async fn settle(&self, settles: &[Settle]) -> Result<Vec<bool>, AwsError>;
    /// The keys of a cluster's open incidents (a `Query` of the table's cluster index, every page).
    async fn open_incidents(&self, cluster_arn: &str) -> Result<Vec<IncidentKey>, AwsError>;
    /// Adds `delta` to the cluster's count of open incidents and returns the new count.
    async fn count_open(&self, cluster_arn: &str, delta: i64) -> Result<i64, AwsError>;
    /// The records of these groups that exist (`BatchGetItem`; the caller sends at most 100).
    async fn groups(&self, keys: &[GroupKey]) -> Result<Vec<Group>, AwsError>;
    /// Writes the group's record if the stored version is still one less than its own.
    async fn put_group(&self, group: &Group) -> Result<bool, AwsError>;
    /// The incidents the group holds, open or closed since (a `Query` of the held index).
    async fn held(&self, key: &GroupKey) -> Result<Vec<Incident>, AwsError>;
    /// Everything owed by `now` in the whole table, whatever its place (a `Query` of the outbox
    /// index, every page): incidents whose alert or resolved notice is owed or whose lease
    /// expired, groups whose digest is due.
    async fn owed(&self, now: u64) -> Result<(Vec<Incident>, Vec<Group>), AwsError>;
    /// The keys of every open incident in the table, whatever its place or cluster (a `Scan` of
    /// the cluster index, every page): what the sweep closes when its cluster is gone, and the
    /// places it must look at. A ledger that cannot tell answers none.
    async fn open_everywhere(&self) -> Result<Vec<IncidentKey>, AwsError> {
        Ok(Vec::new())
    }
    /// Claims `id` until `until`, unless a claim of it still holds at `now` (one conditional
    /// `PutItem`, an item beside the incidents that expires by TTL): whether this run holds it.
    /// A ledger that keeps no claims refuses, so nothing claimed is done.
    async fn claim(&self, _id: &str, _now: u64, _until: u64) -> Result<bool, AwsError> {
        Err(AwsError::unavailable("dynamodb:PutItem", "this ledger keeps no claims"))
    }
    /// Gives back this run's claim of `id` (the one it took until `until`), and no later one
    /// (one conditional `DeleteItem`): whether it was still there to give back.
    async fn release(&self, _id: &str, _until: u64) -> Result<bool, AwsError> {
        Ok(false)
    }
    /// Notes that an event of `place` was seen at `now` (one `UpdateItem`).
    async fn note_place(&self, _place: &crate::config::Place, _now: u64) -> Result<(), AwsError> {
        Ok(())
    }
    /// The places whose events were seen since `since` (one `BatchGetItem`).
    async fn places_seen(&self, _since: u64) -> Result<Vec<crate::config::Place>, AwsError> {
        Ok(Vec::new())
    }
    /// Keeps what the sweep saw of these clusters, each replacing the record before it (one
    /// `BatchWriteItem`; the caller sends at most [`CLUSTER_RECORDS_PER_WRITE`]). A ledger
    /// that keeps none answers none when read: the monitor asks ECS, as without a sweep.
    async fn note_clusters(&self, _records: &[ClusterRecord]) -> Result<(), AwsError> {
        Ok(())
    }
}

/// What time it is, in UNIX seconds; tests move it instead of sleeping.
pub trait Clock: Send + Sync {
    fn now(&self) -> u64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}
