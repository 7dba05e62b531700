//! EC2: is the instance behind a container instance running?

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::Filter;

use super::shared::Turns;
use crate::inventory::{Ec2State, Ec2States};
use crate::ports::AwsError;

pub struct Ec2Inventory {
    client: Client,
    turns: Turns,
}

impl Ec2Inventory {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            turns: Turns::new(),
        }
    }

    /// `DescribeInstances` filtered by `instance-id`: unlike `InstanceIds`, an id that no longer
    /// exists is left out instead of failing the whole call.
    pub async fn describe_instances(&self, instance_ids: &[String]) -> Result<Ec2States, AwsError> {
        let mut states = Ec2States::new();
        let mut next_token = None;
        loop {
            let _turn = self.turns.wait().await;
            let output = self
                .client
                .describe_instances()
                .filters(
                    Filter::builder()
                        .name("instance-id")
                        .set_values(Some(instance_ids.to_vec()))
                        .build(),
                )
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| super::sdk_error("ec2:DescribeInstances", e))?;
            for instance in output.reservations().iter().flat_map(|r| r.instances()) {
                if let (Some(id), Some(state)) = (instance.instance_id(), instance.state().and_then(|s| s.name())) {
                    states.insert(id.to_owned(), Ec2State::parse(state.as_str()));
                }
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(states),
            }
        }
    }
}
