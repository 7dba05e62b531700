//! Evidence: what ECS and EC2 say now about the signals of a batch. Every look-up is batched
//! (at most [`DESCRIBE_LIMIT`] names a call, through [`chunked`]), and a failed call only marks
//! the names it carried as unknown.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::future::Future;

use futures_util::future::join_all;
use tracing::error;

pub use super::deployments::deployments;
use super::intake::Checked;
use crate::event::{self, DaemonOn, Signal};
use crate::inventory::{
    ClusterInstances, Ec2States, HostStates, InstanceStatus, TaskFilter, cluster_name, instance_key,
    is_ec2_instance_id, is_managed_node_id,
};
use crate::kinds;
use crate::ports::{AwsError, Daemons, Inventory, error_chain};
use crate::remediation::ClusterState;
use crate::verdict::Deployment;

/// The most names one describe call takes (ECS clusters, container instances and tasks; we
/// hold `DescribeInstances` to the same).
pub const DESCRIBE_LIMIT: usize = 100;

/// The most ECS Anywhere hosts one `DescribeInstanceInformation` asks about: it answers at most
/// 50 nodes a page (`MaxResults` 5 to 50, SSM API reference), so 50 ids a call take one page each
/// and 120 hosts cost 3 calls.
pub const MANAGED_NODE_LIMIT: usize = 50;

/// Calls `call` once per [`DESCRIBE_LIMIT`] items, concurrently (the adapters bound how many
/// are in flight), and pairs each chunk with its answer.
pub async fn chunked<'a, T, R, F, Fut>(items: &'a [T], call: F) -> Vec<(&'a [T], Result<R, AwsError>)>
where
    F: Fn(&'a [T]) -> Fut,
    Fut: Future<Output = Result<R, AwsError>>,
{
    chunked_by(items, DESCRIBE_LIMIT, call).await
}

/// The same, `limit` items a call.
pub async fn chunked_by<'a, T, R, F, Fut>(items: &'a [T], limit: usize, call: F) -> Vec<(&'a [T], Result<R, AwsError>)>
where
    F: Fn(&'a [T]) -> Fut,
    Fut: Future<Output = Result<R, AwsError>>,
{
    let chunks: Vec<&[T]> = items.chunks(limit).collect();
    let answers = join_all(chunks.iter().map(|chunk| call(chunk))).await;
    chunks.into_iter().zip(answers).collect()
}

/// One cluster's signals with its container instances as ECS describes them now.
pub struct Described<'a> {
    pub cluster: &'a str,
    pub checked: &'a [Checked],
    /// What the batch's look-ups found, or (the sweep's) its survey's, borrowed: a sweep of
    /// thousands of instances holds them once.
    pub instances: Cow<'a, ClusterInstances>,
    /// Keys of the instances whose `DescribeContainerInstances` failed.
    pub failed_instances: Cow<'a, HashSet<String>>,
}

impl Described<'_> {
    fn kept(&self) -> impl Iterator<Item = &Signal> {
        self.checked.iter().filter(|c| c.kept()).map(|c| &c.signal)
    }

    pub fn known(&self, container_instance_arn: &str) -> bool {
        !self.failed_instances.contains(instance_key(container_instance_arn))
    }

    /// The EC2 instances to look up: those of agent signals ECS alone would confirm.
    pub fn ec2_ids(&self) -> impl Iterator<Item = &str> {
        self.host_ids().filter(|id| is_ec2_instance_id(id))
    }

    /// The ECS Anywhere hosts to look up in Systems Manager, likewise.
    pub fn managed_ids(&self) -> impl Iterator<Item = &str> {
        self.host_ids().filter(|id| is_managed_node_id(id))
    }

    fn host_ids(&self) -> impl Iterator<Item = &str> {
        self.kept()
            .filter(|s| self.known(s.container_instance_arn()))
            .filter_map(|s| kinds::of(s.kind()).host_to_check(s, self.instances.lookup(s.container_instance_arn())))
    }

    /// The lost daemons whose instance is not being repaired anyway.
    fn lost_daemons(&self) -> Vec<DaemonOn<'_>> {
        self.kept()
            .filter(|s| self.known(s.container_instance_arn()))
            .filter(|s| kinds::of(s.kind()).daemon_to_check(self.instances.lookup(s.container_instance_arn())))
            .filter_map(Signal::daemon)
            .collect()
    }
}

/// What the look-ups of one cluster's lost daemons found.
#[derive(Default)]
pub struct DaemonChecks {
    /// `(instance key, daemon name)` of the daemons that run again.
    pub live: HashSet<(String, String)>,
    /// Daemons whose task look-up failed.
    pub failed: HashSet<String>,
    pub deployments: HashMap<String, Option<Deployment>>,
    /// Whether each daemon is critical, by name; absent or `None`: unknown.
    pub critical: HashMap<String, Option<bool>>,
    /// Why the Managed Daemons APIs could not be used, if they could not.
    pub unavailable: Option<AwsError>,
}

