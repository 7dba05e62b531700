//! The `agent-disconnected` alert's text: each instance with since when and its agent, and how
//! to bring the agent back.

use std::fmt::Write;

use super::text::{first, host, remediation_line, since};
use super::{EMAIL_LISTED, Finding};

pub(super) fn body(email: &mut String, finding: &Finding, now: u64) {
    let (total, noun) = finding.counted();
    let (cluster, place) = (&finding.cluster_name, finding.place());
    let _ = write!(
        email,
        "The ECS container agent on {total} container {noun} in cluster {cluster} ({place}) lost its connection \
         to the ECS control plane and has not reconnected after the grace period.\n\
         ECS cannot start, stop or report tasks there until it does; tasks already running keep running unmanaged.\n\n\
         Instances:\n"
    );
    for instance in finding.instances.iter().take(EMAIL_LISTED) {
        let _ = writeln!(
            email,
            "  - {} ({}): {}disconnected since {}, {} running task(s), agent {}{}\n    container instance {}{}",
            instance.ec2_instance_id.as_deref().unwrap_or("unknown EC2 id"),
            instance.availability_zone.as_deref().unwrap_or("unknown zone"),
            if instance.draining { "DRAINING, " } else { "" },
            since(instance.since.as_deref(), now),
            instance.running_tasks_count,
            instance.agent_version.as_deref().unwrap_or("version unknown"),
            instance
                .host_check
                .as_deref()
                .map(|h| format!("; {h}"))
                .unwrap_or_default(),
            instance.container_instance_arn,
            remediation_line(instance),
        );
    }
}

/// The steps, with the first instance's ids in the commands; no drain advice for an instance
/// ECS is already draining.
pub(super) fn next_steps(email: &mut String, finding: &Finding) {
    let (region, cluster) = (&finding.region, &finding.cluster_name);
    let Some(instance) = first(finding) else {
        return;
    };
    let (target, arn) = (host(instance), &instance.container_instance_arn);
    let _ = write!(
        email,
        "\nWhat to do next:\n\
         1. Open a shell on the instance: aws ssm start-session --region {region} --target {target}\n\
         2. Look at the agent: sudo systemctl status ecs; sudo tail -n 200 /var/log/ecs/ecs-agent.log\n\
         3. Restart it: sudo systemctl restart ecs (it reconnects within a minute when the instance is healthy)\n"
    );
    if instance.draining {
        let _ = write!(
            email,
            "4. It is already DRAINING: the drain finishes once the agent is back. If it does not come back, \
             deregister it (its tasks are stopped and rescheduled) and replace the host:\n   \
             aws ecs deregister-container-instance --region {region} --cluster {cluster} --container-instance {arn} --force\n"
        );
    } else {
        let _ = write!(
            email,
            "4. If it does not come back, drain the instance so ECS moves its tasks, then replace it:\n   \
             aws ecs update-container-instances-state --region {region} --cluster {cluster} --status DRAINING --container-instances {arn}\n"
        );
    }
    email.push_str(
        "Many instances in one zone at once point to the zone or the network (VPC endpoints, NAT, proxy), not the agent.\n",
    );
}
