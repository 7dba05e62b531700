//! What one message sends to PagerDuty's Events API v2, and when. Pure, over the rendered alert.
//!
//! The event's fields and limits are the developer guide's "Send an Alert Event"
//! (<https://developer.pagerduty.com/docs/events-api-v2/trigger-events/>): `dedup_key` at most
//! 255 characters, `payload.summary` at most 1024, `payload.severity` one of critical, error,
//! warning, info; a payload at most 512 KB (the finding in `custom_details` fits SNS's 256 KB).
//!
//! The dedup rule: **one PagerDuty alert per cluster and kind**, keyed by the group's id (the
//! SNS `incident` attribute of a message about several incidents, and of a digest). Every alert,
//! digest and reminder of the cluster and kind triggers that key (PagerDuty folds a repeat into
//! the open alert); a resolved notice resolves it once no incident of the cluster and kind is
//! still alerted ([`holds_page`]). A per-message key cannot be paired: an incident alerted alone
//! may close in a notice with others, and the reverse. A per-incident key pages once per
//! instance in an outage. This is what Alertmanager's PagerDuty receiver does with its groups.

use serde::Serialize;
use serde_json::Value;

use crate::finding::{Alert, MessageStatus, Severity};
use crate::incident::{GroupKey, Incident, Notice, State};

pub const SUMMARY_MAX: usize = 1024;
pub const DEDUP_KEY_MAX: usize = 255;

/// `event_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Trigger,
    Resolve,
}

/// An Events API v2 alert event, without its routing key (the adapter adds it, so no event
/// printed in a log or a test carries the secret).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub event_action: Action,
    pub dedup_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    pub client: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Payload {
    pub summary: String,
    pub source: String,
    pub severity: &'static str,
    pub timestamp: String,
    pub component: String,
    pub group: String,
    pub class: &'static str,
    pub custom_details: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    pub href: String,
    pub text: &'static str,
}

/// What a message of this status does to the cluster and kind's PagerDuty alert. A reminder
/// re-triggers it: PagerDuty folds it into the open alert (no new page), and a group resolved
/// early (an incident came back before its resolved notice went out) opens again rather than
/// stay resolved while the problem lasts.
pub fn action(status: MessageStatus) -> Action {
    match status {
        MessageStatus::Firing | MessageStatus::Reminder | MessageStatus::Digest => Action::Trigger,
        MessageStatus::Resolved => Action::Resolve,
    }
}

/// Our severity as PagerDuty's: critical, high → error, warning.
pub fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Warning => "warning",
    }
}

/// The event for `alert` at `now` (UNIX seconds). A resolve carries no payload, as the guide's.
pub fn event(alert: &Alert, now: u64) -> Event {
    let finding: Value = serde_json::from_str(&alert.default).unwrap_or(Value::Null);
    let cluster_arn = finding["clusterArn"].as_str().map(str::to_owned);
    let event_action = action(alert.message_status);
    let dedup_key = dedup_key(cluster_arn.as_deref().unwrap_or(&alert.thread), alert.kind);
    let links = vec![Link {
        href: format!(
            "https://{region}.console.aws.amazon.com/ecs/v2/clusters/{cluster}/infrastructure?region={region}",
            region = alert.region,
            cluster = alert.cluster_name
        ),
        text: "ECS console: the cluster",
    }];
    // A resolve is the routing key, the key and the action, as the guide's example.
    let links = if event_action == Action::Trigger {
        links
    } else {
        Vec::new()
    };
    let payload = (event_action == Action::Trigger).then(|| Payload {
        summary: cut(&alert.subject, SUMMARY_MAX),
        source: cluster_arn.unwrap_or_else(|| alert.thread.clone()),
        severity: severity(alert.severity),
        timestamp: iso8601(now),
        component: alert.cluster_name.clone(),
        group: format!("{}/{}", alert.account, alert.region),
        class: alert.kind.as_str(),
        custom_details: serde_json::json!({
            "status": alert.message_status.as_str(),
            "incident": alert.incident,
            "finding": finding,
        }),
    });
    Event {
        event_action,
        dedup_key,
        payload,
        client: "ecs-watchdog",
        links,
    }
}

/// The cluster ARN the message is about, as its finding (or resolved notice) says.
pub fn cluster_arn(alert: &Alert) -> Option<String> {
    let finding: Value = serde_json::from_str(&alert.default).ok()?;
    finding["clusterArn"].as_str().map(str::to_owned)
}

/// The cluster and kind's key: the group's id, cut to PagerDuty's 255 characters with a hash
/// of the whole when longer (a cluster name may have 255 characters by itself).
pub fn dedup_key(cluster_arn: &str, kind: super::AlertKind) -> String {
    let id = GroupKey::new(cluster_arn, kind).id();
    if id.len() <= DEDUP_KEY_MAX {
        return id;
    }
    let hash = format!("~{:016x}", fnv1a(id.as_bytes()));
    format!("{}{hash}", cut(&id, DEDUP_KEY_MAX - hash.len()))
}

/// Whether the cluster and kind's PagerDuty alert must stay open: one of these incidents (the
/// group's, read back before a resolve) was alerted and is not on its way to closing. One whose
/// resolved notice is owed or being sent closes too (two runs closing the last two both
/// resolve: a second resolve is dropped by PagerDuty); one whose alert is owed triggers again
/// when it is sent; one that comes back after the group resolved is re-triggered by its reminder.
pub fn holds_page(incidents: &[Incident], now: u64) -> bool {
    incidents.iter().any(|i| match i.settled(now) {
        State::Notified => true,
        // Held for the group's digest: its page is the group's, still open.
        State::Due => i.held,
        State::Sending => i.lease.as_ref().is_some_and(|(_, n)| *n != Notice::Resolved),
        _ => false,
    })
}

/// At most `max` bytes of `text`, cut on a character boundary.
fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// FNV-1a, 64 bits: a stable hash, the same in every run and version.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// UNIX seconds as ISO 8601 UTC (`2026-12-05T03:58:00Z`); days to a civil date by Howard
/// Hinnant's algorithm.
pub fn iso8601(seconds: u64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
#[path = "pagerduty_tests.rs"]
mod tests;
