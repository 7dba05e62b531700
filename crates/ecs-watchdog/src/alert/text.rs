//! The alert's text: its subject, the e-mail every kind shares (preface, list, what was
//! checked and done, links, next steps), and the pieces the kinds' modules use.

use std::collections::BTreeMap;
use std::fmt::Write;

use aws_smithy_types::date_time::{DateTime, Format};

use super::{
    Alert, AlertKind, EMAIL_LISTED, Facts, Finding, InstanceFinding, MessageStatus, Status, agent, daemon, deployment,
    digest, frame, health, impaired, subject,
};
use crate::inventory::instance_key;

pub(super) fn render(finding: &Finding, facts: Facts, status: MessageStatus, incident: &str) -> Alert {
    let (total, noun) = finding.counted();
    let (cluster, place) = (&finding.cluster_name, finding.place());
    let daemons: BTreeMap<&str, Vec<&InstanceFinding>> =
        finding.instances.iter().fold(BTreeMap::new(), |mut map, i| {
            map.entry(i.daemon_name.as_deref().unwrap_or("unknown"))
                .or_insert_with(Vec::new)
                .push(i);
            map
        });
    let what = headline(finding.kind, &daemons.keys().copied().collect::<Vec<_>>());
    let more = if finding.digest.is_some() { " more" } else { "" };
    let on = match finding.kind {
        AlertKind::DaemonDeploymentFailed => String::new(),
        _ => format!(" on {total}{more} {noun}"),
    };
    let subject = subject(&format!("{what}{on} in "), cluster, &format!(" ({place})"));

    let mut email = String::new();
    if let Some(counts) = &finding.digest {
        digest::preface(&mut email, counts, total, noun);
    }
    let _ = writeln!(email, "Severity: {}\n", finding.severity.as_str());
    match finding.kind {
        AlertKind::AgentDisconnected => agent::body(&mut email, finding, facts.now),
        AlertKind::DaemonLost => daemon::body(&mut email, finding, &daemons, facts.now),
        AlertKind::InstanceImpaired => health::body(&mut email, finding, facts.now),
        AlertKind::DaemonDeploymentFailed => deployment::body(&mut email, finding, facts.now),
        AlertKind::MonitorImpaired => impaired::body(&mut email, finding),
    }
    let listed = finding.instances.len();
    frame::and_more(&mut email, total, listed.min(EMAIL_LISTED), listed);
    email.push_str("\nWhat the monitor checked:\n");
    for check in &finding.checked {
        let _ = writeln!(email, "  - {check}");
    }
    let _ = writeln!(email, "\nWhat it did: {}", finding.action);
    if finding.kind != AlertKind::MonitorImpaired {
        links(&mut email, finding, facts.dashboard);
    }
    match finding.kind {
        AlertKind::AgentDisconnected => agent::next_steps(&mut email, finding),
        AlertKind::DaemonLost => daemon::next_steps(&mut email, finding),
        AlertKind::InstanceImpaired => health::next_steps(&mut email, finding),
        AlertKind::DaemonDeploymentFailed => deployment::next_steps(&mut email, finding),
        AlertKind::MonitorImpaired => email.push_str(impaired::NEXT_STEPS),
    }

    Alert {
        cluster_name: finding.cluster_name.clone(),
        kind: finding.kind,
        status: Status::Firing,
        message_status: status,
        severity: finding.severity,
        account: finding.account.clone(),
        region: finding.region.clone(),
        incident: incident.to_owned(),
        subject,
        email,
        default: serde_json::to_string(finding).unwrap_or_default(),
        thread: super::thread(&finding.account, &finding.region, &finding.cluster_name, finding.kind),
    }
}

/// What broke, in a subject: `ECS agent disconnected`, `ECS daemon log-router lost`.
pub(crate) fn headline(kind: AlertKind, daemons: &[&str]) -> String {
    match kind {
        AlertKind::AgentDisconnected => "ECS agent disconnected".to_owned(),
        AlertKind::DaemonLost => match daemons {
            [one] => format!("ECS daemon {} lost", super::shorten_name(one, 40)),
            _ => "ECS daemons lost".to_owned(),
        },
        AlertKind::InstanceImpaired => "ECS instance impaired".to_owned(),
        AlertKind::DaemonDeploymentFailed => match daemons {
            [one] => format!("ECS daemon {} deployment failed", super::shorten_name(one, 40)),
            _ => "ECS daemon deployments failed".to_owned(),
        },
        AlertKind::MonitorImpaired => "ECS Watchdog cannot see".to_owned(),
    }
}

/// What remediation did to the instance, and how long its incident lasts, as lines of their own.
pub(super) fn remediation_line(instance: &InstanceFinding) -> String {
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
pub(super) fn silence_line(instance: &InstanceFinding) -> String {
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
pub(super) fn since(when: Option<&str>, now: u64) -> String {
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
pub(super) fn first(finding: &Finding) -> Option<&InstanceFinding> {
    finding.instances.first()
}

/// The host to open a shell on: the EC2 instance (or ECS Anywhere managed node) id, else the
/// container instance's ARN (with which the commands still work in ECS).
pub(super) fn host(instance: &InstanceFinding) -> &str {
    instance
        .ec2_instance_id
        .as_deref()
        .unwrap_or(&instance.container_instance_arn)
}

/// The console's pages for the cluster, the first instance, a shell on its host, and the
/// stack's dashboard. ECS console v2, Session Manager and CloudWatch dashboard URLs; the region
/// picks the console's partition-wide page.
fn links(email: &mut String, finding: &Finding, dashboard: Option<&str>) {
    let (region, cluster) = (&finding.region, &finding.cluster_name);
    let base = format!("https://{region}.console.aws.amazon.com");
    let _ = write!(
        email,
        "\nLinks:\n  - cluster: {base}/ecs/v2/clusters/{cluster}/infrastructure?region={region}\n"
    );
    if let Some(name) = dashboard {
        let _ = writeln!(
            email,
            "  - dashboard: {base}/cloudwatch/home?region={region}#dashboards:name={name}"
        );
    }
    let Some(instance) = first(finding).filter(|_| finding.kind != AlertKind::DaemonDeploymentFailed) else {
        return;
    };
    let _ = writeln!(
        email,
        "  - container instance: {base}/ecs/v2/clusters/{cluster}/infrastructure/container-instances/{}?region={region}",
        instance_key(&instance.container_instance_arn)
    );
    if let Some(id) = &instance.ec2_instance_id {
        let _ = writeln!(
            email,
            "  - shell on {id} (Session Manager): {base}/systems-manager/session-manager/{id}?region={region}"
        );
    }
}

/// How long an incident has lasted, for people: `4 h 10 min`, `25 min`, `40 s`.
pub fn lasted(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}
