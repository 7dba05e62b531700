//! The events that tell a lost daemon: its task stopped, or ECS could not start it.

use crate::event::{
    ContainerExit, DAEMON_GROUP_PREFIX, Envelope, Facts, IgnoreReason, Parsed, RejectReason, Signal, text,
};
use crate::kind::AlertKind;

/// The detail-type of a task event.
pub const TASK_STATE_CHANGE: &str = "ECS Task State Change";
/// The detail-type of a Managed Daemons service action.
pub const DAEMON_SERVICE_ACTION: &str = "ECS Daemon Service Action";
/// The daemon service action when ECS cannot start a daemon task on an instance.
pub const DAEMON_TASK_START_IMPAIRED: &str = "DAEMON_TASK_START_IMPAIRED";

/// What a daemon event says went wrong; a look by the sweep (no event) has none: it found no
/// task of the daemon on an instance it belongs on.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonLost {
    pub task_arn: Option<String>,
    pub cause: DaemonCause,
}

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
}

pub fn parse(event: &Envelope<'_>) -> Result<Parsed, RejectReason> {
    if event.detail_type == TASK_STATE_CHANGE {
        task_stopped(event)
    } else {
        start_impaired(event)
    }
}

fn ignored(why: String) -> Result<Parsed, RejectReason> {
    Ok(Parsed::Ignored(IgnoreReason::NoProblem(why)))
}

/// `ECS Task State Change` of a daemon task (`group: daemon:<name>`) that STOPPED on a
/// container instance.
fn task_stopped(event: &Envelope<'_>) -> Result<Parsed, RejectReason> {
    let cluster = event.required("detail.clusterArn")?;
    let group = event.text("group").unwrap_or_default();
    let Some(daemon) = group.strip_prefix(DAEMON_GROUP_PREFIX).filter(|name| !name.is_empty()) else {
        return ignored(format!("task group {group:?} is not a daemon"));
    };
    if let Some(status) = event.text("lastStatus").filter(|s| *s != "STOPPED") {
        return ignored(format!("the task is {status}, not STOPPED"));
    }
    let Some(instance) = event.text("containerInstanceArn") else {
        return ignored("the task has no container instance (Fargate)".to_owned());
    };
    let exits = event
        .list("containers")
        .map(|c| ContainerExit {
            name: text(c, "name").unwrap_or("unnamed").to_owned(),
            exit_code: c.get("exitCode").and_then(serde_json::Value::as_i64),
            reason: text(c, "reason").map(str::to_owned),
        })
        .collect();
    let cause = DaemonCause::Stopped {
        stop_code: event.text("stopCode").map(str::to_owned),
        stopped_reason: event.text("stoppedReason").map(str::to_owned),
        exits,
    };
    Ok(Parsed::Signal(Signal {
        version: event.integer("version"),
        since: event.since("stoppedAt"),
        facts: Facts::new(DaemonLost {
            task_arn: event.text("taskArn").map(str::to_owned),
            cause,
        }),
        ..Signal::of_daemon(AlertKind::DaemonLost, cluster, instance, daemon, None)
    }))
}

/// The layout is the ECS developer guide's, page "Daemon events" (managed-daemons-events):
/// `detail.eventName`, `clusterArn`, `containerInstanceArn`, `daemonArn`, `taskArn` (absent for
/// `TASK_CREATION_FAILED`), `daemonTaskDefinitionArn`, `failureType`, `reason`, `createdAt`.
fn start_impaired(event: &Envelope<'_>) -> Result<Parsed, RejectReason> {
    let name = event.text("eventName").unwrap_or_default();
    if name != DAEMON_TASK_START_IMPAIRED {
        return ignored(format!("daemon action {name:?} is not checked"));
    }
    let cluster = event.required("detail.clusterArn")?;
    let instance = event.required("detail.containerInstanceArn")?;
    let daemon_arn = event.required("detail.daemonArn")?;
    let daemon = daemon_arn.rsplit('/').next().unwrap_or(daemon_arn);
    Ok(Parsed::Signal(Signal {
        since: event.since("createdAt"),
        facts: Facts::new(DaemonLost {
            task_arn: event.text("taskArn").map(str::to_owned),
            cause: DaemonCause::StartImpaired {
                failure_type: event.text("failureType").map(str::to_owned),
                reason: event.text("reason").map(str::to_owned),
            },
        }),
        ..Signal::of_daemon(AlertKind::DaemonLost, cluster, instance, daemon, Some(daemon_arn))
    }))
}
