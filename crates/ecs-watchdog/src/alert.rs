//! Alerts: one message per cluster and kind, readable for people (`email`) and exact for
//! machines (`default`, the [`Finding`] as JSON). Pure rendering, no I/O.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::event::ContainerExit;

/// SNS accepts at most 256 KiB for the whole message; keep a margin for attributes and subject.
const MAX_MESSAGE_BYTES: usize = 240 * 1024;
/// How many instances the e-mail lists one by one; the JSON lists all that fit.
const EMAIL_LISTED: usize = 50;
const MAX_SUBJECT_CHARS: usize = 99;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    AgentDisconnected,
    DaemonLost,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::AgentDisconnected => "agent-disconnected",
            AlertKind::DaemonLost => "daemon-lost",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
        }
    }
}

/// A confirmed failure on one cluster, as machines read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub schema_version: &'static str,
    pub kind: AlertKind,
    pub severity: Severity,
    pub region: String,
    pub cluster_name: String,
    pub cluster_arn: String,
    pub instances: Vec<InstanceFinding>,
    /// Instances confirmed but left out of `instances` to keep the message within SNS's limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub omitted_instances: usize,
    /// What the monitor looked at before deciding.
    pub checked: Vec<&'static str>,
    /// What the monitor does about confirmed failures; each instance's `remediation` says
    /// what was done to it.
    pub action: String,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One container instance in a finding. The daemon fields are set for `daemon-lost` only.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceFinding {
    pub container_instance_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ec2_instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// When ECS reported the change, as the event said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    pub running_tasks_count: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daemon_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerExit>,
    /// `TASK_FAILED_TO_RUN` or `TASK_CREATION_FAILED`, for a daemon that could not start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What remediation did (or would do, in a dry run) to this instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
}

/// A rendered alert, ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub cluster_name: String,
    pub kind: AlertKind,
    pub severity: Severity,
    pub subject: String,
    pub email: String,
    /// The finding as JSON.
    pub default: String,
}

impl Alert {
    /// The SNS message with `MessageStructure=json`.
    pub fn message(&self) -> String {
        serde_json::json!({"default": self.default, "email": self.email}).to_string()
    }
}

/// What the monitor could check before it confirmed a lost daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaemonChecks {
    /// False when the Managed Daemons APIs were unavailable.
    pub deployments: bool,
}

/// Renders the alert of one kind for one cluster.
pub fn alert(
    kind: AlertKind,
    region: &str,
    cluster_arn: &str,
    mut instances: Vec<InstanceFinding>,
    checks: DaemonChecks,
    action: &str,
) -> Alert {
    instances
        .sort_by(|a, b| (&a.daemon_name, &a.container_instance_arn).cmp(&(&b.daemon_name, &b.container_instance_arn)));
    let checked = match kind {
        AlertKind::AgentDisconnected => vec![
            "DescribeContainerInstances: still ACTIVE with agentConnected=false after the grace period",
            "DescribeInstances: the EC2 instance is running (skipped for ECS Anywhere)",
        ],
        AlertKind::DaemonLost => {
            let mut checked = vec![
                "DescribeContainerInstances: the instance is still ACTIVE, so ECS is not replacing it",
                "ListTasks and DescribeTasks: no RUNNING or PENDING task of the daemon on the instance",
            ];
            checked.push(if checks.deployments {
                "ListDaemons and ListDaemonDeployments: no deployment of the daemon in progress"
            } else {
                "ListDaemons and ListDaemonDeployments: unavailable (region or permission), so a deployment in progress could not be ruled out"
            });
            checked
        }
    };
    let mut finding = Finding {
        schema_version: "1",
        kind,
        severity: Severity::High,
        region: region.to_owned(),
        cluster_name: crate::inventory::cluster_name(cluster_arn).to_owned(),
        cluster_arn: cluster_arn.to_owned(),
        instances,
        omitted_instances: 0,
        checked,
        action: action.to_owned(),
    };
    loop {
        let alert = render(&finding);
        if alert.message().len() <= MAX_MESSAGE_BYTES || finding.instances.len() <= 1 {
            return alert;
        }
        let keep = finding.instances.len() / 2;
        finding.omitted_instances += finding.instances.len() - keep;
        finding.instances.truncate(keep);
    }
}

