//! The `instance-not-registered` alert: an EC2 instance that a cluster's Auto Scaling capacity
//! provider launched and that never registered as a container instance. No event tells it (no
//! container instance, no event), so only the sweep finds it; its incident is keyed by the EC2
//! instance id, which stands where a container instance's ARN would.

use super::kind::Kind;
use crate::finding::lines::{first, host, remediation_line, since};
use crate::finding::steps::{NextSteps, Step};
use crate::finding::{DaemonChecks, Finding, InstanceFinding, Severity, instances};
use crate::kind::AlertKind;
use crate::metrics::Metric;

/// How the resolved notice says it ended: the look found it registered, or it left the group.
pub const REGISTERED_OR_LEFT: &str =
    "over: the instance registered with the cluster, or left its Auto Scaling group (or terminated)";

fn opening(finding: &Finding, total: usize) -> String {
    let noun = instances(total);
    let (cluster, place) = (&finding.cluster_name, finding.place());
    let (are, them) = if total == 1 { ("is", "it") } else { ("are", "them") };
    format!(
        "{total} EC2 {noun} of cluster {cluster}'s Auto Scaling capacity providers ({place}) {are} InService but \
         never registered with the cluster. ECS places no task on {them}: the capacity the group pays for is \
         missing, and no ECS event will ever say so.\n\nInstances:\n"
    )
}

fn instance_lines(instance: &InstanceFinding, now: u64) -> String {
    format!(
        "  - {} ({}): launched {}, no container instance\n    {}{}\n",
        host(instance),
        instance.availability_zone.as_deref().unwrap_or("unknown zone"),
        since(instance.since.as_deref(), now),
        instance
            .reason
            .as_deref()
            .unwrap_or("InService in the capacity provider's Auto Scaling group"),
        remediation_line(instance),
    )
}

/// The likely causes, in the order they are met on a boot, with the first instance's id in the
/// commands.
fn next_steps(finding: &Finding) -> Option<NextSteps> {
    let (region, cluster) = (&finding.region, &finding.cluster_name);
    let target = host(first(finding)?);
    Some(NextSteps {
        heading: "What to do next (the likely causes, most common first)",
        note: Some(format!(
            "Once fixed, replace the instance (the group launches a new one): \
             aws autoscaling terminate-instance-in-auto-scaling-group --region {region} --instance-id {target} --no-should-decrement-desired-capacity"
        )),
        ..NextSteps::numbered(vec![
            Step::says(format!(
                "The instance profile: the instance's role must allow the agent to register \
                 (the managed policy AmazonEC2ContainerServiceforEC2Role): \
                 aws ec2 describe-instances --region {region} --instance-ids {target} --query 'Reservations[].Instances[].IamInstanceProfile'"
            )),
            Step::says(format!(
                "ECS_CLUSTER in the user data: /etc/ecs/ecs.config must say ECS_CLUSTER={cluster}, else the agent joins the \
                 cluster named default: aws ec2 describe-instance-attribute --region {region} --instance-id {target} --attribute userData"
            )),
            Step::says(
                "The network: the instance must reach the ECS endpoints (ecs, ecs-agent, ecs-telemetry) through VPC \
                 endpoints or a NAT gateway; a private subnet with neither never registers.",
            ),
            Step::says(format!(
                "The AMI's agent: on an ECS-optimized AMI, aws ssm start-session --region {region} --target {target}, then \
                 sudo systemctl status ecs; sudo tail -n 100 /var/log/ecs/ecs-init.log /var/log/ecs/ecs-agent.log; \
                 a custom AMI may lack the agent altogether."
            )),
        ])
    })
}

pub struct InstanceNotRegistered;

impl Kind for InstanceNotRegistered {
    fn kind(&self) -> AlertKind {
        AlertKind::InstanceNotRegistered
    }

    /// None: an instance that never registered sends no ECS event; the sweep finds it.
    fn detail_types(&self) -> &'static [&'static str] {
        &[]
    }

    fn headline(&self, _daemons: &[&str]) -> String {
        "EC2 instance not registered with ECS".to_owned()
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
            "DescribeClusters and DescribeCapacityProviders: the cluster's Auto Scaling capacity providers and their groups",
            "DescribeAutoScalingGroups: the instance is InService in one of those groups",
            "DescribeInstances: it was launched longer ago than REGISTER_WITHIN_MINUTES",
            "ListContainerInstances and DescribeContainerInstances: no container instance of the cluster has its EC2 id",
        ]
    }

    /// High when at least `CRITICAL_PERCENT` of the cluster's capacity is missing this way, a
    /// warning below: the cluster runs on, smaller.
    fn severity(&self, instances: &[InstanceFinding], widespread: &dyn Fn(usize) -> bool) -> Severity {
        if widespread(instances.len()) {
            Severity::High
        } else {
            Severity::Warning
        }
    }

    fn metric(&self) -> Option<Metric> {
        Some(Metric::InstanceNotRegistered)
    }

    /// The sweep's gauge: an instance is counted every run until it registers or leaves, so
    /// the alarm reads "still missing", not "alerted once".
    fn alarm(&self) -> Option<Metric> {
        Some(Metric::UnregisteredInstances)
    }

    fn recovered(&self) -> Option<&'static str> {
        Some(REGISTERED_OR_LEFT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding() -> Finding {
        Finding {
            schema_version: "1",
            kind: AlertKind::InstanceNotRegistered,
            severity: Severity::Warning,
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            cluster_name: "prod".into(),
            cluster_arn: "arn:aws:ecs:eu-west-1:123456789012:cluster/prod".into(),
            instances: vec![InstanceFinding {
                container_instance_arn: "i-0abc".into(),
                ec2_instance_id: Some("i-0abc".into()),
                since: Some("2025-12-05T09:58:00Z".into()),
                reason: Some("InService in Auto Scaling group asg-prod (capacity provider cp-prod)".into()),
                ..Default::default()
            }],
            omitted_instances: 0,
            checked: Vec::new(),
            action: String::new(),
            digest: None,
        }
    }

    #[test]
    fn when_an_instance_never_registered_then_the_text_names_it_its_group_and_the_four_causes() {
        let (mut email, finding) = (String::new(), finding());
        email.push_str(&InstanceNotRegistered.opening(&finding, 1));
        email.push_str(&InstanceNotRegistered.instance_lines(&finding.instances[0], 1_764_930_060));
        if let Some(steps) = InstanceNotRegistered.next_steps(&finding) {
            steps.write(&mut email);
        }
        for said in [
            "i-0abc",
            "asg-prod",
            "(23 min ago)",
            "AmazonEC2ContainerServiceforEC2Role",
            "ECS_CLUSTER=prod",
            "VPC endpoints or a NAT gateway",
            "ecs-init.log",
        ] {
            assert!(email.contains(said), "{said:?} not in:\n{email}");
        }
    }
}
