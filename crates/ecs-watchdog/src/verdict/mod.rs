//! Verdicts: what an event means once the current state is known (DESIGN §2), in the words
//! every kind's verdict uses, and the [`Evidence`] each reads. The verdicts themselves are the
//! kinds' (`Kind::decide`). Pure.

use crate::event::Signal;
use crate::inventory::{ContainerInstance, Ec2State, InstanceStatus, InstanceView, PingStatus};
use crate::key::IncidentKey;

/// The outcome of re-checking one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The failure is still there: alert.
    Confirmed,
    /// The agent reconnected, or the daemon runs again, as normally happens.
    Recovered,
    /// A real state that needs no alert.
    Suppressed(Suppression),
    /// ECS changed the instance since this event; the newer event decides, so this one would
    /// only repeat the alert.
    Superseded { event_version: i64, current_version: i64 },
}

/// Why a real state needs no alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suppression {
    /// The cluster was deleted.
    ClusterGone,
    /// The container instance is INACTIVE or DEREGISTERING; `None`: ECS reported it MISSING.
    InstanceGone(Option<InstanceStatus>),
    /// Someone is already draining it.
    Draining,
    /// The EC2 instance is stopping, stopped, shutting down, terminated or gone: the cause is
    /// the instance, not the agent.
    /// `None`: `DescribeInstances` no longer knows it.
    InstanceNotRunning(Option<Ec2State>),
    /// The ECS Anywhere host is not `Online` in Systems Manager: powered off or cut off from the
    /// network, which takes the agent with it.
    HostOffline(PingStatus),
    /// The instance of a lost daemon is DRAINING, DEREGISTERING or INACTIVE, or (`None`) it or its
    /// cluster is gone: ECS is replacing it.
    Repairing(Option<InstanceStatus>),
    /// A deployment of the daemon is in progress; it drains and replaces instances on purpose.
    Deploying,
}

impl std::fmt::Display for Suppression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Suppression::ClusterGone => f.write_str("the cluster no longer exists"),
            Suppression::InstanceGone(Some(status)) => write!(f, "the container instance is {status}"),
            Suppression::InstanceGone(None) => f.write_str("the container instance is MISSING"),
            Suppression::Draining => f.write_str("the container instance is DRAINING"),
            Suppression::InstanceNotRunning(Some(state)) => write!(f, "the EC2 instance is {state}"),
            Suppression::InstanceNotRunning(None) => f.write_str("the EC2 instance is gone"),
            Suppression::HostOffline(status) => write!(f, "the ECS Anywhere host is {status} in Systems Manager"),
            Suppression::Repairing(Some(status)) => write!(f, "ECS is replacing the instance ({status})"),
            Suppression::Repairing(None) => f.write_str("ECS is replacing the instance (gone)"),
            Suppression::Deploying => f.write_str("a deployment of the daemon is in progress"),
        }
    }
}

/// What `DescribeInstances` said about the instance behind a container instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ec2View {
    /// No EC2 check applies (ECS Anywhere, or no id) or none was needed.
    NotChecked,
    State(Ec2State),
    /// `DescribeInstances` no longer knows the id.
    NotFound,
    /// An ECS Anywhere host's `PingStatus`.
    Host(PingStatus),
    /// Systems Manager does not know the ECS Anywhere host: it could not be checked.
    HostNotRegistered,
}

/// The instance when it is still in service (registering or ACTIVE); otherwise the verdict its
/// state gives any instance signal: gone (cluster, MISSING, INACTIVE, DEREGISTERING) or DRAINING.
pub fn in_service(ecs: InstanceView<'_>) -> Result<&ContainerInstance, Verdict> {
    let instance = match ecs {
        InstanceView::ClusterGone => return Err(Verdict::Suppressed(Suppression::ClusterGone)),
        InstanceView::Missing => return Err(Verdict::Suppressed(Suppression::InstanceGone(None))),
        InstanceView::Found(instance) => instance,
    };
    match instance.status {
        InstanceStatus::Inactive | InstanceStatus::Deregistering => {
            Err(Verdict::Suppressed(Suppression::InstanceGone(Some(instance.status))))
        }
        InstanceStatus::Draining => Err(Verdict::Suppressed(Suppression::Draining)),
        _ => Ok(instance),
    }
}

