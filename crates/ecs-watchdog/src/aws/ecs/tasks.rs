//! ECS tasks: those running on a container instance or for a daemon, and what each is.

use aws_sdk_ecs::types::DesiredStatus;

use super::{EcsInventory, PAGE_SIZE};
use crate::aws::sdk_error;
use crate::aws::shared::every_page;
use crate::inventory::{Task, TaskFilter, TaskStatus};
use crate::ports::AwsError;

impl EcsInventory {
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
