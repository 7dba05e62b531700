//! Survey: what the sweep sees of one cluster now, and the signals it makes of it. The look-ups
//! are the whole cluster's, batched: `ListContainerInstances` and `DescribeContainerInstances` per
//! 100 (the monitor's own look-up, [`container_instances`]), then per Managed Daemon `DescribeDaemon` and its tasks (`ListTasks` by daemon name,
//! `DescribeTasks` per 100). A failed look-up leaves what it covered unknown, never "fine".

use std::collections::HashSet;

use futures_util::future::{join, join_all};

use super::evidence::{DaemonChecks, chunked, container_instances, log_check_error};
use crate::event::{DAEMON_GROUP_PREFIX, Signal};
use crate::incident::IncidentKey;
use crate::inventory::{
    ClusterInstances, ContainerInstance, Daemon, DaemonPlacement, InstanceHealth, InstanceStatus, TaskFilter,
    instance_key,
};
use crate::kind::AlertKind;
use crate::kinds;
use crate::ports::{AwsError, Daemons, Inventory, Ledger};

/// One cluster as the sweep found it.
pub struct Survey {
    pub cluster: String,
    pub instances: ClusterInstances,
    /// Keys of the instances whose `DescribeContainerInstances` failed.
    pub failed_instances: HashSet<String>,
    /// The cluster's daemons; `None`: `ListDaemons` failed, so no daemon can be judged.
    pub daemons: Option<Vec<DaemonSurvey>>,
    /// The cluster's open incidents; `None`: the ledger could not be read.
    pub open: Option<Vec<IncidentKey>>,
}

/// One Managed Daemon: where it belongs and where it runs.
pub struct DaemonSurvey {
    pub daemon: Daemon,
    /// `None`: `DescribeDaemon` failed.
    pub placement: Option<DaemonPlacement>,
    /// Keys of the instances with a live task of it; `None`: its tasks could not be listed.
    pub running_on: Option<HashSet<String>>,
}

impl DaemonSurvey {
    fn known(&self) -> Option<(&DaemonPlacement, &HashSet<String>)> {
        Some((self.placement.as_ref()?, self.running_on.as_ref()?))
    }
}

/// Looks at one cluster. `None` when its instances could not be listed: a cluster seen in part
/// is not judged as if seen whole.
pub async fn survey(
    inventory: &dyn Inventory,
    daemons: &dyn Daemons,
    ledger: &dyn Ledger,
    cluster: &str,
) -> Option<Survey> {
    let arns = match inventory.list_container_instances(cluster).await {
        Ok(arns) => arns,
        Err(e) => {
            log_check_error(cluster, &e, 0);
            return None;
        }
    };
    let ((instances, failed_instances), (listed, open)) = join(
        container_instances(inventory, cluster, &arns),
        join(daemons.list_daemons(cluster), ledger.open_incidents(cluster)),
    )
    .await;
    let daemons = match listed {
        Ok(listed) => Some(join_all(listed.into_iter().map(|d| daemon(inventory, daemons, cluster, d))).await),
        Err(e) => {
            log_check_error(cluster, &e, 0);
            None
        }
    };
    Some(Survey {
        cluster: cluster.to_owned(),
        instances,
        failed_instances,
        daemons,
        open: open.inspect_err(|e| log_check_error(cluster, e, 0)).ok(),
    })
}

async fn daemon(inventory: &dyn Inventory, daemons: &dyn Daemons, cluster: &str, daemon: Daemon) -> DaemonSurvey {
    let (placement, running_on) = join(
        daemons.describe_daemon(&daemon.arn),
        running_on(inventory, cluster, &daemon.name),
    )
    .await;
    DaemonSurvey {
        placement: placement.inspect_err(|e| log_check_error(cluster, e, 1)).ok(),
        running_on: running_on.inspect_err(|e| log_check_error(cluster, e, 1)).ok(),
        daemon,
    }
}

/// The instances with a live task of the daemon. The task's `group` is checked too: an API
/// that ignored the daemon-name filter would otherwise count any task as the daemon's.
async fn running_on(inventory: &dyn Inventory, cluster: &str, name: &str) -> Result<HashSet<String>, AwsError> {
    let arns = inventory
        .list_tasks(cluster, &TaskFilter::Daemon(name.to_owned()))
        .await?;
    let group = format!("{DAEMON_GROUP_PREFIX}{name}");
    let mut on = HashSet::new();
    for (_, answer) in chunked(&arns, |chunk| inventory.describe_tasks(cluster, chunk)).await {
        on.extend(
            answer?
                .into_iter()
                .filter(|t| t.is_live() && t.group.as_deref() == Some(group.as_str()))
                .filter_map(|t| Some(instance_key(t.container_instance_arn.as_deref()?).to_owned())),
        );
    }
    Ok(on)
}

/// What the survey found, in numbers (the sweep's gauges).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub monitored_instances: u64,
    pub disconnected_agents: u64,
    /// Per daemon whose placement and tasks are known.
    pub without_daemon: Vec<(String, u64)>,
}

