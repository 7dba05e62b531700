//! What ECS and EC2 say now: the plain data the adapters return and the verdicts read.

use std::collections::HashMap;

/// Declares an enum of the states an AWS API answers with, parsed from its string, with
/// `Unknown` for a value added after this code was written.
macro_rules! states {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            Unknown,
        }

        impl $name {
            pub fn parse(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)+
                    _ => Self::Unknown,
                }
            }

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Unknown => "unknown",
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                Self::parse(text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

states! {
    /// A container instance's `status`.
    InstanceStatus {
        Registering = "REGISTERING",
        RegistrationFailed = "REGISTRATION_FAILED",
        Active = "ACTIVE",
        Draining = "DRAINING",
        Deregistering = "DEREGISTERING",
        Inactive = "INACTIVE",
    }
}

states! {
    /// An EC2 instance's `State.Name`.
    Ec2State {
        Pending = "pending",
        Running = "running",
        ShuttingDown = "shutting-down",
        Terminated = "terminated",
        Stopping = "stopping",
        Stopped = "stopped",
    }
}

states! {
    /// A task's `lastStatus`.
    TaskStatus {
        Provisioning = "PROVISIONING",
        Pending = "PENDING",
        Activating = "ACTIVATING",
        Running = "RUNNING",
        Deactivating = "DEACTIVATING",
        Stopping = "STOPPING",
        Deprovisioning = "DEPROVISIONING",
        Stopped = "STOPPED",
        Deleted = "DELETED",
    }
}

states! {
    /// A capacity provider's `type`.
    CapacityProviderType {
        Ec2AutoScaling = "EC2_AUTOSCALING",
        ManagedInstances = "MANAGED_INSTANCES",
        Fargate = "FARGATE",
        FargateSpot = "FARGATE_SPOT",
    }
}

states! {
    /// An ECS Anywhere host's `PingStatus` in Systems Manager.
    PingStatus {
        Online = "Online",
        ConnectionLost = "ConnectionLost",
        Inactive = "Inactive",
    }
}

/// Systems Manager's `PingStatus` by managed node id (`mi-…`), from `DescribeInstanceInformation`;
/// an id that is absent is not registered with Systems Manager.
pub type HostStates = HashMap<String, PingStatus>;

/// A container instance as `DescribeContainerInstances` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInstance {
    pub arn: String,
    pub status: InstanceStatus,
    pub agent_connected: bool,
    pub version: i64,
    pub ec2_instance_id: Option<String>,
    pub running_tasks_count: i32,
    pub agent_version: Option<String>,
    pub availability_zone: Option<String>,
    /// The capacity provider that launched it (Managed Instances, an Auto Scaling group's).
    pub capacity_provider_name: Option<String>,
    /// `healthStatus` (`include: CONTAINER_INSTANCE_HEALTH`); `None` when ECS returned none.
    pub health: Option<InstanceHealth>,
    /// Its tags (`include: TAGS`, in the same call): a silence is one.
    pub tags: Vec<(String, String)>,
}

impl ContainerInstance {
    /// The value of its tag `key`, if it has one.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// A container instance's health as `DescribeContainerInstances` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceHealth {
    /// `OK`, `IMPAIRED`, `INSUFFICIENT_DATA` or `INITIALIZING`.
    pub overall: String,
    /// The checks that are not OK.
    pub failing: Vec<HealthCheck>,
}

/// One health check of a container instance: `AGENT_CONNECTIVITY`, `CONTAINER_RUNTIME`,
/// `DAEMON`, `ACCELERATED_COMPUTE`, or a type added later; as `DescribeContainerInstances` and
/// the health change event report it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    #[serde(rename = "type")]
    pub check: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl InstanceHealth {
    pub fn impaired(&self) -> bool {
        self.overall == "IMPAIRED"
    }
}

/// The answer for one cluster's container instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterInstances {
    /// `ClusterNotFoundException`: the cluster was deleted.
    ClusterGone,
    /// Found instances, keyed by [`instance_key`]; an instance that is absent was reported MISSING.
    Found(HashMap<String, ContainerInstance>),
}

impl ClusterInstances {
    pub fn lookup(&self, container_instance_arn: &str) -> InstanceView<'_> {
        match self {
            ClusterInstances::ClusterGone => InstanceView::ClusterGone,
            ClusterInstances::Found(found) => match found.get(instance_key(container_instance_arn)) {
                Some(instance) => InstanceView::Found(instance),
                None => InstanceView::Missing,
            },
        }
    }
}

/// One container instance's current state, as far as ECS knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceView<'a> {
    ClusterGone,
    Missing,
    Found(&'a ContainerInstance),
}

