//! What the monitor looked at before it confirmed a problem of each kind, as its alert says.

use super::{AlertKind, DaemonChecks, InstanceFinding};

/// The lines true of the instances listed: a drain or repair that stalled (DRAINING) is checked
/// otherwise than an instance still ACTIVE, and a message with both says both.
pub(super) fn checked(kind: AlertKind, checks: DaemonChecks, instances: &[InstanceFinding]) -> Vec<&'static str> {
    let draining = instances.iter().any(|i| i.draining);
    let active = instances.iter().any(|i| !i.draining) || instances.is_empty();
    let either = |(line, true_of): (&'static str, bool)| true_of.then_some(line);
    match kind {
        AlertKind::AgentDisconnected => [
            (
                "DescribeContainerInstances: still ACTIVE with agentConnected=false after the grace period",
                active,
            ),
            (
                "DescribeContainerInstances: DRAINING with agentConnected=false for longer than STUCK_AFTER_MINUTES: the drain cannot finish",
                draining,
            ),
            ("DescribeInstances: the EC2 instance is running (skipped for ECS Anywhere)", true),
        ]
        .into_iter()
        .filter_map(either)
        .collect(),
        AlertKind::DaemonLost => {
            let mut checked: Vec<&'static str> = [
                (
                    "DescribeContainerInstances: the instance is still ACTIVE, so ECS is not replacing it",
                    active,
                ),
                (
                    "DescribeContainerInstances: the instance is DRAINING for longer than STUCK_AFTER_MINUTES: ECS has not finished replacing it",
                    draining,
                ),
                ("ListTasks and DescribeTasks: no RUNNING or PENDING task of the daemon on the instance", true),
            ]
            .into_iter()
            .filter_map(either)
            .collect();
            checked.push(if checks.deployments {
                "ListDaemons and ListDaemonDeployments: no deployment of the daemon in progress"
            } else {
                "ListDaemons and ListDaemonDeployments: a deployment in progress could not be ruled out (the APIs were unavailable, or ListDaemons did not list the daemon)"
            });
            checked
        }
        AlertKind::InstanceImpaired => vec![
            "DescribeContainerInstances with its health (CONTAINER_INSTANCE_HEALTH): still IMPAIRED after the grace period, still ACTIVE",
        ],
        AlertKind::DaemonDeploymentFailed => vec![
            "the deployment event itself: ECS reports the failure; a later successful deployment of the daemon resolves it",
        ],
        AlertKind::MonitorImpaired => vec!["the sweep's own calls"],
    }
}
