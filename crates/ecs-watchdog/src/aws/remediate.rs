//! The built-in remediation steps: drain with ECS, replace with Auto Scaling.

use std::collections::{HashMap, HashSet};

use aws_sdk_ecs::types::ContainerInstanceStatus;
use futures_util::future::join_all;

use super::sdk_error;
use super::shared::Turns;
use crate::ports::error_chain;
use crate::remediation::{REPLACE_TAG, RemediationStep, Scope, StepOutcome, Target};

/// `UpdateContainerInstancesState` takes at most ten container instances a call.
const DRAIN_LIMIT: usize = 10;
/// `DescribeAutoScalingInstances` takes at most fifty instance ids a call.
const ASG_DESCRIBE_LIMIT: usize = 50;
/// `DescribeAutoScalingGroups` names at most a hundred groups a call.
const GROUPS_DESCRIBE_LIMIT: usize = 100;

/// Sets container instances to DRAINING: ECS stops placing tasks there and moves service tasks
/// to other instances.
pub struct Drain {
    ecs: aws_sdk_ecs::Client,
    turns: Turns,
    /// Checked again here, the last step before the call (the pipeline checks it first).
    scope: Scope,
}

impl Drain {
    pub fn new(ecs: aws_sdk_ecs::Client, scope: Scope) -> Self {
        Self {
            ecs,
            turns: Turns::new(),
            scope,
        }
    }

    async fn drain(&self, cluster_arn: &str, targets: &[Target]) -> Vec<StepOutcome> {
        let arns: Vec<String> = targets.iter().map(|t| t.container_instance_arn.clone()).collect();
        let _turn = self.turns.wait().await;
        let result = self
            .ecs
            .update_container_instances_state()
            .cluster(cluster_arn)
            .set_container_instances(Some(arns))
            .status(ContainerInstanceStatus::Draining)
            .send()
            .await
            .map_err(|e| sdk_error("ecs:UpdateContainerInstancesState", e));
        match result {
            Err(e) => targets.iter().map(|_| StepOutcome::Failed(error_chain(&e))).collect(),
            Ok(output) => targets
                .iter()
                .map(|t| {
                    let key = crate::inventory::instance_key(&t.container_instance_arn);
                    match output
                        .failures()
                        .iter()
                        .find(|f| f.arn().is_some_and(|a| a.ends_with(key)))
                    {
                        Some(failure) => StepOutcome::Failed(failure.reason().unwrap_or("ECS refused").to_owned()),
                        None => StepOutcome::Done("drained (DRAINING)".into()),
                    }
                })
                .collect(),
        }
    }
}

#[async_trait::async_trait]
impl RemediationStep for Drain {
    fn name(&self) -> &str {
        crate::remediation::DRAIN_STEP
    }

