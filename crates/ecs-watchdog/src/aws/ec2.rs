//! EC2: is the instance behind a container instance running, when was it launched, and which
//! instances do a cluster's Auto Scaling groups hold?

use std::collections::HashMap;

use aws_sdk_autoscaling::types::LifecycleState;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, Instance};

use super::shared::{OnFirstUse, Turns};
use crate::inventory::{AutoScalingGroup, Ec2State, Ec2States, GroupInstance};
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

    /// `DescribeInstances` filtered by `instance-id`: each instance's state.
    pub async fn describe_instances(&self, instance_ids: &[String]) -> Result<Ec2States, AwsError> {
        self.instances(instance_ids, |i| Some(Ec2State::parse(i.state()?.name()?.as_str())))
            .await
    }

    /// `DescribeInstances` filtered by `instance-id`, every page, each instance's id with what
    /// `read` takes of it: unlike `InstanceIds`, an id that no longer exists is left out instead
    /// of failing the whole call.
    async fn instances<T>(
        &self,
        instance_ids: &[String],
        read: impl Fn(&Instance) -> Option<T>,
    ) -> Result<HashMap<String, T>, AwsError> {
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
            .filter_map(|i| Some((i.instance_id()?.to_owned(), read(i)?)))
            .collect())
    }
}

impl Ec2Inventory {
    /// `DescribeInstances` filtered by `instance-id`: each instance's `LaunchTime` (UNIX seconds);
    /// an instance that no longer exists is left out.
    pub async fn launch_times(&self, instance_ids: &[String]) -> Result<HashMap<String, u64>, AwsError> {
        self.instances(instance_ids, |i| u64::try_from(i.launch_time()?.secs()).ok())
            .await
    }
}

/// EC2 Auto Scaling: the instances of the groups behind a cluster's capacity providers.
pub struct AutoScalingGroups {
    client: OnFirstUse<aws_sdk_autoscaling::Client>,
    turns: Turns,
}

impl AutoScalingGroups {
    pub fn new(client: OnFirstUse<aws_sdk_autoscaling::Client>) -> Self {
        Self {
            client,
            turns: Turns::new(),
        }
    }

    /// `DescribeAutoScalingGroups` for the named groups (the caller sends at most
    /// [`crate::pipeline::AUTO_SCALING_GROUP_LIMIT`]), every page: each group's `InService`
    /// instances. A group that no longer exists is left out.
    pub async fn describe(&self, names: &[String]) -> Result<Vec<AutoScalingGroup>, AwsError> {
        let pages = self
            .client
            .get()
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(Some(names.to_vec()))
            .into_paginator()
            .send();
        let pages = super::shared::every_page(&self.turns, pages)
            .await
            .map_err(|e| super::sdk_error("autoscaling:DescribeAutoScalingGroups", e))?;
        let groups = pages.iter().flat_map(|p| p.auto_scaling_groups());
        Ok(groups
            .map(|g| AutoScalingGroup {
                name: g.auto_scaling_group_name().unwrap_or_default().to_owned(),
                in_service: g
                    .instances()
                    .iter()
                    .filter(|i| i.lifecycle_state() == Some(&LifecycleState::InService))
                    .filter_map(|i| {
                        Some(GroupInstance {
                            instance_id: i.instance_id()?.to_owned(),
                            availability_zone: i.availability_zone().map(str::to_owned),
                        })
                    })
                    .collect(),
            })
            .collect())
    }
}
