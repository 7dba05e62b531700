//! How an incident and a group are written as DynamoDB items, and read back.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{KEEP_CLOSED_SECONDS, OWED};
use crate::alert::{AlertKind, InstanceFinding};
use crate::incident::{Group, GroupKey, Incident, IncidentKey, Lease, Notice, State};

pub(super) fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

pub(super) fn n(number: u64) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

pub(super) fn item(incident: &Incident) -> HashMap<String, AttributeValue> {
    let key = &incident.key;
    let mut item = HashMap::from([
        ("id".to_owned(), s(key.id())),
        ("state".to_owned(), s(incident.state.as_str())),
        ("version".to_owned(), n(incident.version)),
        ("cluster_arn".to_owned(), s(&key.cluster_arn)),
        ("kind".to_owned(), s(key.kind.as_str())),
        ("instance".to_owned(), s(&key.instance)),
        ("opened_at".to_owned(), n(incident.opened_at)),
        ("notified_at".to_owned(), n(incident.notified_at)),
        (
            "finding".to_owned(),
            s(serde_json::to_string(&incident.finding).unwrap_or_default()),
        ),
    ]);
    let mut optional = |name: &str, value: Option<AttributeValue>| {
        if let Some(value) = value {
            item.insert(name.to_owned(), value);
        }
    };
    optional("daemon", key.daemon.as_ref().map(s));
    optional(
        "held_group",
        incident.held.then(|| s(GroupKey::new(&key.cluster_arn, key.kind).id())),
    );
    optional("ended_at", (incident.ended_at > 0).then(|| n(incident.ended_at)));
    optional("resolution", incident.resolution.as_ref().map(s));
    optional("closed_at", (incident.closed_at > 0).then(|| n(incident.closed_at)));
    optional(
        "expires_at",
        (incident.state == State::Closed).then(|| n(incident.closed_at + KEEP_CLOSED_SECONDS)),
    );
    if let Some((lease, notice)) = &incident.lease {
        optional("lease_token", Some(s(&lease.token)));
        optional("lease_until", Some(n(lease.until)));
        optional("lease_notice", Some(s(notice.as_str())));
    }
    let due = incident.due_at();
    optional("outbox", (due > 0).then(|| s(OWED)));
    optional("due_at", (due > 0).then(|| n(due)));
    item
}

/// Reads an item back; one this version did not write (or cannot read) is skipped.
pub(super) fn incident(item: &HashMap<String, AttributeValue>) -> Option<Incident> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
    let kind = AlertKind::parse(&text("kind")?)?;
    let finding: InstanceFinding = serde_json::from_str(&text("finding")?).ok()?;
    let lease = match (text("lease_token"), number("lease_until"), text("lease_notice")) {
        (Some(token), Some(until), Some(notice)) => Some((Lease { token, until }, Notice::parse(&notice)?)),
        _ => None,
    };
    Some(Incident {
        key: IncidentKey {
            cluster_arn: text("cluster_arn")?,
            kind,
            instance: text("instance")?,
            daemon: text("daemon"),
        },
        state: State::parse(&text("state")?)?,
        version: number("version").unwrap_or(0),
        lease,
        opened_at: number("opened_at")?,
        notified_at: number("notified_at").unwrap_or(0),
        finding,
        held: text("held_group").is_some(),
        ended_at: number("ended_at").unwrap_or(0),
        resolution: text("resolution"),
        closed_at: number("closed_at").unwrap_or(0),
    })
}

pub(super) fn group_item(group: &Group) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("id".to_owned(), s(group.key.id())),
        ("version".to_owned(), n(group.version)),
        ("window_end".to_owned(), n(group.window_end)),
        ("digest_due".to_owned(), n(group.digest_due)),
        ("last_held".to_owned(), n(group.last_held)),
    ]);
    if let Some(lease) = &group.lease {
        item.insert("lease_token".to_owned(), s(&lease.token));
        item.insert("lease_until".to_owned(), n(lease.until));
    }
    let due = group.due_at();
    if due > 0 {
        item.insert("outbox".to_owned(), s(OWED));
        item.insert("due_at".to_owned(), n(due));
    }
    item
}

pub(super) fn group(item: &HashMap<String, AttributeValue>) -> Option<Group> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let id = text("id")?;
    let mut parts = id.splitn(4, '|');
    let (_, _, kind, cluster) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let lease = match (text("lease_token"), number("lease_until")) {
        (Some(token), Some(until)) => Some(Lease { token, until }),
        _ => None,
    };
    Some(Group {
        key: GroupKey::new(cluster, AlertKind::parse(kind)?),
        version: number("version").unwrap_or(0),
        window_end: number("window_end").unwrap_or(0),
        digest_due: number("digest_due").unwrap_or(0),
        last_held: number("last_held").unwrap_or(0),
        lease,
    })
}