    async fn apply(&self, cluster_arn: &str, targets: &[Target], dry_run: bool) -> Vec<StepOutcome> {
        if !self.scope.covers(cluster_arn) {
            return targets
                .iter()
                .map(|_| StepOutcome::Skipped(Scope::outside(cluster_arn, "drained")))
                .collect();
        }
        if dry_run {
            return targets
                .iter()
                .map(|_| StepOutcome::WouldDo("drain (set to DRAINING)".into()))
                .collect();
        }
        let chunks: Vec<&[Target]> = targets.chunks(DRAIN_LIMIT).collect();
        join_all(chunks.iter().map(|chunk| self.drain(cluster_arn, chunk)))
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Marks the EC2 instance Unhealthy in its Auto Scaling group, so the group (and its
/// lifecycle hooks) terminate and replace it. An instance in no group is left drained: ECS
/// Managed Instances are replaced by ECS itself; anything else needs a person to terminate it.
pub struct ReplaceInAutoScalingGroup {
    autoscaling: aws_sdk_autoscaling::Client,
    turns: Turns,
    /// `REPLACE_AFTER_MINUTES`, for what the finding says about a target not yet replaced.
    replace_after: std::time::Duration,
    /// The clusters it may act in and whether a group must carry [`REPLACE_TAG`]; checked here,
    /// where the monitor and the sweep both pass.
    scope: Scope,
}

impl ReplaceInAutoScalingGroup {
    pub fn new(autoscaling: aws_sdk_autoscaling::Client, replace_after: std::time::Duration, scope: Scope) -> Self {
        Self {
            autoscaling,
            turns: Turns::new(),
            replace_after,
            scope,
        }
    }

    /// Which of `groups` carry [`REPLACE_TAG`]: `DescribeAutoScalingGroups` returns each group's
    /// tags (`DescribeAutoScalingInstances` does not).
    async fn tagged(&self, groups: &[String]) -> Result<HashSet<String>, String> {
        let mut tagged = HashSet::new();
        for chunk in groups.chunks(GROUPS_DESCRIBE_LIMIT) {
            let _turn = self.turns.wait().await;
            let output = self
                .autoscaling
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(chunk.to_vec()))
                .max_records(GROUPS_DESCRIBE_LIMIT as i32)
                .send()
                .await
                .map_err(|e| error_chain(&sdk_error("autoscaling:DescribeAutoScalingGroups", e)))?;
            for group in output.auto_scaling_groups() {
                let marked = group
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some(REPLACE_TAG.0) && t.value() == Some(REPLACE_TAG.1));
                if marked && let Some(name) = group.auto_scaling_group_name() {
                    tagged.insert(name.to_owned());
                }
            }
        }
        Ok(tagged)
    }

    /// The groups of `groups` that may be replaced in: all, or only the tagged ones.
    async fn allowed(&self, groups: &HashMap<String, (String, String)>) -> Result<Option<HashSet<String>>, String> {
        if !self.scope.only_tagged_groups {
            return Ok(None);
        }
        let mut names: Vec<String> = groups.values().map(|(group, _)| group.clone()).collect();
        names.sort();
        names.dedup();
        self.tagged(&names).await.map(Some)
    }

    /// Group and health status by instance id.
    async fn groups(&self, ids: &[String]) -> Result<HashMap<String, (String, String)>, String> {
        let mut groups = HashMap::new();
        for chunk in ids.chunks(ASG_DESCRIBE_LIMIT) {
            let _turn = self.turns.wait().await;
            let output = self
                .autoscaling
                .describe_auto_scaling_instances()
                .set_instance_ids(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| error_chain(&sdk_error("autoscaling:DescribeAutoScalingInstances", e)))?;
            for instance in output.auto_scaling_instances() {
                if let (Some(id), Some(group)) = (instance.instance_id(), instance.auto_scaling_group_name()) {
                    groups.insert(
                        id.to_owned(),
                        (
                            group.to_owned(),
                            instance.health_status().unwrap_or_default().to_owned(),
                        ),
                    );
                }
            }
        }
        Ok(groups)
    }

    async fn mark_unhealthy(&self, id: &str, group: &str) -> StepOutcome {
        let _turn = self.turns.wait().await;
        let result = self
            .autoscaling
            .set_instance_health()
            .instance_id(id)
            .health_status("Unhealthy")
            .should_respect_grace_period(false)
            .send()
            .await;
        match result {
            Ok(_) => StepOutcome::Done(format!(
                "marked Unhealthy in Auto Scaling group {group}, which replaces it"
            )),
            Err(e) => StepOutcome::Failed(error_chain(&sdk_error("autoscaling:SetInstanceHealth", e))),
        }
    }
}

#[async_trait::async_trait]
impl RemediationStep for ReplaceInAutoScalingGroup {
    fn name(&self) -> &str {
        crate::pipeline::REPLACE_STEP
    }

