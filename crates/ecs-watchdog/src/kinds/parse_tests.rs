//! Each kind's parser, reached as the queue's bodies reach it: through [`parse`].

use serde_json::{Value, json};

use super::agent_disconnected::CONTAINER_INSTANCE_STATE_CHANGE;
use super::daemon_deployment_failed::DaemonDeployment;
use super::daemon_lost::event::{DaemonCause, DaemonLost};
use super::daemon_lost::{DAEMON_SERVICE_ACTION, TASK_STATE_CHANGE};
use super::instance_impaired::Failing;
use super::{KINDS, parse};
use crate::event::{ContainerExit, IgnoreReason, Parsed, RejectReason, Signal};
use crate::kind::AlertKind;

macro_rules! sample {
    ($file:literal) => {
        ($file, include_str!(concat!("../../../../events/", $file)))
    };
}

/// Every event sample in `events/`, with what it must parse to.
const EVENT_SAMPLES: [((&str, &str), &str); 16] = [
    (sample!("container-instance-agent-disconnected.json"), "agent"),
    (sample!("container-instance-agent-disconnected-duplicate.json"), "agent"),
    (sample!("container-instance-agent-disconnected-anywhere.json"), "agent"),
    (
        sample!("container-instance-agent-reconnected.json"),
        "ignored: the agent is connected",
    ),
    (sample!("task-daemon-stopped.json"), "daemon log-router"),
    (sample!("task-daemon-stopped-no-stop-code.json"), "daemon log-router"),
    (
        sample!("task-service-stopped.json"),
        "ignored: task group \"service:web\" is not a daemon",
    ),
    (
        sample!("daemon-start-impaired-failed-to-run.json"),
        "daemon security-agent",
    ),
    (
        sample!("daemon-start-impaired-creation-failed.json"),
        "daemon security-agent",
    ),
    (
        sample!("daemon-deployment-rollback-in-progress.json"),
        "deployment log-router DAEMON_DEPLOYMENT_ROLLBACK_IN_PROGRESS",
    ),
    (
        sample!("daemon-deployment-rollback-failed.json"),
        "deployment log-router DAEMON_DEPLOYMENT_ROLLBACK_FAILED",
    ),
    (
        sample!("daemon-deployment-successful.json"),
        "deployment log-router DAEMON_DEPLOYMENT_SUCCESSFUL",
    ),
    (
        sample!("daemon-deployment-pending.json"),
        "ignored: daemon action \"DAEMON_DEPLOYMENT_PENDING\" is not checked",
    ),
    (
        sample!("container-instance-health-impaired-daemon.json"),
        "impaired DAEMON",
    ),
    (
        sample!("container-instance-health-impaired-gpu.json"),
        "impaired ACCELERATED_COMPUTE",
    ),
    (
        sample!("container-instance-health-ok.json"),
        "ignored: the instance's health is OK, not IMPAIRED",
    ),
];

/// An `aws.ecs` event of `detail_type` around `detail`.
fn ecs_event(detail_type: &str, detail: Value) -> String {
    json!({
        "version": "0", "id": "8f07d6a8-0000-4d2c-9f53-5a4bd8e5f2ab", "detail-type": detail_type,
        "source": "aws.ecs", "account": "123456789012", "time": "2026-11-21T10:00:00Z",
        "region": "eu-west-1", "resources": [], "detail": detail
    })
    .to_string()
}

fn instance_event(detail: Value) -> String {
    ecs_event(CONTAINER_INSTANCE_STATE_CHANGE, detail)
}

fn task_event(detail: Value) -> String {
    ecs_event(TASK_STATE_CHANGE, detail)
}

fn daemon_action(detail: Value) -> String {
    ecs_event(DAEMON_SERVICE_ACTION, detail)
}

const CLUSTER: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/prod";

/// The daemon-lost signal a body parses to, with its facts.
fn daemon_lost(body: &str) -> (Signal, DaemonLost) {
    let Parsed::Signal(signal) = parse(body) else {
        panic!("expected a daemon signal")
    };
    assert_eq!(signal.kind, AlertKind::DaemonLost);
    let facts = signal.facts.get::<DaemonLost>().expect("a daemon's facts").clone();
    (signal, facts)
}
const INSTANCE: &str = "arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/0b4a";

#[test]
fn when_the_agent_is_disconnected_then_a_signal_carries_what_the_check_needs() {
    let body = instance_event(json!({
        "clusterArn": CLUSTER, "containerInstanceArn": INSTANCE, "ec2InstanceId": "i-0abc",
        "agentConnected": false, "status": "ACTIVE", "version": 7,
        "updatedAt": "2026-11-21T09:58:00.000Z", "someFieldFromTheFuture": {"x": 1}
    }));
    assert_eq!(
        parse(&body),
        Parsed::Signal(Signal {
            ec2_instance_id: Some("i-0abc".into()),
            version: Some(7),
            since: Some("2026-11-21T09:58:00.000Z".into()),
            ..Signal::new(AlertKind::AgentDisconnected, CLUSTER, INSTANCE)
        })
    );
}

