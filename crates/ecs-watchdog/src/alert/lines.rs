//! The lines every kind's text is made of: since when, on which host, what remediation and a
//! silence did, how long it lasted.

use std::fmt::Write;

use aws_smithy_types::date_time::{DateTime, Format};

use super::finding::{Finding, InstanceFinding};

/// What remediation did to the instance, and how long its incident lasts, as lines of their own.
pub(crate) fn remediation_line(instance: &InstanceFinding) -> String {
    let mut lines = String::new();
    if instance.critical == Some(false) {
        lines.push_str("\n    non-critical daemon: ECS keeps the instance in service without it, so nothing but this alert reports it");
    }
    if let Some(stuck) = &instance.stuck {
        let _ = write!(lines, "\n    stuck: {stuck}");
    }
    if let Some(r) = &instance.remediation {
        let _ = write!(lines, "\n    remediation: {r}");
    }
    if let Some(resolved) = &instance.resolved {
        let _ = write!(lines, "\n    already resolved: {resolved}");
    }
    if let Some(open_for) = &instance.open_for {
        let _ = write!(lines, "\n    still open after {open_for} (reminder)");
    }
    lines.push_str(&silence_line(instance));
    lines
}

/// What a silence did to the incident's alert: held it until its end, or was not honoured.
pub(crate) fn silence_line(instance: &InstanceFinding) -> String {
    let on = instance.silenced_on.as_deref().unwrap_or("it");
    match (&instance.silenced_until, &instance.silence_refused) {
        (Some(until), _) => format!(
            "\n    silenced until {until} ({} on {on}): this alert was held while the silence lasted",
            crate::silence::TAG_KEY
        ),
        (None, Some(why)) => format!("\n    not silenced: {why}"),
        (None, None) => String::new(),
    }
}

/// A time as the event said it, and how long ago: `2026-12-04T09:58:00Z (14 min ago)`.
pub(crate) fn since(when: Option<&str>, now: u64) -> String {
    let Some(when) = when else {
        return "an unknown time".to_owned();
    };
    let at = DateTime::from_str(when, Format::DateTime)
        .ok()
        .and_then(|t| u64::try_from(t.secs()).ok());
    match at {
        Some(at) if now >= at && now > 0 => format!("{when} ({} ago)", lasted(now - at)),
        _ => when.to_owned(),
    }
}

/// The first instance the list names: the one the next steps' commands take as their example.
pub(crate) fn first(finding: &Finding) -> Option<&InstanceFinding> {
    finding.instances.first()
}

/// The host to open a shell on: the EC2 instance (or ECS Anywhere managed node) id, else the
/// container instance's ARN (with which the commands still work in ECS).
pub(crate) fn host(instance: &InstanceFinding) -> &str {
    instance
        .ec2_instance_id
        .as_deref()
        .unwrap_or(&instance.container_instance_arn)
}

/// How long an incident has lasted, for people: `4 h 10 min`, `25 min`, `40 s`.
pub fn lasted(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// Whether some instances listed are DRAINING (a drain or repair that stalled) and some still
/// ACTIVE (or none listed): what the monitor checked differs, and a message with both says both.
pub(crate) fn draining_active(instances: &[InstanceFinding]) -> (bool, bool) {
    let draining = instances.iter().any(|i| i.draining);
    let active = instances.iter().any(|i| !i.draining) || instances.is_empty();
    (draining, active)
}

/// The lines whose condition holds, in order.
pub(crate) fn those_true(lines: &[(&'static str, bool)]) -> Vec<&'static str> {
    lines
        .iter()
        .filter(|(_, true_of)| *true_of)
        .map(|(line, _)| *line)
        .collect()
}

/// How many container instances, each counted once (one may lose several daemons).
pub(crate) fn distinct<'a>(instances: impl Iterator<Item = &'a InstanceFinding>) -> usize {
    let mut arns: Vec<&str> = instances.map(|i| i.container_instance_arn.as_str()).collect();
    arns.sort_unstable();
    arns.dedup();
    arns.len()
}
