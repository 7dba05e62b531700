//! `daemon-lost`: the events that tell it (`event.rs`), its verdict (`verdict.rs`), and its
//! alert's text: the instances by daemon with why each daemon is not running, and what to do
//! about it.

use std::fmt::Write;

use super::kind::{Judgement, Kind};
use crate::config::Remediation;
use crate::event::{Envelope, Parsed, RejectReason};
use crate::finding::lines::shorten_name;
use crate::finding::lines::{distinct, draining_active, first, remediation_line, services_line, since, those_true};
use crate::finding::steps::{NextSteps, Step};
use crate::finding::{DaemonChecks, Finding, InstanceFinding, Severity, instances};
use crate::inventory::InstanceView;
use crate::kind::AlertKind;
use crate::metrics::Metric;
use crate::verdict::{Case, Evidence, Suppression};

pub mod event;
pub mod verdict;

pub use event::{DAEMON_SERVICE_ACTION, DAEMON_TASK_START_IMPAIRED, TASK_STATE_CHANGE};

fn opening(finding: &Finding, total: usize) -> String {
    let noun = instances(total);
    let (cluster, place) = (&finding.cluster_name, finding.place());
    format!(
        "ECS Managed Daemons are not running on {total} container {noun} in cluster {cluster} ({place}) after the \
         grace period, and ECS is not replacing those instances.\n\
         Until the daemon runs again, these instances work without it: no logs, metrics or security coverage from it.\n"
    )
}

fn instance_lines(instance: &InstanceFinding, now: u64) -> String {
    format!(
        "  - {} ({}): {}\n    container instance {}{}{}\n",
        instance.ec2_instance_id.as_deref().unwrap_or("unknown EC2 id"),
        instance.availability_zone.as_deref().unwrap_or("unknown zone"),
        daemon_cause(instance, now),
        instance.container_instance_arn,
        services_line(instance),
        remediation_line(instance),
    )
}

/// The steps, with the first instance's task and ARN in the commands; no drain advice for an
/// instance ECS is already draining (a repair under way).
fn next_steps(finding: &Finding) -> Option<NextSteps> {
    let (region, cluster) = (&finding.region, &finding.cluster_name);
    let instance = first(finding)?;
    let arn = &instance.container_instance_arn;
    let see = match &instance.task_arn {
        Some(task) => format!("aws ecs describe-tasks --region {region} --cluster {cluster} --tasks {task}"),
        None => format!(
            "aws ecs list-tasks --region {region} --cluster {cluster} --container-instance {arn} --desired-status STOPPED, then describe-tasks"
        ),
    };
    let last = if instance.draining {
        Step::says(
            "ECS is already DRAINING this instance to replace it: if the replacement does not come, look at the \
             capacity provider's Auto Scaling group activity and the cluster's events",
        )
    } else {
        Step::runs(
            "To get coverage back on this instance now, drain it so ECS replaces it:",
            format!(
                "aws ecs update-container-instances-state --region {region} --cluster {cluster} --status DRAINING --container-instances {arn}"
            ),
        )
    };
    Some(NextSteps::numbered(vec![
        Step::says(format!("See why the task stopped: {see}, then the daemon's logs")),
        Step::says(
            "TASK_CREATION_FAILED means the instance lacks CPU, memory or ports for the daemon: size the daemon or the instance type",
        ),
        Step::says(
            "An image, configuration or health check problem on every instance points to the daemon's last revision: roll it back",
        ),
        last,
    ]))
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

pub struct DaemonLost;

impl Kind for DaemonLost {
    fn kind(&self) -> AlertKind {
        AlertKind::DaemonLost
    }

    fn detail_types(&self) -> &'static [&'static str] {
        &[TASK_STATE_CHANGE, DAEMON_SERVICE_ACTION]
    }

    fn parse(&self, event: &Envelope<'_>) -> Result<Parsed, RejectReason> {
        event::parse(event)
    }

    /// Unless ECS is replacing the instance anyway.
    fn daemon_to_check(&self, ecs: InstanceView<'_>) -> bool {
        verdict::daemon_repairing(ecs).is_none()
    }

    fn decide(&self, case: Case<'_>, evidence: &dyn Evidence) -> Judgement {
        verdict::decide(case, evidence)
    }

    fn stuck(&self, case: Case<'_>, suppression: &Suppression, evidence: &dyn Evidence) -> Option<InstanceFinding> {
        verdict::stuck(case, suppression, evidence)
    }

    fn headline(&self, daemons: &[&str]) -> String {
        match daemons {
            [one] => format!("ECS daemon {} lost", shorten_name(one, 40)),
            _ => "ECS daemons lost".to_owned(),
        }
    }

    fn opening(&self, finding: &Finding, total: usize) -> String {
        opening(finding, total)
    }

    fn instance_lines(&self, instance: &InstanceFinding, now: u64) -> String {
        instance_lines(instance, now)
    }

    /// Grouped by daemon: each daemon's instances under its name.
    fn lists_by_daemon(&self) -> bool {
        true
    }

    fn daemon_heading(&self, daemon: &str, listed: usize) -> String {
        format!("\nDaemon {daemon} ({listed} {}):\n", instances(listed))
    }

    fn next_steps(&self, finding: &Finding) -> Option<NextSteps> {
        next_steps(finding)
    }

    fn checked(&self, checks: DaemonChecks, instances: &[InstanceFinding]) -> Vec<&'static str> {
        let (draining, active) = draining_active(instances);
        let mut checked = those_true(&[
            (
                "DescribeContainerInstances: the instance is still ACTIVE, so ECS is not replacing it",
                active,
            ),
            (
                "DescribeContainerInstances: the instance is DRAINING for longer than STUCK_AFTER_MINUTES: ECS has not finished replacing it",
                draining,
            ),
            (
                "ListTasks and DescribeTasks: no RUNNING or PENDING task of the daemon on the instance",
                true,
            ),
        ]);
        checked.push(if checks.deployments {
            "ListDaemons and ListDaemonDeployments: no deployment of the daemon in progress"
        } else {
            "ListDaemons and ListDaemonDeployments: a deployment in progress could not be ruled out (the APIs were unavailable, or ListDaemons did not list the daemon)"
        });
        checked
    }

    /// By its critical daemons (or those whose criticality is unknown): none, a warning;
    /// on at least `CRITICAL_PERCENT` of the cluster, critical; else high.
    fn severity(&self, instances: &[InstanceFinding], widespread: &dyn Fn(usize) -> bool) -> Severity {
        let critical = instances.iter().filter(|i| i.critical != Some(false));
        match distinct(critical) {
            0 => Severity::Warning,
            n if widespread(n) => Severity::Critical,
            _ => Severity::High,
        }
    }

    fn metric(&self) -> Option<Metric> {
        Some(Metric::DaemonLost)
    }

    fn counted_by_daemon(&self) -> bool {
        true
    }

    fn drains(&self) -> bool {
        true
    }

    /// Its alert names the services with tasks on the instance: the capacity they lost.
    fn names_services(&self) -> bool {
        true
    }

    /// Only a critical daemon (ECS itself replaces such an instance), unless the user opted in
    /// for the others.
    fn remediable(&self, finding: &InstanceFinding, config: &Remediation) -> bool {
        finding.critical == Some(true) || config.non_critical_daemons
    }

    fn looked_at_again(&self) -> bool {
        true
    }

    fn recovered(&self) -> Option<&'static str> {
        Some("recovered: the daemon runs again")
    }
}
