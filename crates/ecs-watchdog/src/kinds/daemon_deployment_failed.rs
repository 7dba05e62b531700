//! `daemon-deployment-failed`: the Managed Daemons deployment event that tells it (and the
//! success that ends it), its verdict, and its alert's text: each daemon whose deployment failed,
//! and what to do about a rollback and a failed one.

use super::kind::{Judgement, Kind};
use crate::event::{Envelope, Facts, IgnoreReason, Parsed, RejectReason, Signal};
use crate::finding::lines::shorten_name;
use crate::finding::lines::{first, silence_line, since};
use crate::finding::steps::{NextSteps, Step};
use crate::finding::{DaemonChecks, Finding, InstanceFinding, Severity};
use crate::kind::AlertKind;
use crate::metrics::Metric;
use crate::verdict::{Case, Evidence, Verdict};

/// The detail-type of a Managed Daemons deployment's state change.
pub const DAEMON_DEPLOYMENT_STATE_CHANGE: &str = "ECS Daemon Deployment State Change";

/// What a deployment event says beyond the daemon.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonDeployment {
    pub deployment_arn: Option<String>,
    pub outcome: DeploymentOutcome,
}

/// What a deployment event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentOutcome {
    /// `DAEMON_DEPLOYMENT_ROLLBACK_IN_PROGRESS`: the deployment failed (or its circuit breaker
    /// tripped) and ECS rolls it back.
    RollingBack,
    /// `DAEMON_DEPLOYMENT_ROLLBACK_FAILED` (an ERROR event): the rollback failed too.
    RollbackFailed,
    /// `DAEMON_DEPLOYMENT_SUCCESSFUL`: a deployment of the daemon finished; a failure of it is over.
    Succeeded,
}

impl DeploymentOutcome {
    pub fn event_name(self) -> &'static str {
        match self {
            DeploymentOutcome::RollingBack => "DAEMON_DEPLOYMENT_ROLLBACK_IN_PROGRESS",
            DeploymentOutcome::RollbackFailed => "DAEMON_DEPLOYMENT_ROLLBACK_FAILED",
            DeploymentOutcome::Succeeded => "DAEMON_DEPLOYMENT_SUCCESSFUL",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Self::RollingBack, Self::RollbackFailed, Self::Succeeded]
            .into_iter()
            .find(|o| o.event_name() == name)
    }
}

/// `ECS Daemon Deployment State Change`, page "Daemon events" (managed-daemons-events):
/// `eventName`, `clusterArn`, `daemonArn`, `daemonDeploymentArn`, `targetDaemonRevisionArn`,
/// `updatedAt`. The signal is about the daemon (its ARN the resource), not an instance.
fn parse(event: &Envelope<'_>) -> Result<Parsed, RejectReason> {
    let name = event.text("eventName").unwrap_or_default();
    let Some(outcome) = DeploymentOutcome::parse(name) else {
        return Ok(Parsed::Ignored(IgnoreReason::NoProblem(format!(
            "daemon action {name:?} is not checked"
        ))));
    };
    let cluster = event.required("detail.clusterArn")?;
    let daemon_arn = event.required("detail.daemonArn")?;
    let deployment_arn = event.text("daemonDeploymentArn").map(str::to_owned);
    Ok(Parsed::Signal(Signal {
        daemon_name: Some(daemon_arn.rsplit('/').next().unwrap_or(daemon_arn).to_owned()),
        daemon_arn: Some(daemon_arn.to_owned()),
        since: event.since("updatedAt"),
        // A failure and the success that ends it are different events of one daemon, and so
        // are two deployments' failures (they carry no version: one is not a repeat of the other).
        occasion: Some(format!(
            "{} {}",
            outcome.event_name(),
            deployment_arn.as_deref().unwrap_or("-")
        )),
        facts: Facts::new(DaemonDeployment {
            deployment_arn,
            outcome,
        }),
        ..Signal::new(AlertKind::DaemonDeploymentFailed, cluster, daemon_arn)
    }))
}

