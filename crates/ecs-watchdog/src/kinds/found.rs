//! What the kinds' findings share: the instance as ECS describes it, with what its event adds.

use crate::finding::InstanceFinding;
use crate::inventory::{ContainerInstance, InstanceView};
use crate::verdict::{Case, Verdict};

/// The finding of a confirmed verdict, from the instance ECS described.
pub fn confirmed(
    verdict: &Verdict,
    ecs: InstanceView<'_>,
    finding: impl FnOnce(&ContainerInstance) -> InstanceFinding,
) -> Option<Box<InstanceFinding>> {
    match (verdict, ecs) {
        (Verdict::Confirmed, InstanceView::Found(instance)) => Some(Box::new(finding(instance))),
        _ => None,
    }
}

/// An instance's finding with what its event (if any) adds: the EC2 id when ECS no longer says
/// it, and since when.
pub fn seen_on(case: Case<'_>, instance: &ContainerInstance) -> InstanceFinding {
    InstanceFinding {
        ec2_instance_id: instance
            .ec2_instance_id
            .clone()
            .or_else(|| case.ec2_instance_id().map(str::to_owned)),
        since: case.since().map(str::to_owned),
        ..instance_finding(case.arn_on(instance), instance)
    }
}

/// The instance as ECS describes it.
pub fn instance_finding(container_instance_arn: &str, instance: &ContainerInstance) -> InstanceFinding {
    InstanceFinding {
        container_instance_arn: container_instance_arn.to_owned(),
        ec2_instance_id: instance.ec2_instance_id.clone(),
        availability_zone: instance.availability_zone.clone(),
        running_tasks_count: instance.running_tasks_count,
        ..Default::default()
    }
}
