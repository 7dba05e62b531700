//! ECS clusters: which there are, and what they are (status, size, tags, capacity providers).

use aws_sdk_ecs::types::ClusterField;

use super::{EcsInventory, PAGE_SIZE, tags};
use crate::aws::sdk_error;
use crate::aws::shared::every_page;
use crate::inventory::ClusterInfo;
use crate::ports::AwsError;

impl EcsInventory {
    /// `ListClusters`, every page.
    pub async fn list_clusters(&self) -> Result<Vec<String>, AwsError> {
        let pages = self
            .client
            .list_clusters()
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let pages = every_page(&self.turns, pages)
            .await
            .map_err(|e| sdk_error("ecs:ListClusters", e))?;
        Ok(pages.iter().flat_map(|p| p.cluster_arns()).cloned().collect())
    }

    /// `DescribeClusters` with tags; clusters ECS does not know are simply absent.
    pub async fn describe_clusters(&self, cluster_arns: &[String]) -> Result<Vec<ClusterInfo>, AwsError> {
        let _turn = self.turns.wait().await;
        let output = self
            .client
            .describe_clusters()
            .set_clusters(Some(cluster_arns.to_vec()))
            .include(ClusterField::Tags)
            .send()
            .await
            .map_err(|e| sdk_error("ecs:DescribeClusters", e))?;
        Ok(output
            .clusters()
            .iter()
            .map(|c| ClusterInfo {
                arn: c.cluster_arn().unwrap_or_default().to_owned(),
                status: c.status().unwrap_or_default().to_owned(),
                registered_instances: usize::try_from(c.registered_container_instances_count()).unwrap_or(0),
                tags: tags(c.tags()),
                capacity_providers: c.capacity_providers().to_vec(),
            })
            .collect())
    }
}
