//! Verdicts: what an event means once the current state is known (DESIGN §2). Pure functions.

use crate::event::AgentDisconnected;
use crate::inventory::{InstanceView, is_ec2_instance_id};

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
    /// The container instance is MISSING, INACTIVE or DEREGISTERING.
    InstanceGone(String),
    /// Someone is already draining it.
    Draining,
    /// The EC2 instance is stopping, stopped, shutting down, terminated or gone: the cause is
    /// the instance, not the agent.
    InstanceNotRunning(String),
    /// The instance of a lost daemon is gone, DRAINING or DEREGISTERING: ECS is replacing it.
    Repairing(String),
    /// A deployment of the daemon is in progress; it drains and replaces instances on purpose.
    Deploying,
}

impl std::fmt::Display for Suppression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Suppression::ClusterGone => f.write_str("the cluster no longer exists"),
            Suppression::InstanceGone(status) => write!(f, "the container instance is {status}"),
            Suppression::Draining => f.write_str("the container instance is DRAINING"),
            Suppression::InstanceNotRunning(state) => write!(f, "the EC2 instance is {state}"),
            Suppression::Repairing(state) => write!(f, "ECS is replacing the instance ({state})"),
            Suppression::Deploying => f.write_str("a deployment of the daemon is in progress"),
        }
    }
}

/// What `DescribeInstances` said about the instance behind a container instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ec2View<'a> {
    /// No EC2 check applies (ECS Anywhere, or no id) or none was needed.
    NotChecked,
    State(&'a str),
    /// `DescribeInstances` no longer knows the id.
    NotFound,
}

/// The EC2 instance id to check, if the ECS state alone would confirm the disconnect.
pub fn agent_ec2_check<'a>(event: &'a AgentDisconnected, ecs: InstanceView<'a>) -> Option<&'a str> {
    let decided = decide_agent(event, ecs, Ec2View::NotChecked);
    if decided != Verdict::Confirmed {
        return None;
    }
    let id = match ecs {
        InstanceView::Found(instance) => instance.ec2_instance_id.as_deref(),
        _ => None,
    }
    .or(event.ec2_instance_id.as_deref())?;
    is_ec2_instance_id(id).then_some(id)
}

