//! Parsing one queue message: the body is a whole EventBridge event from `aws.ecs`.
//!
//! Lenient on what the decision does not need (unknown fields, missing optional fields, odd
//! types), strict on what it does (the cluster and the resource). A body that cannot be used is
//! [`Parsed::Rejected`] with a reason, never dropped.

use serde_json::Value;

mod deployment;
mod health;

pub use deployment::{DaemonDeployment, DeploymentOutcome};
pub use health::{HealthCheck, InstanceImpaired};

/// The detail-type of a container instance event.
pub const CONTAINER_INSTANCE_STATE_CHANGE: &str = "ECS Container Instance State Change";
/// The detail-type of a task event.
pub const TASK_STATE_CHANGE: &str = "ECS Task State Change";
/// The detail-type of a Managed Daemons service action.
pub const DAEMON_SERVICE_ACTION: &str = "ECS Daemon Service Action";
/// The daemon service action when ECS cannot start a daemon task on an instance.
pub const DAEMON_TASK_START_IMPAIRED: &str = "DAEMON_TASK_START_IMPAIRED";
/// The detail-type of a Managed Daemons deployment's state change.
pub const DAEMON_DEPLOYMENT_STATE_CHANGE: &str = "ECS Daemon Deployment State Change";
/// The detail-type of a container instance's health change.
pub const CONTAINER_INSTANCE_HEALTH_CHANGE: &str = "ECS Container Instance Health Change";
/// Daemon tasks carry `group: "daemon:<name>"`.
pub const DAEMON_GROUP_PREFIX: &str = "daemon:";

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
    DaemonLost(Box<DaemonLost>),
    InstanceImpaired(Box<InstanceImpaired>),
    DaemonDeployment(Box<DaemonDeployment>),
}

impl Signal {
    pub fn cluster_arn(&self) -> &str {
        match self {
            Signal::AgentDisconnected(e) => &e.cluster_arn,
            Signal::DaemonLost(e) => &e.cluster_arn,
            Signal::InstanceImpaired(e) => &e.cluster_arn,
            Signal::DaemonDeployment(e) => &e.cluster_arn,
        }
    }

    /// The resource the signal is about: a container instance, or for a deployment the daemon.
    pub fn container_instance_arn(&self) -> &str {
        match self {
            Signal::AgentDisconnected(e) => &e.container_instance_arn,
            Signal::DaemonLost(e) => &e.container_instance_arn,
            Signal::InstanceImpaired(e) => &e.container_instance_arn,
            Signal::DaemonDeployment(e) => &e.daemon_arn,
        }
    }

    /// The kind of alert it can become.
    pub fn kind(&self) -> crate::kind::AlertKind {
        use crate::kind::AlertKind;
        match self {
            Signal::AgentDisconnected(_) => AlertKind::AgentDisconnected,
            Signal::DaemonLost(_) => AlertKind::DaemonLost,
            Signal::InstanceImpaired(_) => AlertKind::InstanceImpaired,
            Signal::DaemonDeployment(_) => AlertKind::DaemonDeploymentFailed,
        }
    }

    /// A look at a container instance's agent now (the sweep's): no event, so no version or time.
    pub fn agent_now(cluster: &str, container_instance: &str, ec2_instance_id: Option<String>) -> Self {
        Signal::AgentDisconnected(AgentDisconnected {
            cluster_arn: cluster.to_owned(),
            container_instance_arn: container_instance.to_owned(),
            ec2_instance_id,
            version: None,
            since: None,
        })
    }

    /// A look at a container instance's health now.
    pub fn impaired_now(cluster: &str, container_instance: &str, ec2_instance_id: Option<String>) -> Self {
        Signal::InstanceImpaired(Box::new(InstanceImpaired {
            cluster_arn: cluster.to_owned(),
            container_instance_arn: container_instance.to_owned(),
            ec2_instance_id,
            failing: Vec::new(),
            since: None,
        }))
    }

    /// A look at a daemon on a container instance now: absent, as far as the look knows.
    pub fn daemon_lost_now(cluster: &str, container_instance: &str, name: &str, arn: Option<&str>) -> Self {
        Signal::DaemonLost(Box::new(DaemonLost {
            cluster_arn: cluster.to_owned(),
            container_instance_arn: container_instance.to_owned(),
            daemon_name: name.to_owned(),
            daemon_arn: arn.map(str::to_owned),
            task_arn: None,
            task_definition_arn: None,
            version: None,
            since: None,
            cause: DaemonCause::Absent,
        }))
    }

    /// Whether deciding it needs the container instance's current state.
    pub fn names_an_instance(&self) -> bool {
        !matches!(self, Signal::DaemonDeployment(_))
    }

