//! ECS: clusters and container instances.

use std::collections::HashMap;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{ClusterField, DaemonDeploymentStatus, DesiredStatus};

use super::sdk_error;
use super::shared::Turns;
use crate::inventory::{
    ClusterInfo, ClusterInstances, ContainerInstance, Daemon, DaemonPlacement, InstanceStatus, Task, TaskFilter,
    TaskStatus, instance_key,
};
use crate::ports::{AwsError, Daemons};

/// `ListTasks` and `ListDaemons` page size: each page is one call.
const PAGE_SIZE: i32 = 100;

pub struct EcsInventory {
    client: Client,
    turns: Turns,
}

impl EcsInventory {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            turns: Turns::new(),
        }
    }

    /// `ListClusters`, every page.
    pub async fn list_clusters(&self) -> Result<Vec<String>, AwsError> {
        let mut arns = Vec::new();
        let mut next_token = None;
        loop {
            let _turn = self.turns.wait().await;
            let output = self
                .client
                .list_clusters()
                .max_results(PAGE_SIZE)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| sdk_error("ecs:ListClusters", e))?;
            arns.extend(output.cluster_arns().iter().cloned());
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(arns),
            }
        }
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
        let _turn = self.turns.wait().await;
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
            Err(e) => return Err(sdk_error("ecs:DescribeContainerInstances", e)),
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
                    status: InstanceStatus::parse(ci.status().unwrap_or_default()),
                    agent_connected: ci.agent_connected(),
                    version: ci.version(),
                    ec2_instance_id: ci.ec2_instance_id().map(str::to_owned),
                    running_tasks_count: ci.running_tasks_count(),
                    agent_version: ci.version_info().and_then(|v| v.agent_version()).map(str::to_owned),
                    availability_zone: attribute("ecs.availability-zone"),
                    capacity_provider_name: ci.capacity_provider_name().map(str::to_owned),
                    arn,
                };
                Some((instance_key(&instance.arn).to_owned(), instance))
            })
            .collect();
        Ok(ClusterInstances::Found(found))
    }

    /// `ListContainerInstances` (every status but INACTIVE), every page; a cluster deleted
    /// meanwhile has none.
    pub async fn list_container_instances(&self, cluster_arn: &str) -> Result<Vec<String>, AwsError> {
        let mut arns = Vec::new();
        let mut next_token = None;
        loop {
            let _turn = self.turns.wait().await;
            let result = self
                .client
                .list_container_instances()
                .cluster(cluster_arn)
                .max_results(PAGE_SIZE)
                .set_next_token(next_token)
                .send()
                .await;
            let output = match result {
                Ok(output) => output,
                Err(e) if e.as_service_error().is_some_and(|s| s.is_cluster_not_found_exception()) => {
                    return Ok(Vec::new());
                }
                Err(e) => return Err(sdk_error("ecs:ListContainerInstances", e)),
            };
            arns.extend(output.container_instance_arns().iter().cloned());
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(arns),
            }
        }
    }

    /// `ListTasks` with desired status RUNNING (which includes PENDING tasks), every page.
    pub async fn list_tasks(&self, cluster_arn: &str, filter: &TaskFilter) -> Result<Vec<String>, AwsError> {
        let mut arns = Vec::new();
        let mut next_token = None;
        loop {
            let request = self
                .client
                .list_tasks()
                .cluster(cluster_arn)
                .desired_status(DesiredStatus::Running)
                .max_results(PAGE_SIZE);
            let request = match filter {
                TaskFilter::Family(family) => request.family(family),
                TaskFilter::ContainerInstance(arn) => request.container_instance(arn),
                TaskFilter::Daemon(name) => request.daemon_name(name),
            };
            let _turn = self.turns.wait().await;
            let output = request
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| sdk_error("ecs:ListTasks", e))?;
            arns.extend(output.task_arns().iter().cloned());
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(arns),
            }
        }
    }

    pub async fn describe_tasks(&self, cluster_arn: &str, task_arns: &[String]) -> Result<Vec<Task>, AwsError> {
        let _turn = self.turns.wait().await;
        let output = self
            .client
            .describe_tasks()
            .cluster(cluster_arn)
            .set_tasks(Some(task_arns.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error("ecs:DescribeTasks", e))?;
        Ok(output
            .tasks()
            .iter()
            .map(|t| Task {
                arn: t.task_arn().unwrap_or_default().to_owned(),
                group: t.group().map(str::to_owned),
                last_status: TaskStatus::parse(t.last_status().unwrap_or_default()),
                container_instance_arn: t.container_instance_arn().map(str::to_owned),
            })
            .collect())
    }
}

/// The Managed Daemons APIs, on their own client so they can be configured (or mocked) apart.
pub struct EcsDaemons {
    client: Client,
    turns: Turns,
}

impl EcsDaemons {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            turns: Turns::new(),
        }
    }
}

#[async_trait::async_trait]
impl Daemons for EcsDaemons {
    async fn list_daemons(&self, cluster_arn: &str) -> Result<Vec<Daemon>, AwsError> {
        let mut daemons = Vec::new();
        let mut next_token = None;
        loop {
            let _turn = self.turns.wait().await;
            let output = self
                .client
                .list_daemons()
                .cluster_arn(cluster_arn)
                .max_results(PAGE_SIZE)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| sdk_error("ecs:ListDaemons", e))?;
            daemons.extend(output.daemon_summaries_list().iter().filter_map(|d| {
                let arn = d.daemon_arn()?;
                Some(Daemon {
                    arn: arn.to_owned(),
                    name: arn.rsplit('/').next().unwrap_or(arn).to_owned(),
                })
            }));
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(daemons),
            }
        }
    }

    async fn describe_daemon(&self, daemon_arn: &str) -> Result<DaemonPlacement, AwsError> {
        let _turn = self.turns.wait().await;
        let output = self
            .client
            .describe_daemon()
            .daemon_arn(daemon_arn)
            .send()
            .await
            .map_err(|e| sdk_error("ecs:DescribeDaemon", e))?;
        // Every current revision's capacity providers: during a deployment old and new overlap.
        let mut capacity_providers: Vec<String> = output
            .daemon()
            .map(|d| d.current_revisions())
            .unwrap_or_default()
            .iter()
            .flat_map(|r| r.capacity_providers())
            .filter_map(|p| p.arn())
            .map(|arn| arn.rsplit('/').next().unwrap_or(arn).to_owned())
            .collect();
        capacity_providers.sort();
        capacity_providers.dedup();
        Ok(DaemonPlacement { capacity_providers })
    }

    async fn deployment_in_progress(&self, daemon_arn: &str) -> Result<bool, AwsError> {
        let unfinished = [
            DaemonDeploymentStatus::Pending,
            DaemonDeploymentStatus::InProgress,
            DaemonDeploymentStatus::StopRequested,
            DaemonDeploymentStatus::RollbackInProgress,
        ];
        let _turn = self.turns.wait().await;
        let output = self
            .client
            .list_daemon_deployments()
            .daemon_arn(daemon_arn)
            .set_status(Some(unfinished.to_vec()))
            .max_results(1)
            .send()
            .await
            .map_err(|e| sdk_error("ecs:ListDaemonDeployments", e))?;
        Ok(!output.daemon_deployments().is_empty())
    }
}
