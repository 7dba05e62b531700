//! What the monitor looked at before it confirmed a problem of each kind, as its alert says.

use super::{AlertKind, DaemonChecks};

pub(super) fn checked(kind: AlertKind, checks: DaemonChecks) -> Vec<&'static str> {
    match kind {
        AlertKind::AgentDisconnected => vec![
            "DescribeContainerInstances: still ACTIVE with agentConnected=false after the grace period",
            "DescribeInstances: the EC2 instance is running (skipped for ECS Anywhere)",
        ],
        AlertKind::DaemonLost => {
            let mut checked = vec![
                "DescribeContainerInstances: the instance is still ACTIVE, so ECS is not replacing it",
                "ListTasks and DescribeTasks: no RUNNING or PENDING task of the daemon on the instance",
            ];
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
