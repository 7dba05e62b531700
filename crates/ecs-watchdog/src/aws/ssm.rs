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
        let mut states = HostStates::new();
        let mut next_token = None;
        loop {
            let _turn = self.turns.wait().await;
            let output = self
                .client
                .get()
                .describe_instance_information()
                .filters(filter.clone())
                .max_results(MANAGED_NODE_LIMIT as i32)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| super::sdk_error("ssm:DescribeInstanceInformation", e))?;
            for node in output.instance_information_list() {
                if let (Some(id), Some(status)) = (node.instance_id(), node.ping_status()) {
                    states.insert(id.to_owned(), PingStatus::parse(status.as_str()));
                }
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(states),
            }
        }
    }
}
