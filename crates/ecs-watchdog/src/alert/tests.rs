//! The alert's text and JSON, as people and machines read them.
use super::*;
use crate::event::ContainerExit;
use crate::finding::EMAIL_LISTED;
use serde_json::Value;

fn instance(n: usize) -> InstanceFinding {
    InstanceFinding {
        container_instance_arn: format!("arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/{n:032}"),
        ec2_instance_id: Some(format!("i-{n:017}")),
        availability_zone: Some("eu-west-1a".into()),
        since: Some("2026-11-21T09:58:00Z".into()),
        running_tasks_count: 3,
        agent_version: Some("1.90.0".into()),
        ..Default::default()
    }
}

fn stopped(n: usize, daemon: &str) -> InstanceFinding {
    InstanceFinding {
        agent_version: None,
        daemon_name: Some(daemon.into()),
        task_arn: Some(format!("arn:aws:ecs:eu-west-1:123456789012:task/prod/{n}")),
        stop_code: Some("EssentialContainerExited".into()),
        stopped_reason: Some("Essential container in task exited".into()),
        containers: vec![ContainerExit {
            name: "fluent-bit".into(),
            exit_code: Some(139),
            reason: None,
        }],
        ..instance(n)
    }
}

/// What SNS counts for a publish of the alert: the message as sent with this chat format, the
/// subject, and each attribute's name, data type and value (the frame's own measure aside).
fn sns_bytes(alert: &Alert, chat: ChatFormat) -> usize {
    let attributes: usize = alert
        .attributes()
        .into_iter()
        .map(|(name, value)| name.len() + "String".len() + value.len())
        .sum();
    alert.subject.len() + alert.message(chat).len() + attributes
}

const CLUSTER: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/prod";

fn place() -> Place {
    Place::new("123456789012", "eu-west-1")
}
const CHECKED: DaemonChecks = DaemonChecks { deployments: true };
const ACTION: &str = "alerted only: remediation is off";

#[test]
fn when_one_instance_is_confirmed_then_the_alert_says_what_where_and_what_next() {
    let alert = alert(
        AlertKind::AgentDisconnected,
        &place(),
        CLUSTER,
        vec![instance(1)],
        CHECKED,
        ACTION,
        Facts::at(0),
    );
    assert_eq!(
        alert.subject,
        "ECS agent disconnected on 1 instance in prod (123456789012, eu-west-1)"
    );
    assert_eq!(
        (
            alert.kind.as_str(),
            alert.severity.as_str(),
            alert.cluster_name.as_str()
        ),
        ("agent-disconnected", "high", "prod")
    );
    for needle in [
        "i-00000000000000001",
        "eu-west-1a",
        "since 2026-11-21T09:58:00Z",
        "What the monitor checked",
        "What it did",
        "What to do next",
        "systemctl restart ecs",
    ] {
        assert!(alert.email.contains(needle), "email lacks {needle:?}:\n{}", alert.email);
    }
    let message: Value = serde_json::from_str(&alert.message(ChatFormat::Plain)).unwrap();
    assert_eq!(message["email"], alert.email);
    let finding: Value = serde_json::from_str(message["default"].as_str().unwrap()).unwrap();
    assert_eq!(finding["kind"], "agent-disconnected");
    assert_eq!(finding["clusterName"], "prod");
    assert_eq!(finding["instances"][0]["ec2InstanceId"], "i-00000000000000001");
    assert!(finding.get("omitted").is_none());
    assert!(finding["instances"][0].get("daemonName").is_none());
}

#[test]
fn when_daemons_are_lost_then_the_alert_groups_them_by_daemon_with_their_causes() {
    let impaired = InstanceFinding {
        daemon_name: Some("security-agent".into()),
        failure_type: Some("TASK_CREATION_FAILED".into()),
        reason: Some("RESOURCE:CPU - insufficient CPU".into()),
        agent_version: None,
        ..instance(4)
    };
    let alert = alert(
        AlertKind::DaemonLost,
        &place(),
        CLUSTER,
        vec![impaired, stopped(3, "log-router")],
        CHECKED,
        ACTION,
        Facts::at(0),
    );
    assert_eq!(
        alert.subject,
        "ECS daemons lost on 2 instances in prod (123456789012, eu-west-1)"
    );
    assert_eq!(alert.kind.as_str(), "daemon-lost");
    let log_router = alert.email.find("Daemon log-router (1 instance)").expect(&alert.email);
    let security = alert
        .email
        .find("Daemon security-agent (1 instance)")
        .expect(&alert.email);
    assert!(log_router < security, "daemons listed by name");
    for needle in [
        "EssentialContainerExited (Essential container in task exited); fluent-bit exit code 139",
        "could not start (TASK_CREATION_FAILED)",
        "insufficient CPU",
        "no deployment of the daemon in progress",
    ] {
        assert!(alert.email.contains(needle), "email lacks {needle:?}:\n{}", alert.email);
    }
    let finding: Value = serde_json::from_str(&alert.default).unwrap();
    assert_eq!(finding["instances"][0]["daemonName"], "log-router");
    assert_eq!(finding["instances"][0]["containers"][0]["exitCode"], 139);
    assert_eq!(finding["instances"][1]["failureType"], "TASK_CREATION_FAILED");
}

