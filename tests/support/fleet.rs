//! Seeds an ECS fleet in the emulator through the real SDK clients.

use aws_config::SdkConfig;
use aws_sdk_ec2::types::InstanceStateName;
use aws_sdk_ecs::types::{ContainerInstanceStatus, Tag};
use futures_util::future::join_all;

/// One EC2 instance registered as a container instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub cluster_arn: String,
    pub ec2_instance_id: String,
    pub container_instance_arn: String,
}

pub struct Fleet {
    pub ecs: aws_sdk_ecs::Client,
    pub ec2: aws_sdk_ec2::Client,
    ami: String,
}

impl Fleet {
    pub async fn new(sdk: &SdkConfig) -> Self {
        let ec2 = aws_sdk_ec2::Client::new(sdk);
        let images = ec2
            .describe_images()
            .owners("amazon")
            .send()
            .await
            .expect("DescribeImages");
        let ami = images
            .images()
            .first()
            .and_then(|i| i.image_id())
            .expect("moto ships AMIs")
            .to_owned();
        Self {
            ecs: aws_sdk_ecs::Client::new(sdk),
            ec2,
            ami,
        }
    }

    /// Creates a cluster with tags and returns its ARN.
    pub async fn cluster(&self, name: &str, tags: &[(&str, &str)]) -> String {
        let tags = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
            .collect();
        let output = self
            .ecs
            .create_cluster()
            .cluster_name(name)
            .set_tags(Some(tags))
            .send()
            .await
            .expect("CreateCluster");
        output
            .cluster()
            .and_then(|c| c.cluster_arn())
            .expect("cluster ARN")
            .to_owned()
    }

    /// Launches `count` EC2 instances and registers each with the cluster.
    pub async fn nodes(&self, cluster_arn: &str, count: usize) -> Vec<Node> {
        let mut nodes = Vec::with_capacity(count);
        for start in (0..count).step_by(250) {
            let n = (count - start).min(250) as i32;
            let launched = self
                .ec2
                .run_instances()
                .image_id(&self.ami)
                .min_count(n)
                .max_count(n)
                .send()
                .await
                .expect("RunInstances");
            let ids: Vec<String> = launched
                .instances()
                .iter()
                .filter_map(|i| i.instance_id())
                .map(str::to_owned)
                .collect();
            for chunk in ids.chunks(25) {
                let registered = join_all(chunk.iter().map(|id| self.register(cluster_arn, id))).await;
                nodes.extend(registered);
            }
        }
        nodes
    }

    /// Registers the EC2 instance with the cluster, as its agent would.
    pub async fn register(&self, cluster_arn: &str, ec2_instance_id: &str) -> Node {
        let document =
            serde_json::json!({"instanceId": ec2_instance_id, "region": crate::emulator::REGION}).to_string();
        let output = self
            .ecs
            .register_container_instance()
            .cluster(cluster_arn)
            .instance_identity_document(document)
            .send()
            .await
            .expect("RegisterContainerInstance");
        Node {
            cluster_arn: cluster_arn.to_owned(),
            ec2_instance_id: ec2_instance_id.to_owned(),
            container_instance_arn: output
                .container_instance()
                .and_then(|c| c.container_instance_arn())
                .expect("ARN")
                .to_owned(),
        }
    }

    /// Launches `count` instances through an Auto Scaling group and registers each with the
    /// cluster.
    pub async fn auto_scaling_group(&self, sdk: &SdkConfig, name: &str, cluster_arn: &str, count: i32) -> Vec<Node> {
        let (_, ids) = self.launch_group(sdk, name, count).await;
        join_all(ids.iter().map(|id| self.register(cluster_arn, id))).await
    }

    /// Launches `count` instances through an Auto Scaling group, none registered; returns the
    /// group's ARN and the instances' ids.
    pub async fn launch_group(&self, sdk: &SdkConfig, name: &str, count: i32) -> (String, Vec<String>) {
        let autoscaling = aws_sdk_autoscaling::Client::new(sdk);
        autoscaling
            .create_launch_configuration()
            .launch_configuration_name(name)
            .image_id(&self.ami)
            .instance_type("m6g.large")
            .send()
            .await
            .expect("CreateLaunchConfiguration");
        autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .launch_configuration_name(name)
            .min_size(count)
            .max_size(count)
            .desired_capacity(count)
            .availability_zones(format!("{}a", crate::emulator::REGION))
            .send()
            .await
            .expect("CreateAutoScalingGroup");
        let groups = autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .expect("DescribeAutoScalingGroups");
        let group = groups.auto_scaling_groups().first().expect("the group");
        let ids: Vec<String> = group
            .instances()
            .iter()
            .filter_map(|i| i.instance_id())
            .map(str::to_owned)
            .collect();
        let arn = group.auto_scaling_group_arn().expect("its ARN").to_owned();
        (arn, ids)
    }