#[test]
fn when_optional_fields_are_missing_or_odd_then_the_signal_still_parses() {
    let body = instance_event(json!({
        "clusterArn": CLUSTER, "containerInstanceArn": INSTANCE, "version": "seven"
    }));
    let Parsed::Signal(signal) = parse(&body) else {
        panic!("expected a signal")
    };
    assert_eq!(signal.version, None);
    assert_eq!(signal.ec2_instance_id, None);
    assert_eq!(
        signal.since.as_deref(),
        Some("2026-11-21T10:00:00Z"),
        "falls back to the event time"
    );
}

#[test]
fn when_the_body_is_unusable_then_it_is_rejected_with_a_reason() {
    let cases: Vec<(String, RejectReason)> = vec![
        ("not json at all".into(), RejectReason::NotJson(String::new())),
        ("[1,2,3]".into(), RejectReason::NotAnEvent),
        (json!({"detail": {}}).to_string(), RejectReason::NotAnEvent),
        (
            json!({"source": "aws.ec2", "detail-type": CONTAINER_INSTANCE_STATE_CHANGE, "detail": {}}).to_string(),
            RejectReason::UnexpectedSource("aws.ec2".into()),
        ),
        (
            instance_event(json!({"containerInstanceArn": INSTANCE})),
            RejectReason::MissingField("detail.clusterArn"),
        ),
        (
            instance_event(json!({"clusterArn": CLUSTER})),
            RejectReason::MissingField("detail.containerInstanceArn"),
        ),
        (
            instance_event(json!({"clusterArn": "", "containerInstanceArn": INSTANCE})),
            RejectReason::MissingField("detail.clusterArn"),
        ),
        (
            instance_event(Value::Null),
            RejectReason::MissingField("detail.clusterArn"),
        ),
    ];
    for (body, expected) in cases {
        match (parse(&body), &expected) {
            (Parsed::Rejected(RejectReason::NotJson(_)), RejectReason::NotJson(_)) => {}
            (parsed, _) => assert_eq!(parsed, Parsed::Rejected(expected.clone()), "{body}"),
        }
    }
}

#[test]
fn when_the_event_needs_no_check_then_it_is_ignored() {
    let connected =
        instance_event(json!({"clusterArn": CLUSTER, "containerInstanceArn": INSTANCE, "agentConnected": true}));
    assert_eq!(
        parse(&connected),
        Parsed::Ignored(IgnoreReason::NoProblem("the agent is connected".into()))
    );
    let other = json!({"source": "aws.ecs", "detail-type": "ECS Service Action", "detail": {}}).to_string();
    assert_eq!(
        parse(&other),
        Parsed::Ignored(IgnoreReason::UnhandledDetailType("ECS Service Action".into()))
    );
}

const TASK: &str = "arn:aws:ecs:eu-west-1:123456789012:task/prod/5d9c";
const DAEMON: &str = "arn:aws:ecs:eu-west-1:123456789012:daemon/prod/security-agent";

#[test]
fn when_a_daemon_task_stops_then_the_signal_keeps_code_reason_and_exit_codes() {
    let body = task_event(json!({
        "clusterArn": CLUSTER, "containerInstanceArn": INSTANCE, "taskArn": TASK,
        "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/log-router:7",
        "group": "daemon:log-router", "lastStatus": "STOPPED", "desiredStatus": "STOPPED", "version": 4,
        "stopCode": "EssentialContainerExited", "stoppedReason": "Essential container in task exited",
        "stoppedAt": "2026-11-21T10:04:58.123Z",
        "containers": [{"name": "fluent-bit", "exitCode": 139, "reason": "OutOfMemory"}, {"name": "sidecar"}]
    }));
    let (lost, facts) = daemon_lost(&body);
    assert_eq!(lost.daemon_name.as_deref(), Some("log-router"));
    assert_eq!(lost.version, Some(4));
    assert_eq!(lost.since.as_deref(), Some("2026-11-21T10:04:58.123Z"));
    assert_eq!(facts.task_arn.as_deref(), Some(TASK));
    assert_eq!(
        facts.cause,
        DaemonCause::Stopped {
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: Some("Essential container in task exited".into()),
            exits: vec![
                ContainerExit {
                    name: "fluent-bit".into(),
                    exit_code: Some(139),
                    reason: Some("OutOfMemory".into())
                },
                ContainerExit {
                    name: "sidecar".into(),
                    exit_code: None,
                    reason: None
                },
            ],
        }
    );
}