#[test]
fn when_one_daemon_is_lost_and_deployments_unknown_then_the_subject_names_it_and_the_text_says_so() {
    let alert = alert(
        AlertKind::DaemonLost,
        &place(),
        CLUSTER,
        vec![stopped(3, "log-router")],
        DaemonChecks { deployments: false },
        ACTION,
        Facts::at(0),
    );
    assert_eq!(
        alert.subject,
        "ECS daemon log-router lost on 1 instance in prod (123456789012, eu-west-1)"
    );
    assert!(alert.email.contains("could not be ruled out"), "{}", alert.email);
}

#[test]
fn when_a_zone_fails_then_one_alert_stays_within_sns_limits() {
    let alert = alert(
        AlertKind::AgentDisconnected,
        &place(),
        CLUSTER,
        (0..5000).map(instance).collect(),
        CHECKED,
        ACTION,
        Facts::at(0),
    );
    assert_eq!(
        alert.subject,
        "ECS agent disconnected on 5000 instances in prod (123456789012, eu-west-1)"
    );
    for chat in [ChatFormat::Plain, ChatFormat::Chatbot] {
        let bytes = sns_bytes(&alert, chat);
        assert!(bytes <= SNS_MAX_BYTES, "{chat:?}: {bytes} bytes");
    }
    let finding: Value = serde_json::from_str(&alert.default).unwrap();
    let listed = finding["instances"].as_array().unwrap().len();
    assert_eq!(listed + finding["omitted"].as_u64().unwrap() as usize, 5000);
    assert!(alert.email.contains(&format!("and {} more", 5000 - EMAIL_LISTED)));
}

/// Issue 21, case 3: on the old main this notice was 264,761 bytes, SNS refused it, and the
/// incidents reopened at every sweep.
#[test]
fn when_1000_instances_with_real_arns_recover_then_one_resolved_notice_fits_sns_and_counts_the_rest() {
    let closed: Vec<_> = (0..1_000)
        .map(|n| {
            let finding = InstanceFinding {
                container_instance_arn: format!(
                    "arn:aws:ecs:ap-southeast-2:123456789012:container-instance/payments-production-blue/{n:032x}"
                ),
                ec2_instance_id: Some(format!("i-{n:017x}")),
                ..Default::default()
            };
            (finding, "recovered: the agent reconnected".to_owned(), 1_500)
        })
        .collect();
    let notice = resolved(
        AlertKind::AgentDisconnected,
        &Place::new("123456789012", "ap-southeast-2"),
        "arn:aws:ecs:ap-southeast-2:123456789012:cluster/payments-production-blue",
        closed,
    );
    for chat in [ChatFormat::Plain, ChatFormat::Chatbot] {
        let bytes = sns_bytes(&notice, chat);
        assert!(bytes <= SNS_MAX_BYTES, "{chat:?}: {bytes} bytes");
    }
    let json: Value = serde_json::from_str(&notice.default).unwrap();
    let listed = json["instances"].as_array().unwrap().len();
    assert_eq!(
        listed + json.get("omitted").and_then(Value::as_u64).unwrap_or(0) as usize,
        1_000
    );
}

#[test]
fn when_names_are_long_then_the_subject_stays_under_100_characters() {
    let long = format!("arn:aws:ecs:eu-west-1:1:cluster/{}", "c".repeat(255));
    let agent = alert(
        AlertKind::AgentDisconnected,
        &Place::new("123456789012", "ap-southeast-2"),
        &long,
        vec![instance(1)],
        CHECKED,
        ACTION,
        Facts::at(0),
    );
    assert!(agent.subject.chars().count() < 100, "{}", agent.subject);
    // One word of 255 characters: left out whole, never cut inside.
    assert_eq!(
        agent.subject,
        "ECS agent disconnected on 1 instance in … (123456789012, ap-southeast-2)"
    );
    let daemon = alert(
        AlertKind::DaemonLost,
        &Place::new("123456789012", "ap-southeast-2"),
        &long,
        vec![stopped(1, &"d".repeat(255))],
        CHECKED,
        ACTION,
        Facts::at(0),
    );
    assert!(daemon.subject.chars().count() < 100, "{}", daemon.subject);
}

/// Rendered once: for 5,000 instances each instance is rendered as JSON at most once (and only
/// a few past those that fit), as e-mail lines at most once (only the e-mail's first 50), and
/// the message is assembled once. Before, the whole alert was rendered six times (3,352 instances
/// serialised for 598 listed).
#[test]
fn when_5000_instances_are_confirmed_then_each_is_rendered_at_most_once_and_the_message_once() {
    for (kind, instances) in [
        (
            AlertKind::AgentDisconnected,
            (0..5000).map(instance).collect::<Vec<_>>(),
        ),
        (
            AlertKind::DaemonLost,
            (0..5000).map(|n| stopped(n, "log-router")).collect(),
        ),
    ] {
        frame::RENDERED.with(|r| r.set((0, 0, 0)));
        let sent = alert(kind, &place(), CLUSTER, instances, CHECKED, ACTION, Facts::at(0));
        let (json, lines, assembled) = frame::RENDERED.with(|r| r.get());
        let finding: Value = serde_json::from_str(&sent.default).unwrap();
        let listed = finding["instances"].as_array().unwrap().len();
        assert!(listed > EMAIL_LISTED && listed < 5000, "{kind:?}: {listed}");
        assert!(
            json > listed && json <= listed + 3,
            "{kind:?}: {json} rendered, {listed} listed"
        );
        assert_eq!((lines, assembled), (EMAIL_LISTED, 1), "{kind:?}");
        println!(
            "{kind:?}: {listed} listed of 5000; {json} instances rendered as JSON, {lines} as e-mail lines, {assembled} message"
        );
    }
}