    /// An EC2 Auto Scaling capacity provider of the group, added to the cluster's providers.
    pub async fn capacity_provider(&self, cluster_arn: &str, name: &str, group_arn: &str) {
        let provider = aws_sdk_ecs::types::AutoScalingGroupProvider::builder()
            .auto_scaling_group_arn(group_arn)
            .build()
            .expect("a provider");
        self.ecs
            .create_capacity_provider()
            .name(name)
            .auto_scaling_group_provider(provider)
            .send()
            .await
            .expect("CreateCapacityProvider");
        let described = self
            .ecs
            .describe_clusters()
            .clusters(cluster_arn)
            .send()
            .await
            .expect("DescribeClusters");
        let mut providers: Vec<String> = described
            .clusters()
            .first()
            .map(|c| c.capacity_providers().to_vec())
            .unwrap_or_default();
        providers.push(name.to_owned());
        self.ecs
            .put_cluster_capacity_providers()
            .cluster(cluster_arn)
            .set_capacity_providers(Some(providers))
            .set_default_capacity_provider_strategy(Some(Vec::new()))
            .send()
            .await
            .expect("PutClusterCapacityProviders");
    }

    /// The instance's health in its Auto Scaling group.
    pub async fn health(&self, sdk: &SdkConfig, node: &Node) -> String {
        let autoscaling = aws_sdk_autoscaling::Client::new(sdk);
        let output = autoscaling
            .describe_auto_scaling_instances()
            .instance_ids(&node.ec2_instance_id)
            .send()
            .await
            .expect("DescribeAutoScalingInstances");
        output
            .auto_scaling_instances()
            .first()
            .and_then(|i| i.health_status())
            .unwrap_or_default()
            .to_owned()
    }

    /// How many of the cluster's container instances have this status now.
    pub async fn count(&self, cluster_arn: &str, status: ContainerInstanceStatus) -> usize {
        let listed = self
            .ecs
            .list_container_instances()
            .cluster(cluster_arn)
            .send()
            .await
            .expect("ListContainerInstances");
        let mut count = 0;
        for chunk in listed.container_instance_arns().chunks(100) {
            let described = self
                .ecs
                .describe_container_instances()
                .cluster(cluster_arn)
                .set_container_instances(Some(chunk.to_vec()))
                .send()
                .await
                .expect("DescribeContainerInstances");
            count += described
                .container_instances()
                .iter()
                .filter(|i| i.status() == Some(status.as_str()))
                .count();
        }
        count
    }

    /// Registers a task definition of `family` and returns its ARN.
    pub async fn task_definition(&self, family: &str) -> String {
        let container = aws_sdk_ecs::types::ContainerDefinition::builder()
            .name(family)
            .image("public.ecr.aws/docker/library/busybox:latest")
            .memory(128)
            .build();
        let output = self
            .ecs
            .register_task_definition()
            .family(family)
            .container_definitions(container)
            .send()
            .await
            .expect("RegisterTaskDefinition");
        output
            .task_definition()
            .and_then(|t| t.task_definition_arn())
            .expect("task definition ARN")
            .to_owned()
    }

    /// Starts a task of `task_definition_arn` in `group` on `node` and returns its ARN.
    pub async fn start_task(&self, node: &Node, task_definition_arn: &str, group: &str) -> String {
        let output = self
            .ecs
            .start_task()
            .cluster(&node.cluster_arn)
            .task_definition(task_definition_arn)
            .container_instances(&node.container_instance_arn)
            .group(group)
            .send()
            .await
            .expect("StartTask");
        output
            .tasks()
            .first()
            .and_then(|t| t.task_arn())
            .expect("task ARN")
            .to_owned()
    }

    pub async fn stop_instance(&self, node: &Node) {
        self.ec2
            .stop_instances()
            .instance_ids(&node.ec2_instance_id)
            .send()
            .await
            .expect("StopInstances");
        let state = self.ec2_state(node).await;
        assert_eq!(state, Some(InstanceStateName::Stopped), "moto stops at once");
    }

    pub async fn ec2_state(&self, node: &Node) -> Option<InstanceStateName> {
        let output = self
            .ec2
            .describe_instances()
            .instance_ids(&node.ec2_instance_id)
            .send()
            .await
            .expect("DescribeInstances");
        output
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find_map(|i| i.state()?.name().cloned())
    }

    pub async fn drain(&self, node: &Node) {
        self.ecs
            .update_container_instances_state()
            .cluster(&node.cluster_arn)
            .container_instances(&node.container_instance_arn)
            .status(ContainerInstanceStatus::Draining)
            .send()
            .await
            .expect("UpdateContainerInstancesState");
    }

    /// The container instance's status and version now.
    pub async fn container_instance(&self, node: &Node) -> (String, i64) {
        let output = self
            .ecs
            .describe_container_instances()
            .cluster(&node.cluster_arn)
            .container_instances(&node.container_instance_arn)
            .send()
            .await
            .expect("DescribeContainerInstances");
        let instance = output.container_instances().first().expect("registered");
        (instance.status().unwrap_or_default().to_owned(), instance.version())
    }
}
