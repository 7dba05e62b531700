//! Parsing one queue message: the body is a whole EventBridge event from `aws.ecs`.
//!
//! Lenient on what the decision does not need (unknown fields, missing optional fields, odd
//! types), strict on what it does (the cluster and the resource). A body that cannot be used is
//! [`Parsed::Rejected`] with a reason, never dropped.

use serde_json::Value;

/// The detail-type of a container instance event.
pub const CONTAINER_INSTANCE_STATE_CHANGE: &str = "ECS Container Instance State Change";

/// What one message body turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Signal(Signal),
    /// A well-formed event that needs no check; acknowledged and logged.
    Ignored(IgnoreReason),
    /// A body that cannot be used; quarantined in the dead-letter queue.
    Rejected(RejectReason),
}

/// A possible failure that the monitor must re-check.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    AgentDisconnected(AgentDisconnected),
}

impl Signal {
    pub fn cluster_arn(&self) -> &str {
        match self {
            Signal::AgentDisconnected(e) => &e.cluster_arn,
        }
    }
}

/// `ECS Container Instance State Change` with `agentConnected: false`.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentDisconnected {
    pub cluster_arn: String,
    pub container_instance_arn: String,
    /// `i-…` on EC2, `mi-…` on ECS Anywhere; the describe call is the better source.
    pub ec2_instance_id: Option<String>,
    /// `detail.version`: grows with every change of the container instance.
    pub version: Option<i64>,
    /// When ECS saw the change (`detail.updatedAt`, else the event's `time`).
    pub since: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreReason {
    /// A container instance event whose agent is connected: nothing is wrong.
    AgentConnected,
    /// An `aws.ecs` event of a kind this monitor does not check.
    UnhandledDetailType(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    NotJson(String),
    NotAnEvent,
    UnexpectedSource(String),
    MissingField(&'static str),
}

impl std::fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IgnoreReason::AgentConnected => f.write_str("the agent is connected"),
            IgnoreReason::UnhandledDetailType(t) => write!(f, "detail-type {t:?} is not checked"),
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectReason::NotJson(e) => write!(f, "body is not JSON: {e}"),
            RejectReason::NotAnEvent => f.write_str("body is not an EventBridge event (no source or detail-type)"),
            RejectReason::UnexpectedSource(s) => write!(f, "source {s:?} is not aws.ecs"),
            RejectReason::MissingField(field) => write!(f, "event has no {field}"),
        }
    }
}

/// Parses one SQS message body.
pub fn parse(body: &str) -> Parsed {
    let event: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return Parsed::Rejected(RejectReason::NotJson(e.to_string())),
    };
    let (Some(source), Some(detail_type)) = (text(&event, "source"), text(&event, "detail-type")) else {
        return Parsed::Rejected(RejectReason::NotAnEvent);
    };
    if source != "aws.ecs" {
        return Parsed::Rejected(RejectReason::UnexpectedSource(source.to_owned()));
    }
    let detail = event.get("detail").unwrap_or(&Value::Null);
    match detail_type {
        CONTAINER_INSTANCE_STATE_CHANGE => parse_container_instance(&event, detail),
        other => Parsed::Ignored(IgnoreReason::UnhandledDetailType(other.to_owned())),
    }
}

fn parse_container_instance(event: &Value, detail: &Value) -> Parsed {
    let Some(cluster_arn) = text(detail, "clusterArn") else {
        return Parsed::Rejected(RejectReason::MissingField("detail.clusterArn"));
    };
    let Some(container_instance_arn) = text(detail, "containerInstanceArn") else {
        return Parsed::Rejected(RejectReason::MissingField("detail.containerInstanceArn"));
    };
    if detail.get("agentConnected").and_then(Value::as_bool) == Some(true) {
        return Parsed::Ignored(IgnoreReason::AgentConnected);
    }
    Parsed::Signal(Signal::AgentDisconnected(AgentDisconnected {
        cluster_arn: cluster_arn.to_owned(),
        container_instance_arn: container_instance_arn.to_owned(),
        ec2_instance_id: text(detail, "ec2InstanceId").map(str::to_owned),
        version: detail.get("version").and_then(Value::as_i64),
        since: text(detail, "updatedAt")
            .or_else(|| text(event, "time"))
            .map(str::to_owned),
    }))
}

/// A non-empty string field; anything else counts as absent.
fn text<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(Value::as_str).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn instance_event(detail: Value) -> String {
        json!({
            "version": "0", "id": "8f07d6a8-0000-4d2c-9f53-5a4bd8e5f2ab",
            "detail-type": CONTAINER_INSTANCE_STATE_CHANGE, "source": "aws.ecs",
            "account": "123456789012", "time": "2026-11-21T10:00:00Z", "region": "eu-west-1",
            "resources": [], "detail": detail
        })
        .to_string()
    }

    const CLUSTER: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/prod";
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
            Parsed::Signal(Signal::AgentDisconnected(AgentDisconnected {
                cluster_arn: CLUSTER.into(),
                container_instance_arn: INSTANCE.into(),
                ec2_instance_id: Some("i-0abc".into()),
                version: Some(7),
                since: Some("2026-11-21T09:58:00.000Z".into()),
            }))
        );
    }

    #[test]
    fn when_optional_fields_are_missing_or_odd_then_the_signal_still_parses() {
        let body = instance_event(json!({
            "clusterArn": CLUSTER, "containerInstanceArn": INSTANCE, "version": "seven"
        }));
        let Parsed::Signal(Signal::AgentDisconnected(signal)) = parse(&body) else {
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
        assert_eq!(parse(&connected), Parsed::Ignored(IgnoreReason::AgentConnected));
        let other = json!({"source": "aws.ecs", "detail-type": "ECS Service Action", "detail": {}}).to_string();
        assert_eq!(
            parse(&other),
            Parsed::Ignored(IgnoreReason::UnhandledDetailType("ECS Service Action".into()))
        );
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
}