fn render(finding: &Finding) -> Alert {
    let total = finding.instances.len() + finding.omitted_instances;
    let noun = if total == 1 { "instance" } else { "instances" };
    let (cluster, region) = (&finding.cluster_name, &finding.region);
    let daemons: BTreeMap<&str, Vec<&InstanceFinding>> =
        finding.instances.iter().fold(BTreeMap::new(), |mut map, i| {
            map.entry(i.daemon_name.as_deref().unwrap_or("unknown"))
                .or_insert_with(Vec::new)
                .push(i);
            map
        });
    let what = match finding.kind {
        AlertKind::AgentDisconnected => "ECS agent disconnected".to_owned(),
        AlertKind::DaemonLost => match daemons.keys().collect::<Vec<_>>().as_slice() {
            [one] => format!("ECS daemon {} lost", shorten(one, 40)),
            _ => "ECS daemons lost".to_owned(),
        },
    };
    let subject = subject(
        &format!("{what} on {total} {noun} in "),
        cluster,
        &format!(" ({region})"),
    );

    let mut email = String::new();
    match finding.kind {
        AlertKind::AgentDisconnected => {
            let _ = write!(
                email,
                "The ECS container agent on {total} container {noun} in cluster {cluster} ({region}) lost its connection \
                 to the ECS control plane and has not reconnected after the grace period.\n\
                 ECS cannot start, stop or report tasks there until it does; tasks already running keep running unmanaged.\n\n\
                 Instances:\n"
            );
            for instance in finding.instances.iter().take(EMAIL_LISTED) {
                let _ = writeln!(
                    email,
                    "  - {} ({}): disconnected since {}, {} running task(s), agent {}\n    container instance {}{}",
                    instance.ec2_instance_id.as_deref().unwrap_or("unknown EC2 id"),
                    instance.availability_zone.as_deref().unwrap_or("unknown zone"),
                    instance.since.as_deref().unwrap_or("an unknown time"),
                    instance.running_tasks_count,
                    instance.agent_version.as_deref().unwrap_or("version unknown"),
                    instance.container_instance_arn,
                    remediation_line(instance),
                );
            }
        }
        AlertKind::DaemonLost => {
            let _ = write!(
                email,
                "ECS Managed Daemons are not running on {total} container {noun} in cluster {cluster} ({region}) after the \
                 grace period, and ECS is not replacing those instances.\n\
                 Until the daemon runs again, these instances work without it: no logs, metrics or security coverage from it.\n"
            );
            let mut listed = 0;
            for (daemon, instances) in &daemons {
                let _ = write!(
                    email,
                    "\nDaemon {daemon} ({} {}):\n",
                    instances.len(),
                    if instances.len() == 1 { "instance" } else { "instances" }
                );
                for instance in instances.iter().take(EMAIL_LISTED.saturating_sub(listed)) {
                    listed += 1;
                    let _ = writeln!(
                        email,
                        "  - {} ({}): {}\n    container instance {}{}",
                        instance.ec2_instance_id.as_deref().unwrap_or("unknown EC2 id"),
                        instance.availability_zone.as_deref().unwrap_or("unknown zone"),
                        daemon_cause(instance),
                        instance.container_instance_arn,
                        remediation_line(instance),
                    );
                }
            }
        }
    }
    let unlisted = total - finding.instances.len().min(EMAIL_LISTED);
    if unlisted > 0 {
        let _ = writeln!(email, "  ... and {unlisted} more (the JSON finding lists them)");
    }
    email.push_str("\nWhat the monitor checked:\n");
    for check in &finding.checked {
        let _ = writeln!(email, "  - {check}");
    }
    let _ = writeln!(email, "\nWhat it did: {}", finding.action);
    let example = finding
        .instances
        .first()
        .and_then(|i| i.ec2_instance_id.as_deref())
        .unwrap_or("<instance-id>");
    match finding.kind {
        AlertKind::AgentDisconnected => {
            let _ = write!(
                email,
                "\nWhat to do next:\n\
                 1. Open a shell on the instance: aws ssm start-session --region {region} --target {example}\n\
                 2. Look at the agent: sudo systemctl status ecs; sudo tail -n 200 /var/log/ecs/ecs-agent.log\n\
                 3. Restart it: sudo systemctl restart ecs (it reconnects within a minute when the instance is healthy)\n\
                 4. If it does not come back, drain the instance so ECS moves its tasks, then replace it:\n   \
                    aws ecs update-container-instances-state --region {region} --cluster {cluster} --status DRAINING --container-instances <arn>\n\
                 Many instances in one zone at once point to the zone or the network (VPC endpoints, NAT, proxy), not the agent.\n"
            );
        }
        AlertKind::DaemonLost => {
            let _ = write!(
                email,
                "\nWhat to do next:\n\
                 1. See why the task stopped: aws ecs describe-tasks --region {region} --cluster {cluster} --tasks <task-arn>, then the daemon's logs\n\
                 2. TASK_CREATION_FAILED means the instance lacks CPU, memory or ports for the daemon: size the daemon or the instance type\n\
                 3. An image, configuration or health check problem on every instance points to the daemon's last revision: roll it back\n\
                 4. To get coverage back on this instance now, drain it so ECS replaces it:\n   \
                    aws ecs update-container-instances-state --region {region} --cluster {cluster} --status DRAINING --container-instances <arn>\n"
            );
        }
    }

    Alert {
        cluster_name: finding.cluster_name.clone(),
        kind: finding.kind,
        severity: finding.severity,
        subject,
        email,
        default: serde_json::to_string(finding).unwrap_or_default(),
    }
}

