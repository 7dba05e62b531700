//! Systems Manager: the ECS Anywhere host behind a container instance (`mi-…`).

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::InstanceInformationStringFilter;

use super::shared::{OnFirstUse, Turns};
use crate::inventory::{HostStates, PingStatus};
use crate::pipeline::MANAGED_NODE_LIMIT;
use crate::ports::AwsError;

pub struct SsmHosts {
    client: OnFirstUse<Client>,
    turns: Turns,
}

impl SsmHosts {
    pub fn new(client: OnFirstUse<Client>) -> Self {
        Self {
            client,
            turns: Turns::new(),
        }
    }

    /// Each node's `PingStatus`, every page; a node Systems Manager does not know is absent.
    pub async fn ping_status(&self, node_ids: &[String]) -> Result<HostStates, AwsError> {
        let filter = InstanceInformationStringFilter::builder()
            .key("InstanceIds")
            .set_values(Some(node_ids.to_vec()))
            .build()
            .map_err(|e| AwsError::new("ssm:DescribeInstanceInformation", e))?;
        let pages = self
            .client
            .get()
            .describe_instance_information()
            .filters(filter)
            .max_results(MANAGED_NODE_LIMIT as i32)
            .into_paginator()
            .send();
        let pages = super::shared::every_page(&self.turns, pages)
            .await
            .map_err(|e| super::sdk_error("ssm:DescribeInstanceInformation", e))?;
        let nodes = pages.iter().flat_map(|p| p.instance_information_list());
        Ok(nodes
            .filter_map(|n| {
                Some((
                    n.instance_id()?.to_owned(),
                    PingStatus::parse(n.ping_status()?.as_str()),
                ))
            })
            .collect())
    }
}
