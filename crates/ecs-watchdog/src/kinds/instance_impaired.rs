//! `instance-impaired`: the health change event that tells it, its verdict, and its alert's
//! text: each instance with its failing health checks, and what to do by check type.

use super::found;
use super::kind::{Judgement, Kind};
use crate::event::{Envelope, Facts, HealthCheck, IgnoreReason, Parsed, RejectReason, Signal, text};
use crate::finding::lines::{first, host, remediation_line, since};
use crate::finding::steps::{NextSteps, Step};
use crate::finding::{DaemonChecks, Finding, InstanceFinding, Severity, instances};
use crate::inventory::{ContainerInstance, InstanceView};
use crate::kind::AlertKind;
use crate::metrics::Metric;
use crate::verdict::{Case, Evidence, Verdict, in_service};

/// The detail-type of a container instance's health change.
pub const CONTAINER_INSTANCE_HEALTH_CHANGE: &str = "ECS Container Instance Health Change";

/// The checks that are not OK, as the event reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct Failing(pub Vec<HealthCheck>);

/// `ECS Container Instance Health Change` with `overallStatus: IMPAIRED`. The layout is the ECS
/// developer guide's, page "Amazon ECS container instance health change events"
/// (ecs_container_instance_health_events): `clusterArn`, `containerInstanceArn`,
/// `capacityProviderName` (null outside capacity providers), `ec2InstanceId`, `overallStatus`,
/// `healthChecks[]` of `type`, `status`, `lastStatusChange`, `lastUpdated`, `statusReason`.
/// It carries no `version`.
fn parse(event: &Envelope<'_>) -> Result<Parsed, RejectReason> {
    let cluster = event.required("detail.clusterArn")?;
    let instance = event.required("detail.containerInstanceArn")?;
    let overall = event.text("overallStatus").unwrap_or("absent");
    if overall != "IMPAIRED" {
        return Ok(Parsed::Ignored(IgnoreReason::NoProblem(format!(
            "the instance's health is {overall}, not IMPAIRED"
        ))));
    }
    let checks: Vec<&serde_json::Value> = event
        .list("healthChecks")
        .filter(|c| text(c, "status").is_some_and(|s| s != "OK"))
        .collect();
    let failing = checks
        .iter()
        .map(|c| HealthCheck {
            check: text(c, "type").unwrap_or("unknown").to_owned(),
            status: text(c, "status").unwrap_or("unknown").to_owned(),
            reason: text(c, "statusReason").map(str::to_owned),
        })
        .collect();
    Ok(Parsed::Signal(Signal {
        ec2_instance_id: event.text("ec2InstanceId").map(str::to_owned),
        since: checks
            .iter()
            .find_map(|c| text(c, "lastStatusChange"))
            .or_else(|| event.time())
            .map(str::to_owned),
        facts: Facts::new(Failing(failing)),
        ..Signal::new(AlertKind::InstanceImpaired, cluster, instance)
    }))
}

/// Decides an instance reported IMPAIRED against its current state and health: gone and
/// DRAINING as for an agent; healthy again (`OK`) is recovered; still IMPAIRED, or a health ECS
/// did not report or that is not yet known, confirms what the event said.
pub fn decide_impaired(ecs: InstanceView<'_>) -> Verdict {
    match in_service(ecs) {
        Err(verdict) => verdict,
        Ok(instance) if instance.health.as_ref().is_some_and(|h| h.overall == "OK") => Verdict::Recovered,
        Ok(_) => Verdict::Confirmed,
    }
}

fn decide(case: Case<'_>, evidence: &dyn Evidence) -> Judgement {
    let ecs = evidence.instance(case.resource())?;
    let verdict = decide_impaired(ecs);
    let finding = found::confirmed(&verdict, ecs, |instance| finding(case, instance));
    Some((verdict, finding))
}

/// The checks failing now, as ECS describes them; the event's when ECS reported no health (none
/// for the sweep's look, which has no event).
fn finding(case: Case<'_>, instance: &ContainerInstance) -> InstanceFinding {
    let health_checks = match &instance.health {
        Some(health) if health.impaired() && !health.failing.is_empty() => health.failing.clone(),
        _ => case.facts::<Failing>().map(|f| f.0.clone()).unwrap_or_default(),
    };
    InstanceFinding {
        health_checks,
        ..found::seen_on(case, instance)
    }
}