/// What remediation did to the instance, as a line of its own.
fn remediation_line(instance: &InstanceFinding) -> String {
    instance
        .remediation
        .as_ref()
        .map(|r| format!("\n    remediation: {r}"))
        .unwrap_or_default()
}

/// One line on why a daemon is not running: the stop code, reason and exit codes, or the
/// start failure.
fn daemon_cause(instance: &InstanceFinding) -> String {
    let since = instance.since.as_deref().unwrap_or("an unknown time");
    if let Some(failure) = &instance.failure_type {
        let reason = instance.reason.as_deref().unwrap_or("no reason given");
        return format!("could not start ({failure}) since {since}: {reason}");
    }
    let mut text = format!(
        "stopped since {since}: {} ({})",
        instance.stop_code.as_deref().unwrap_or("no stop code"),
        instance.stopped_reason.as_deref().unwrap_or("no reason given"),
    );
    let exits: Vec<String> = instance
        .containers
        .iter()
        .map(|c| {
            let code = c
                .exit_code
                .map_or("no exit code".to_owned(), |code| format!("exit code {code}"));
            match &c.reason {
                Some(reason) => format!("{} {code} ({reason})", c.name),
                None => format!("{} {code}", c.name),
            }
        })
        .collect();
    if !exits.is_empty() {
        let _ = write!(text, "; {}", exits.join(", "));
    }
    text
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        text.chars().take(max.saturating_sub(3)).chain("...".chars()).collect()
    } else {
        text.to_owned()
    }
}