/// What the hosts behind disconnected agents are: EC2 states and ECS Anywhere hosts' ping
/// status, and the ids whose look-up failed.
#[derive(Default)]
pub struct Ec2Evidence {
    pub states: Ec2States,
    pub failed: HashSet<String>,
    pub managed: HostStates,
    pub managed_failed: HashSet<String>,
}

/// The first look at one cluster: its container instances as ECS describes them now (once for
/// all signal kinds).
pub async fn describe<'a>(inventory: &dyn Inventory, cluster: &'a str, checked: &'a [Checked]) -> Described<'a> {
    let arns = super::intake::instances(checked);
    let (instances, failed_instances) = container_instances(inventory, cluster, &arns).await;
    Described {
        cluster,
        checked,
        instances: Cow::Owned(instances),
        failed_instances: Cow::Owned(failed_instances),
    }
}

/// `DescribeContainerInstances` per 100 of `arns`, the one look-up of both Lambdas (the
/// monitor's of the instances its messages name, the sweep's of every instance listed): what
/// ECS describes, and the keys of the instances whose call failed. A cluster deleted meanwhile
/// is gone whole: nothing of it is left to watch, nothing failed.
pub async fn container_instances(
    inventory: &dyn Inventory,
    cluster: &str,
    arns: &[String],
) -> (ClusterInstances, HashSet<String>) {
    let mut found = HashMap::new();
    let mut failed = HashSet::new();
    for (chunk, answer) in chunked(arns, |chunk| inventory.describe_container_instances(cluster, chunk)).await {
        match answer {
            Ok(ClusterInstances::ClusterGone) => return (ClusterInstances::ClusterGone, HashSet::new()),
            Ok(ClusterInstances::Found(part)) => found.extend(part),
            Err(e) => {
                log_check_error(cluster, &e, chunk.len());
                failed.extend(chunk.iter().map(|arn| instance_key(arn).to_owned()));
            }
        }
    }
    (ClusterInstances::Found(found), failed)
}

/// `DescribeInstances` per 100 ids across every cluster of the batch (EC2 is regional).
pub async fn ec2_states(inventory: &dyn Inventory, ids: &[String]) -> Ec2Evidence {
    let mut evidence = Ec2Evidence::default();
    for (chunk, answer) in chunked(ids, |chunk| inventory.describe_ec2_instances(chunk)).await {
        match answer {
            Ok(part) => evidence.states.extend(part),
            Err(e) => {
                log_check_error("-", &e, chunk.len());
                evidence.failed.extend(chunk.iter().cloned());
            }
        }
    }
    evidence
}

/// `DescribeInstanceInformation` per 50 ECS Anywhere hosts across every cluster of the batch.
pub async fn managed_states(inventory: &dyn Inventory, ids: &[String]) -> (HostStates, HashSet<String>) {
    let mut states = HostStates::new();
    let mut failed = HashSet::new();
    for (chunk, answer) in chunked_by(ids, MANAGED_NODE_LIMIT, |chunk| inventory.describe_managed_nodes(chunk)).await {
        match answer {
            Ok(part) => states.extend(part),
            Err(e) => {
                log_check_error("-", &e, chunk.len());
                failed.extend(chunk.iter().cloned());
            }
        }
    }
    (states, failed)
}

