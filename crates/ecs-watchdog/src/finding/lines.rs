//! The lines every kind's text is made of: since when, on which host, what remediation and a
//! silence did, how long it lasted.

use std::fmt::Write;

use aws_smithy_types::date_time::{DateTime, Format};

use super::{Finding, InstanceFinding};

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

/// Which services lose capacity with the instance, as a line of its own: `services: web (3
/// tasks), api (1 task) and 2 more`; that they could not be listed; nothing when not looked up.
pub(crate) fn services_line(instance: &InstanceFinding) -> String {
    if let Some(error) = &instance.services_error {
        return format!("\n    services: could not be listed ({})", shorten(error, ERROR_CHARS));
    }
    let Some(services) = &instance.services else {
        return String::new();
    };
    if services.is_empty() {
        return "\n    services: none (no task there belongs to a service)".to_owned();
    }
    let named: Vec<String> = services
        .iter()
        .map(|s| {
            let noun = if s.tasks == 1 { "task" } else { "tasks" };
            format!("{} ({} {noun})", shorten_name(&s.name, NAME_CHARS), s.tasks)
        })
        .collect();
    let more = match instance.services_omitted {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    format!("\n    services: {}{more}", named.join(", "))
}

/// How much of a service's name and of a look-up's error a line shows (names may have 255
/// characters; the JSON keeps them whole).
const NAME_CHARS: usize = 60;
const ERROR_CHARS: usize = 200;

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

/// `text` in at most `max` characters, cut before the last space that leaves room for `…`.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    cut(text, max, char::is_whitespace)
}

/// A name (cluster, daemon) in at most `max` characters, cut before a separator (`-`, `_`, `.`,
/// `/`, `:` or a space) so each part left is whole.
pub(crate) fn shorten_name(text: &str, max: usize) -> String {
    cut(text, max, |c| c.is_whitespace() || "-_./:".contains(c))
}

fn cut(text: &str, max: usize, separator: impl Fn(char) -> bool) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let end = text
        .char_indices()
        .take(max.saturating_sub(1) + 1)
        .filter(|&(_, c)| separator(c))
        .map(|(i, _)| i)
        .last()
        .unwrap_or(0);
    format!("{}…", text[..end].trim_end())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::alert::{AlertKind, DaemonChecks, Facts, alert, pagerduty};
    use crate::config::{ChatFormat, Place};
    use crate::finding::{SERVICES_LISTED, ServiceTasks};

    const CLUSTER: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/prod";

    fn service(name: &str, tasks: usize) -> ServiceTasks {
        ServiceTasks {
            name: name.to_owned(),
            tasks,
        }
    }

    fn on(n: usize, services: Option<Vec<ServiceTasks>>) -> InstanceFinding {
        InstanceFinding {
            container_instance_arn: format!("arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/ci-{n}"),
            ec2_instance_id: Some(format!("i-{n:017}")),
            daemon_name: Some("log-router".into()),
            running_tasks_count: 4,
            services,
            ..Default::default()
        }
    }

    #[test]
    fn when_services_were_looked_up_then_the_line_names_them_or_says_why_not() {
        let cases = [
            (on(1, None), ""),
            (
                on(1, Some(Vec::new())),
                "\n    services: none (no task there belongs to a service)",
            ),
            (
                on(1, Some(vec![service("web", 3), service("api", 1)])),
                "\n    services: web (3 tasks), api (1 task)",
            ),
            (
                InstanceFinding {
                    services_omitted: 2,
                    ..on(1, Some(vec![service("web", 3)]))
                },
                "\n    services: web (3 tasks) and 2 more",
            ),
            (
                InstanceFinding {
                    services_error: Some("ecs:ListTasks failed: AccessDeniedException".into()),
                    ..on(1, None)
                },
                "\n    services: could not be listed (ecs:ListTasks failed: AccessDeniedException)",
            ),
        ];
        for (instance, line) in cases {
            assert_eq!(services_line(&instance), line, "{instance:?}");
        }
    }

    /// Where the instance lines are: the e-mail, the chat description made of it, the finding's
    /// JSON (`default`), and PagerDuty's `custom_details`, which carries that finding.
    #[test]
    fn when_an_alert_names_services_then_every_format_carries_them() {
        for kind in [AlertKind::AgentDisconnected, AlertKind::DaemonLost] {
            let instances = vec![on(1, Some(vec![service("web", 3)])), on(2, Some(Vec::new()))];
            let place = Place::new("123456789012", "eu-west-1");
            let checks = DaemonChecks { deployments: true };
            let sent = alert(kind, &place, CLUSTER, instances, checks, "alerted only", Facts::at(0));

            assert!(
                sent.email.contains("\n    services: web (3 tasks)\n"),
                "{kind:?}: {}",
                sent.email
            );
            assert!(sent.email.contains("services: none"), "{}", sent.email);
            let message: Value = serde_json::from_str(&sent.message(ChatFormat::Chatbot)).unwrap();
            let https: Value = serde_json::from_str(message["https"].as_str().unwrap()).unwrap();
            let description = https["content"]["description"].as_str().unwrap();
            assert!(description.contains("services: web (3 tasks)"), "{description}");
            let finding: Value = serde_json::from_str(&sent.default).unwrap();
            assert_eq!(
                finding["instances"][0]["services"],
                serde_json::json!([{"name": "web", "tasks": 3}])
            );
            assert_eq!(finding["instances"][1]["services"], serde_json::json!([]));
            let event = pagerduty::event(&sent, 0);
            let details = &event.payload.expect("a trigger has a payload").custom_details;
            assert_eq!(details["finding"]["instances"][0]["services"][0]["name"], "web");
        }
    }

    #[test]
    fn when_services_are_unknown_or_not_looked_up_then_the_json_says_so_or_nothing() {
        let failed = InstanceFinding {
            services_error: Some("ecs:DescribeTasks failed: throttled".into()),
            ..on(1, None)
        };
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(json["servicesError"], "ecs:DescribeTasks failed: throttled");
        assert!(json.get("services").is_none() && json.get("servicesOmitted").is_none());
        let capped = InstanceFinding {
            services_omitted: 3,
            ..on(1, Some(vec![service("web", 1); SERVICES_LISTED]))
        };
        assert_eq!(serde_json::to_value(&capped).unwrap()["servicesOmitted"], 3);
        // The ledger keeps findings as JSON: what it wrote reads back.
        let back: InstanceFinding = serde_json::from_value(serde_json::to_value(&capped).unwrap()).unwrap();
        assert_eq!(back, capped);
    }
}
