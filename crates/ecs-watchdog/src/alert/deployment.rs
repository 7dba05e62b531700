//! The `daemon-deployment-failed` alert's text: each daemon whose deployment failed, and what to
//! do about a rollback and a failed one.

use std::fmt::Write;

use super::text::{first, silence_line, since};
use super::{EMAIL_LISTED, Finding};

pub(super) fn body(email: &mut String, finding: &Finding, now: u64) {
    let (cluster, place) = (&finding.cluster_name, finding.place());
    let _ = write!(
        email,
        "A deployment of ECS Managed Daemons failed in cluster {cluster} ({place}).\n\n"
    );
    for instance in finding.instances.iter().take(EMAIL_LISTED) {
        let _ = writeln!(
            email,
            "  - daemon {}: {} (at {})\n    deployment {}{}",
            instance.daemon_name.as_deref().unwrap_or("unknown"),
            instance.reason.as_deref().unwrap_or("failed"),
            since(instance.since.as_deref(), now),
            instance.deployment_arn.as_deref().unwrap_or("unknown"),
            silence_line(instance),
        );
    }
}

/// The steps, with the first daemon's deployment and name in the commands; the rollback step
/// only for a rollback that failed.
pub(super) fn next_steps(email: &mut String, finding: &Finding) {
    let (region, cluster) = (&finding.region, &finding.cluster_name);
    let Some(first) = first(finding) else {
        return;
    };
    let daemon = first.daemon_name.as_deref().unwrap_or("unknown");
    email.push_str("\nWhat to do next:\n");
    match &first.deployment_arn {
        Some(arn) => {
            let _ = writeln!(
                email,
                "1. See why: aws ecs describe-daemon-deployments --region {region} --daemon-deployment-arns {arn} \
                 (statusReason, the circuit breaker's failure count, the alarms that fired)"
            );
        }
        None => {
            let _ = writeln!(
                email,
                "1. See why: aws ecs list-daemon-deployments --region {region} --cluster {cluster} --daemon-name {daemon}, \
                 then describe the failed one (statusReason, the circuit breaker's failure count, the alarms that fired)"
            );
        }
    }
    if first.rollback_failed {
        let _ = writeln!(
            email,
            "2. The rollback failed: instances may run without the daemon or with a mix of revisions; look at the \
             daemon's tasks (aws ecs list-tasks --region {region} --cluster {cluster} --daemon-name {daemon}) and \
             deploy a known good revision"
        );
    } else {
        email.push_str(
            "2. ECS is rolling back: the daemon returns to its previous revision; fix the new revision (image, \
             configuration, health check, resources) before deploying it again\n",
        );
    }
}
