//! The kinds of problem the monitor tells: below events, incidents and alerts, which all name
//! them, so none of those imports another for the kind alone.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    AgentDisconnected,
    DaemonLost,
    /// A deployment of a daemon failed (it rolls back) or its rollback failed.
    DaemonDeploymentFailed,
    /// ECS reports the instance's health IMPAIRED.
    InstanceImpaired,
    /// The sweep cannot make a call it needs (DESIGN §8).
    MonitorImpaired,
    /// An EC2 instance of a cluster's Auto Scaling capacity provider that never registered.
    InstanceNotRegistered,
    /// An agent that disconnected and recovered `FLAP_THRESHOLD` times within an hour.
    AgentFlapping,
}

impl AlertKind {
    pub const ALL: [AlertKind; 7] = [
        AlertKind::AgentDisconnected,
        AlertKind::DaemonLost,
        AlertKind::DaemonDeploymentFailed,
        AlertKind::InstanceImpaired,
        AlertKind::MonitorImpaired,
        AlertKind::InstanceNotRegistered,
        AlertKind::AgentFlapping,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::AgentDisconnected => "agent-disconnected",
            AlertKind::DaemonLost => "daemon-lost",
            AlertKind::DaemonDeploymentFailed => "daemon-deployment-failed",
            AlertKind::InstanceImpaired => "instance-impaired",
            AlertKind::MonitorImpaired => "monitor-impaired",
            AlertKind::InstanceNotRegistered => "instance-not-registered",
            AlertKind::AgentFlapping => "agent-flapping",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}
