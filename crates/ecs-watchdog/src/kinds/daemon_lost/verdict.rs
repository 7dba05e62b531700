//! The `daemon-lost` verdict (DESIGN §2): the instance's state, the daemon's tasks on it, and
//! its deployments.

use super::event::{DaemonCause, DaemonLost};
use crate::finding::InstanceFinding;
use crate::inventory::{ContainerInstance, InstanceStatus, InstanceView};
use crate::kinds::found;
use crate::kinds::kind::Judgement;
use crate::verdict::{Case, DaemonLook, Deployment, Evidence, Suppression, Verdict};

/// The verdict the instance's state alone gives a lost daemon: ECS drains and replaces an
/// instance whose critical daemon stopped, so a gone or draining instance is being repaired.
pub fn daemon_repairing(ecs: InstanceView<'_>) -> Option<Verdict> {
    let status = match ecs {
        InstanceView::ClusterGone | InstanceView::Missing => None,
        InstanceView::Found(instance) => match instance.status {
            InstanceStatus::Draining | InstanceStatus::Deregistering | InstanceStatus::Inactive => {
                Some(instance.status)
            }
            _ => return None,
        },
    };
    Some(Verdict::Suppressed(Suppression::Repairing(status)))
}

/// Decides a lost daemon: `replaced` says whether a RUNNING or PENDING task of the same daemon
/// is on the instance now.
pub fn decide_daemon(ecs: InstanceView<'_>, replaced: bool, deployment: Deployment) -> Verdict {
    if let Some(repairing) = daemon_repairing(ecs) {
        return repairing;
    }
    match (replaced, deployment) {
        (true, _) => Verdict::Recovered,
        (false, Deployment::InProgress) => Verdict::Suppressed(Suppression::Deploying),
        (false, _) => Verdict::Confirmed,
    }
}

/// The verdict with its finding: undecided when the instance's, the tasks' or the
/// deployments' look-up failed.
pub fn decide(case: Case<'_>, evidence: &dyn Evidence) -> Judgement {
    let ecs = evidence.instance(case.resource())?;
    if let Some(repairing) = daemon_repairing(ecs) {
        return Some((repairing, None));
    }
    let look = evidence.daemon(case.resource(), case.daemon()?)?;
    // A daemon running again needs no word on its deployments.
    let deployment = match look.running {
        true => Deployment::NotInProgress,
        false => look.deployment?,
    };
    let verdict = decide_daemon(ecs, look.running, deployment);
    let finding = found::confirmed(&verdict, ecs, |instance| finding(case, look, instance));
    Some((verdict, finding))
}

/// An instance ECS drains to replace a lost daemon that stays DRAINING without it. A running
/// daemon on a DRAINING instance is an ordinary drain.
pub fn stuck(case: Case<'_>, suppression: &Suppression, evidence: &dyn Evidence) -> Option<InstanceFinding> {
    if *suppression != Suppression::Repairing(Some(InstanceStatus::Draining)) {
        return None;
    }
    let Some(InstanceView::Found(instance)) = evidence.instance(case.resource()) else {
        return None;
    };
    let look = evidence
        .daemon(case.resource(), case.daemon()?)
        .filter(|look| !look.running)?;
    Some(InstanceFinding {
        stuck: Some("DRAINING without the daemon: ECS has not finished replacing the instance".to_owned()),
        draining: true,
        ..finding(case, look, instance)
    })
}

fn finding(case: Case<'_>, look: DaemonLook, instance: &ContainerInstance) -> InstanceFinding {
    let mut finding = InstanceFinding {
        since: case.since().map(str::to_owned),
        daemon_name: case.daemon().map(str::to_owned),
        critical: look.critical,
        ..found::instance_finding(case.arn_on(instance), instance)
    };
    let Some(lost) = case.facts::<DaemonLost>() else {
        finding.reason =
            Some("no RUNNING or PENDING task of the daemon on the instance, found by the sweep".to_owned());
        return finding;
    };
    finding.task_arn = lost.task_arn.clone();
    match &lost.cause {
        DaemonCause::Stopped {
            stop_code,
            stopped_reason,
            exits,
        } => {
            finding.stop_code = stop_code.clone();
            finding.stopped_reason = stopped_reason.clone();
            finding.containers = exits.clone();
        }
        DaemonCause::StartImpaired { failure_type, reason } => {
            finding.failure_type = failure_type.clone();
            finding.reason = reason.clone();
        }
    }
    finding
}
