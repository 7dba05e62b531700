//! `ECS Daemon Deployment State Change`: a Managed Daemons deployment that failed or succeeded.

use serde_json::Value;

use super::{IgnoreReason, Parsed, RejectReason, Signal, text};

/// `ECS Daemon Deployment State Change`, page "Daemon events" (managed-daemons-events):
/// `eventName`, `clusterArn`, `daemonArn`, `daemonDeploymentArn`, `targetDaemonRevisionArn`,
/// `updatedAt`.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonDeployment {
    pub cluster_arn: String,
    pub daemon_arn: String,
    pub daemon_name: String,
    pub deployment_arn: Option<String>,
    pub outcome: DeploymentOutcome,
    pub since: Option<String>,
}

/// What a deployment event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentOutcome {
    /// `DAEMON_DEPLOYMENT_ROLLBACK_IN_PROGRESS`: the deployment failed (or its circuit breaker
    /// tripped) and ECS rolls it back.
    RollingBack,
    /// `DAEMON_DEPLOYMENT_ROLLBACK_FAILED` (an ERROR event): the rollback failed too.
    RollbackFailed,
    /// `DAEMON_DEPLOYMENT_SUCCESSFUL`: a deployment of the daemon finished; a failure of it is over.
    Succeeded,
}

impl DeploymentOutcome {
    pub fn event_name(self) -> &'static str {
        match self {
            DeploymentOutcome::RollingBack => "DAEMON_DEPLOYMENT_ROLLBACK_IN_PROGRESS",
            DeploymentOutcome::RollbackFailed => "DAEMON_DEPLOYMENT_ROLLBACK_FAILED",
            DeploymentOutcome::Succeeded => "DAEMON_DEPLOYMENT_SUCCESSFUL",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Self::RollingBack, Self::RollbackFailed, Self::Succeeded]
            .into_iter()
            .find(|o| o.event_name() == name)
    }
}

pub(super) fn parse(event: &Value, detail: &Value) -> Parsed {
    let name = text(detail, "eventName").unwrap_or_default();
    let Some(outcome) = DeploymentOutcome::parse(name) else {
        return Parsed::Ignored(IgnoreReason::UnhandledDaemonAction(name.to_owned()));
    };
    let Some(cluster_arn) = text(detail, "clusterArn") else {
        return Parsed::Rejected(RejectReason::MissingField("detail.clusterArn"));
    };
    let Some(daemon_arn) = text(detail, "daemonArn") else {
        return Parsed::Rejected(RejectReason::MissingField("detail.daemonArn"));
    };
    Parsed::Signal(Signal::DaemonDeployment(Box::new(DaemonDeployment {
        cluster_arn: cluster_arn.to_owned(),
        daemon_arn: daemon_arn.to_owned(),
        daemon_name: daemon_arn.rsplit('/').next().unwrap_or(daemon_arn).to_owned(),
        deployment_arn: text(detail, "daemonDeploymentArn").map(str::to_owned),
        outcome,
        since: text(detail, "updatedAt")
            .or_else(|| text(event, "time"))
            .map(str::to_owned),
    })))
}
