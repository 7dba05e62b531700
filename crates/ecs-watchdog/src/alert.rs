//! Alerts: one message per cluster and kind, readable for people (`email`) and exact for
//! machines (`default`, the [`Finding`] as JSON). Pure rendering, no I/O.

use serde::Serialize;

/// SNS accepts at most 256 KiB for the whole message; keep a margin for attributes and subject.
const MAX_MESSAGE_BYTES: usize = 240 * 1024;
/// How many instances the e-mail lists one by one; the JSON lists all that fit.
const EMAIL_LISTED: usize = 50;
const MAX_SUBJECT_CHARS: usize = 99;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    AgentDisconnected,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::AgentDisconnected => "agent-disconnected",
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
    /// What the monitor did about it.
    pub action: &'static str,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One container instance in a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// Renders the agent-disconnected alert for one cluster.
pub fn agent_alert(region: &str, cluster_arn: &str, mut instances: Vec<InstanceFinding>) -> Alert {
    instances.sort_by(|a, b| a.container_instance_arn.cmp(&b.container_instance_arn));
    let cluster_name = crate::inventory::cluster_name(cluster_arn).to_owned();
    let mut finding = Finding {
        schema_version: "1",
        kind: AlertKind::AgentDisconnected,
        severity: Severity::High,
        region: region.to_owned(),
        cluster_name: cluster_name.clone(),
        cluster_arn: cluster_arn.to_owned(),
        instances,
        omitted_instances: 0,
        checked: vec![
            "DescribeContainerInstances: still ACTIVE with agentConnected=false after the grace period",
            "DescribeInstances: the EC2 instance is running (skipped for ECS Anywhere)",
        ],
        action: "alerted only: remediation is off",
    };
    loop {
        let alert = render_agent(&finding);
        if alert.message().len() <= MAX_MESSAGE_BYTES || finding.instances.len() <= 1 {
            return alert;
        }
        let keep = finding.instances.len() / 2;
        finding.omitted_instances += finding.instances.len() - keep;
        finding.instances.truncate(keep);
    }
}

fn render_agent(finding: &Finding) -> Alert {
    let total = finding.instances.len() + finding.omitted_instances;
    let noun = if total == 1 { "instance" } else { "instances" };
    let subject = subject(
        &format!("ECS agent disconnected on {total} {noun} in "),
        &finding.cluster_name,
        &format!(" ({})", finding.region),
    );

    let mut email = format!(
        "The ECS container agent on {total} container {noun} in cluster {cluster} ({region}) lost its connection \
         to the ECS control plane and has not reconnected after the grace period.\n\
         ECS cannot start, stop or report tasks there until it does; tasks already running keep running unmanaged.\n\n\
         Instances:\n",
        cluster = finding.cluster_name,
        region = finding.region,
    );
    for instance in finding.instances.iter().take(EMAIL_LISTED) {
        email.push_str(&format!(
            "  - {ec2} ({az}): disconnected since {since}, {tasks} running task(s), agent {agent}\n    container instance {arn}\n",
            ec2 = instance.ec2_instance_id.as_deref().unwrap_or("unknown EC2 id"),
            az = instance.availability_zone.as_deref().unwrap_or("unknown zone"),
            since = instance.since.as_deref().unwrap_or("an unknown time"),
            tasks = instance.running_tasks_count,
            agent = instance.agent_version.as_deref().unwrap_or("version unknown"),
            arn = instance.container_instance_arn,
        ));
    }
    let unlisted = total - finding.instances.len().min(EMAIL_LISTED);
    if unlisted > 0 {
        email.push_str(&format!("  ... and {unlisted} more (the JSON finding lists them)\n"));
    }
    email.push_str("\nWhat the monitor checked:\n");
    for check in &finding.checked {
        email.push_str(&format!("  - {check}\n"));
    }
    email.push_str(&format!("\nWhat it did: {}\n", finding.action));
    let example = finding
        .instances
        .first()
        .and_then(|i| i.ec2_instance_id.as_deref())
        .unwrap_or("<instance-id>");
    email.push_str(&format!(
        "\nWhat to do next:\n\
         1. Open a shell on the instance: aws ssm start-session --region {region} --target {example}\n\
         2. Look at the agent: sudo systemctl status ecs; sudo tail -n 200 /var/log/ecs/ecs-agent.log\n\
         3. Restart it: sudo systemctl restart ecs (it reconnects within a minute when the instance is healthy)\n\
         4. If it does not come back, drain the instance so ECS moves its tasks, then replace it:\n   \
            aws ecs update-container-instances-state --region {region} --cluster {cluster} --status DRAINING --container-instances <arn>\n\
         Many instances in one zone at once point to the zone or the network (VPC endpoints, NAT, proxy), not the agent.\n",
        region = finding.region,
        cluster = finding.cluster_name,
    ));

    Alert {
        cluster_name: finding.cluster_name.clone(),
        kind: finding.kind,
        severity: finding.severity,
        subject,
        email,
        default: serde_json::to_string(finding).unwrap_or_default(),
    }
}

/// `prefix + name + suffix`, shortening the name so the subject stays under 100 characters.
fn subject(prefix: &str, name: &str, suffix: &str) -> String {
    let room = MAX_SUBJECT_CHARS.saturating_sub(prefix.len() + suffix.len());
    let name: String = if name.chars().count() > room {
        name.chars().take(room.saturating_sub(3)).chain("...".chars()).collect()
    } else {
        name.to_owned()
    };
    format!("{prefix}{name}{suffix}")
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
        }
    }

    const CLUSTER: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/prod";

    #[test]
    fn when_one_instance_is_confirmed_then_the_alert_says_what_where_and_what_next() {
        let alert = agent_alert("eu-west-1", CLUSTER, vec![instance(1)]);
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
    }

    #[test]
    fn when_a_zone_fails_then_one_alert_stays_within_sns_limits() {
        let alert = agent_alert("eu-west-1", CLUSTER, (0..5000).map(instance).collect());
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
    fn when_the_cluster_name_is_long_then_the_subject_stays_under_100_characters() {
        let long = format!("arn:aws:ecs:eu-west-1:1:cluster/{}", "c".repeat(255));
        let alert = agent_alert("ap-southeast-2", &long, vec![instance(1)]);
        assert!(alert.subject.len() < 100, "{}", alert.subject);
        assert!(alert.subject.ends_with("... (ap-southeast-2)"), "{}", alert.subject);
    }
}
