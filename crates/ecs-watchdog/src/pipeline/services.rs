//! Services named (issue 25): which services lose capacity on the instances an alert tells, what
//! on-call asks first. Looked up just before a firing message (alert, reminder, digest) is
//! rendered, so only for instances that are being told, never for ones found fine, and as they
//! are now. Per cluster: one `ListTasks` per instance (by `containerInstance`, desired status
//! RUNNING, which includes PENDING: 100 tasks a page), one `DescribeTasks` per 100 of those
//! tasks across the cluster's instances; the tasks' `group` (`service:<name>`) names the service.
//! An instance ECS says runs no task is not asked. A failed call never holds the message back:
//! the instances it was for say their services could not be listed.

use std::collections::{BTreeMap, HashMap};

use futures_util::future::join_all;
use tracing::warn;

use super::batched::chunked;
use crate::alert::{AlertKind, InstanceFinding, SERVICES_LISTED, ServiceTasks};
use crate::config::Place;
use crate::inventory::{Task, TaskFilter, instance_key};
use crate::kinds;
use crate::ports::{AwsError, Inventory, error_chain};

/// A task's group when a service started it.
const SERVICE_GROUP: &str = "service:";

/// The most instances of one message whose services are looked up: the first, in the
/// frame's order (daemon, then container instance ARN). The frame never lists more in SNS's
/// 256 KiB, whatever the instances say: an instance line is at least its ARN and its fields'
/// names, about 230 bytes, so at most about 1,140 fit (held by a test against the frame, with
/// ARNs shorter than ECS gives). A notice of 5,000 instances asks ECS about these only, not
/// about instances its message leaves out.
pub(super) const SERVICES_LOOKED_UP: usize = 1_500;

/// Names the services on the instance of each finding that its kind asks for (see
/// [`wanted`]); each finding comes with the message that tells it (any number that tells the
/// messages apart), its cluster ARN and kind. `place`: where `inventory` reaches; a cluster
/// elsewhere (a notice the home sweep sends for another account) is not asked.
pub async fn name<'a>(
    inventory: &dyn Inventory,
    place: &Place,
    findings: impl IntoIterator<Item = (usize, &'a str, AlertKind, &'a mut InstanceFinding)>,
) {
    // Per message: an alert and a reminder of one cluster and kind each list their own first.
    let mut by_message: BTreeMap<(usize, &str, AlertKind), Vec<&mut InstanceFinding>> = BTreeMap::new();
    for (message, cluster, kind, finding) in findings {
        if wanted(place, cluster, kind, finding) {
            by_message.entry((message, cluster, kind)).or_default().push(finding);
        }
    }
    let mut by_cluster: BTreeMap<&str, Vec<&mut InstanceFinding>> = BTreeMap::new();
    for ((_, cluster, _), findings) in by_message {
        by_cluster.entry(cluster).or_default().extend(listable(findings));
    }
    // A failed look-up only drops the services line: in the sweep, a throttled one is no fault
    // of the watch (its evidence look-ups, which decide, still are).
    super::watched::uncounted(join_all(
        by_cluster
            .into_iter()
            .map(|(cluster, findings)| in_cluster(inventory, cluster, findings)),
    ))
    .await;
}

/// The instances of one message that its frame can list: the first [`SERVICES_LOOKED_UP`] in the
/// frame's order.
fn listable(mut findings: Vec<&mut InstanceFinding>) -> impl Iterator<Item = &mut InstanceFinding> {
    findings
        .sort_by(|a, b| (&a.daemon_name, &a.container_instance_arn).cmp(&(&b.daemon_name, &b.container_instance_arn)));
    findings.into_iter().take(SERVICES_LOOKED_UP)
}

/// Whether to look up the services of this finding: its kind names them, ECS says tasks run
/// there, it is not a digest's resolved line, it was not looked up yet, and `inventory` reaches
/// its cluster.
fn wanted(place: &Place, cluster: &str, kind: AlertKind, finding: &InstanceFinding) -> bool {
    let reached = Place::of_cluster(cluster)
        .is_none_or(|p| p.region == place.region && (place.account.is_empty() || p.account == place.account));
    kinds::of(kind).names_services()
        && finding.running_tasks_count > 0
        && finding.resolved.is_none()
        && finding.services.is_none()
        && finding.services_error.is_none()
        && reached
}

