//! Survey: what the sweep sees of one cluster now, and the incidents it looks at there. The look-ups
//! are the whole cluster's, batched: `ListContainerInstances` and `DescribeContainerInstances` per
//! 100 (the monitor's own look-up, [`container_instances`]), then per Managed Daemon
//! `DescribeDaemon` beside the daemons' tasks (the monitor's look-up too, [`daemon_tasks`]). A failed look-up leaves what it covered unknown, never "fine".

use std::collections::HashSet;

use futures_util::future::{join, join_all};

use super::batched::log_check_error;
use super::evidence::{DaemonChecks, DaemonTasks, Snapshot, container_instances, daemon_tasks};
use super::intake::Checked;
use crate::event::DaemonOn;
use crate::incident::IncidentKey;
use crate::inventory::{
    ClusterInstances, ContainerInstance, Daemon, DaemonPlacement, InstanceHealth, InstanceStatus, instance_key,
};
use crate::kind::AlertKind;
use crate::kinds;
use crate::ports::{Daemons, Inventory, Ledger};

/// One cluster as the sweep found it: its snapshot (every instance, and once the looks are
/// known, their daemons), with what the sweep alone reads.
pub struct Survey {
    pub snapshot: Snapshot,
    /// The cluster's daemons; `None`: `ListDaemons` failed, so no daemon can be judged.
    pub daemons: Option<Vec<DaemonSurvey>>,
    /// Where the daemons run (the monitor's look-up, [`daemon_tasks`], of every daemon listed).
    pub tasks: DaemonTasks,
    /// The cluster's open incidents; `None`: the ledger could not be read.
    pub open: Option<Vec<IncidentKey>>,
}

/// One Managed Daemon: where it belongs.
pub struct DaemonSurvey {
    pub daemon: Daemon,
    /// `None`: `DescribeDaemon` failed.
    pub placement: Option<DaemonPlacement>,
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
    let (found, ((listed, tasks), open)) = join(
        container_instances(inventory, cluster, &arns),
        join(
            listed_daemons(inventory, daemons, cluster),
            ledger.open_incidents(cluster),
        ),
    )
    .await;
    Some(Survey {
        snapshot: Snapshot::new(cluster, found),
        daemons: listed,
        tasks,
        open: open.inspect_err(|e| log_check_error(cluster, e, 0)).ok(),
    })
}

/// `ListDaemons`, then each daemon's `DescribeDaemon` beside the tasks of them all.
async fn listed_daemons(
    inventory: &dyn Inventory,
    daemons: &dyn Daemons,
    cluster: &str,
) -> (Option<Vec<DaemonSurvey>>, DaemonTasks) {
    let listed = match daemons.list_daemons(cluster).await {
        Ok(listed) => listed,
        Err(e) => {
            log_check_error(cluster, &e, 0);
            return (None, DaemonTasks::default());
        }
    };
    let names: Vec<&str> = listed.iter().map(|d| d.name.as_str()).collect();
    let (placements, tasks) = join(
        join_all(listed.iter().map(|d| daemons.describe_daemon(&d.arn))),
        daemon_tasks(inventory, cluster, &names),
    )
    .await;
    let surveyed = listed
        .into_iter()
        .zip(placements)
        .map(|(daemon, placement)| DaemonSurvey {
            placement: placement.inspect_err(|e| log_check_error(cluster, e, 1)).ok(),
            daemon,
        })
        .collect();
    (Some(surveyed), tasks)
}

/// What the survey found, in numbers (the sweep's gauges).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub monitored_instances: u64,
    pub disconnected_agents: u64,
    /// Per daemon whose placement and tasks are known.
    pub without_daemon: Vec<(String, u64)>,
}

impl std::ops::Deref for Survey {
    type Target = Snapshot;

    fn deref(&self) -> &Snapshot {
        &self.snapshot
    }
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
        let known = self.known(daemon);
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
                .filter(|d| self.known(d).is_some())
                .map(|d| (d.daemon.name.clone(), self.without(d).count() as u64))
                .collect(),
        }
    }

    /// The incidents to look at (work items with no event): every disconnected agent, every
    /// instance without a daemon it belongs on, every impaired instance, and every open incident
    /// not among them whose kind the sweep can look at again (so a look can close it).
    pub fn keys(&self) -> Vec<IncidentKey> {
        let key = |kind, i: &ContainerInstance, daemon| IncidentKey::new(&self.cluster, kind, &i.arn, daemon);
        let watched = || self.watched();
        let mut keys: Vec<IncidentKey> = watched()
            .filter(|i| !i.agent_connected)
            .map(|i| key(AlertKind::AgentDisconnected, i, None))
            .collect();
        for d in self.daemons.iter().flatten() {
            let name = Some(d.daemon.name.as_str());
            keys.extend(self.without(d).map(|i| key(AlertKind::DaemonLost, i, name)));
        }
        keys.extend(
            watched()
                .filter(|i| i.health.as_ref().is_some_and(InstanceHealth::impaired))
                .map(|i| key(AlertKind::InstanceImpaired, i, None)),
        );
        let seen: HashSet<IncidentKey> = keys.iter().cloned().collect();
        let again = self.open.iter().flatten().filter(|k| !seen.contains(*k));
        keys.extend(again.filter(|k| kinds::of(k.kind).looked_at_again()).cloned());
        keys
    }

    /// The lost daemons of the looks, each with its ARN as `ListDaemons` gave it.
    pub fn lost<'a>(&'a self, checked: &'a [Checked]) -> Vec<DaemonOn<'a>> {
        checked
            .iter()
            .filter_map(Checked::daemon)
            .map(|d| DaemonOn {
                arn: d.arn.or_else(|| self.daemon(d.name).map(|s| s.daemon.arn.as_str())),
                ..d
            })
            .collect()
    }

    /// How many daemons run a task on the instance (by key).
    pub fn daemon_tasks_on(&self, instance: &str) -> usize {
        self.daemons
            .iter()
            .flatten()
            .filter(|d| self.tasks.on(&d.daemon.name).is_some_and(|on| on.contains(instance)))
            .count()
    }

    /// Where the daemon belongs and where it runs, when both are known.
    fn known<'a>(&'a self, daemon: &'a DaemonSurvey) -> Option<(&'a DaemonPlacement, &'a HashSet<String>)> {
        Some((daemon.placement.as_ref()?, self.tasks.on(&daemon.daemon.name)?))
    }

    fn daemon(&self, name: &str) -> Option<&DaemonSurvey> {
        self.daemons.iter().flatten().find(|d| d.daemon.name == name)
    }

    /// What the look-ups say of the daemons, as the event path's verdicts read it: where each
    /// runs, which could not be looked up, and (a daemon that no longer exists is nowhere
    /// missing) the open incidents of deleted daemons as running.
    pub fn daemon_checks(&self, lost: &[DaemonOn<'_>]) -> DaemonChecks {
        let mut checks = DaemonChecks::new(lost, self.daemons.is_some().then_some(&self.tasks));
        for d in self.daemons.iter().flatten() {
            let critical = d.placement.as_ref().and_then(|p| p.critical);
            checks.critical.insert(d.daemon.name.clone(), critical);
            // Where it belongs unknown: what it runs on says nothing of where it is missing.
            if d.placement.is_none() && lost.iter().any(|l| l.name == d.daemon.name) {
                checks.failed.insert(d.daemon.name.clone());
            }
        }
        checks
    }
}

#[cfg(test)]
mod tests;