fn opening(finding: &Finding, total: usize) -> String {
    let noun = instances(total);
    let (cluster, place) = (&finding.cluster_name, finding.place());
    format!(
        "ECS reports {total} container {noun} in cluster {cluster} ({place}) IMPAIRED, and they still were after \
         the grace period. ECS Managed Instances are drained and replaced by ECS itself; other instances stay as \
         they are until someone acts.\n\nInstances:\n"
    )
}

fn instance_lines(instance: &InstanceFinding, now: u64) -> String {
    let checks: Vec<String> = instance
        .health_checks
        .iter()
        .map(|c| match &c.reason {
            Some(reason) => format!("{} {} ({reason})", c.check, c.status),
            None => format!("{} {}", c.check, c.status),
        })
        .collect();
    format!(
        "  - {} ({}): {} since {}\n    container instance {}{}\n",
        instance.ec2_instance_id.as_deref().unwrap_or("unknown EC2 id"),
        instance.availability_zone.as_deref().unwrap_or("unknown zone"),
        if checks.is_empty() {
            "IMPAIRED".to_owned()
        } else {
            checks.join(", ")
        },
        since(instance.since.as_deref(), now),
        instance.container_instance_arn,
        remediation_line(instance),
    )
}

/// The steps by failing check, with the first instance's ids in the commands.
fn next_steps(finding: &Finding) -> Option<NextSteps> {
    let (region, cluster) = (&finding.region, &finding.cluster_name);
    let instance = first(finding)?;
    let (target, arn) = (host(instance), &instance.container_instance_arn);
    Some(NextSteps {
        heading: "What to do next, by the failing check",
        numbered: false,
        steps: vec![
            Step::says(format!(
                "CONTAINER_RUNTIME: the Docker daemon does not answer: aws ssm start-session --region {region} --target {target}, \
                 then sudo systemctl status docker; restart it, or drain and replace the instance"
            )),
            Step::says(
                "DAEMON: a daemon task is unhealthy: see the daemon's alert and logs; ECS Managed Instances repair themselves",
            ),
            Step::says(
                "ACCELERATED_COMPUTE: a GPU reports an error (the reason names it, e.g. an Xid): drain the instance and replace it",
            ),
            Step::says(
                "AGENT_CONNECTIVITY: as for a disconnected agent: look at the agent, restart it, or drain the instance",
            ),
        ],
        note: Some(format!(
            "To drain: aws ecs update-container-instances-state --region {region} --cluster {cluster} --status DRAINING --container-instances {arn}"
        )),
    })
}

pub struct InstanceImpaired;

impl Kind for InstanceImpaired {
    fn kind(&self) -> AlertKind {
        AlertKind::InstanceImpaired
    }

    fn detail_types(&self) -> &'static [&'static str] {
        &[CONTAINER_INSTANCE_HEALTH_CHANGE]
    }

    fn parse(&self, event: &Envelope<'_>) -> Result<Parsed, RejectReason> {
        parse(event)
    }

    fn decide(&self, case: Case<'_>, evidence: &dyn Evidence) -> Judgement {
        decide(case, evidence)
    }

    fn headline(&self, _daemons: &[&str]) -> String {
        "ECS instance impaired".to_owned()
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
            "DescribeContainerInstances with its health (CONTAINER_INSTANCE_HEALTH): still IMPAIRED after the grace period, still ACTIVE",
        ]
    }

    /// High when the agent's connectivity check fails, a warning for the other checks.
    fn severity(&self, instances: &[InstanceFinding], _widespread: &dyn Fn(usize) -> bool) -> Severity {
        let on_connectivity = |i: &InstanceFinding| i.health_checks.iter().any(|c| c.check == "AGENT_CONNECTIVITY");
        if instances.iter().any(on_connectivity) {
            Severity::High
        } else {
            Severity::Warning
        }
    }

    fn metric(&self) -> Option<Metric> {
        Some(Metric::InstanceImpaired)
    }

    fn looked_at_again(&self) -> bool {
        true
    }

    fn recovered(&self) -> Option<&'static str> {
        Some("recovered: ECS reports the instance healthy again")
    }

    fn may_repeat_agent(&self) -> bool {
        true
    }
}
