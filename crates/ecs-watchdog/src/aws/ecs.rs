//! ECS: clusters and container instances.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_ecs::Client;
use aws_sdk_ecs::types::{
    CapacityProvider, ClusterField, ContainerInstanceField, DaemonDeploymentStatus, DesiredStatus,
};

use super::sdk_error;
use super::shared::{Turns, every_page};
use crate::event::HealthCheck;
use crate::inventory::{
    CapacityProviderType, ClusterInfo, ClusterInstances, ContainerInstance, Daemon, DaemonPlacement, InstanceHealth,
    InstanceStatus, Task, TaskFilter, TaskStatus, instance_key,
};
use crate::ports::{AwsError, Daemons};

/// `ListTasks` and `ListDaemons` page size: each page is one call.
const PAGE_SIZE: i32 = 100;

/// `DescribeCapacityProviders` page size: its most.
pub const CAPACITY_PROVIDER_PAGE: i32 = 10;

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

    /// `ListTasks` with desired status RUNNING (which includes PENDING tasks), every page.
    pub async fn list_tasks(&self, cluster_arn: &str, filter: &TaskFilter) -> Result<Vec<String>, AwsError> {
        let request = self
            .client
            .list_tasks()
            .cluster(cluster_arn)
            .desired_status(DesiredStatus::Running)
            .max_results(PAGE_SIZE);
        let request = match filter {
            TaskFilter::Daemon(name) => request.daemon_name(name),
            TaskFilter::ContainerInstance(arn) => request.container_instance(arn),
        };
        let pages = every_page(&self.turns, request.into_paginator().send())
            .await
            .map_err(|e| sdk_error("ecs:ListTasks", e))?;
        Ok(pages.iter().flat_map(|p| p.task_arns()).cloned().collect())
    }

    /// `DescribeCapacityProviders`: each named provider's type (an ECS Managed Instances
    /// provider's instances are repaired by ECS, never drained).
    pub async fn describe_capacity_providers(
        &self,
        names: &[String],
    ) -> Result<HashMap<String, CapacityProviderType>, AwsError> {
        let providers = self.capacity_providers(names).await?;
        Ok(providers
            .iter()
            .filter_map(|p| {
                let kind = CapacityProviderType::parse(p.r#type().map_or("", |t| t.as_str()));
                Some((p.name()?.to_owned(), kind))
            })
            .collect())
    }

    /// `DescribeCapacityProviders`: the Auto Scaling group of each named EC2 Auto Scaling
    /// provider (`autoScalingGroupProvider.autoScalingGroupArn`); other providers are left out.
    pub async fn capacity_provider_groups(&self, names: &[String]) -> Result<HashMap<String, String>, AwsError> {
        let providers = self.capacity_providers(names).await?;
        Ok(providers
            .iter()
            .filter_map(|p| {
                let group = p.auto_scaling_group_provider()?.auto_scaling_group_arn();
                Some((p.name()?.to_owned(), group.to_owned()))
            })
            .collect())
    }

    /// The named providers, every page: ECS answers at most 10 providers a page (API reference,
    /// `maxResults` 1 to 10) and the SDK has no paginator for it, so the pages are followed by
    /// `nextToken`, each one call. (Remediation once read only the first page: an 11th
    /// provider's Managed Instances were not known as such.)
    async fn capacity_providers(&self, names: &[String]) -> Result<Vec<CapacityProvider>, AwsError> {
        let mut providers = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let _turn = self.turns.wait().await;
            let output = self
                .client
                .describe_capacity_providers()
                .set_capacity_providers(Some(names.to_vec()))
                .max_results(CAPACITY_PROVIDER_PAGE)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| sdk_error("ecs:DescribeCapacityProviders", e))?;
            providers.extend(output.capacity_providers().iter().cloned());
            match output.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok(providers),
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

/// How long a daemon's placement and criticality are trusted: a deployment makes a new revision.
const PLACEMENT_TTL: Duration = Duration::from_secs(300);

/// The Managed Daemons APIs, on their own client so they can be configured (or mocked) apart.
pub struct EcsDaemons {
    client: Client,
    turns: Turns,
    /// `DescribeDaemon` and `DescribeDaemonRevisions` answers by daemon ARN, across warm
    /// invocations.
    placements: Mutex<HashMap<String, (DaemonPlacement, Instant)>>,
}

impl EcsDaemons {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            turns: Turns::new(),
            placements: Mutex::new(HashMap::new()),
        }
    }

    /// Whether every current revision is critical (ECS's default when unset); `None` when the
    /// revisions could not be read.
    async fn critical(&self, revision_arns: Vec<String>) -> Option<bool> {
        if revision_arns.is_empty() {
            return None;
        }
        let _turn = self.turns.wait().await;
        let output = self
            .client
            .describe_daemon_revisions()
            .set_daemon_revision_arns(Some(revision_arns))
            .send()
            .await
            .map_err(|e| tracing::warn!(error = %crate::ports::error_chain(&sdk_error("ecs:DescribeDaemonRevisions", e)), "daemon criticality unknown"))
            .ok()?;
        let revisions = output.daemon_revisions();
        (!revisions.is_empty()).then(|| revisions.iter().all(|r| r.critical().unwrap_or(true)))
    }
}

#[async_trait::async_trait]
impl Daemons for EcsDaemons {
    /// By hand: the SDK has no paginator for `ListDaemons` (its model does not mark it paginated).
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
        let cached = self
            .placements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(daemon_arn)
            .cloned();
        if let Some((placement, _)) = cached.filter(|(_, at)| at.elapsed() < PLACEMENT_TTL) {
            return Ok(placement);
        }
        let output = {
            let _turn = self.turns.wait().await;
            self.client
                .describe_daemon()
                .daemon_arn(daemon_arn)
                .send()
                .await
                .map_err(|e| sdk_error("ecs:DescribeDaemon", e))?
        };
        // Every current revision's capacity providers: during a deployment old and new overlap.
        let revisions = output.daemon().map(|d| d.current_revisions()).unwrap_or_default();
        let mut capacity_providers: Vec<String> = revisions
            .iter()
            .flat_map(|r| r.capacity_providers())
            .filter_map(|p| p.arn())
            .map(|arn| arn.rsplit('/').next().unwrap_or(arn).to_owned())
            .collect();
        capacity_providers.sort();
        capacity_providers.dedup();
        let revision_arns = revisions.iter().filter_map(|r| r.arn()).map(str::to_owned).collect();
        let placement = DaemonPlacement {
            capacity_providers,
            critical: self.critical(revision_arns).await,
        };
        if placement.critical.is_some() {
            self.placements
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(daemon_arn.to_owned(), (placement.clone(), Instant::now()));
        }
        Ok(placement)
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

/// Tags as (key, value) pairs.
fn tags(tags: &[aws_sdk_ecs::types::Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}