/// `prefix + name + suffix`, shortening the name so the subject stays under 100 characters.
fn subject(prefix: &str, name: &str, suffix: &str) -> String {
    let room = MAX_SUBJECT_CHARS.saturating_sub(prefix.len() + suffix.len());
    format!("{prefix}{}{suffix}", shorten(name, room))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn instance(n: usize) -> InstanceFinding {
        InstanceFinding {
            container_instance_arn: format!("arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/{n:032}"),
            ec2_instance_id: Some(format!("i-{n:017}")),
            availability_zone: Some("eu-west-1a".into()),
            since: Some("2026-11-21T09:58:00Z".into()),
            running_tasks_count: 3,
            agent_version: Some("1.90.0".into()),
            ..Default::default()
        }
    }

    fn stopped(n: usize, daemon: &str) -> InstanceFinding {
        InstanceFinding {
            agent_version: None,
            daemon_name: Some(daemon.into()),
            task_arn: Some(format!("arn:aws:ecs:eu-west-1:123456789012:task/prod/{n}")),
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: Some("Essential container in task exited".into()),
            containers: vec![ContainerExit {
                name: "fluent-bit".into(),
                exit_code: Some(139),
                reason: None,
            }],
            ..instance(n)
        }
    }

    const CLUSTER: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/prod";
    const CHECKED: DaemonChecks = DaemonChecks { deployments: true };
    const ACTION: &str = "alerted only: remediation is off";

    #[test]
    fn when_one_instance_is_confirmed_then_the_alert_says_what_where_and_what_next() {
        let alert = alert(
            AlertKind::AgentDisconnected,
            "eu-west-1",
            CLUSTER,
            vec![instance(1)],
            CHECKED,
            ACTION,
        );
        assert_eq!(
            alert.subject,
            "ECS agent disconnected on 1 instance in prod (eu-west-1)"
        );
        assert_eq!(
            (
                alert.kind.as_str(),
                alert.severity.as_str(),
                alert.cluster_name.as_str()
            ),
            ("agent-disconnected", "high", "prod")
        );
        for needle in [
            "i-00000000000000001",
            "eu-west-1a",
            "since 2026-11-21T09:58:00Z",
            "What the monitor checked",
            "What it did",
            "What to do next",
            "systemctl restart ecs",
        ] {
            assert!(alert.email.contains(needle), "email lacks {needle:?}:\n{}", alert.email);
        }
        let message: Value = serde_json::from_str(&alert.message()).unwrap();
        assert_eq!(message["email"], alert.email);
        let finding: Value = serde_json::from_str(message["default"].as_str().unwrap()).unwrap();
        assert_eq!(finding["kind"], "agent-disconnected");
        assert_eq!(finding["clusterName"], "prod");
        assert_eq!(finding["instances"][0]["ec2InstanceId"], "i-00000000000000001");
        assert!(finding.get("omittedInstances").is_none());
        assert!(finding["instances"][0].get("daemonName").is_none());
    }

    #[test]
    fn when_daemons_are_lost_then_the_alert_groups_them_by_daemon_with_their_causes() {
        let impaired = InstanceFinding {
            daemon_name: Some("security-agent".into()),
            failure_type: Some("TASK_CREATION_FAILED".into()),
            reason: Some("RESOURCE:CPU - insufficient CPU".into()),
            agent_version: None,
            ..instance(4)
        };
        let alert = alert(
            AlertKind::DaemonLost,
            "eu-west-1",
            CLUSTER,
            vec![impaired, stopped(3, "log-router")],
            CHECKED,
            ACTION,
        );
        assert_eq!(alert.subject, "ECS daemons lost on 2 instances in prod (eu-west-1)");
        assert_eq!(alert.kind.as_str(), "daemon-lost");
        let log_router = alert.email.find("Daemon log-router (1 instance)").expect(&alert.email);
        let security = alert
            .email
            .find("Daemon security-agent (1 instance)")
            .expect(&alert.email);
        assert!(log_router < security, "daemons listed by name");
        for needle in [
            "EssentialContainerExited (Essential container in task exited); fluent-bit exit code 139",
            "could not start (TASK_CREATION_FAILED)",
            "insufficient CPU",
            "no deployment of the daemon in progress",
        ] {
            assert!(alert.email.contains(needle), "email lacks {needle:?}:\n{}", alert.email);
        }
        let finding: Value = serde_json::from_str(&alert.default).unwrap();
        assert_eq!(finding["instances"][0]["daemonName"], "log-router");
        assert_eq!(finding["instances"][0]["containers"][0]["exitCode"], 139);
        assert_eq!(finding["instances"][1]["failureType"], "TASK_CREATION_FAILED");
    }

    #[test]
    fn when_one_daemon_is_lost_and_deployments_unknown_then_the_subject_names_it_and_the_text_says_so() {
        let alert = alert(
            AlertKind::DaemonLost,
            "eu-west-1",
            CLUSTER,
            vec![stopped(3, "log-router")],
            DaemonChecks { deployments: false },
            ACTION,
        );
        assert_eq!(
            alert.subject,
            "ECS daemon log-router lost on 1 instance in prod (eu-west-1)"
        );
        assert!(alert.email.contains("could not be ruled out"), "{}", alert.email);
    }

    #[test]
    fn when_a_zone_fails_then_one_alert_stays_within_sns_limits() {
        let alert = alert(
            AlertKind::AgentDisconnected,
            "eu-west-1",
            CLUSTER,
            (0..5000).map(instance).collect(),
            CHECKED,
            ACTION,
        );
        assert_eq!(
            alert.subject,
            "ECS agent disconnected on 5000 instances in prod (eu-west-1)"
        );
        assert!(
            alert.message().len() <= MAX_MESSAGE_BYTES,
            "{} bytes",
            alert.message().len()
        );
        let finding: Value = serde_json::from_str(&alert.default).unwrap();
        let listed = finding["instances"].as_array().unwrap().len();
        assert_eq!(listed + finding["omittedInstances"].as_u64().unwrap() as usize, 5000);
        assert!(alert.email.contains(&format!("and {} more", 5000 - EMAIL_LISTED)));
    }

    #[test]
    fn when_names_are_long_then_the_subject_stays_under_100_characters() {
        let long = format!("arn:aws:ecs:eu-west-1:1:cluster/{}", "c".repeat(255));
        let agent = alert(
            AlertKind::AgentDisconnected,
            "ap-southeast-2",
            &long,
            vec![instance(1)],
            CHECKED,
            ACTION,
        );
        assert!(agent.subject.len() < 100, "{}", agent.subject);
        assert!(agent.subject.ends_with("... (ap-southeast-2)"), "{}", agent.subject);
        let daemon = alert(
            AlertKind::DaemonLost,
            "ap-southeast-2",
            &long,
            vec![stopped(1, &"d".repeat(255))],
            CHECKED,
            ACTION,
        );
        assert!(daemon.subject.len() < 100, "{}", daemon.subject);
    }
}