/// One cluster's instances: each listed once (two daemons lost on one instance are one
/// instance), their tasks described in batches, each finding told what its instance runs.
async fn in_cluster(inventory: &dyn Inventory, cluster: &str, findings: Vec<&mut InstanceFinding>) {
    let mut instances: Vec<String> = findings.iter().map(|f| f.container_instance_arn.clone()).collect();
    instances.sort_unstable();
    instances.dedup();
    let filters: Vec<TaskFilter> = instances
        .iter()
        .map(|arn| TaskFilter::ContainerInstance(arn.clone()))
        .collect();
    let listed: Vec<Result<Vec<String>, AwsError>> =
        join_all(filters.iter().map(|filter| inventory.list_tasks(cluster, filter))).await;
    let mut task_arns: Vec<String> = listed.iter().flatten().flatten().cloned().collect();
    task_arns.sort_unstable();
    task_arns.dedup();
    let mut described: Described = HashMap::new();
    for (chunk, answer) in chunked(&task_arns, |chunk| inventory.describe_tasks(cluster, chunk)).await {
        match answer {
            Ok(tasks) => described.extend(tasks.into_iter().map(|t| (t.arn.clone(), Ok(t)))),
            Err(e) => described.extend(chunk.iter().map(|arn| (arn.clone(), Err(said(&e))))),
        }
    }
    let found: HashMap<&str, Found> = instances
        .iter()
        .zip(listed)
        .map(|(arn, listed)| (instance_key(arn), found(listed.map_err(|e| said(&e)), &described)))
        .collect();
    for finding in findings {
        if let Some(found) = found.get(instance_key(&finding.container_instance_arn)) {
            tell(finding, found);
        }
    }
}

/// The described tasks by ARN, or what the `DescribeTasks` that should have told one said.
type Described = HashMap<String, Result<Task, String>>;

/// What was found of one instance: its services and their task counts, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    Services(Vec<ServiceTasks>),
    Unknown(String),
}

/// An instance's services from its listed tasks, as described; a task gone between the two
/// calls (`DescribeTasks` reports it missing) is not counted.
fn found(listed: Result<Vec<String>, String>, described: &Described) -> Found {
    let listed = match listed {
        Ok(listed) => listed,
        Err(why) => return Found::Unknown(why),
    };
    let mut services: BTreeMap<&str, usize> = BTreeMap::new();
    for arn in &listed {
        match described.get(arn) {
            Some(Ok(task)) => {
                if let Some(name) = task.group.as_deref().and_then(|g| g.strip_prefix(SERVICE_GROUP)) {
                    *services.entry(name).or_default() += 1;
                }
            }
            Some(Err(why)) => return Found::Unknown(why.clone()),
            None => {}
        }
    }
    let mut services: Vec<ServiceTasks> = services
        .into_iter()
        .map(|(name, tasks)| ServiceTasks {
            name: name.to_owned(),
            tasks,
        })
        .collect();
    // Most tasks first: the capacity lost most; then by name, for a stable order.
    services.sort_by(|a, b| b.tasks.cmp(&a.tasks).then_with(|| a.name.cmp(&b.name)));
    Found::Services(services)
}

/// Writes what was found into the finding: at most [`SERVICES_LISTED`] services, the rest
/// counted.
fn tell(finding: &mut InstanceFinding, found: &Found) {
    match found {
        Found::Services(services) => {
            let listed = services.len().min(SERVICES_LISTED);
            finding.services = Some(services[..listed].to_vec());
            finding.services_omitted = services.len() - listed;
        }
        Found::Unknown(why) => finding.services_error = Some(why.clone()),
    }
}

/// A failed look-up as the finding says it (the call and its error), and logged once per call.
fn said(e: &AwsError) -> String {
    let text = error_chain(e);
    warn!(error = %text, "services not listed: the alert goes out without them");
    text
}

#[cfg(test)]
mod tests;
