//! ECS container instances: listed per cluster, and described with their health and tags.

use std::collections::HashMap;

use aws_sdk_ecs::types::ContainerInstanceField;

use super::{EcsInventory, PAGE_SIZE, tags};
use crate::aws::sdk_error;
use crate::aws::shared::every_page;
use crate::event::HealthCheck;
use crate::inventory::{ClusterInstances, ContainerInstance, InstanceHealth, InstanceStatus, instance_key};
use crate::ports::AwsError;

impl EcsInventory {
    /// `DescribeContainerInstances`; a deleted cluster is an answer, not an error.
    pub async fn describe_container_instances(
        &self,
        cluster_arn: &str,
        arns: &[String],
    ) -> Result<ClusterInstances, AwsError> {
        let _turn = self.turns.wait().await;
        let result = self
            .client
            .describe_container_instances()
            .cluster(cluster_arn)
            .set_container_instances(Some(arns.to_vec()))
            .include(ContainerInstanceField::ContainerInstanceHealth)
            .include(ContainerInstanceField::Tags)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_cluster_not_found_exception()) => {
                return Ok(ClusterInstances::ClusterGone);
            }
            Err(e) => return Err(sdk_error("ecs:DescribeContainerInstances", e)),
        };
        let found: HashMap<String, ContainerInstance> = output
            .container_instances()
            .iter()
            .filter_map(container_instance)
            .map(|instance| (instance_key(&instance.arn).to_owned(), instance))
            .collect();
        Ok(ClusterInstances::Found(found))
    }

    /// `ListContainerInstances` (every status but INACTIVE), every page; a cluster deleted
    /// meanwhile has none.
    pub async fn list_container_instances(&self, cluster_arn: &str) -> Result<Vec<String>, AwsError> {
        let pages = self
            .client
            .list_container_instances()
            .cluster(cluster_arn)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        match every_page(&self.turns, pages).await {
            Ok(pages) => Ok(pages
                .iter()
                .flat_map(|p| p.container_instance_arns())
                .cloned()
                .collect()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_cluster_not_found_exception()) => Ok(Vec::new()),
            Err(e) => Err(sdk_error("ecs:ListContainerInstances", e)),
        }
    }
}

/// A described container instance; none without an ARN.
fn container_instance(ci: &aws_sdk_ecs::types::ContainerInstance) -> Option<ContainerInstance> {
    let attribute = |name: &str| {
        ci.attributes()
            .iter()
            .find(|a| a.name() == name)
            .and_then(|a| a.value())
            .map(str::to_owned)
    };
    Some(ContainerInstance {
        arn: ci.container_instance_arn()?.to_owned(),
        status: InstanceStatus::parse(ci.status().unwrap_or_default()),
        agent_connected: ci.agent_connected(),
        version: ci.version(),
        ec2_instance_id: ci.ec2_instance_id().map(str::to_owned),
        running_tasks_count: ci.running_tasks_count(),
        agent_version: ci.version_info().and_then(|v| v.agent_version()).map(str::to_owned),
        availability_zone: attribute("ecs.availability-zone"),
        capacity_provider_name: ci.capacity_provider_name().map(str::to_owned),
        health: ci.health_status().map(health),
        tags: tags(ci.tags()),
    })
}

/// The instance's overall health and the checks that are not OK.
fn health(h: &aws_sdk_ecs::types::ContainerInstanceHealthStatus) -> InstanceHealth {
    InstanceHealth {
        overall: h.overall_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        failing: h
            .details()
            .iter()
            .filter(|d| d.status().is_some_and(|s| s.as_str() != "OK"))
            .map(|d| HealthCheck {
                check: d.r#type().map_or("unknown", |t| t.as_str()).to_owned(),
                status: d.status().map_or("unknown", |s| s.as_str()).to_owned(),
                reason: d.status_reason().map(str::to_owned),
            })
            .collect(),
    }
}
