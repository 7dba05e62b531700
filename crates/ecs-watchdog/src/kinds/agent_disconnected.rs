//! `agent-disconnected`: the container instance event that tells it, its verdict
//! (`verdict.rs`), and its alert's text: each instance with since when and its agent, and how to
//! bring the agent back.

use super::kind::{Judgement, Kind};
use crate::config::Remediation;
use crate::event::{Envelope, IgnoreReason, Parsed, RejectReason, Signal};
use crate::finding::lines::{
    distinct, draining_active, first, host, remediation_line, services_line, since, those_true,
};
use crate::finding::steps::{NextSteps, Step};
use crate::finding::{DaemonChecks, Finding, InstanceFinding, Severity, instances};
use crate::inventory::InstanceView;
use crate::kind::AlertKind;
use crate::metrics::Metric;
use crate::verdict::{Case, Evidence, Suppression};

pub mod verdict;

/// The detail-type of a container instance event.
pub const CONTAINER_INSTANCE_STATE_CHANGE: &str = "ECS Container Instance State Change";

/// `ECS Container Instance State Change` with `agentConnected` false (or absent).
fn parse(event: &Envelope<'_>) -> Result<Parsed, RejectReason> {
    let cluster = event.required("detail.clusterArn")?;
    let instance = event.required("detail.containerInstanceArn")?;
    if event.flag("agentConnected") == Some(true) {
        return Ok(Parsed::Ignored(IgnoreReason::NoProblem(
            "the agent is connected".to_owned(),
        )));
    }
    Ok(Parsed::Signal(Signal {
        ec2_instance_id: event.text("ec2InstanceId").map(str::to_owned),
        version: event.integer("version"),
        since: event.since("updatedAt"),
        ..Signal::new(AlertKind::AgentDisconnected, cluster, instance)
    }))
}

fn opening(finding: &Finding, total: usize) -> String {
    let noun = instances(total);
    let (cluster, place) = (&finding.cluster_name, finding.place());
    format!(
        "The ECS container agent on {total} container {noun} in cluster {cluster} ({place}) lost its connection \
         to the ECS control plane and has not reconnected after the grace period.\n\
         ECS cannot start, stop or report tasks there until it does; tasks already running keep running unmanaged.\n\n\
         Instances:\n"
    )
}

fn instance_lines(instance: &InstanceFinding, now: u64) -> String {
    format!(
        "  - {} ({}): {}disconnected since {}, {} running task(s), agent {}{}\n    container instance {}{}{}\n",
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
        services_line(instance),
        remediation_line(instance),
    )
}

/// The steps, with the first instance's ids in the commands; no drain advice for an instance
/// ECS is already draining.
fn next_steps(finding: &Finding) -> Option<NextSteps> {
    let (region, cluster) = (&finding.region, &finding.cluster_name);
    let instance = first(finding)?;
    let (target, arn) = (host(instance), &instance.container_instance_arn);
    let last = if instance.draining {
        Step::runs(
            "It is already DRAINING: the drain finishes once the agent is back. If it does not come back, \
             deregister it (its tasks are stopped and rescheduled) and replace the host:",
            format!(
                "aws ecs deregister-container-instance --region {region} --cluster {cluster} --container-instance {arn} --force"
            ),
        )
    } else {
        Step::runs(
            "If it does not come back, drain the instance so ECS moves its tasks, then replace it:",
            format!(
                "aws ecs update-container-instances-state --region {region} --cluster {cluster} --status DRAINING --container-instances {arn}"
            ),
        )
    };
    Some(NextSteps {
        note: Some(
            "Many instances in one zone at once point to the zone or the network (VPC endpoints, NAT, proxy), not the agent."
                .to_owned(),
        ),
        ..NextSteps::numbered(vec![
            Step::says(format!(
                "Open a shell on the instance: aws ssm start-session --region {region} --target {target}"
            )),
            Step::says("Look at the agent: sudo systemctl status ecs; sudo tail -n 200 /var/log/ecs/ecs-agent.log"),
            Step::says(
                "Restart it: sudo systemctl restart ecs (it reconnects within a minute when the instance is healthy)",
            ),
            last,
        ])
    })
}

pub struct AgentDisconnected;

impl Kind for AgentDisconnected {
    fn kind(&self) -> AlertKind {
        AlertKind::AgentDisconnected
    }

    fn detail_types(&self) -> &'static [&'static str] {
        &[CONTAINER_INSTANCE_STATE_CHANGE]
    }

    fn parse(&self, event: &Envelope<'_>) -> Result<Parsed, RejectReason> {
        parse(event)
    }

    fn host_to_check<'a>(&self, case: Case<'a>, ecs: InstanceView<'a>) -> Option<&'a str> {
        verdict::host_to_check(case.event, ecs)
    }

    fn decide(&self, case: Case<'_>, evidence: &dyn Evidence) -> Judgement {
        verdict::decide(case, evidence)
    }

    fn stuck(&self, case: Case<'_>, suppression: &Suppression, evidence: &dyn Evidence) -> Option<InstanceFinding> {
        verdict::stuck(case, suppression, evidence)
    }

    fn headline(&self, _daemons: &[&str]) -> String {
        "ECS agent disconnected".to_owned()
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

    fn checked(&self, _checks: DaemonChecks, instances: &[InstanceFinding]) -> Vec<&'static str> {
        let (draining, active) = draining_active(instances);
        those_true(&[
            (
                "DescribeContainerInstances: still ACTIVE with agentConnected=false after the grace period",
                active,
            ),
            (
                "DescribeContainerInstances: DRAINING with agentConnected=false for longer than STUCK_AFTER_MINUTES: the drain cannot finish",
                draining,
            ),
            (
                "DescribeInstances: the EC2 instance is running (skipped for ECS Anywhere)",
                true,
            ),
        ])
    }

    /// Critical on at least `CRITICAL_PERCENT` of the cluster's instances, high below.
    fn severity(&self, instances: &[InstanceFinding], widespread: &dyn Fn(usize) -> bool) -> Severity {
        if widespread(distinct(instances.iter())) {
            Severity::Critical
        } else {
            Severity::High
        }
    }

    fn metric(&self) -> Option<Metric> {
        Some(Metric::AgentDisconnected)
    }

    fn drains(&self) -> bool {
        true
    }

    /// Its alert names the services with tasks on the instance: the capacity they lost.
    fn names_services(&self) -> bool {
        true
    }

    /// Always: an instance whose agent is gone runs its tasks unmanaged.
    fn remediable(&self, _finding: &InstanceFinding, _config: &Remediation) -> bool {
        true
    }

    fn looked_at_again(&self) -> bool {
        true
    }

    fn recovered(&self) -> Option<&'static str> {
        Some("recovered: the agent reconnected")
    }
}