/// A deployment event decides itself: ECS reports the failure, and a success ends it.
fn decide(signal: &Signal) -> Judgement {
    let deployment = signal.facts.get::<DaemonDeployment>()?;
    let reason = match deployment.outcome {
        DeploymentOutcome::Succeeded => return Some((Verdict::Recovered, None)),
        DeploymentOutcome::RollbackFailed => {
            "the deployment failed and so did its rollback (DAEMON_DEPLOYMENT_ROLLBACK_FAILED)"
        }
        DeploymentOutcome::RollingBack => {
            "the deployment failed and ECS is rolling it back (DAEMON_DEPLOYMENT_ROLLBACK_IN_PROGRESS)"
        }
    };
    let finding = InstanceFinding {
        container_instance_arn: signal.resource.clone(),
        daemon_name: signal.daemon_name.clone(),
        deployment_arn: deployment.deployment_arn.clone(),
        since: signal.since.clone(),
        reason: Some(reason.to_owned()),
        rollback_failed: deployment.outcome == DeploymentOutcome::RollbackFailed,
        ..Default::default()
    };
    Some((Verdict::Confirmed, Some(Box::new(finding))))
}

fn opening(finding: &Finding, _total: usize) -> String {
    let (cluster, place) = (&finding.cluster_name, finding.place());
    format!("A deployment of ECS Managed Daemons failed in cluster {cluster} ({place}).\n\n")
}

fn instance_lines(instance: &InstanceFinding, now: u64) -> String {
    format!(
        "  - daemon {}: {} (at {})\n    deployment {}{}\n",
        instance.daemon_name.as_deref().unwrap_or("unknown"),
        instance.reason.as_deref().unwrap_or("failed"),
        since(instance.since.as_deref(), now),
        instance.deployment_arn.as_deref().unwrap_or("unknown"),
        silence_line(instance),
    )
}

/// The steps, with the first daemon's deployment and name in the commands; the rollback step
/// only for a rollback that failed.
fn next_steps(finding: &Finding) -> Option<NextSteps> {
    let (region, cluster) = (&finding.region, &finding.cluster_name);
    let first = first(finding)?;
    let daemon = first.daemon_name.as_deref().unwrap_or("unknown");
    let see = match &first.deployment_arn {
        Some(arn) => format!(
            "See why: aws ecs describe-daemon-deployments --region {region} --daemon-deployment-arns {arn} \
             (statusReason, the circuit breaker's failure count, the alarms that fired)"
        ),
        None => format!(
            "See why: aws ecs list-daemon-deployments --region {region} --cluster {cluster} --daemon-name {daemon}, \
             then describe the failed one (statusReason, the circuit breaker's failure count, the alarms that fired)"
        ),
    };
    let then = if first.rollback_failed {
        format!(
            "The rollback failed: instances may run without the daemon or with a mix of revisions; look at the \
             daemon's tasks (aws ecs list-tasks --region {region} --cluster {cluster} --daemon-name {daemon}) and \
             deploy a known good revision"
        )
    } else {
        "ECS is rolling back: the daemon returns to its previous revision; fix the new revision (image, \
         configuration, health check, resources) before deploying it again"
            .to_owned()
    };
    Some(NextSteps::numbered(vec![Step::says(see), Step::says(then)]))
}

pub struct DaemonDeploymentFailed;

impl Kind for DaemonDeploymentFailed {
    fn kind(&self) -> AlertKind {
        AlertKind::DaemonDeploymentFailed
    }

    fn detail_types(&self) -> &'static [&'static str] {
        &[DAEMON_DEPLOYMENT_STATE_CHANGE]
    }

    fn parse(&self, event: &Envelope<'_>) -> Result<Parsed, RejectReason> {
        parse(event)
    }

    /// Its event alone decides: no event, no verdict.
    fn decide(&self, case: Case<'_>, _evidence: &dyn Evidence) -> Judgement {
        decide(case.event?)
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

    fn opening(&self, finding: &Finding, total: usize) -> String {
        opening(finding, total)
    }

    fn instance_lines(&self, instance: &InstanceFinding, now: u64) -> String {
        instance_lines(instance, now)
    }

    fn next_steps(&self, finding: &Finding) -> Option<NextSteps> {
        next_steps(finding)
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
