//! Watching the watcher: the sweep's doors, wrapped so that every call that fails after the
//! SDK's retries is noted by operation. The stages stay as they are; the sweep reads the notes
//! at the end of a run (DESIGN §8: `MonitorImpaired`, the `monitor-impaired` alert).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::run::Adapters;
use crate::config::Place;
use crate::incident::{Group, GroupKey, Incident, IncidentKey};
use crate::inventory::{
    AutoScalingGroup, CapacityProviderType, ClusterInfo, ClusterInstances, Daemon, DaemonPlacement, Ec2States,
    HostStates, Task, TaskFilter,
};
use crate::ports::{AwsError, Batch, Daemons, Inventory, Keys, Ledger, Settle, Stored, Written, error_chain};

/// A call that could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The IAM action, `service:Operation`.
    pub operation: &'static str,
    pub error: String,
}

/// The notes of one Lambda instance, shared by its wrapped doors.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<Vec<Fault>>>);

tokio::task_local! {
    /// Set while a look-up runs whose failure only leaves a line out (the services named).
    static UNCOUNTED: bool;
}

/// Runs `look_up` with its transient failures (throttling, timeouts) not noted: what it finds
/// only adds to a notice, so a throttled call there is no fault of the watch.
pub async fn uncounted<F: std::future::Future>(look_up: F) -> F::Output {
    UNCOUNTED.scope(true, look_up).await
}

impl Faults {
    fn note<T>(&self, result: Result<T, AwsError>) -> Result<T, AwsError> {
        let uncounted = UNCOUNTED.try_with(|u| *u).unwrap_or(false);
        if let Err(e) = &result
            && !(uncounted && e.kind == crate::ports::ErrorKind::Transient)
        {
            let fault = Fault {
                operation: e.operation,
                error: error_chain(e),
            };
            self.0.lock().unwrap_or_else(|p| p.into_inner()).push(fault);
        }
        result
    }