/// A cluster with its status and tags (`DescribeClusters` with `include=TAGS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub arn: String,
    pub status: String,
    pub tags: Vec<(String, String)>,
    /// `registeredContainerInstancesCount`: ACTIVE and DRAINING instances, for the severity's
    /// share of the cluster.
    pub registered_instances: usize,
    /// The cluster's capacity providers (`capacityProviders`), by name.
    pub capacity_providers: Vec<String>,
}

/// An Auto Scaling group's instances that are `InService` (`DescribeAutoScalingGroups`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoScalingGroup {
    pub name: String,
    pub in_service: Vec<GroupInstance>,
}

/// One instance of an Auto Scaling group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInstance {
    pub instance_id: String,
    pub availability_zone: Option<String>,
}

/// The name in an Auto Scaling group ARN (`…:autoScalingGroupName/<name>`), or the input when it
/// is a name.
pub fn auto_scaling_group_name(arn: &str) -> &str {
    arn.rsplit_once("autoScalingGroupName/").map_or(arn, |(_, name)| name)
}

/// The key that identifies a container instance whatever the ARN format: the id after the last
/// `/` (`container-instance/<id>` and `container-instance/<cluster>/<id>` name the same one).
pub fn instance_key(container_instance_arn: &str) -> &str {
    container_instance_arn
        .rsplit('/')
        .next()
        .unwrap_or(container_instance_arn)
}

/// The cluster name in a cluster ARN (`arn:…:cluster/<name>`), or the input when it is a name.
pub fn cluster_name(cluster_arn: &str) -> &str {
    cluster_arn
        .rsplit_once(":cluster/")
        .map_or(cluster_arn, |(_, name)| name)
}

/// A task as `DescribeTasks` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub arn: String,
    pub group: Option<String>,
    pub last_status: TaskStatus,
    pub container_instance_arn: Option<String>,
}

impl Task {
    /// Whether it is running or on its way there (PROVISIONING, PENDING, ACTIVATING, RUNNING).
    pub fn is_live(&self) -> bool {
        use TaskStatus::*;
        matches!(self.last_status, Provisioning | Pending | Activating | Running)
    }
}

/// Which tasks `ListTasks` should list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskFilter {
    /// The tasks of a Managed Daemon across the cluster, by its name (`daemonName`).
    Daemon(String),
    /// The tasks ECS means to run on one container instance, by its ARN (`containerInstance`):
    /// which services an alerted instance carries.
    ContainerInstance(String),
}

/// A Managed Daemon of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    pub arn: String,
    pub name: String,
}

/// Where a daemon runs, as `DescribeDaemon` tells: one task on every container instance of
/// these capacity providers (names); empty when ECS did not say. And whether it is critical, as
/// its current revisions say (`DescribeDaemonRevisions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonPlacement {
    pub capacity_providers: Vec<String>,
    /// ECS drains and replaces an instance whose critical daemon fails; a non-critical daemon's
    /// instance runs on without it. `None`: the revisions could not be read.
    pub critical: Option<bool>,
}

impl DaemonPlacement {
    /// Whether the daemon belongs on an instance of this capacity provider.
    pub fn covers(&self, capacity_provider: Option<&str>) -> bool {
        self.capacity_providers.is_empty()
            || capacity_provider.is_some_and(|name| self.capacity_providers.iter().any(|p| p == name))
    }
}

/// EC2 states by instance id, from `DescribeInstances`; an id that is absent no longer exists.
pub type Ec2States = HashMap<String, Ec2State>;

/// Whether an EC2 id can be checked with `DescribeInstances`: ECS Anywhere's `mi-…` cannot.
pub fn is_ec2_instance_id(id: &str) -> bool {
    id.starts_with("i-")
}

/// Whether an id is an ECS Anywhere host's, a Systems Manager managed node (`mi-…`).
pub fn is_managed_node_id(id: &str) -> bool {
    id.starts_with("mi-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_arns_differ_only_in_format_then_they_name_the_same_instance() {
        assert_eq!(instance_key("arn:aws:ecs:eu-west-1:1:container-instance/0b4a"), "0b4a");
        assert_eq!(
            instance_key("arn:aws:ecs:eu-west-1:1:container-instance/prod/0b4a"),
            "0b4a"
        );
    }

    #[test]
    fn when_a_cluster_is_named_by_arn_or_name_then_its_name_is_found() {
        assert_eq!(cluster_name("arn:aws:ecs:eu-west-1:1:cluster/prod"), "prod");
        assert_eq!(cluster_name("prod"), "prod");
    }

    #[test]
    fn when_an_id_is_from_ecs_anywhere_then_it_is_not_an_ec2_id() {
        assert!(is_ec2_instance_id("i-0abc"));
        assert!(!is_ec2_instance_id("mi-0abc"));
    }
}
