//! The `daemon-lost` alert's text: the instances by daemon with why each daemon is not running,
//! and what to do about it.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::text::{first, remediation_line, since};
use super::{EMAIL_LISTED, Finding, InstanceFinding};

pub(super) fn body(email: &mut String, finding: &Finding, daemons: &BTreeMap<&str, Vec<&InstanceFinding>>, now: u64) {
    let (total, noun) = finding.counted();
    let (cluster, place) = (&finding.cluster_name, finding.place());
    let _ = write!(
        email,
        "ECS Managed Daemons are not running on {total} container {noun} in cluster {cluster} ({place}) after the \
         grace period, and ECS is not replacing those instances.\n\
         Until the daemon runs again, these instances work without it: no logs, metrics or security coverage from it.\n"
    );
    let mut listed = 0;
    for (daemon, instances) in daemons {
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
                daemon_cause(instance, now),
                instance.container_instance_arn,
                remediation_line(instance),
            );
        }
    }
}

/// The steps, with the first instance's task and ARN in the commands; no drain advice for an
/// instance ECS is already draining (a repair under way).
pub(super) fn next_steps(email: &mut String, finding: &Finding) {
    let (region, cluster) = (&finding.region, &finding.cluster_name);
    let Some(instance) = first(finding) else {
        return;
    };
    let arn = &instance.container_instance_arn;
    let see = match &instance.task_arn {
        Some(task) => format!("aws ecs describe-tasks --region {region} --cluster {cluster} --tasks {task}"),
        None => format!(
            "aws ecs list-tasks --region {region} --cluster {cluster} --container-instance {arn} --desired-status STOPPED, then describe-tasks"
        ),
    };
    let _ = write!(
        email,
        "\nWhat to do next:\n\
         1. See why the task stopped: {see}, then the daemon's logs\n\
         2. TASK_CREATION_FAILED means the instance lacks CPU, memory or ports for the daemon: size the daemon or the instance type\n\
         3. An image, configuration or health check problem on every instance points to the daemon's last revision: roll it back\n"
    );
    if instance.draining {
        email.push_str(
            "4. ECS is already DRAINING this instance to replace it: if the replacement does not come, look at the \
             capacity provider's Auto Scaling group activity and the cluster's events\n",
        );
    } else {
        let _ = write!(
            email,
            "4. To get coverage back on this instance now, drain it so ECS replaces it:\n   \
             aws ecs update-container-instances-state --region {region} --cluster {cluster} --status DRAINING --container-instances {arn}\n"
        );
    }
}

/// One line on why a daemon is not running: the stop code, reason and exit codes, or the
/// start failure.
fn daemon_cause(instance: &InstanceFinding, now: u64) -> String {
    let since = since(instance.since.as_deref(), now);
    if let Some(failure) = &instance.failure_type {
        let reason = instance.reason.as_deref().unwrap_or("no reason given");
        return format!("could not start ({failure}) since {since}: {reason}");
    }
    if let (None, Some(reason)) = (&instance.stop_code, &instance.reason) {
        return format!("not running since {since}: {reason}");
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
