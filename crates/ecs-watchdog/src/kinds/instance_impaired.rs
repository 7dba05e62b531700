//! The `instance-impaired` alert's text: each instance with its failing health checks, and what
//! to do by check type.

use std::fmt::Write;

use super::kind::Kind;
use crate::alert::finding::{DaemonChecks, EMAIL_LISTED, Finding, InstanceFinding, Severity};
use crate::alert::lines::{first, host, remediation_line, since};
use crate::event::{self, Signal};
use crate::key::IncidentKey;
use crate::kind::AlertKind;
use crate::metrics::Metric;

fn body(email: &mut String, finding: &Finding, now: u64) {
    let (total, noun) = finding.counted();
    let (cluster, place) = (&finding.cluster_name, finding.place());
    let _ = write!(
        email,
        "ECS reports {total} container {noun} in cluster {cluster} ({place}) IMPAIRED, and they still were after \
         the grace period. ECS Managed Instances are drained and replaced by ECS itself; other instances stay as \
         they are until someone acts.\n\nInstances:\n"
    );
    for instance in finding.instances.iter().take(EMAIL_LISTED) {
        let checks: Vec<String> = instance
            .health_checks
            .iter()
            .map(|c| match &c.reason {
                Some(reason) => format!("{} {} ({reason})", c.check, c.status),
                None => format!("{} {}", c.check, c.status),
            })
            .collect();
        let _ = writeln!(
            email,
            "  - {} ({}): {} since {}\n    container instance {}{}",
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
        );
    }
}

/// The steps by failing check, with the first instance's ids in the commands.
fn next_steps(email: &mut String, finding: &Finding) {
    let (region, cluster) = (&finding.region, &finding.cluster_name);
    let Some(instance) = first(finding) else {
        return;
    };
    let (target, arn) = (host(instance), &instance.container_instance_arn);
    let _ = write!(
        email,
        "\nWhat to do next, by the failing check:\n\
         - CONTAINER_RUNTIME: the Docker daemon does not answer: aws ssm start-session --region {region} --target {target}, \
           then sudo systemctl status docker; restart it, or drain and replace the instance\n\
         - DAEMON: a daemon task is unhealthy: see the daemon's alert and logs; ECS Managed Instances repair themselves\n\
         - ACCELERATED_COMPUTE: a GPU reports an error (the reason names it, e.g. an Xid): drain the instance and replace it\n\
         - AGENT_CONNECTIVITY: as for a disconnected agent: look at the agent, restart it, or drain the instance\n\
         To drain: aws ecs update-container-instances-state --region {region} --cluster {cluster} --status DRAINING --container-instances {arn}\n"
    );
}

pub struct InstanceImpaired;

impl Kind for InstanceImpaired {
    fn kind(&self) -> AlertKind {
        AlertKind::InstanceImpaired
    }

    fn detail_types(&self) -> &'static [&'static str] {
        &[event::CONTAINER_INSTANCE_HEALTH_CHANGE]
    }

    fn headline(&self, _daemons: &[&str]) -> String {
        "ECS instance impaired".to_owned()
    }

    fn body(&self, email: &mut String, finding: &Finding, now: u64) {
        body(email, finding, now);
    }

    fn next_steps(&self, email: &mut String, finding: &Finding) {
        next_steps(email, finding);
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

    fn look_again(&self, cluster: &str, key: &IncidentKey, _daemon_arn: Option<&str>) -> Option<Signal> {
        Some(Signal::impaired_now(cluster, &key.instance, None))
    }

    fn recovered(&self) -> Option<&'static str> {
        Some("recovered: ECS reports the instance healthy again")
    }

    fn may_repeat_agent(&self) -> bool {
        true
    }
}