/// Decides an agent-disconnected event against the current state.
pub fn decide_agent(event: &AgentDisconnected, ecs: InstanceView<'_>, ec2: Ec2View<'_>) -> Verdict {
    let instance = match ecs {
        InstanceView::ClusterGone => return Verdict::Suppressed(Suppression::ClusterGone),
        InstanceView::Missing => return Verdict::Suppressed(Suppression::InstanceGone("MISSING".into())),
        InstanceView::Found(instance) => instance,
    };
    match instance.status.as_str() {
        "INACTIVE" | "DEREGISTERING" => {
            return Verdict::Suppressed(Suppression::InstanceGone(instance.status.clone()));
        }
        "DRAINING" => return Verdict::Suppressed(Suppression::Draining),
        _ => {}
    }
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
        Ec2View::State("running") => Verdict::Confirmed,
        Ec2View::State(state) => Verdict::Suppressed(Suppression::InstanceNotRunning(state.to_owned())),
        Ec2View::NotFound => Verdict::Suppressed(Suppression::InstanceNotRunning("gone".into())),
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
    let state = match ecs {
        InstanceView::ClusterGone => "cluster gone".to_owned(),
        InstanceView::Missing => "MISSING".to_owned(),
        InstanceView::Found(instance) => match instance.status.as_str() {
            "DRAINING" | "DEREGISTERING" | "INACTIVE" => instance.status.clone(),
            _ => return None,
        },
    };
    Some(Verdict::Suppressed(Suppression::Repairing(state)))
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
mod tests {
    use super::*;
    use crate::inventory::ContainerInstance;

    fn event(version: Option<i64>, ec2: Option<&str>) -> AgentDisconnected {
        AgentDisconnected {
            cluster_arn: "arn:aws:ecs:eu-west-1:1:cluster/prod".into(),
            container_instance_arn: "arn:aws:ecs:eu-west-1:1:container-instance/prod/a".into(),
            ec2_instance_id: ec2.map(str::to_owned),
            version,
            since: None,
        }
    }

    fn instance(status: &str, connected: bool, version: i64, ec2: Option<&str>) -> ContainerInstance {
        ContainerInstance {
            arn: "arn:aws:ecs:eu-west-1:1:container-instance/prod/a".into(),
            status: status.into(),
            agent_connected: connected,
            version,
            ec2_instance_id: ec2.map(str::to_owned),
            running_tasks_count: 2,
            agent_version: Some("1.90.0".into()),
            availability_zone: Some("eu-west-1a".into()),
        }
    }

    #[test]
    fn when_the_current_state_is_known_then_the_agent_verdict_follows_design() {
        use Verdict::*;
        let active = instance("ACTIVE", false, 5, Some("i-1"));
        let cases: Vec<(&str, InstanceView<'_>, Ec2View<'_>, Verdict)> = vec![
            (
                "cluster deleted",
                InstanceView::ClusterGone,
                Ec2View::NotChecked,
                Suppressed(Suppression::ClusterGone),
            ),
            (
                "instance missing",
                InstanceView::Missing,
                Ec2View::NotChecked,
                Suppressed(Suppression::InstanceGone("MISSING".into())),
            ),
            (
                "still disconnected, instance running",
                InstanceView::Found(&active),
                Ec2View::State("running"),
                Confirmed,
            ),
            (
                "EC2 stopped",
                InstanceView::Found(&active),
                Ec2View::State("stopped"),
                Suppressed(Suppression::InstanceNotRunning("stopped".into())),
            ),
            (
                "EC2 stopping",
                InstanceView::Found(&active),
                Ec2View::State("stopping"),
                Suppressed(Suppression::InstanceNotRunning("stopping".into())),
            ),
            (
                "EC2 shutting down",
                InstanceView::Found(&active),
                Ec2View::State("shutting-down"),
                Suppressed(Suppression::InstanceNotRunning("shutting-down".into())),
            ),
            (
                "EC2 terminated",
                InstanceView::Found(&active),
                Ec2View::State("terminated"),
                Suppressed(Suppression::InstanceNotRunning("terminated".into())),
            ),
            (
                "EC2 instance unknown",
                InstanceView::Found(&active),
                Ec2View::NotFound,
                Suppressed(Suppression::InstanceNotRunning("gone".into())),
            ),
            (
                "ECS Anywhere, no EC2 check",
                InstanceView::Found(&active),
                Ec2View::NotChecked,
                Confirmed,
            ),
        ];
        for (name, ecs, ec2, expected) in cases {
            assert_eq!(decide_agent(&event(Some(5), Some("i-1")), ecs, ec2), expected, "{name}");
        }
        let by_status = [
            ("INACTIVE", Suppressed(Suppression::InstanceGone("INACTIVE".into()))),
            (
                "DEREGISTERING",
                Suppressed(Suppression::InstanceGone("DEREGISTERING".into())),
            ),
            ("DRAINING", Suppressed(Suppression::Draining)),
        ];
        for (status, expected) in by_status {
            let current = instance(status, false, 5, Some("i-1"));
            assert_eq!(
                decide_agent(
                    &event(Some(5), None),
                    InstanceView::Found(&current),
                    Ec2View::NotChecked
                ),
                expected,
                "{status}"
            );
        }
    }

    #[test]
    fn when_a_daemon_is_lost_then_the_verdict_follows_design() {
        use Verdict::*;
        let active = instance("ACTIVE", true, 5, Some("i-1"));
        let draining = instance("DRAINING", true, 5, Some("i-1"));
        let deregistering = instance("DEREGISTERING", true, 5, Some("i-1"));
        let repairing = |s: &str| Suppressed(Suppression::Repairing(s.into()));
        let cases: Vec<(&str, InstanceView<'_>, bool, Deployment, Verdict)> = vec![
            (
                "instance draining",
                InstanceView::Found(&draining),
                false,
                Deployment::NotInProgress,
                repairing("DRAINING"),
            ),
            (
                "instance deregistering",
                InstanceView::Found(&deregistering),
                false,
                Deployment::InProgress,
                repairing("DEREGISTERING"),
            ),
            (
                "instance gone",
                InstanceView::Missing,
                false,
                Deployment::NotInProgress,
                repairing("MISSING"),
            ),
            (
                "cluster gone",
                InstanceView::ClusterGone,
                false,
                Deployment::Unknown,
                repairing("cluster gone"),
            ),
            (
                "replacement running",
                InstanceView::Found(&active),
                true,
                Deployment::NotInProgress,
                Recovered,
            ),
            (
                "replacement running during a deployment",
                InstanceView::Found(&active),
                true,
                Deployment::InProgress,
                Recovered,
            ),
            (
                "deployment in progress",
                InstanceView::Found(&active),
                false,
                Deployment::InProgress,
                Suppressed(Suppression::Deploying),
            ),
            (
                "nothing replaces it",
                InstanceView::Found(&active),
                false,
                Deployment::NotInProgress,
                Confirmed,
            ),
            (
                "daemon APIs unavailable",
                InstanceView::Found(&active),
                false,
                Deployment::Unknown,
                Confirmed,
            ),
        ];
        for (name, ecs, replaced, deployment, expected) in cases {
            assert_eq!(decide_daemon(ecs, replaced, deployment), expected, "{name}");
        }
        assert_eq!(daemon_repairing(InstanceView::Found(&active)), None);
    }

    #[test]
    fn when_the_agent_reconnected_then_it_is_recovered_whatever_the_version() {
        let current = instance("ACTIVE", true, 9, Some("i-1"));
        assert_eq!(
            decide_agent(
                &event(Some(5), None),
                InstanceView::Found(&current),
                Ec2View::NotChecked
            ),
            Verdict::Recovered
        );
    }

    #[test]
    fn when_a_newer_change_exists_then_the_event_is_superseded() {
        let current = instance("ACTIVE", false, 9, Some("i-1"));
        assert_eq!(
            decide_agent(
                &event(Some(5), None),
                InstanceView::Found(&current),
                Ec2View::State("running")
            ),
            Verdict::Superseded {
                event_version: 5,
                current_version: 9
            }
        );
        assert_eq!(
            decide_agent(
                &event(None, None),
                InstanceView::Found(&current),
                Ec2View::State("running")
            ),
            Verdict::Confirmed
        );
        assert_eq!(
            decide_agent(
                &event(Some(12), None),
                InstanceView::Found(&current),
                Ec2View::State("running")
            ),
            Verdict::Confirmed,
            "describe lagging behind the event"
        );
    }

    #[test]
    fn when_ecs_alone_would_confirm_then_only_ec2_ids_are_checked() {
        let on_ec2 = instance("ACTIVE", false, 5, Some("i-1"));
        let anywhere = instance("ACTIVE", false, 5, Some("mi-1"));
        let unknown_id = instance("ACTIVE", false, 5, None);
        let draining = instance("DRAINING", false, 5, Some("i-1"));
        assert_eq!(
            agent_ec2_check(&event(Some(5), None), InstanceView::Found(&on_ec2)),
            Some("i-1")
        );
        assert_eq!(
            agent_ec2_check(&event(Some(5), None), InstanceView::Found(&anywhere)),
            None
        );
        assert_eq!(
            agent_ec2_check(&event(Some(5), Some("i-2")), InstanceView::Found(&unknown_id)),
            Some("i-2"),
            "falls back to the event's id"
        );
        assert_eq!(
            agent_ec2_check(&event(Some(5), None), InstanceView::Found(&draining)),
            None
        );
        assert_eq!(
            agent_ec2_check(&event(Some(5), Some("i-1")), InstanceView::Missing),
            None
        );
    }

    #[test]
    fn when_a_resource_repeats_in_a_batch_then_only_its_newest_event_is_kept() {
        let events = [
            ("a", Some(3)),
            ("a", Some(3)),
            ("b", Some(1)),
            ("b", Some(2)),
            ("c", None),
            ("c", None),
            ("a", Some(2)),
        ];
        assert_eq!(
            repeats(&events),
            vec![
                Repeat::Kept,
                Repeat::Duplicate,
                Repeat::Stale,
                Repeat::Kept,
                Repeat::Kept,
                Repeat::Duplicate,
                Repeat::Stale
            ]
        );
    }
}