impl Survey {
    /// How many instances the cluster has registered (ACTIVE and DRAINING): the share an
    /// outage takes, for its severity.
    pub fn registered(&self) -> usize {
        self.watched().count()
    }

    /// The registered instances the sweep watches: ACTIVE and DRAINING.
    fn watched(&self) -> impl Iterator<Item = &ContainerInstance> {
        let found = match &self.instances {
            ClusterInstances::Found(found) => Some(found.values()),
            ClusterInstances::ClusterGone => None,
        };
        found
            .into_iter()
            .flatten()
            .filter(|i| matches!(i.status, InstanceStatus::Active | InstanceStatus::Draining))
    }

    /// The instances a daemon belongs on and does not run on: registered, agent connected (a
    /// disconnected agent cannot report tasks), of one of the daemon's capacity providers.
    fn without<'a>(&'a self, daemon: &'a DaemonSurvey) -> impl Iterator<Item = &'a ContainerInstance> {
        let known = daemon.known();
        self.watched().filter(move |i| {
            known.is_some_and(|(placement, running)| {
                i.agent_connected
                    && placement.covers(i.capacity_provider_name.as_deref())
                    && !running.contains(instance_key(&i.arn))
            })
        })
    }

    pub fn counts(&self) -> Counts {
        let daemons = self.daemons.iter().flatten();
        Counts {
            monitored_instances: self.watched().count() as u64,
            disconnected_agents: self.watched().filter(|i| !i.agent_connected).count() as u64,
            without_daemon: daemons
                .filter(|d| d.known().is_some())
                .map(|d| (d.daemon.name.clone(), self.without(d).count() as u64))
                .collect(),
        }
    }

    /// The signals to decide: every disconnected agent, every instance without a daemon it
    /// belongs on, and every open incident not among them (so a look can close it).
    pub fn signals(&self) -> Vec<Signal> {
        let cluster = &self.cluster;
        let mut signals: Vec<Signal> = self
            .watched()
            .filter(|i| !i.agent_connected)
            .map(|i| Signal::look(AlertKind::AgentDisconnected, cluster, &i.arn, i.ec2_instance_id.clone()))
            .collect();
        for d in self.daemons.iter().flatten() {
            signals.extend(self.without(d).map(|i| {
                Signal::of_daemon(
                    AlertKind::DaemonLost,
                    cluster,
                    &i.arn,
                    &d.daemon.name,
                    Some(&d.daemon.arn),
                )
            }));
        }
        signals.extend(
            self.watched()
                .filter(|i| i.health.as_ref().is_some_and(InstanceHealth::impaired))
                .map(|i| Signal::look(AlertKind::InstanceImpaired, cluster, &i.arn, i.ec2_instance_id.clone())),
        );
        let seen: HashSet<IncidentKey> = signals.iter().map(IncidentKey::of).collect();
        for open in self.open.iter().flatten().filter(|k| !seen.contains(*k)) {
            let arn = open
                .daemon
                .as_deref()
                .and_then(|name| self.daemon(name))
                .map(|d| d.daemon.arn.as_str());
            signals.extend(kinds::of(open.kind).look_again(cluster, open, arn));
        }
        signals
    }

    /// How many daemons run a task on the instance (by key).
    pub fn daemon_tasks_on(&self, instance: &str) -> usize {
        self.daemons
            .iter()
            .flatten()
            .filter(|d| d.running_on.as_ref().is_some_and(|on| on.contains(instance)))
            .count()
    }

    fn daemon(&self, name: &str) -> Option<&DaemonSurvey> {
        self.daemons.iter().flatten().find(|d| d.daemon.name == name)
    }

    /// What the look-ups say of the daemons, as the event path's verdicts read it: where each
    /// runs, which could not be looked up, and (a daemon that no longer exists is nowhere
    /// missing) the open incidents of deleted daemons as running.
    pub fn daemon_checks(&self, signals: &[Signal]) -> DaemonChecks {
        let mut checks = DaemonChecks::default();
        for d in self.daemons.iter().flatten() {
            let critical = d.placement.as_ref().and_then(|p| p.critical);
            checks.critical.insert(d.daemon.name.clone(), critical);
        }
        for lost in signals.iter().filter_map(Signal::daemon) {
            let (instance, name) = lost.live_key();
            match (&self.daemons, self.daemon(lost.name)) {
                (None, _) => {
                    checks.failed.insert(name);
                }
                (Some(_), None) => {
                    checks.live.insert((instance, name));
                }
                (Some(_), Some(d)) => match d.known() {
                    Some((_, running)) if running.contains(&instance) => {
                        checks.live.insert((instance, name));
                    }
                    Some(_) => {}
                    None => {
                        checks.failed.insert(name);
                    }
                },
            }
        }
        checks
    }
}

#[cfg(test)]
mod tests;
