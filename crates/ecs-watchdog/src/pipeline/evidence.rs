//! Evidence: what ECS and EC2 say now about the work items of a batch or a sweep, into each
//! cluster's [`Snapshot`]. Every look-up is batched
//! (at most `DESCRIBE_LIMIT` names a call, through `batched::chunked`), and a failed call only marks
//! the names it carried as unknown.

use std::collections::{HashMap, HashSet};

use futures_util::future::join_all;

use super::batched::{MANAGED_NODE_LIMIT, chunked, chunked_by, log_check_error};
use super::deployments::deployments;
use super::intake::Checked;
pub use super::snapshot::{DaemonChecks, DaemonTasks, Snapshot};
use crate::event::DaemonOn;
use crate::inventory::{
    ClusterInstances, Ec2States, HostStates, InstanceStatus, TaskFilter, instance_key, is_ec2_instance_id,
    is_managed_node_id,
};
use crate::kinds;
use crate::ports::{AwsError, Daemons, Inventory};
use crate::remediation::ClusterState;
use crate::verdict::Deployment;

/// One cluster's work items with its snapshot, for what else they need looked up.
pub struct Described<'a> {
    pub checked: &'a [Checked],
    pub snapshot: &'a Snapshot,
}

impl Described<'_> {
    fn kept(&self) -> impl Iterator<Item = &Checked> {
        self.checked.iter().filter(|c| c.kept())
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
            .filter_map(|c| Some((c, self.snapshot.instance(c.instance())?)))
            .filter_map(|(c, ecs)| kinds::of(c.key.kind).host_to_check(c.case(), ecs))
    }

    /// The lost daemons whose instance is not being repaired anyway.
    fn lost_daemons(&self) -> Vec<DaemonOn<'_>> {
        self.kept()
            .filter(|c| {
                let ecs = self.snapshot.instance(c.instance());
                ecs.is_some_and(|ecs| kinds::of(c.key.kind).daemon_to_check(ecs))
            })
            .filter_map(Checked::daemon)
            .collect()
    }
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

/// The first look at one cluster: the container instances its work items name, as ECS
/// describes them now (once for all kinds).
pub async fn snapshot(inventory: &dyn Inventory, cluster: &str, checked: &[Checked]) -> Snapshot {
    let arns = super::intake::instances(checked);
    Snapshot::new(cluster, container_instances(inventory, cluster, &arns).await)
}

/// The monitor's look-ups for a batch: each cluster's snapshot of the instances and lost
/// daemons its work items name, and the hosts behind them across clusters (asked once).
pub async fn gather(
    inventory: &dyn Inventory,
    daemons: &dyn Daemons,
    monitored: &[(&str, &[Checked])],
) -> (Vec<Snapshot>, Ec2Evidence) {
    let looked = monitored
        .iter()
        .map(|(cluster, checked)| snapshot(inventory, cluster, checked));
    let mut snapshots: Vec<Snapshot> = join_all(looked).await;
    let described: Vec<Described<'_>> = monitored
        .iter()
        .zip(&snapshots)
        .map(|((_, checked), snapshot)| Described { checked, snapshot })
        .collect();
    let (ec2, checks) = futures_util::future::join(
        hosts(inventory, &described),
        join_all(described.iter().map(|d| daemon_checks(inventory, daemons, d))),
    )
    .await;
    for (snapshot, checks) in snapshots.iter_mut().zip(checks) {
        snapshot.daemons = checks;
    }
    (snapshots, ec2)
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
    let (lost, cluster) = (described.lost_daemons(), described.snapshot.cluster.as_str());
    let names: Vec<&str> = lost.iter().map(|d| d.name).collect();
    let tasks = daemon_tasks(inventory, cluster, &names).await;
    let mut checks = DaemonChecks::new(&lost, Some(&tasks));
    let arns = checks.deployments_of(daemons, cluster, &lost).await;
    // Only where the verdict can confirm: a daemon being deployed is not looked up.
    checks.critical = criticality(daemons, &arns, &checks.deployments).await;
    checks
}

impl DaemonChecks {
    /// Whether a deployment of each lost daemon not running again is under way (one
    /// `ListDaemonDeployments` per daemon); returns the daemons' ARNs by name.
    pub async fn deployments_of(
        &mut self,
        daemons: &dyn Daemons,
        cluster: &str,
        lost: &[DaemonOn<'_>],
    ) -> HashMap<String, String> {
        let unreplaced: Vec<DaemonOn<'_>> = lost
            .iter()
            .filter(|d| !self.failed.contains(d.name) && !self.live.contains(&d.live_key()))
            .copied()
            .collect();
        let (deployments, unavailable, arns) = deployments(daemons, cluster, &unreplaced).await;
        self.deployments = deployments;
        self.unavailable = unavailable;
        arns
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

/// `ListTasks` with the `daemonName` filter, once per daemon (a daemon's task definition is a
/// daemon task definition, whose family need not be the daemon's name), then `DescribeTasks`
/// per 100 across them, matching on `group` (an API that ignored the filter would otherwise
/// count any task as the daemon's) and container instance. A failed `DescribeTasks` leaves
/// unknown only the daemons whose tasks it carried.
pub async fn daemon_tasks(inventory: &dyn Inventory, cluster: &str, names: &[&str]) -> DaemonTasks {
    let names: Vec<&str> = names
        .iter()
        .copied()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let filters: Vec<TaskFilter> = names.iter().map(|n| TaskFilter::Daemon((*n).to_owned())).collect();
    let listed = join_all(filters.iter().map(|filter| inventory.list_tasks(cluster, filter))).await;
    let mut tasks = DaemonTasks::default();
    // Every daemon that listed a task: an API that ignored the filter lists it under each, and
    // a failed DescribeTasks leaves each of them unknown, not only the last.
    let mut owners: HashMap<String, Vec<&str>> = HashMap::new();
    for (name, answer) in names.iter().zip(listed) {
        match answer {
            Ok(arns) => {
                tasks.running_on.insert((*name).to_owned(), HashSet::new());
                for arn in arns {
                    owners.entry(arn).or_default().push(name);
                }
            }
            Err(e) => {
                log_check_error(cluster, &e, 1);
                tasks.failed.insert((*name).to_owned());
            }
        }
    }
    let mut task_arns: Vec<String> = owners.keys().cloned().collect();
    task_arns.sort();
    for (chunk, answer) in chunked(&task_arns, |chunk| inventory.describe_tasks(cluster, chunk)).await {
        match answer {
            Ok(found) => found.into_iter().filter(|t| t.is_live()).for_each(|t| tasks.place(t)),
            Err(e) => {
                log_check_error(cluster, &e, chunk.len());
                let failed = chunk.iter().filter_map(|arn| owners.get(arn)).flatten();
                tasks.failed.extend(failed.map(|n| (*n).to_owned()));
            }
        }
    }
    tasks
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

#[cfg(test)]
mod tests;