    /// `detail.version`, when the event has one.
    pub fn version(&self) -> Option<i64> {
        match self {
            Signal::AgentDisconnected(e) => e.version,
            Signal::DaemonLost(e) => e.version,
            Signal::InstanceImpaired(_) | Signal::DaemonDeployment(_) => None,
        }
    }

    /// The daemon's name, for daemon signals.
    pub fn daemon_name(&self) -> Option<&str> {
        match self {
            Signal::AgentDisconnected(_) | Signal::InstanceImpaired(_) => None,
            Signal::DaemonLost(e) => Some(&e.daemon_name),
            Signal::DaemonDeployment(e) => Some(&e.daemon_name),
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

/// A daemon that is not running on an instance: its task stopped, or ECS could not start it.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonLost {
    pub cluster_arn: String,
    pub container_instance_arn: String,
    /// The daemon's name: `group` without `daemon:`, or the last part of `daemonArn`.
    pub daemon_name: String,
    pub daemon_arn: Option<String>,
    pub task_arn: Option<String>,
    /// The task's (daemon) task definition; its family finds the daemon's other tasks.
    pub task_definition_arn: Option<String>,
    /// The task's `detail.version`; start-impaired events have none.
    pub version: Option<i64>,
    pub since: Option<String>,
    pub cause: DaemonCause,
}

/// What the event says went wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum DaemonCause {
    /// `ECS Task State Change`, STOPPED.
    Stopped {
        stop_code: Option<String>,
        stopped_reason: Option<String>,
        exits: Vec<ContainerExit>,
    },
    /// `ECS Daemon Service Action` `DAEMON_TASK_START_IMPAIRED`: `failureType` is
    /// `TASK_FAILED_TO_RUN` (a task was created) or `TASK_CREATION_FAILED` (none was).
    StartImpaired {
        failure_type: Option<String>,
        reason: Option<String>,
    },
    /// No event: the sweep found no task of the daemon on an instance it belongs on.
    Absent,
}

/// One container of a stopped task.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerExit {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreReason {
    /// A container instance event whose agent is connected: nothing is wrong.
    AgentConnected,
    /// An `aws.ecs` event of a kind this monitor does not check.
    UnhandledDetailType(String),
    /// A task that is not a daemon task (`service:…`, `family:…`, or no group).
    NotADaemonTask(String),
    /// A task event whose task has not stopped.
    TaskNotStopped(String),
    /// A daemon task with no container instance (Fargate): there is no instance to check.
    NoContainerInstance,
    /// A daemon service action other than `DAEMON_TASK_START_IMPAIRED`, or a deployment event
    /// that says neither a failure nor a success.
    UnhandledDaemonAction(String),
    /// A health change to a status other than IMPAIRED.
    NotImpaired(String),
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
            IgnoreReason::NotADaemonTask(group) => write!(f, "task group {group:?} is not a daemon"),
            IgnoreReason::TaskNotStopped(status) => write!(f, "the task is {status}, not STOPPED"),
            IgnoreReason::NoContainerInstance => f.write_str("the task has no container instance (Fargate)"),
            IgnoreReason::UnhandledDaemonAction(name) => write!(f, "daemon action {name:?} is not checked"),
            IgnoreReason::NotImpaired(status) => write!(f, "the instance's health is {status}, not IMPAIRED"),
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
    parse_timed(body).0
}

/// The same, with the event's `time` (EventBridge's, in UNIX seconds) read from the same parse.
pub fn parse_timed(body: &str) -> (Parsed, Option<u64>) {
    match serde_json::from_str::<Value>(body) {
        Ok(event) => (parse_event(&event), time(&event)),
        Err(e) => (Parsed::Rejected(RejectReason::NotJson(e.to_string())), None),
    }
}

/// The event's `time` alone, for a body intake did not parse (none for one that is no event).
pub fn time_of(body: &str) -> Option<u64> {
    time(&serde_json::from_str::<Value>(body).ok()?)
}

fn time(event: &Value) -> Option<u64> {
    use aws_smithy_types::date_time::{DateTime, Format};
    let time = DateTime::from_str(text(event, "time")?, Format::DateTime).ok()?;
    u64::try_from(time.secs()).ok()
}

