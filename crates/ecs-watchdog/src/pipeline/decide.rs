//! Decide: signals and evidence in, a verdict (and for confirmed ones the finding) per message
//! out. Pure; the counts a batch publishes are derived from the decisions.

use tracing::{info, info_span};

use super::evidence::{DaemonChecks, Described, Ec2Evidence, live_key};
use super::intake::Checked;
use crate::alert::{AlertKind, InstanceFinding};
use crate::event::{
    AgentDisconnected, DaemonCause, DaemonDeployment, DaemonLost, DeploymentOutcome, InstanceImpaired, Signal,
};
use crate::incident::IncidentKey;
use crate::inventory::{ContainerInstance, InstanceStatus, InstanceView, cluster_name, is_managed_node_id};
use crate::metrics::{Metric, Tally};
use crate::verdict::{self, Deployment, Ec2View, Repeat, Suppression, Verdict};

/// The outcome for one work item.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Decided(Verdict, Option<Box<InstanceFinding>>),
    Repeat(Repeat),
    /// A look-up it needed failed: the message goes back to the queue.
    Undecided,
}

/// One work item's decision.
pub struct Decision<'a> {
    pub cluster: &'a str,
    pub checked: &'a Checked,
    pub outcome: Outcome,
}

impl Decision<'_> {
    pub fn kind(&self) -> AlertKind {
        self.checked.signal.kind()
    }

    /// The incident this work item speaks of.
    pub fn incident(&self) -> IncidentKey {
        self.checked.key.clone()
    }

    /// Whether the look found the problem over: the agent reconnected, the daemon runs again, or
    /// the instance (or its cluster) is gone. A DRAINING instance is not over: it still runs.
    pub fn resolves(&self) -> bool {
        match &self.outcome {
            Outcome::Decided(Verdict::Recovered, _) => true,
            Outcome::Decided(Verdict::Suppressed(s), _) => match s {
                Suppression::ClusterGone
                | Suppression::InstanceGone(_)
                | Suppression::InstanceNotRunning(_)
                | Suppression::HostOffline(_) => true,
                Suppression::Repairing(status) => *status != Some(InstanceStatus::Draining),
                Suppression::Draining | Suppression::Deploying => false,
            },
            _ => false,
        }
    }

    /// Whether the instance is DRAINING now.
    pub fn draining(&self) -> bool {
        matches!(
            &self.outcome,
            Outcome::Decided(
                Verdict::Suppressed(Suppression::Draining | Suppression::Repairing(Some(InstanceStatus::Draining))),
                _
            )
        )
    }
}

/// An outcome per signal of one cluster, in order, from what the look-ups found.
pub fn decide<'a>(described: &Described<'a>, daemons: &DaemonChecks, ec2: &Ec2Evidence) -> Vec<Decision<'a>> {
    described
        .checked
        .iter()
        .map(|checked| {
            // What is logged while deciding names the incident it speaks of.
            let _span = info_span!("decide", incident = %checked.key.id()).entered();
            let outcome = outcome(described, checked, daemons, ec2);
            let instance = checked.signal.container_instance_arn();
            info!(cluster = cluster_name(described.cluster), instance, ?outcome, "decided");
            Decision {
                cluster: described.cluster,
                checked,
                outcome,
            }
        })
        .collect()
}

