//! AWS adapters: one per service, the only code that names an `aws_sdk_*` type.

mod accounts;
mod batch;
mod cloudwatch;
mod dynamodb;
mod ec2;
mod ecs;
mod findings;
mod pagerduty;
mod remediate;
mod restart;
mod shared;
pub(crate) mod sns;
mod sqs;
mod ssm;

use std::time::Duration;

pub use accounts::MemberAccounts;
pub use cloudwatch::{CloudWatchMetrics, EmfMetrics, WithoutClusterGauges};
pub use dynamodb::{CLUSTER_INDEX, DynamoLedger, OUTBOX_INDEX};
pub use ec2::{AutoScalingGroups, Ec2Inventory};
pub use ecs::{EcsDaemons, EcsInventory};
pub use findings::{EventBridgeFindings, FINDING_DETAIL_TYPE, FINDING_SOURCE, LambdaHook};
pub use pagerduty::{EventsApi, PagerDutyThenSns, REJECTED_METRIC, Retry, Sent, load_routing_key};
pub use remediate::{Drain, ReplaceInAutoScalingGroup};
pub use restart::{RESTART_COMMAND, RestartAgent};
pub use shared::{FirstUseTls, IN_FLIGHT, OnFirstUse};
pub use sns::SnsNotifier;
pub use sqs::DeadLetterQueue;
pub use ssm::SsmHosts;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::config::{Config, MetricsSinkKind, RemediationAction};
use crate::inventory::{CapacityProviderType, ClusterInfo, ClusterInstances, Ec2States, HostStates, Task, TaskFilter};
use crate::pipeline::{Adapters, Monitor};
use crate::ports::{AwsError, Daemons, FindingSink, Inventory, Ledger, MetricsSink, Notifier, SystemClock};
use crate::remediation::RemediationStep;

/// How long one attempt and one whole call (all retries) may take, from when the call gets its
/// turn ([`IN_FLIGHT`] per service). Lambda's own timeout must cover a batch's calls with room
/// to spare: a batch of 10,000 events is about seven rounds of eight calls per service.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);

/// Loads the shared SDK configuration: region, credentials and endpoint from the environment
/// (so `AWS_ENDPOINT_URL` points every client at an emulator), with explicit timeouts.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(FirstUseTls::shared())
        .timeout_config(timeouts);
    // Lambda hands the function its credentials in the environment, where the default chain
    // looks first. Building the rest of the chain (web identity with its own STS client, SSO,
    // the container and instance metadata providers) was a seventh of start-up, for providers
    // a function never reaches.
    let environment = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        .iter()
        .all(|v| std::env::var_os(v).is_some());
    let loader = if environment {
        loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
    } else {
        loader
    };
    loader.load().await
}

/// The monitor with its AWS adapters, all sharing one SDK configuration.
pub fn monitor(config: Config, sdk: &aws_config::SdkConfig) -> Monitor {
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    let io = adapters(&config, sdk);
    Monitor::new(config, region, io)
}

/// The sweep with its AWS adapters, and only the remediation it may finish
/// ([`crate::pipeline::keep_for_sweep`]).
pub fn sweep(config: Config, sdk: &aws_config::SdkConfig) -> crate::Sweep {
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    let mut io = adapters(&config, sdk);
    crate::pipeline::keep_for_sweep(&mut io.steps, config.remediation.dry_run);
    crate::Sweep::new(config, region, io)
}

/// The monitor of a hub: its own account and region, and each member place an event comes from.
pub fn hub(config: Config, sdk: &aws_config::SdkConfig) -> crate::pipeline::Hub {
    let members = Box::new(MemberAccounts::new(config.clone(), sdk));
    crate::pipeline::Hub::new(monitor(config, sdk), members)
}

/// The sweep of a hub: its own account and region, and the places it is given.
pub fn hub_sweep(config: Config, sdk: &aws_config::SdkConfig) -> crate::pipeline::HubSweep {
    let members = Box::new(MemberAccounts::new(config.clone(), sdk));
    crate::pipeline::HubSweep::new(sweep(config, sdk), members)
}

