//! The kinds' verdicts (DESIGN §2) over the current state.

use super::agent_disconnected::verdict::{decide_agent, host_to_check as agent_host_check};
use super::daemon_lost::verdict::{daemon_repairing, decide_daemon};
use super::instance_impaired::decide_impaired;
use crate::event::Signal;
use crate::inventory::{ContainerInstance, Ec2State, InstanceStatus, InstanceView, PingStatus};
use crate::kind::AlertKind;
use crate::verdict::{Deployment, Ec2View, Suppression, Verdict};

fn event(version: Option<i64>, ec2: Option<&str>) -> Signal {
    Signal {
        ec2_instance_id: ec2.map(str::to_owned),
        version,
        ..Signal::new(
            AlertKind::AgentDisconnected,
            "arn:aws:ecs:eu-west-1:1:cluster/prod",
            "arn:aws:ecs:eu-west-1:1:container-instance/prod/a",
        )
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
        capacity_provider_name: None,
        health: None,
        tags: Vec::new(),
    }
}

#[test]
fn when_the_current_state_is_known_then_the_agent_verdict_follows_design() {
    use Verdict::*;
    let active = instance("ACTIVE", false, 5, Some("i-1"));
    let cases: Vec<(&str, InstanceView<'_>, Ec2View, Verdict)> = vec![
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
            Suppressed(Suppression::InstanceGone(None)),
        ),
        (
            "still disconnected, instance running",
            InstanceView::Found(&active),
            Ec2View::State(Ec2State::parse("running")),
            Confirmed,
        ),
        (
            "EC2 stopped",
            InstanceView::Found(&active),
            Ec2View::State(Ec2State::parse("stopped")),
            Suppressed(Suppression::InstanceNotRunning(Some(Ec2State::parse("stopped")))),
        ),
        (
            "EC2 stopping",
            InstanceView::Found(&active),
            Ec2View::State(Ec2State::parse("stopping")),
            Suppressed(Suppression::InstanceNotRunning(Some(Ec2State::parse("stopping")))),
        ),
        (
            "EC2 shutting down",
            InstanceView::Found(&active),
            Ec2View::State(Ec2State::parse("shutting-down")),
            Suppressed(Suppression::InstanceNotRunning(Some(Ec2State::parse("shutting-down")))),
        ),
        (
            "EC2 terminated",
            InstanceView::Found(&active),
            Ec2View::State(Ec2State::parse("terminated")),
            Suppressed(Suppression::InstanceNotRunning(Some(Ec2State::parse("terminated")))),
        ),
        (
            "EC2 instance unknown",
            InstanceView::Found(&active),
            Ec2View::NotFound,
            Suppressed(Suppression::InstanceNotRunning(None)),
        ),
        (
            "ECS Anywhere, no EC2 check",
            InstanceView::Found(&active),
            Ec2View::NotChecked,
            Confirmed,
        ),
    ];
    for (name, ecs, ec2, expected) in cases {
        assert_eq!(
            decide_agent(Some(&event(Some(5), Some("i-1"))), ecs, ec2),
            expected,
            "{name}"
        );
    }
    let by_status = [
        (
            "INACTIVE",
            Suppressed(Suppression::InstanceGone(Some(InstanceStatus::parse("INACTIVE")))),
        ),
        (
            "DEREGISTERING",
            Suppressed(Suppression::InstanceGone(Some(InstanceStatus::parse("DEREGISTERING")))),
        ),
        ("DRAINING", Suppressed(Suppression::Draining)),
    ];
    for (status, expected) in by_status {
        let current = instance(status, false, 5, Some("i-1"));
        assert_eq!(
            decide_agent(
                Some(&event(Some(5), None)),
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
    let repairing = |s: &str| Suppressed(Suppression::Repairing(Some(InstanceStatus::parse(s))));
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
            Suppressed(Suppression::Repairing(None)),
        ),
        (
            "cluster gone",
            InstanceView::ClusterGone,
            false,
            Deployment::Unknown,
            Suppressed(Suppression::Repairing(None)),
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
            Some(&event(Some(5), None)),
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
            Some(&event(Some(5), None)),
            InstanceView::Found(&current),
            Ec2View::State(Ec2State::parse("running"))
        ),
        Verdict::Superseded {
            event_version: 5,
            current_version: 9
        }
    );
    assert_eq!(
        decide_agent(
            Some(&event(None, None)),
            InstanceView::Found(&current),
            Ec2View::State(Ec2State::parse("running"))
        ),
        Verdict::Confirmed
    );
    assert_eq!(
        decide_agent(
            Some(&event(Some(12), None)),
            InstanceView::Found(&current),
            Ec2View::State(Ec2State::parse("running"))
        ),
        Verdict::Confirmed,
        "describe lagging behind the event"
    );
}

