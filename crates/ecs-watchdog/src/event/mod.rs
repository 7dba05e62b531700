//! Reading one queue message: the body is a whole EventBridge event from `aws.ecs`. This module
//! reads the envelope (JSON, source, detail-type, time) and holds the words every kind's
//! parser uses ([`Signal`], [`Parsed`], [`Envelope`]); each kind's module parses its own
//! detail-types, and `kinds::parse` hands each event to the kind that reads it.
//!
//! A body that cannot be used is [`Parsed::Rejected`] with a reason, never dropped.

use serde_json::Value;

mod envelope;
mod signal;

/// The health check an event reports is the one ECS describes.
pub use crate::inventory::HealthCheck;
pub use envelope::{Envelope, text};
pub use signal::{DaemonOn, Fact, Facts, IgnoreReason, Parsed, RejectReason, RepeatKey, Signal};

/// Daemon tasks carry `group: "daemon:<name>"`.
pub const DAEMON_GROUP_PREFIX: &str = "daemon:";

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

/// Which event a body carries, read from the same parse as its signal: EventBridge's `time`
/// (UNIX seconds) and `id`, which a redelivery of the same event carries again, and the
/// `account` and `region` it came from (where a hub checks it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamp {
    pub time: Option<u64>,
    pub id: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
}

/// Parses one SQS message body: the envelope here, its detail by `detail` (the kinds'
/// registry), with the event's [`Stamp`] read from the same parse.
pub fn parse_timed(body: &str, detail: impl Fn(&Envelope<'_>) -> Result<Parsed, RejectReason>) -> (Parsed, Stamp) {
    let event = match serde_json::from_str::<Value>(body) {
        Ok(event) => event,
        Err(e) => return (Parsed::Rejected(RejectReason::NotJson(e.to_string())), Stamp::default()),
    };
    let parsed = match envelope(&event) {
        Ok(envelope) => detail(&envelope).unwrap_or_else(Parsed::Rejected),
        Err(reason) => Parsed::Rejected(reason),
    };
    let stamp = Stamp {
        time: time(&event),
        id: text(&event, "id").map(str::to_owned),
        account: text(&event, "account").map(str::to_owned),
        region: text(&event, "region").map(str::to_owned),
    };
    (parsed, stamp)
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

fn envelope(event: &Value) -> Result<Envelope<'_>, RejectReason> {
    let (Some(source), Some(detail_type)) = (text(event, "source"), text(event, "detail-type")) else {
        return Err(RejectReason::NotAnEvent);
    };
    if source != "aws.ecs" {
        return Err(RejectReason::UnexpectedSource(source.to_owned()));
    }
    Ok(Envelope::new(detail_type, event))
}