/// The AWS adapters the configuration asks for: metrics sink, remediation steps, finding sinks.
pub fn adapters(config: &Config, sdk: &aws_config::SdkConfig) -> Adapters {
    let metrics = metrics_sink(config, sdk);
    let InPlace {
        inventory,
        daemons,
        steps,
    } = in_place(config, sdk);
    let mut findings: Vec<Box<dyn FindingSink>> = Vec::new();
    if let Some(bus) = &config.findings_event_bus {
        findings.push(Box::new(EventBridgeFindings::new(
            aws_sdk_eventbridge::Client::new(sdk),
            bus,
        )));
    }
    if let Some(function) = &config.hook_function_arn {
        findings.push(Box::new(LambdaHook::new(aws_sdk_lambda::Client::new(sdk), function)));
    }
    Adapters {
        inventory,
        daemons,
        notifier: notifier(config, sdk),
        quarantine: Box::new(DeadLetterQueue::new(
            OnFirstUse::new(sdk, aws_sdk_sqs::Client::new),
            &config.dead_letter_queue_url,
        )),
        metrics,
        steps,
        findings,
        ledger: ledger(config, sdk),
        clock: Box::new(SystemClock),
    }
}

fn metrics_sink(config: &Config, sdk: &aws_config::SdkConfig) -> Box<dyn MetricsSink> {
    let metrics: Box<dyn MetricsSink> = match config.metrics_sink {
        MetricsSinkKind::Emf => Box::new(EmfMetrics::new(&config.metric_namespace)),
        MetricsSinkKind::Api => Box::new(CloudWatchMetrics::new(
            aws_sdk_cloudwatch::Client::new(sdk),
            &config.metric_namespace,
        )),
    };
    match config.cluster_gauges {
        true => metrics,
        false => Box::new(WithoutClusterGauges(metrics)),
    }
}

fn ledger(config: &Config, sdk: &aws_config::SdkConfig) -> Option<Box<dyn Ledger>> {
    config.incidents.table_name.as_ref().map(|table| {
        Box::new(DynamoLedger::new(
            OnFirstUse::new(sdk, aws_sdk_dynamodb::Client::new),
            table,
        )) as Box<dyn Ledger>
    })
}

/// SNS; with a PagerDuty routing key read ([`load_routing_key`]), PagerDuty first, then SNS.
fn notifier(config: &Config, sdk: &aws_config::SdkConfig) -> Box<dyn Notifier> {
    let sns = Box::new(SnsNotifier::new(
        OnFirstUse::new(sdk, aws_sdk_sns::Client::new),
        &config.alert_topic_arn,
        config.chat,
    ));
    let Some((pagerduty, key)) = config
        .pagerduty
        .as_ref()
        .and_then(|p| p.routing_key.clone().map(|k| (p, k)))
    else {
        return sns;
    };
    Box::new(PagerDutyThenSns {
        events: EventsApi::new(&pagerduty.events_url, key, Retry::default()),
        sns,
        ledger: ledger(config, sdk),
        metrics: metrics_sink(config, sdk),
        clock: Box::new(SystemClock),
    })
}

/// What acts in one account and region: the look-ups and the remediation steps.
pub struct InPlace {
    pub inventory: Box<dyn Inventory>,
    pub daemons: Box<dyn Daemons>,
    pub steps: Vec<Box<dyn RemediationStep>>,
}

