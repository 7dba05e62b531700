//! The `daemon-deployment-failed` alert's text: each daemon whose deployment failed, and what to
//! do about a rollback and a failed one.

use std::fmt::Write;

use super::kind::Kind;
use crate::alert::finding::{DaemonChecks, EMAIL_LISTED, Finding, InstanceFinding, Severity};
use crate::alert::frame::shorten_name;
use crate::alert::lines::{first, silence_line, since};
use crate::event;
use crate::kind::AlertKind;
use crate::metrics::Metric;

fn body(email: &mut String, finding: &Finding, now: u64) {
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
fn next_steps(email: &mut String, finding: &Finding) {
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

pub struct DaemonDeploymentFailed;

impl Kind for DaemonDeploymentFailed {
    fn kind(&self) -> AlertKind {
        AlertKind::DaemonDeploymentFailed
    }

    fn detail_types(&self) -> &'static [&'static str] {
        &[event::DAEMON_DEPLOYMENT_STATE_CHANGE]
    }

    fn headline(&self, daemons: &[&str]) -> String {
        match daemons {
            [one] => format!("ECS daemon {} deployment failed", shorten_name(one, 40)),
            _ => "ECS daemon deployments failed".to_owned(),
        }
    }

    fn of_instances(&self) -> bool {
        false
    }

    fn body(&self, email: &mut String, finding: &Finding, now: u64) {
        body(email, finding, now);
    }

    fn next_steps(&self, email: &mut String, finding: &Finding) {
        next_steps(email, finding);
    }

    fn checked(&self, _checks: DaemonChecks, _instances: &[InstanceFinding]) -> Vec<&'static str> {
        vec![
            "the deployment event itself: ECS reports the failure; a later successful deployment of the daemon resolves it",
        ]
    }

    /// Critical when the rollback failed too, high when it rolls back.
    fn severity(&self, instances: &[InstanceFinding], _widespread: &dyn Fn(usize) -> bool) -> Severity {
        if instances.iter().any(|i| i.rollback_failed) {
            Severity::Critical
        } else {
            Severity::High
        }
    }

    fn metric(&self) -> Option<Metric> {
        Some(Metric::DaemonDeploymentFailed)
    }

    fn recovered(&self) -> Option<&'static str> {
        Some("recovered: a later deployment of the daemon succeeded")
    }

    fn ended_by_its_events(&self) -> bool {
        true
    }
}