    async fn apply(&self, cluster_arn: &str, targets: &[Target], dry_run: bool) -> Vec<StepOutcome> {
        if !self.scope.covers(cluster_arn) {
            let why = Scope::outside(cluster_arn, "replaced");
            return targets.iter().map(|_| StepOutcome::Skipped(why.clone())).collect();
        }
        let ids: Vec<String> = targets
            .iter()
            .filter_map(|t| t.ec2_instance_id.clone())
            .filter(|id| id.starts_with("i-"))
            .collect();
        let waiting = format!(
            "waiting for its tasks to move: marked Unhealthy in its Auto Scaling group once only daemons run there, \
             at the latest after {} min (the sweep does it)",
            self.replace_after.as_secs() / 60
        );
        let groups = match self.groups(&ids).await {
            Ok(groups) => groups,
            Err(e) => return targets.iter().map(|_| StepOutcome::Failed(e.clone())).collect(),
        };
        let allowed = match self.allowed(&groups).await {
            Ok(allowed) => allowed,
            Err(e) => return targets.iter().map(|_| StepOutcome::Failed(e.clone())).collect(),
        };
        let untagged = |group: &String| allowed.as_ref().is_some_and(|a| !a.contains(group));
        let waiting = &waiting;
        let outcomes = targets.iter().map(|target| {
            let group = target.ec2_instance_id.as_ref().and_then(|id| Some((id, groups.get(id)?)));
            async move {
                match group {
                    None => StepOutcome::Skipped(
                        "not in an Auto Scaling group: left DRAINING (ECS replaces ECS Managed Instances itself; terminate any other instance once its tasks moved)"
                            .into(),
                    ),
                    Some((_, (group, _))) if untagged(group) => StepOutcome::Skipped(format!(
                        "not replaced: Auto Scaling group {group} is not tagged {}={} (REPLACE_ONLY_TAGGED_GROUPS): left DRAINING",
                        REPLACE_TAG.0, REPLACE_TAG.1
                    )),
                    Some((_, (group, health))) if health.eq_ignore_ascii_case("unhealthy") => {
                        StepOutcome::AlreadyDone(format!("Unhealthy in Auto Scaling group {group}"))
                    }
                    Some((_, (group, _))) if dry_run => StepOutcome::WouldDo(format!("mark Unhealthy in Auto Scaling group {group}")),
                    Some(_) if !target.replace_now => StepOutcome::Skipped(waiting.clone()),
                    Some((id, (group, _))) => self.mark_unhealthy(id, group).await,
                }
            }
        });
        join_all(outcomes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clients whose every call fails (nothing listens there): a step that calls reports
    /// `Failed`, one that refuses before calling reports `Skipped`.
    fn nowhere<C>(build: impl FnOnce(aws_config::SdkConfig) -> C) -> C {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(aws_sdk_ecs::config::SharedCredentialsProvider::new(
                aws_sdk_ecs::config::Credentials::for_tests(),
            ))
            .build();
        build(sdk)
    }

    fn target() -> Target {
        Target {
            container_instance_arn: "arn:aws:ecs:eu-west-1:1:container-instance/prod/0001".into(),
            ec2_instance_id: Some("i-0001".into()),
            replace_now: true,
        }
    }

    #[tokio::test]
    async fn when_a_step_is_asked_outside_its_scope_then_it_refuses_before_any_call() {
        let scope = Scope {
            clusters: Some(["payments".to_owned()].into()),
            only_tagged_groups: false,
        };
        let prod = "arn:aws:ecs:eu-west-1:1:cluster/prod";
        let drain = Drain::new(nowhere(|c| aws_sdk_ecs::Client::new(&c)), scope.clone());
        let replace = ReplaceInAutoScalingGroup::new(
            nowhere(|c| aws_sdk_autoscaling::Client::new(&c)),
            std::time::Duration::from_secs(900),
            scope,
        );
        for step in [&drain as &dyn RemediationStep, &replace] {
            let outcomes = step.apply(prod, &[target()], false).await;
            assert!(
                matches!(&outcomes[..], [StepOutcome::Skipped(why)] if why.contains("cluster prod is outside the remediation scope")),
                "{}: {outcomes:?}",
                step.name()
            );
        }
        // In scope, the same drain calls (and here fails: nothing listens).
        let inside = drain
            .apply("arn:aws:ecs:eu-west-1:1:cluster/payments", &[target()], false)
            .await;
        assert!(matches!(&inside[..], [StepOutcome::Failed(_)]), "{inside:?}");
    }
}