    /// The faults noted since the last call.
    pub fn take(&self) -> Vec<Fault> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Wraps the look-ups and the ledger of `io` so their failures are noted in `faults`.
pub fn watch(mut io: Adapters, faults: &Faults) -> Adapters {
    io.inventory = Box::new(Watched {
        inner: io.inventory,
        faults: faults.clone(),
    });
    io.daemons = Box::new(Watched {
        inner: io.daemons,
        faults: faults.clone(),
    });
    io.ledger = io.ledger.map(|inner| {
        Box::new(Watched {
            inner,
            faults: faults.clone(),
        }) as Box<dyn Ledger>
    });
    io
}

struct Watched<T> {
    inner: T,
    faults: Faults,
}

#[async_trait]
impl Inventory for Watched<Box<dyn Inventory>> {
    async fn list_clusters(&self) -> Result<Vec<String>, AwsError> {
        self.faults.note(self.inner.list_clusters().await)
    }
    async fn describe_clusters(&self, arns: &[String]) -> Result<Vec<ClusterInfo>, AwsError> {
        self.faults.note(self.inner.describe_clusters(arns).await)
    }
    async fn describe_container_instances(&self, cluster: &str, arns: &[String]) -> Result<ClusterInstances, AwsError> {
        self.faults
            .note(self.inner.describe_container_instances(cluster, arns).await)
    }
    async fn describe_ec2_instances(&self, ids: &[String]) -> Result<Ec2States, AwsError> {
        self.faults.note(self.inner.describe_ec2_instances(ids).await)
    }
    async fn describe_managed_nodes(&self, ids: &[String]) -> Result<HostStates, AwsError> {
        self.faults.note(self.inner.describe_managed_nodes(ids).await)
    }
    async fn list_container_instances(&self, cluster: &str) -> Result<Vec<String>, AwsError> {
        self.faults.note(self.inner.list_container_instances(cluster).await)
    }
    async fn list_tasks(&self, cluster: &str, filter: &TaskFilter) -> Result<Vec<String>, AwsError> {
        self.faults.note(self.inner.list_tasks(cluster, filter).await)
    }
    async fn describe_tasks(&self, cluster: &str, arns: &[String]) -> Result<Vec<Task>, AwsError> {
        self.faults.note(self.inner.describe_tasks(cluster, arns).await)
    }
    async fn describe_capacity_providers(
        &self,
        names: &[String],
    ) -> Result<HashMap<String, CapacityProviderType>, AwsError> {
        self.faults.note(self.inner.describe_capacity_providers(names).await)
    }
    async fn capacity_provider_groups(&self, names: &[String]) -> Result<HashMap<String, String>, AwsError> {
        self.faults.note(self.inner.capacity_provider_groups(names).await)
    }
    async fn describe_auto_scaling_groups(&self, names: &[String]) -> Result<Vec<AutoScalingGroup>, AwsError> {
        self.faults.note(self.inner.describe_auto_scaling_groups(names).await)
    }
    async fn ec2_launch_times(&self, ids: &[String]) -> Result<HashMap<String, u64>, AwsError> {
        self.faults.note(self.inner.ec2_launch_times(ids).await)
    }
}

#[async_trait]
impl Daemons for Watched<Box<dyn Daemons>> {
    async fn list_daemons(&self, cluster: &str) -> Result<Vec<Daemon>, AwsError> {
        self.faults.note(self.inner.list_daemons(cluster).await)
    }
    async fn describe_daemon(&self, arn: &str) -> Result<DaemonPlacement, AwsError> {
        self.faults.note(self.inner.describe_daemon(arn).await)
    }
    async fn deployment_in_progress(&self, arn: &str) -> Result<bool, AwsError> {
        self.faults.note(self.inner.deployment_in_progress(arn).await)
    }
}

#[async_trait]
impl Ledger for Watched<Box<dyn Ledger>> {
    async fn get(&self, keys: &[IncidentKey]) -> Result<Vec<Incident>, AwsError> {
        self.faults.note(self.inner.get(keys).await)
    }
    async fn read(&self, keys: &Keys) -> Result<Stored, AwsError> {
        self.faults.note(self.inner.read(keys).await)
    }
    async fn write(&self, batch: &Batch) -> Result<Written, AwsError> {
        self.faults.note(self.inner.write(batch).await)
    }
    async fn put(&self, incidents: &[Incident]) -> Result<Vec<bool>, AwsError> {
        self.faults.note(self.inner.put(incidents).await)
    }
    async fn settle(&self, settles: &[Settle]) -> Result<Vec<bool>, AwsError> {
        self.faults.note(self.inner.settle(settles).await)
    }
    async fn open_incidents(&self, cluster: &str) -> Result<Vec<IncidentKey>, AwsError> {
        self.faults.note(self.inner.open_incidents(cluster).await)
    }
    async fn count_open(&self, cluster: &str, delta: i64) -> Result<i64, AwsError> {
        self.faults.note(self.inner.count_open(cluster, delta).await)
    }
    async fn open_everywhere(&self) -> Result<Vec<IncidentKey>, AwsError> {
        self.faults.note(self.inner.open_everywhere().await)
    }
    async fn claim(&self, id: &str, now: u64, until: u64) -> Result<bool, AwsError> {
        self.faults.note(self.inner.claim(id, now, until).await)
    }
    async fn release(&self, id: &str, until: u64) -> Result<bool, AwsError> {
        self.faults.note(self.inner.release(id, until).await)
    }
    async fn note_place(&self, place: &Place, now: u64) -> Result<(), AwsError> {
        self.faults.note(self.inner.note_place(place, now).await)
    }
    async fn places_seen(&self, since: u64) -> Result<Vec<Place>, AwsError> {
        self.faults.note(self.inner.places_seen(since).await)
    }
    async fn note_clusters(&self, records: &[crate::ports::ClusterRecord]) -> Result<(), AwsError> {
        self.faults.note(self.inner.note_clusters(records).await)
    }
    async fn groups(&self, keys: &[GroupKey]) -> Result<Vec<Group>, AwsError> {
        self.faults.note(self.inner.groups(keys).await)
    }
    async fn put_group(&self, group: &Group) -> Result<bool, AwsError> {
        self.faults.note(self.inner.put_group(group).await)
    }
    async fn held(&self, key: &GroupKey) -> Result<Vec<Incident>, AwsError> {
        self.faults.note(self.inner.held(key).await)
    }
    async fn owed(&self, now: u64) -> Result<(Vec<Incident>, Vec<Group>), AwsError> {
        self.faults.note(self.inner.owed(now).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A look-up that only adds a line (the services named) is no fault of the watch when it is
    /// throttled; refused (AccessDenied) it still is, and outside it every failure is noted.
    #[tokio::test]
    async fn when_a_look_up_runs_uncounted_then_only_its_transient_failures_go_unnoted() {
        let faults = Faults::default();
        let throttled = || Err::<(), _>(AwsError::new("ecs:ListTasks", "ThrottlingException"));
        let denied = || Err::<(), _>(AwsError::unavailable("ecs:DescribeTasks", "AccessDeniedException"));
        uncounted(async {
            let _ = faults.note(throttled());
            let _ = faults.note(denied());
        })
        .await;
        let _ = faults.note(throttled());
        let noted: Vec<&str> = faults.take().iter().map(|f| f.operation).collect();
        assert_eq!(noted, ["ecs:DescribeTasks", "ecs:ListTasks"]);
    }
}