#[test]
fn when_a_daemon_task_stops_without_a_stop_code_then_it_still_parses() {
    let body = task_event(json!({
        "clusterArn": CLUSTER, "containerInstanceArn": INSTANCE, "group": "daemon:log-router", "lastStatus": "STOPPED"
    }));
    let (lost, facts) = daemon_lost(&body);
    assert_eq!(
        facts.cause,
        DaemonCause::Stopped {
            stop_code: None,
            stopped_reason: None,
            exits: vec![]
        }
    );
    assert_eq!(
        lost.since.as_deref(),
        Some("2026-11-21T10:00:00Z"),
        "falls back to the event time"
    );
    assert_eq!((facts.task_arn, lost.version), (None, None));
}

#[test]
fn when_a_task_event_is_not_about_a_daemon_on_an_instance_then_it_is_ignored() {
    let cases = [
        (
            json!({"clusterArn": CLUSTER, "containerInstanceArn": INSTANCE, "group": "service:web", "lastStatus": "STOPPED"}),
            "task group \"service:web\" is not a daemon",
        ),
        (
            json!({"clusterArn": CLUSTER, "containerInstanceArn": INSTANCE, "lastStatus": "STOPPED"}),
            "task group \"\" is not a daemon",
        ),
        (
            json!({"clusterArn": CLUSTER, "containerInstanceArn": INSTANCE, "group": "daemon:", "lastStatus": "STOPPED"}),
            "task group \"daemon:\" is not a daemon",
        ),
        (
            json!({"clusterArn": CLUSTER, "containerInstanceArn": INSTANCE, "group": "daemon:log-router", "lastStatus": "RUNNING"}),
            "the task is RUNNING, not STOPPED",
        ),
        (
            json!({"clusterArn": CLUSTER, "group": "daemon:log-router", "lastStatus": "STOPPED", "launchType": "FARGATE"}),
            "the task has no container instance (Fargate)",
        ),
    ];
    for (detail, reason) in cases {
        assert_eq!(
            parse(&task_event(detail.clone())),
            Parsed::Ignored(IgnoreReason::NoProblem(reason.into())),
            "{detail}"
        );
    }
    assert_eq!(
        parse(&task_event(json!({"group": "daemon:log-router"}))),
        Parsed::Rejected(RejectReason::MissingField("detail.clusterArn"))
    );
}

#[test]
fn when_a_daemon_cannot_start_then_the_signal_carries_the_failure_type() {
    let body = daemon_action(json!({
        "eventType": "WARNING", "eventName": "DAEMON_TASK_START_IMPAIRED", "clusterArn": CLUSTER,
        "containerInstanceArn": INSTANCE, "daemonArn": DAEMON, "capacityProviderName": "managed",
        "daemonTaskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:daemon-task-definition/security-agent-td:3",
        "failureType": "TASK_CREATION_FAILED", "createdAt": "2026-11-21T10:05:30.000Z",
        "reason": "RESOURCE:CPU - Unable to place daemon task on container instance: insufficient CPU"
    }));
    let (lost, facts) = daemon_lost(&body);
    assert_eq!(lost.daemon_name.as_deref(), Some("security-agent"));
    assert_eq!(lost.daemon_arn.as_deref(), Some(DAEMON));
    assert_eq!(facts.task_arn, None, "no task was created");
    assert_eq!(
        facts.cause,
        DaemonCause::StartImpaired {
            failure_type: Some("TASK_CREATION_FAILED".into()),
            reason: Some("RESOURCE:CPU - Unable to place daemon task on container instance: insufficient CPU".into()),
        }
    );
}

#[test]
fn when_a_daemon_action_is_other_or_incomplete_then_it_is_ignored_or_rejected() {
    let other = daemon_action(json!({"eventName": "DAEMON_DEPLOYMENT_STEADY", "clusterArn": CLUSTER}));
    assert_eq!(
        parse(&other),
        Parsed::Ignored(IgnoreReason::NoProblem(
            "daemon action \"DAEMON_DEPLOYMENT_STEADY\" is not checked".into()
        ))
    );
    let cases = [
        (
            json!({"eventName": "DAEMON_TASK_START_IMPAIRED", "containerInstanceArn": INSTANCE, "daemonArn": DAEMON}),
            "detail.clusterArn",
        ),
        (
            json!({"eventName": "DAEMON_TASK_START_IMPAIRED", "clusterArn": CLUSTER, "daemonArn": DAEMON}),
            "detail.containerInstanceArn",
        ),
        (
            json!({"eventName": "DAEMON_TASK_START_IMPAIRED", "clusterArn": CLUSTER, "containerInstanceArn": INSTANCE}),
            "detail.daemonArn",
        ),
    ];
    for (detail, field) in cases {
        assert_eq!(
            parse(&daemon_action(detail)),
            Parsed::Rejected(RejectReason::MissingField(field))
        );
    }
}