fn outcome(described: &Described<'_>, checked: &Checked, daemons: &DaemonChecks, ec2: &Ec2Evidence) -> Outcome {
    if !checked.kept() {
        return Outcome::Repeat(checked.repeat);
    }
    let signal = &checked.signal;
    if let Signal::DaemonDeployment(deployment) = signal {
        return deployment_outcome(deployment);
    }
    if !described.known(signal.container_instance_arn()) {
        return Outcome::Undecided;
    }
    let ecs = described.instances.lookup(signal.container_instance_arn());
    match signal {
        Signal::AgentDisconnected(agent) => {
            let host = match verdict::agent_host_check(agent, ecs) {
                None => Ec2View::NotChecked,
                Some(id) if ec2.failed.contains(id) || ec2.managed_failed.contains(id) => return Outcome::Undecided,
                Some(id) if is_managed_node_id(id) => ec2
                    .managed
                    .get(id)
                    .map_or(Ec2View::HostNotRegistered, |status| Ec2View::Host(*status)),
                Some(id) => ec2
                    .states
                    .get(id)
                    .map_or(Ec2View::NotFound, |state| Ec2View::State(*state)),
            };
            let verdict = verdict::decide_agent(agent, ecs, host);
            let finding = confirmed_finding(&verdict, ecs, |instance| InstanceFinding {
                host_check: host_check(host),
                ..agent_finding(agent, instance)
            });
            Outcome::Decided(verdict, finding)
        }
        Signal::InstanceImpaired(impaired) => {
            let verdict = verdict::decide_impaired(ecs);
            let finding = confirmed_finding(&verdict, ecs, |instance| impaired_finding(impaired, instance));
            Outcome::Decided(verdict, finding)
        }
        Signal::DaemonDeployment(deployment) => deployment_outcome(deployment),
        Signal::DaemonLost(daemon) => {
            if let Some(repairing) = verdict::daemon_repairing(ecs) {
                return Outcome::Decided(repairing, None);
            }
            if daemons.failed.contains(&daemon.daemon_name) {
                return Outcome::Undecided;
            }
            let replaced = daemons.live.contains(&live_key(daemon));
            let deployment = match daemons.deployments.get(daemon.daemon_name.as_str()) {
                _ if replaced => Deployment::NotInProgress,
                Some(Some(deployment)) => *deployment,
                Some(None) => return Outcome::Undecided,
                None => Deployment::Unknown,
            };
            let verdict = verdict::decide_daemon(ecs, replaced, deployment);
            let finding = confirmed_finding(&verdict, ecs, |instance| daemon_finding(daemon, daemons, instance));
            Outcome::Decided(verdict, finding)
        }
    }
}

/// What the Systems Manager check of an ECS Anywhere host said, for its finding.
fn host_check(host: Ec2View) -> Option<String> {
    match host {
        Ec2View::Host(status) => Some(format!("Systems Manager: {status}")),
        Ec2View::HostNotRegistered => {
            Some("not registered with Systems Manager: the host could not be checked".to_owned())
        }
        _ => None,
    }
}

/// A deployment event decides itself: ECS reports the failure, and a success ends it.
fn deployment_outcome(deployment: &DaemonDeployment) -> Outcome {
    match deployment.outcome {
        DeploymentOutcome::Succeeded => Outcome::Decided(Verdict::Recovered, None),
        DeploymentOutcome::RollingBack | DeploymentOutcome::RollbackFailed => {
            let reason = match deployment.outcome {
                DeploymentOutcome::RollbackFailed => {
                    "the deployment failed and so did its rollback (DAEMON_DEPLOYMENT_ROLLBACK_FAILED)"
                }
                _ => "the deployment failed and ECS is rolling it back (DAEMON_DEPLOYMENT_ROLLBACK_IN_PROGRESS)",
            };
            let finding = InstanceFinding {
                container_instance_arn: deployment.daemon_arn.clone(),
                daemon_name: Some(deployment.daemon_name.clone()),
                deployment_arn: deployment.deployment_arn.clone(),
                since: deployment.since.clone(),
                reason: Some(reason.to_owned()),
                rollback_failed: deployment.outcome == DeploymentOutcome::RollbackFailed,
                ..Default::default()
            };
            Outcome::Decided(Verdict::Confirmed, Some(Box::new(finding)))
        }
    }
}

fn impaired_finding(signal: &InstanceImpaired, instance: &ContainerInstance) -> InstanceFinding {
    // The checks failing now, as ECS describes them; the event's when ECS reported no health.
    let health_checks = match &instance.health {
        Some(health) if health.impaired() && !health.failing.is_empty() => health.failing.clone(),
        _ => signal.failing.clone(),
    };
    InstanceFinding {
        health_checks,
        ..seen_on(
            &signal.container_instance_arn,
            signal.ec2_instance_id.as_ref(),
            signal.since.as_ref(),
            instance,
        )
    }
}

/// An instance's finding with what its event adds: the EC2 id when ECS no longer says it, and
/// since when.
fn seen_on(
    container_instance_arn: &str,
    ec2_instance_id: Option<&String>,
    since: Option<&String>,
    instance: &ContainerInstance,
) -> InstanceFinding {
    InstanceFinding {
        ec2_instance_id: instance.ec2_instance_id.clone().or_else(|| ec2_instance_id.cloned()),
        since: since.cloned(),
        ..instance_finding(container_instance_arn, instance)
    }
}

