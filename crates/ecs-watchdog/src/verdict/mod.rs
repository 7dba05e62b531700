//! Verdicts: what an event means once the current state is known (DESIGN §2). Pure functions.

use crate::event::AgentDisconnected;
use crate::inventory::{
    ContainerInstance, Ec2State, InstanceStatus, InstanceView, PingStatus, is_ec2_instance_id, is_managed_node_id,
};

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

/// The host to check (an EC2 instance `i-…` or an ECS Anywhere node `mi-…`), if the ECS state
/// alone would confirm the disconnect.
pub fn agent_host_check<'a>(event: &'a AgentDisconnected, ecs: InstanceView<'a>) -> Option<&'a str> {
    let decided = decide_agent(event, ecs, Ec2View::NotChecked);
    if decided != Verdict::Confirmed {
        return None;
    }
    let id = match ecs {
        InstanceView::Found(instance) => instance.ec2_instance_id.as_deref(),
        _ => None,
    }
    .or(event.ec2_instance_id.as_deref())?;
    (is_ec2_instance_id(id) || is_managed_node_id(id)).then_some(id)
}

/// Decides an agent-disconnected event against the current state.
pub fn decide_agent(event: &AgentDisconnected, ecs: InstanceView<'_>, ec2: Ec2View) -> Verdict {
    let instance = match in_service(ecs) {
        Ok(instance) => instance,
        Err(verdict) => return verdict,
    };
    if instance.agent_connected {
        return Verdict::Recovered;
    }
    if let Some(event_version) = event.version
        && instance.version > event_version
    {
        return Verdict::Superseded {
            event_version,
            current_version: instance.version,
        };
    }
    match ec2 {
        Ec2View::NotChecked => Verdict::Confirmed,
        Ec2View::State(Ec2State::Running) => Verdict::Confirmed,
        Ec2View::State(state) => Verdict::Suppressed(Suppression::InstanceNotRunning(Some(state))),
        Ec2View::NotFound => Verdict::Suppressed(Suppression::InstanceNotRunning(None)),
        Ec2View::Host(PingStatus::Online) | Ec2View::HostNotRegistered => Verdict::Confirmed,
        Ec2View::Host(status) => Verdict::Suppressed(Suppression::HostOffline(status)),
    }
}

/// Decides an instance reported IMPAIRED against its current state and health: gone and
/// DRAINING as for an agent; healthy again (`OK`) is recovered; still IMPAIRED, or a health ECS
/// did not report or that is not yet known, confirms what the event said.
pub fn decide_impaired(ecs: InstanceView<'_>) -> Verdict {
    match in_service(ecs) {
        Err(verdict) => verdict,
        Ok(instance) if instance.health.as_ref().is_some_and(|h| h.overall == "OK") => Verdict::Recovered,
        Ok(_) => Verdict::Confirmed,
    }
}

/// The instance when it is still in service (registering or ACTIVE); otherwise the verdict its
/// state gives any instance signal: gone (cluster, MISSING, INACTIVE, DEREGISTERING) or DRAINING.
fn in_service(ecs: InstanceView<'_>) -> Result<&ContainerInstance, Verdict> {
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

/// Whether a deployment of a daemon is in progress, as the Managed Daemons APIs tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    InProgress,
    NotInProgress,
    /// The APIs are unavailable (region, permission): decide from tasks and instance state.
    Unknown,
}

/// The verdict the instance's state alone gives a lost daemon: ECS drains and replaces an
/// instance whose critical daemon stopped, so a gone or draining instance is being repaired.
pub fn daemon_repairing(ecs: InstanceView<'_>) -> Option<Verdict> {
    let status = match ecs {
        InstanceView::ClusterGone | InstanceView::Missing => None,
        InstanceView::Found(instance) => match instance.status {
            InstanceStatus::Draining | InstanceStatus::Deregistering | InstanceStatus::Inactive => {
                Some(instance.status)
            }
            _ => return None,
        },
    };
    Some(Verdict::Suppressed(Suppression::Repairing(status)))
}

/// Decides a lost daemon: `replaced` says whether a RUNNING or PENDING task of the same daemon
/// is on the instance now.
pub fn decide_daemon(ecs: InstanceView<'_>, replaced: bool, deployment: Deployment) -> Verdict {
    if let Some(repairing) = daemon_repairing(ecs) {
        return repairing;
    }
    match (replaced, deployment) {
        (true, _) => Verdict::Recovered,
        (false, Deployment::InProgress) => Verdict::Suppressed(Suppression::Deploying),
        (false, _) => Verdict::Confirmed,
    }
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