/// What each sample in `events/` must parse to.
#[test]
fn when_the_sample_events_are_parsed_then_each_is_what_its_name_says() {
    let kind = |parsed: &Parsed| match parsed {
        Parsed::Signal(s) => match s.kind {
            AlertKind::AgentDisconnected => "agent".to_owned(),
            AlertKind::DaemonLost => format!("daemon {}", s.daemon_name.as_deref().unwrap_or_default()),
            AlertKind::DaemonDeploymentFailed => {
                let d = s.facts.get::<DaemonDeployment>().expect("a deployment's facts");
                let name = s.daemon_name.as_deref().unwrap_or_default();
                format!("deployment {name} {}", d.outcome.event_name())
            }
            AlertKind::InstanceImpaired => {
                let failing = s.facts.get::<Failing>().expect("the failing checks");
                let checks: Vec<&str> = failing.0.iter().map(|c| c.check.as_str()).collect();
                format!("impaired {}", checks.join(" "))
            }
            other => format!("unexpected {other:?}"),
        },
        Parsed::Ignored(reason) => format!("ignored: {reason}"),
        Parsed::Rejected(reason) => format!("rejected: {reason}"),
    };
    for ((file, body), expected) in EVENT_SAMPLES {
        assert_eq!(kind(&parse(body)), expected, "{file}");
    }
    let batches = [
        (sample!("sqs-agent-disconnected.json"), vec!["agent"]),
        (
            sample!("sqs-batch-agent.json"),
            vec![
                "agent",
                "agent",
                "agent",
                "ignored: the agent is connected",
                "rejected: body is not JSON",
            ],
        ),
        (
            sample!("sqs-batch-daemon.json"),
            vec![
                "daemon log-router",
                "daemon security-agent",
                "daemon security-agent",
                "ignored: task group \"service:web\" is not a daemon",
            ],
        ),
    ];
    for ((file, envelope), expected) in batches {
        let batch: crate::SqsBatch = serde_json::from_str(envelope).expect(file);
        assert!(
            batch.records.iter().all(|r| !r.id.is_empty()),
            "{file}: every record has its id"
        );
        let kinds: Vec<String> = batch.records.iter().map(|r| kind(&parse(&r.body))).collect();
        assert_eq!(kinds.len(), expected.len(), "{file}");
        for (kind, expected) in kinds.iter().zip(expected) {
            assert!(kind.starts_with(expected), "{file}: {kind} is not {expected}");
        }
    }
}

/// The release build aborts on a panic (BENCHMARKS.md says why that is safe); what keeps a
/// bad body from reaching one is that parsing answers every input.
#[test]
fn when_a_body_is_cut_short_or_a_field_has_the_wrong_type_then_parse_answers_without_a_panic() {
    for ((file, text), _) in EVENT_SAMPLES {
        let text = text.trim_end();
        for end in (0..text.len()).filter(|i| text.is_char_boundary(*i)) {
            assert!(
                matches!(parse(&text[..end]), Parsed::Rejected(_)),
                "{file} cut at {end}"
            );
        }
        let event: Value = serde_json::from_str(text).expect(file);
        let keys: Vec<String> = event["detail"].as_object().expect(file).keys().cloned().collect();
        for key in keys {
            for wrong in [
                Value::Null,
                json!(-1),
                json!(1e300),
                json!([]),
                json!({}),
                json!(""),
                json!("/"),
            ] {
                let mut changed = event.clone();
                changed["detail"][&key] = wrong.clone();
                // Any answer will do; reaching it is the point.
                let answer = parse(&changed.to_string());
                assert!(
                    !matches!(&answer, Parsed::Signal(s) if s.cluster_arn().is_empty()),
                    "{file}: detail.{key} = {wrong} gave a signal without a cluster"
                );
            }
        }
    }
}

#[test]
fn when_a_reject_reason_is_shown_then_it_says_what_was_wrong() {
    assert_eq!(
        RejectReason::MissingField("detail.clusterArn").to_string(),
        "event has no detail.clusterArn"
    );
    assert_eq!(
        RejectReason::UnexpectedSource("aws.ec2".into()).to_string(),
        "source \"aws.ec2\" is not aws.ecs"
    );
}

/// Dispatch is by detail-type: each is read by one kind, so which kind parses an event is never
/// a matter of the registry's order.
#[test]
fn when_the_registry_is_read_then_each_detail_type_belongs_to_one_kind() {
    let mut seen = std::collections::HashSet::new();
    for kind in KINDS {
        for detail_type in kind.detail_types() {
            assert!(seen.insert(*detail_type), "{detail_type} is claimed twice");
        }
    }
}