/// The counts the decisions make: recovered, suppressed, and undecided (check errors).
/// Confirmed failures are counted once their alert is out.
pub fn tally(decisions: &[Decision<'_>], tally: &mut Tally) {
    for decision in decisions {
        let name = Some(cluster_name(decision.cluster));
        match &decision.outcome {
            Outcome::Undecided => tally.count(name, Metric::CheckErrors),
            Outcome::Decided(Verdict::Recovered, _) => tally.count(name, Metric::Recovered),
            Outcome::Decided(Verdict::Suppressed(_), _) => tally.count(name, Metric::Suppressed),
            Outcome::Decided(Verdict::Confirmed | Verdict::Superseded { .. }, _) | Outcome::Repeat(_) => {}
        }
    }
}

/// The finding of a confirmed verdict, from the instance ECS described.
fn confirmed_finding(
    verdict: &Verdict,
    ecs: InstanceView<'_>,
    finding: impl FnOnce(&ContainerInstance) -> InstanceFinding,
) -> Option<Box<InstanceFinding>> {
    match (verdict, ecs) {
        (Verdict::Confirmed, InstanceView::Found(instance)) => Some(Box::new(finding(instance))),
        _ => None,
    }
}

fn agent_finding(signal: &AgentDisconnected, instance: &ContainerInstance) -> InstanceFinding {
    InstanceFinding {
        agent_version: instance.agent_version.clone(),
        ..seen_on(
            &signal.container_instance_arn,
            signal.ec2_instance_id.as_ref(),
            signal.since.as_ref(),
            instance,
        )
    }
}

fn daemon_finding(signal: &DaemonLost, checks: &DaemonChecks, instance: &ContainerInstance) -> InstanceFinding {
    let mut finding = InstanceFinding {
        since: signal.since.clone(),
        daemon_name: Some(signal.daemon_name.clone()),
        critical: checks.critical.get(&signal.daemon_name).copied().flatten(),
        task_arn: signal.task_arn.clone(),
        ..instance_finding(&signal.container_instance_arn, instance)
    };
    match &signal.cause {
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
        DaemonCause::Absent => {
            finding.reason =
                Some("no RUNNING or PENDING task of the daemon on the instance, found by the sweep".to_owned());
        }
    }
    finding
}

/// A suppression that the sweep alerts once it lasted `STUCK_AFTER_MINUTES`, with its finding:
/// a DRAINING instance whose agent is disconnected (ECS cannot stop its tasks, so the drain
/// cannot finish) and an instance ECS drains to replace a lost daemon that stays DRAINING
/// without it. Only while the problem itself is still there: a reconnected agent or a running
/// daemon on a DRAINING instance is an ordinary drain.
pub fn stale(described: &Described<'_>, daemons: &DaemonChecks, decision: &Decision<'_>) -> Option<InstanceFinding> {
    let Outcome::Decided(Verdict::Suppressed(suppression), _) = &decision.outcome else {
        return None;
    };
    let InstanceView::Found(instance) = described
        .instances
        .lookup(decision.checked.signal.container_instance_arn())
    else {
        return None;
    };
    let (mut finding, stuck) = match (&decision.checked.signal, suppression) {
        (Signal::AgentDisconnected(agent), Suppression::Draining) if !instance.agent_connected => (
            agent_finding(agent, instance),
            "DRAINING with the agent disconnected: ECS cannot stop its tasks, so the drain cannot finish",
        ),
        (Signal::DaemonLost(daemon), Suppression::Repairing(Some(InstanceStatus::Draining)))
            if !daemons.live.contains(&live_key(daemon)) && !daemons.failed.contains(&daemon.daemon_name) =>
        {
            (
                daemon_finding(daemon, daemons, instance),
                "DRAINING without the daemon: ECS has not finished replacing the instance",
            )
        }
        _ => return None,
    };
    finding.stuck = Some(stuck.to_owned());
    finding.draining = true;
    Some(finding)
}

fn instance_finding(container_instance_arn: &str, instance: &ContainerInstance) -> InstanceFinding {
    InstanceFinding {
        container_instance_arn: container_instance_arn.to_owned(),
        ec2_instance_id: instance.ec2_instance_id.clone(),
        availability_zone: instance.availability_zone.clone(),
        running_tasks_count: instance.running_tasks_count,
        ..Default::default()
    }
}