/// What a verdict is about: an incident's key and, when an event set off the look, that
/// event's signal (its version, time and facts). The sweep's looks at the state have no event.
#[derive(Debug, Clone, Copy)]
pub struct Case<'a> {
    pub key: &'a IncidentKey,
    pub event: Option<&'a Signal>,
}

impl<'a> Case<'a> {
    /// The container instance (or, for a deployment, the daemon) as the event names it, or the
    /// key's instance id: the look-ups read either.
    pub fn resource(&self) -> &'a str {
        self.event.map_or(self.key.instance.as_str(), |e| e.resource.as_str())
    }

    /// The ARN a finding names: the event's, or the one ECS describes now.
    pub fn arn_on(&self, instance: &'a ContainerInstance) -> &'a str {
        self.event.map_or(instance.arn.as_str(), |e| e.resource.as_str())
    }

    pub fn daemon(&self) -> Option<&'a str> {
        self.key.daemon.as_deref()
    }

    /// The event's `detail.version`; none without an event.
    pub fn version(&self) -> Option<i64> {
        self.event?.version
    }

    /// Since when, as the event says.
    pub fn since(&self) -> Option<&'a str> {
        self.event?.since.as_deref()
    }

    /// The EC2 id (or ECS Anywhere host id) the event gave.
    pub fn ec2_instance_id(&self) -> Option<&'a str> {
        self.event?.ec2_instance_id.as_deref()
    }

    /// What the event's kind read of it, when it is of type `T`.
    pub fn facts<T: std::any::Any>(&self) -> Option<&'a T> {
        self.event?.facts.get()
    }
}

/// What the look-ups found now, as a kind's verdict reads it: the stages fill it (the monitor's
/// from its batched look-ups, the sweep's from its survey), the kinds only ask.
pub trait Evidence {
    /// The container instance as ECS describes it now; `None` when its look-up failed.
    fn instance(&self, container_instance_arn: &str) -> Option<InstanceView<'_>>;

    /// What EC2 (`i-…`) or Systems Manager (`mi-…`) says of the host; `None` when its look-up
    /// failed.
    fn host(&self, id: &str) -> Option<Ec2View>;

    /// What the look-ups found of a daemon on a container instance; `None` when they failed.
    fn daemon(&self, container_instance_arn: &str, name: &str) -> Option<DaemonLook>;
}

/// A daemon on an instance, as the look-ups found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaemonLook {
    /// A RUNNING or PENDING task of the daemon is on the instance.
    pub running: bool,
    /// Whether a deployment of the daemon is under way; `None` when that look-up failed.
    pub deployment: Option<Deployment>,
    /// Whether the daemon is critical; `None`: unknown.
    pub critical: Option<bool>,
}

/// Whether a deployment of a daemon is in progress, as the Managed Daemons APIs tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    InProgress,
    NotInProgress,
    /// The APIs are unavailable (region, permission): decide from tasks and instance state.
    Unknown,
}

/// Of several events for the same resource in one batch, which one to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Check this one.
    Kept,
    /// The same version as a kept event: a duplicate delivery.
    Duplicate,
    /// An older version than a kept event.
    Stale,
}

/// Marks, for each `(resource, version)`, whether it is the newest event of its resource; the
/// first of equals is kept, and an event without a version counts as older than any with one.
pub fn repeats<K: Eq + std::hash::Hash>(events: &[(K, Option<i64>)]) -> Vec<Repeat> {
    use std::collections::HashMap;
    let mut newest: HashMap<&K, usize> = HashMap::new();
    for (index, (key, version)) in events.iter().enumerate() {
        let kept = newest.entry(key).or_insert(index);
        if *version > events[*kept].1 {
            *kept = index;
        }
    }
    events
        .iter()
        .enumerate()
        .map(|(index, (key, version))| {
            let kept = newest[key];
            if kept == index {
                Repeat::Kept
            } else if *version == events[kept].1 {
                Repeat::Duplicate
            } else {
                Repeat::Stale
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
