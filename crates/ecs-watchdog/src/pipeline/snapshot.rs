//! A snapshot of one cluster: what the look-ups found of it, the one evidence both Lambdas fill
//! (the monitor for the incident keys its messages name, the sweep for every key of the
//! cluster) and the kinds' verdicts read ([`crate::verdict::Evidence`], with the hosts, which
//! are regional and looked up across clusters).

use std::collections::{HashMap, HashSet};

use crate::event::{self, DaemonOn};
use crate::inventory::{ClusterInstances, InstanceView, Task, instance_key};
use crate::ports::AwsError;
use crate::verdict::{DaemonLook, Deployment};

/// What the look-ups found of one cluster: its container instances as ECS describes them (with
/// their health), the keys of those whose look-up failed, and its lost daemons: their tasks,
/// deployments and criticality.
pub struct Snapshot {
    pub cluster: String,
    pub instances: ClusterInstances,
    /// Keys of the instances whose `DescribeContainerInstances` failed.
    pub failed_instances: HashSet<String>,
    pub daemons: DaemonChecks,
}

impl Snapshot {
    /// What `DescribeContainerInstances` found (see `evidence::container_instances`); the
    /// daemons are checked once the work items are known.
    pub fn new(cluster: &str, (instances, failed_instances): (ClusterInstances, HashSet<String>)) -> Self {
        Self {
            cluster: cluster.to_owned(),
            instances,
            failed_instances,
            daemons: DaemonChecks::default(),
        }
    }

    /// Whether the instance's look-up worked.
    pub fn known(&self, container_instance_arn: &str) -> bool {
        !self.failed_instances.contains(instance_key(container_instance_arn))
    }

    /// The container instance as ECS describes it now; `None` when its look-up failed.
    pub fn instance(&self, container_instance_arn: &str) -> Option<InstanceView<'_>> {
        self.known(container_instance_arn)
            .then(|| self.instances.lookup(container_instance_arn))
    }

    /// What the look-ups found of a daemon on a container instance; `None` when they failed.
    pub fn daemon(&self, container_instance_arn: &str, name: &str) -> Option<DaemonLook> {
        let checks = &self.daemons;
        if checks.failed.contains(name) {
            return None;
        }
        let live = (instance_key(container_instance_arn).to_owned(), name.to_owned());
        Some(DaemonLook {
            running: checks.live.contains(&live),
            // Not asked (no deployment look-up for the daemon): unknown; asked and failed: none.
            deployment: match checks.deployments.get(name) {
                Some(deployment) => *deployment,
                None => Some(Deployment::Unknown),
            },
            critical: checks.critical.get(name).copied().flatten(),
        })
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

impl DaemonChecks {
    /// What the tasks say of each lost daemon: running again on its instance, or its look-up
    /// failed. `tasks`: none when the daemons could not be listed (nothing known of any). A
    /// daemon the look-up was not asked about (the sweep asks about those `ListDaemons` lists)
    /// no longer exists: it is nowhere missing.
    pub fn new(lost: &[DaemonOn<'_>], tasks: Option<&DaemonTasks>) -> Self {
        let mut checks = Self::default();
        for daemon in lost {
            let (instance, name) = daemon.live_key();
            match tasks.map(|t| t.runs(&name, &instance)) {
                None | Some(None) => {
                    checks.failed.insert(name);
                }
                Some(Some(true)) => {
                    checks.live.insert((instance, name));
                }
                Some(Some(false)) => {}
            }
        }
        checks
    }
}

/// Where a cluster's daemons run: the container instances (by key) with a live task of each
/// daemon asked about, and the daemons whose look-up failed. The one look-up of both Lambdas
/// (the monitor's of the lost daemons its messages name, the sweep's of every daemon).
#[derive(Debug, Default)]
pub struct DaemonTasks {
    /// By daemon name, for every daemon asked about whose tasks could be listed.
    pub running_on: HashMap<String, HashSet<String>>,
    pub failed: HashSet<String>,
}

impl DaemonTasks {
    /// Whether the daemon runs on the instance (by key): none when its look-up failed; a
    /// daemon not asked about runs everywhere (see [`DaemonChecks::new`]).
    pub fn runs(&self, name: &str, instance: &str) -> Option<bool> {
        if self.failed.contains(name) {
            return None;
        }
        Some(self.running_on.get(name).is_none_or(|on| on.contains(instance)))
    }

    /// The instances (by key) with a live task of the daemon; none when its look-up failed or
    /// it was not asked about.
    pub fn on(&self, name: &str) -> Option<&HashSet<String>> {
        self.running_on.get(name).filter(|_| !self.failed.contains(name))
    }
}

impl DaemonTasks {
    /// Counts a live task where it runs, for the daemon its `group` names (one asked about).
    pub(super) fn place(&mut self, task: Task) {
        let Some(name) = task
            .group
            .as_deref()
            .and_then(|g| g.strip_prefix(event::DAEMON_GROUP_PREFIX))
        else {
            return;
        };
        if let (Some(on), Some(arn)) = (self.running_on.get_mut(name), task.container_instance_arn.as_deref()) {
            on.insert(instance_key(arn).to_owned());
        }
    }
}