#[test]
fn when_ecs_alone_would_confirm_then_the_host_is_checked() {
    let on_ec2 = instance("ACTIVE", false, 5, Some("i-1"));
    let anywhere = instance("ACTIVE", false, 5, Some("mi-1"));
    let unknown_id = instance("ACTIVE", false, 5, None);
    let draining = instance("DRAINING", false, 5, Some("i-1"));
    assert_eq!(
        agent_host_check(Some(&event(Some(5), None)), InstanceView::Found(&on_ec2)),
        Some("i-1")
    );
    assert_eq!(
        agent_host_check(Some(&event(Some(5), None)), InstanceView::Found(&anywhere)),
        Some("mi-1"),
        "an ECS Anywhere host is checked in Systems Manager"
    );
    assert_eq!(
        agent_host_check(Some(&event(Some(5), Some("i-2"))), InstanceView::Found(&unknown_id)),
        Some("i-2"),
        "falls back to the event's id"
    );
    assert_eq!(
        agent_host_check(Some(&event(Some(5), None)), InstanceView::Found(&draining)),
        None
    );
    assert_eq!(
        agent_host_check(Some(&event(Some(5), Some("i-1"))), InstanceView::Missing),
        None
    );
}

#[test]
fn when_an_impaired_instance_is_rechecked_then_its_health_decides() {
    use crate::inventory::InstanceHealth;
    let health = |overall: &str| {
        let mut i = instance("ACTIVE", true, 5, Some("i-1"));
        i.health = Some(InstanceHealth {
            overall: overall.into(),
            failing: Vec::new(),
        });
        i
    };
    let (ok, impaired, initializing) = (health("OK"), health("IMPAIRED"), health("INITIALIZING"));
    let unreported = instance("ACTIVE", true, 5, Some("i-1"));
    let draining = instance("DRAINING", true, 5, Some("i-1"));
    let inactive = instance("INACTIVE", true, 5, Some("i-1"));
    let cases = [
        ("healthy again", InstanceView::Found(&ok), Verdict::Recovered),
        ("still impaired", InstanceView::Found(&impaired), Verdict::Confirmed),
        ("not yet known", InstanceView::Found(&initializing), Verdict::Confirmed),
        (
            "no health reported",
            InstanceView::Found(&unreported),
            Verdict::Confirmed,
        ),
        (
            "draining",
            InstanceView::Found(&draining),
            Verdict::Suppressed(Suppression::Draining),
        ),
        (
            "deregistered",
            InstanceView::Found(&inactive),
            Verdict::Suppressed(Suppression::InstanceGone(Some(InstanceStatus::Inactive))),
        ),
        (
            "missing",
            InstanceView::Missing,
            Verdict::Suppressed(Suppression::InstanceGone(None)),
        ),
        (
            "cluster gone",
            InstanceView::ClusterGone,
            Verdict::Suppressed(Suppression::ClusterGone),
        ),
    ];
    for (name, view, expected) in cases {
        assert_eq!(decide_impaired(view), expected, "{name}");
    }
}

#[test]
fn when_an_ecs_anywhere_host_is_checked_then_only_an_online_one_confirms_the_agent() {
    let anywhere = instance("ACTIVE", false, 5, Some("mi-1"));
    let found = InstanceView::Found(&anywhere);
    let decide = |view| decide_agent(Some(&event(Some(5), None)), found, view);
    assert_eq!(decide(Ec2View::Host(PingStatus::Online)), Verdict::Confirmed);
    assert_eq!(
        decide(Ec2View::HostNotRegistered),
        Verdict::Confirmed,
        "not checked: as today"
    );
    for status in [PingStatus::ConnectionLost, PingStatus::Inactive] {
        assert_eq!(
            decide(Ec2View::Host(status)),
            Verdict::Suppressed(Suppression::HostOffline(status))
        );
    }
}
