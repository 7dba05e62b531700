//! ECS: clusters and container instances.

use std::collections::HashMap;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::ClusterField;

use crate::inventory::{ClusterInfo, ClusterInstances, ContainerInstance, instance_key};
use crate::ports::AwsError;

pub struct EcsInventory {
    client: Client,
}

impl EcsInventory {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// `DescribeClusters` with tags; clusters ECS does not know are simply absent.
    pub async fn describe_clusters(&self, cluster_arns: &[String]) -> Result<Vec<ClusterInfo>, AwsError> {
        let output = self
            .client
            .describe_clusters()
            .set_clusters(Some(cluster_arns.to_vec()))
            .include(ClusterField::Tags)
            .send()
            .await
            .map_err(|e| AwsError::new("ecs:DescribeClusters", e))?;
        Ok(output
            .clusters()
            .iter()
            .map(|c| ClusterInfo {
                arn: c.cluster_arn().unwrap_or_default().to_owned(),
                status: c.status().unwrap_or_default().to_owned(),
                tags: c
                    .tags()
                    .iter()
                    .map(|t| {
                        (
                            t.key().unwrap_or_default().to_owned(),
                            t.value().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
            })
            .collect())
    }

    /// `DescribeContainerInstances`; a deleted cluster is an answer, not an error.
    pub async fn describe_container_instances(
        &self,
        cluster_arn: &str,
        arns: &[String],
    ) -> Result<ClusterInstances, AwsError> {
        let result = self
            .client
            .describe_container_instances()
            .cluster(cluster_arn)
            .set_container_instances(Some(arns.to_vec()))
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_cluster_not_found_exception()) => {
                return Ok(ClusterInstances::ClusterGone);
            }
            Err(e) => return Err(AwsError::new("ecs:DescribeContainerInstances", e)),
        };
        let found: HashMap<String, ContainerInstance> = output
            .container_instances()
            .iter()
            .filter_map(|ci| {
                let arn = ci.container_instance_arn()?.to_owned();
                let attribute = |name: &str| {
                    ci.attributes()
                        .iter()
                        .find(|a| a.name() == name)
                        .and_then(|a| a.value())
                        .map(str::to_owned)
                };
                let instance = ContainerInstance {
                    status: ci.status().unwrap_or_default().to_owned(),
                    agent_connected: ci.agent_connected(),
                    version: ci.version(),
                    ec2_instance_id: ci.ec2_instance_id().map(str::to_owned),
                    running_tasks_count: ci.running_tasks_count(),
                    agent_version: ci.version_info().and_then(|v| v.agent_version()).map(str::to_owned),
                    availability_zone: attribute("ecs.availability-zone"),
                    arn,
                };
                Some((instance_key(&instance.arn).to_owned(), instance))
            })
            .collect();
        Ok(ClusterInstances::Found(found))
    }
}