/// The hosts behind the disconnected agents of every cluster of the batch, each asked once:
/// EC2 instances and ECS Anywhere hosts (Systems Manager), concurrently. Both are regional, so a
/// storm across clusters costs one call per 100 EC2 instances and per 50 hosts.
pub async fn hosts(inventory: &dyn Inventory, described: &[Described<'_>]) -> Ec2Evidence {
    let unique = |ids: Vec<&str>| -> Vec<String> {
        let ids: std::collections::BTreeSet<&str> = ids.into_iter().collect();
        ids.into_iter().map(str::to_owned).collect()
    };
    let ec2_ids = unique(described.iter().flat_map(Described::ec2_ids).collect());
    let managed_ids = unique(described.iter().flat_map(Described::managed_ids).collect());
    let (mut evidence, (managed, managed_failed)) =
        futures_util::future::join(ec2_states(inventory, &ec2_ids), managed_states(inventory, &managed_ids)).await;
    evidence.managed = managed;
    evidence.managed_failed = managed_failed;
    evidence
}

/// Which of a cluster's lost daemons run again, and whether their deployments are under way.
pub async fn daemon_checks(
    inventory: &dyn Inventory,
    daemons: &dyn Daemons,
    described: &Described<'_>,
) -> DaemonChecks {
    let lost = described.lost_daemons();
    let (live, failed) = live_daemons(inventory, described.cluster, &lost).await;
    let unreplaced: Vec<DaemonOn<'_>> = lost
        .into_iter()
        .filter(|d| !failed.contains(d.name) && !live.contains(&d.live_key()))
        .collect();
    let (deployments, unavailable, arns) = deployments(daemons, described.cluster, &unreplaced).await;
    // Only where the verdict can confirm: a daemon being deployed is not looked up.
    let critical = criticality(daemons, &arns, &deployments).await;
    DaemonChecks {
        live,
        failed,
        deployments,
        critical,
        unavailable,
    }
}

/// Whether each daemon (name → ARN) is critical: `DescribeDaemon` and `DescribeDaemonRevisions`,
/// cached by the adapter across warm invocations. A failed look-up is unknown, not an error: the
/// verdict does not depend on it, only what remediation may do.
pub async fn criticality(
    daemons: &dyn Daemons,
    arns: &HashMap<String, String>,
    deployments: &HashMap<String, Option<Deployment>>,
) -> HashMap<String, Option<bool>> {
    let wanted: Vec<(&String, &String)> = arns
        .iter()
        .filter(|(name, _)| deployments.get(*name) != Some(&Some(Deployment::InProgress)))
        .collect();
    let answers = join_all(wanted.iter().map(|(_, arn)| daemons.describe_daemon(arn))).await;
    wanted
        .into_iter()
        .zip(answers)
        .map(|((name, _), answer)| (name.clone(), answer.ok().and_then(|p| p.critical)))
        .collect()
}

/// Finds which lost daemons run again: `ListTasks` with the `daemonName` filter, once per daemon
/// of the cluster (a daemon's task definition is a daemon task definition, whose family need not
/// be the daemon's name), then `DescribeTasks` per 100, matching on `group` and container
/// instance. Returns the live `(instance key, daemon name)` pairs and the daemons whose look-up
/// failed.
async fn live_daemons(
    inventory: &dyn Inventory,
    cluster: &str,
    lost: &[DaemonOn<'_>],
) -> (HashSet<(String, String)>, HashSet<String>) {
    let mut queries: Vec<(TaskFilter, HashSet<&str>)> = Vec::new();
    for daemon in lost {
        let filter = TaskFilter::Daemon(daemon.name.to_owned());
        if !queries.iter().any(|(f, _)| *f == filter) {
            queries.push((filter, HashSet::from([daemon.name])));
        }
    }
    let listed = join_all(queries.iter().map(|(filter, _)| inventory.list_tasks(cluster, filter))).await;
    let mut failed: HashSet<String> = HashSet::new();
    let mut task_arns: Vec<String> = Vec::new();
    for ((_, names), answer) in queries.iter().zip(listed) {
        match answer {
            Ok(arns) => task_arns.extend(arns),
            Err(e) => {
                log_check_error(cluster, &e, names.len());
                failed.extend(names.iter().map(|n| (*n).to_owned()));
            }
        }
    }
    task_arns.sort();
    task_arns.dedup();
    let mut live = HashSet::new();
    for (_, answer) in chunked(&task_arns, |chunk| inventory.describe_tasks(cluster, chunk)).await {
        match answer {
            Ok(tasks) => live.extend(tasks.into_iter().filter(|t| t.is_live()).filter_map(|t| {
                let name = t.group.as_deref()?.strip_prefix(event::DAEMON_GROUP_PREFIX)?.to_owned();
                Some((instance_key(t.container_instance_arn.as_deref()?).to_owned(), name))
            })),
            Err(e) => {
                // Which task belonged to which daemon is unknown without the answer.
                log_check_error(cluster, &e, lost.len());
                failed.extend(lost.iter().map(|d| d.name.to_owned()));
            }
        }
    }
    (live, failed)
}

/// The cluster as the remediation guard reads it: one `ListContainerInstances` (every status
/// but INACTIVE) and the `DescribeContainerInstances` per 100 that give each one's status and
/// agent. Fails as a whole: the guard must not count half a cluster.
pub async fn cluster_state(inventory: &dyn Inventory, cluster: &str) -> Result<ClusterState, AwsError> {
    let arns = inventory.list_container_instances(cluster).await?;
    let mut state = ClusterState {
        total: 0,
        draining: 0,
        disconnected: Vec::new(),
        active: HashSet::new(),
        capacity_providers: HashMap::new(),
    };
    for (_, answer) in chunked(&arns, |chunk| inventory.describe_container_instances(cluster, chunk)).await {
        let ClusterInstances::Found(found) = answer? else {
            continue;
        };
        for instance in found.into_values() {
            let key = instance_key(&instance.arn).to_owned();
            if let Some(provider) = &instance.capacity_provider_name {
                state.capacity_providers.insert(key.clone(), provider.clone());
            }
            if instance.status == InstanceStatus::Active {
                state.active.insert(key);
            }
            match instance.status {
                InstanceStatus::Active if !instance.agent_connected => {
                    state.total += 1;
                    state.disconnected.push(instance.arn);
                }
                InstanceStatus::Active => state.total += 1,
                InstanceStatus::Draining => {
                    state.total += 1;
                    state.draining += 1;
                }
                _ => {}
            }
        }
    }
    Ok(state)
}

pub fn log_check_error(cluster: &str, error: &AwsError, names: usize) {
    error!(cluster = cluster_name(cluster), operation = error.operation, error = %error_chain(error), names, "check failed: its messages go back to the queue");
}
