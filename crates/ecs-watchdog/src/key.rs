//! What identifies an incident and a group: the unit of work from intake to the ledger, and the
//! ids that travel on every message (DESIGN §7).

use crate::inventory::instance_key;
use crate::kind::AlertKind;

/// What identifies an incident. The cluster ARN carries the account and the region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IncidentKey {
    pub cluster_arn: String,
    pub kind: AlertKind,
    /// The container instance id (the last part of its ARN, whatever the ARN format).
    pub instance: String,
    /// Set for daemon kinds only.
    pub daemon: Option<String>,
}

impl IncidentKey {
    pub fn new(cluster_arn: &str, kind: AlertKind, container_instance_arn: &str, daemon: Option<&str>) -> Self {
        Self {
            cluster_arn: cluster_arn.to_owned(),
            kind,
            instance: instance_key(container_instance_arn).to_owned(),
            daemon: daemon.map(str::to_owned),
        }
    }

    /// The incident a signal speaks of.
    pub fn of(signal: &crate::event::Signal) -> Self {
        Self::new(
            signal.cluster_arn(),
            signal.kind(),
            signal.container_instance_arn(),
            signal.daemon_name(),
        )
    }

    /// The ledger's partition key: kind first, so a daemon's name can never collide with another
    /// kind's key.
    pub fn id(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.kind.as_str(),
            self.cluster_arn,
            self.instance,
            self.daemon.as_deref().unwrap_or("-")
        )
    }
}

/// The incidents of one cluster and kind whose new alerts notify together (DESIGN §7,
/// grouping): the first pages, what joins within the interval waits for one digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub cluster_arn: String,
    pub kind: AlertKind,
}

impl GroupKey {
    pub fn new(cluster_arn: &str, kind: AlertKind) -> Self {
        Self {
            cluster_arn: cluster_arn.to_owned(),
            kind,
        }
    }

    /// The ledger's key of the group's record, and what its held incidents carry.
    pub fn id(&self) -> String {
        format!("group|firing|{}|{}", self.kind.as_str(), self.cluster_arn)
    }
}
