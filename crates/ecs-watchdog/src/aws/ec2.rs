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
        let pages = self
            .client
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("instance-id")
                    .set_values(Some(instance_ids.to_vec()))
                    .build(),
            )
            .into_paginator()
            .send();
        let pages = super::shared::every_page(&self.turns, pages)
            .await
            .map_err(|e| super::sdk_error("ec2:DescribeInstances", e))?;
        let instances = pages.iter().flat_map(|p| p.reservations()).flat_map(|r| r.instances());
        Ok(instances
            .filter_map(|i| {
                Some((
                    i.instance_id()?.to_owned(),
                    Ec2State::parse(i.state()?.name()?.as_str()),
                ))
            })
            .collect())
    }
}
