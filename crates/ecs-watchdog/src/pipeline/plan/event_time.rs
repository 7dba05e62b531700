//! Promise 2's event-time rule (DESIGN §7): what an event older than the incident's knowledge
//! may no longer do, and a deployment's failures judged by their own time.

use crate::alert::InstanceFinding;
use crate::incident::{Incident, IncidentKey};

use super::types::Look;

/// Promise 2's event-time rule (DESIGN §7): an event older than what the incident already
/// knows (the end a look saw, its close) cannot reopen it, nor call back a resolved notice
/// that is owed. A look without an event time (the sweep's, of now) is never stale.
///
/// A deployment's end is its success event's time (`Look::Over::at`), so a failure after that
/// success opens anew however late it is processed; and a success older than the failure the
/// incident tells (`since`) cannot end it.
pub fn stale(stored: Option<&Incident>, look: &Look, event_time: Option<u64>) -> bool {
    // The end a look saw, rather than when its notice went out after it.
    let known = stored.map_or(0, |i| if i.ended_at > 0 { i.ended_at } else { i.closed_at });
    match look {
        Look::Confirmed { .. } => event_time.is_some_and(|t| t < known),
        Look::Over { at: Some(at), .. } => stored
            .filter(|i| i.is_open())
            .and_then(|i| seconds(i.finding.since.as_deref()?))
            .is_some_and(|since| *at < since),
        _ => false,
    }
}

/// A later deployment's failure while the incident is alerted: the incident tells it from now
/// on (its `since` is the newest failure's), so a success older than it cannot end it.
pub fn later_failure(stored: &Incident, seen: &InstanceFinding) -> Option<InstanceFinding> {
    let at = |f: &InstanceFinding| f.since.as_deref().and_then(seconds);
    let newer = ended_by_its_events(&stored.key) && at(seen) > at(&stored.finding);
    newer.then(|| InstanceFinding {
        remediation: stored.finding.remediation.clone(),
        remediation_actions: stored.finding.remediation_actions.clone(),
        ..seen.clone()
    })
}

/// Whether a look must be taken again after this run: a deployment's failure, newer than the
/// end its open incident knows, meeting the resolved notice that end owes.
pub fn comes_back_later(current: Option<&Incident>, key: &IncidentKey, look: &Look) -> bool {
    ended_by_its_events(key)
        && matches!(look, Look::Confirmed { .. })
        && current.is_some_and(|i| i.is_open() && i.ended_at > 0)
}

/// An ISO-8601 time (`2026-12-05T10:21:00Z`, as ECS writes them) in UNIX seconds.
fn seconds(text: &str) -> Option<u64> {
    use aws_smithy_types::date_time::{DateTime, Format};
    u64::try_from(DateTime::from_str(text, Format::DateTime).ok()?.secs()).ok()
}

/// A kind that only its own events end, as of their time (a daemon deployment's success).
pub(super) fn ended_by_its_events(key: &IncidentKey) -> bool {
    crate::kinds::of(key.kind).ended_by_its_events()
}
