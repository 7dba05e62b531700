//! The `daemon-deployment-failed` alert's text: each daemon whose deployment failed, and what to
//! do about a rollback and a failed one.

use std::fmt::Write;

use super::{EMAIL_LISTED, Finding};

pub(super) fn body(email: &mut String, finding: &Finding) {
    let (cluster, place) = (&finding.cluster_name, finding.place());
    let _ = write!(
        email,
        "A deployment of ECS Managed Daemons failed in cluster {cluster} ({place}).\n\n"
    );
    for instance in finding.instances.iter().take(EMAIL_LISTED) {
        let _ = writeln!(
            email,
            "  - daemon {}: {} (at {})\n    deployment {}",
            instance.daemon_name.as_deref().unwrap_or("unknown"),
            instance.reason.as_deref().unwrap_or("failed"),
            instance.since.as_deref().unwrap_or("an unknown time"),
            instance.deployment_arn.as_deref().unwrap_or("unknown"),
        );
    }
}

pub(super) fn next_steps(email: &mut String, region: &str, cluster: &str) {
    let _ = write!(
        email,
        "\nWhat to do next:\n\
         1. See why: aws ecs describe-daemon-deployments --region {region} --daemon-deployment-arns <deployment> \
            (statusReason, the circuit breaker's failure count, the alarms that fired)\n\
         2. Rolling back: the daemon returns to its previous revision; fix the new revision (image, configuration, \
            health check, resources) before deploying it again\n\
         3. Rollback failed: instances may run without the daemon or with a mix of revisions; look at the daemon's \
            tasks (aws ecs list-tasks --region {region} --cluster {cluster} --daemon-name <daemon>) and deploy a known good revision\n"
    );
}