fn parse_event(event: &Value) -> Parsed {
    let (Some(source), Some(detail_type)) = (text(event, "source"), text(event, "detail-type")) else {
        return Parsed::Rejected(RejectReason::NotAnEvent);
    };
    if source != "aws.ecs" {
        return Parsed::Rejected(RejectReason::UnexpectedSource(source.to_owned()));
    }
    let detail = event.get("detail").unwrap_or(&Value::Null);
    match detail_type {
        CONTAINER_INSTANCE_STATE_CHANGE => parse_container_instance(event, detail),
        TASK_STATE_CHANGE => parse_task(event, detail),
        DAEMON_SERVICE_ACTION => parse_daemon_action(event, detail),
        DAEMON_DEPLOYMENT_STATE_CHANGE => deployment::parse(event, detail),
        CONTAINER_INSTANCE_HEALTH_CHANGE => health::parse(event, detail),
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

fn parse_task(event: &Value, detail: &Value) -> Parsed {
    let Some(cluster_arn) = text(detail, "clusterArn") else {
        return Parsed::Rejected(RejectReason::MissingField("detail.clusterArn"));
    };
    let group = text(detail, "group").unwrap_or_default();
    let Some(daemon_name) = group.strip_prefix(DAEMON_GROUP_PREFIX).filter(|name| !name.is_empty()) else {
        return Parsed::Ignored(IgnoreReason::NotADaemonTask(group.to_owned()));
    };
    if let Some(status) = text(detail, "lastStatus").filter(|s| *s != "STOPPED") {
        return Parsed::Ignored(IgnoreReason::TaskNotStopped(status.to_owned()));
    }
    let Some(container_instance_arn) = text(detail, "containerInstanceArn") else {
        return Parsed::Ignored(IgnoreReason::NoContainerInstance);
    };
    let exits = detail
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| ContainerExit {
            name: text(c, "name").unwrap_or("unnamed").to_owned(),
            exit_code: c.get("exitCode").and_then(Value::as_i64),
            reason: text(c, "reason").map(str::to_owned),
        })
        .collect();
    Parsed::Signal(Signal::DaemonLost(Box::new(DaemonLost {
        cluster_arn: cluster_arn.to_owned(),
        container_instance_arn: container_instance_arn.to_owned(),
        daemon_name: daemon_name.to_owned(),
        daemon_arn: None,
        task_arn: text(detail, "taskArn").map(str::to_owned),
        task_definition_arn: text(detail, "taskDefinitionArn").map(str::to_owned),
        version: detail.get("version").and_then(Value::as_i64),
        since: text(detail, "stoppedAt")
            .or_else(|| text(event, "time"))
            .map(str::to_owned),
        cause: DaemonCause::Stopped {
            stop_code: text(detail, "stopCode").map(str::to_owned),
            stopped_reason: text(detail, "stoppedReason").map(str::to_owned),
            exits,
        },
    })))
}

/// The layout is the ECS developer guide's, page "Daemon events" (managed-daemons-events):
/// `detail.eventName`, `clusterArn`, `containerInstanceArn`, `daemonArn`, `taskArn` (absent for
/// `TASK_CREATION_FAILED`), `daemonTaskDefinitionArn`, `failureType`, `reason`, `createdAt`.
fn parse_daemon_action(event: &Value, detail: &Value) -> Parsed {
    let name = text(detail, "eventName").unwrap_or_default();
    if name != DAEMON_TASK_START_IMPAIRED {
        return Parsed::Ignored(IgnoreReason::UnhandledDaemonAction(name.to_owned()));
    }
    let Some(cluster_arn) = text(detail, "clusterArn") else {
        return Parsed::Rejected(RejectReason::MissingField("detail.clusterArn"));
    };
    let Some(container_instance_arn) = text(detail, "containerInstanceArn") else {
        return Parsed::Rejected(RejectReason::MissingField("detail.containerInstanceArn"));
    };
    let Some(daemon_arn) = text(detail, "daemonArn") else {
        return Parsed::Rejected(RejectReason::MissingField("detail.daemonArn"));
    };
    Parsed::Signal(Signal::DaemonLost(Box::new(DaemonLost {
        cluster_arn: cluster_arn.to_owned(),
        container_instance_arn: container_instance_arn.to_owned(),
        daemon_name: daemon_arn.rsplit('/').next().unwrap_or(daemon_arn).to_owned(),
        daemon_arn: Some(daemon_arn.to_owned()),
        task_arn: text(detail, "taskArn").map(str::to_owned),
        task_definition_arn: text(detail, "daemonTaskDefinitionArn").map(str::to_owned),
        version: None,
        since: text(detail, "createdAt")
            .or_else(|| text(event, "time"))
            .map(str::to_owned),
        cause: DaemonCause::StartImpaired {
            failure_type: text(detail, "failureType").map(str::to_owned),
            reason: text(detail, "reason").map(str::to_owned),
        },
    })))
}

/// The family of a task definition ARN (`…:task-definition/<family>:<revision>`, also for
/// `daemon-task-definition/`).
pub fn task_definition_family(arn: &str) -> Option<&str> {
    let (_, family_revision) = arn.rsplit_once('/')?;
    let family = family_revision
        .rsplit_once(':')
        .map_or(family_revision, |(family, _)| family);
    (!family.is_empty()).then_some(family)
}

/// A non-empty string field; anything else counts as absent.
fn text<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(Value::as_str).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests;