/// What acts in the account and region `sdk` reaches.
pub fn in_place(config: &Config, sdk: &aws_config::SdkConfig) -> InPlace {
    let ecs = aws_sdk_ecs::Client::new(sdk);
    let mut steps: Vec<Box<dyn RemediationStep>> = Vec::new();
    let action = config.remediation.action;
    if let (true, Some(document)) = (action.restarts(), &config.remediation.restart_document) {
        let ssm = OnFirstUse::new(sdk, aws_sdk_ssm::Client::new);
        let scope = config.remediation.scope.clone();
        steps.push(Box::new(RestartAgent::new(ssm, document.clone(), scope)));
    }
    // restart-then-drain drains only what the restart did not bring back (the follow-up).
    if !matches!(action, RemediationAction::None | RemediationAction::RestartAgent) {
        steps.push(Box::new(Drain::new(ecs.clone(), config.remediation.scope.clone())));
    }
    if config.remediation.action == RemediationAction::DrainAndReplace {
        steps.push(Box::new(ReplaceInAutoScalingGroup::new(
            aws_sdk_autoscaling::Client::new(sdk),
            config.remediation.replace_after,
            config.remediation.scope.clone(),
        )));
    }
    let inventory = Box::new(AwsInventory {
        ecs: EcsInventory::new(ecs.clone()),
        ec2: Ec2Inventory::new(aws_sdk_ec2::Client::new(sdk)),
        // Built on first use: only a batch with an ECS Anywhere host needs it.
        ssm: SsmHosts::new(OnFirstUse::new(sdk, aws_sdk_ssm::Client::new)),
        // Built on first use: only a sweep of a cluster with an Auto Scaling provider needs it.
        groups: AutoScalingGroups::new(OnFirstUse::new(sdk, aws_sdk_autoscaling::Client::new)),
    });
    InPlace {
        inventory,
        daemons: Box::new(EcsDaemons::new(ecs)),
        steps,
    }
}

/// Classifies an SDK error: a client error (4xx) other than throttling means the API is not
/// there for this caller (unknown in the region, not permitted) and retrying cannot help;
/// throttling, server errors, timeouts and network failures may pass.
pub(crate) fn sdk_error<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let throttled = matches!(
        error.code(),
        Some("ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded")
    );
    let client_error = matches!(&error, SdkError::ServiceError(_))
        && error.raw_response().is_some_and(|r| r.status().is_client_error());
    if client_error && !throttled {
        AwsError::unavailable(operation, error)
    } else {
        AwsError::new(operation, error)
    }
}

/// The inventory as ECS and EC2 tell it.
pub struct AwsInventory {
    pub ecs: EcsInventory,
    pub ec2: Ec2Inventory,
    pub ssm: SsmHosts,
    pub groups: AutoScalingGroups,
}

#[async_trait::async_trait]
impl Inventory for AwsInventory {
    async fn list_clusters(&self) -> Result<Vec<String>, AwsError> {
        self.ecs.list_clusters().await
    }

    async fn describe_clusters(&self, cluster_arns: &[String]) -> Result<Vec<ClusterInfo>, AwsError> {
        self.ecs.describe_clusters(cluster_arns).await
    }

    async fn describe_container_instances(
        &self,
        cluster_arn: &str,
        arns: &[String],
    ) -> Result<ClusterInstances, AwsError> {
        self.ecs.describe_container_instances(cluster_arn, arns).await
    }

    async fn describe_ec2_instances(&self, instance_ids: &[String]) -> Result<Ec2States, AwsError> {
        self.ec2.describe_instances(instance_ids).await
    }

    async fn describe_managed_nodes(&self, node_ids: &[String]) -> Result<HostStates, AwsError> {
        self.ssm.ping_status(node_ids).await
    }

    async fn list_container_instances(&self, cluster_arn: &str) -> Result<Vec<String>, AwsError> {
        self.ecs.list_container_instances(cluster_arn).await
    }

    async fn list_tasks(&self, cluster_arn: &str, filter: &TaskFilter) -> Result<Vec<String>, AwsError> {
        self.ecs.list_tasks(cluster_arn, filter).await
    }

    async fn describe_tasks(&self, cluster_arn: &str, task_arns: &[String]) -> Result<Vec<Task>, AwsError> {
        self.ecs.describe_tasks(cluster_arn, task_arns).await
    }

    async fn describe_capacity_providers(
        &self,
        names: &[String],
    ) -> Result<std::collections::HashMap<String, CapacityProviderType>, AwsError> {
        self.ecs.describe_capacity_providers(names).await
    }

    async fn capacity_provider_groups(
        &self,
        names: &[String],
    ) -> Result<std::collections::HashMap<String, String>, AwsError> {
        self.ecs.capacity_provider_groups(names).await
    }

    async fn describe_auto_scaling_groups(
        &self,
        names: &[String],
    ) -> Result<Vec<crate::inventory::AutoScalingGroup>, AwsError> {
        self.groups.describe(names).await
    }

    async fn ec2_launch_times(&self, ids: &[String]) -> Result<std::collections::HashMap<String, u64>, AwsError> {
        self.ec2.launch_times(ids).await
    }
}
