//! Configuration, read once at start-up from environment variables.

use std::time::Duration;

mod accounts;
mod clusters;
mod incidents;
mod metrics;
mod outputs;
mod pagerduty;
mod read;
mod remediation;

use accounts::accounts;
pub use accounts::{Accounts, ChatFormat, DEFAULT_ACCOUNT_ROLE_NAME, Place};
pub use metrics::lambda_sends_unlevelled_lines;
pub use pagerduty::{
    DEFAULT_EVENTS_URL, PAGERDUTY_PARAMETER_ACCEPTED, PAGERDUTY_ROUTING_KEY_PARAMETER, PagerDutyConfig, RoutingKey,
};
use read::{boolean, invalid, is_arn_of, list, required, seconds};
use remediation::remediation;
pub use remediation::{Remediation, RemediationAction};

/// `CRITICAL_PERCENT` when unset: an outage on a fifth of a cluster's instances is critical.
pub const DEFAULT_CRITICAL_PERCENT: u8 = 20;

/// Everything the monitor can be told, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub alert_topic_arn: String,
    pub dead_letter_queue_url: String,
    pub cluster_filter: ClusterFilter,
    pub metric_namespace: String,
    pub metrics_sink: MetricsSinkKind,
    /// The gauges also per cluster (`CLUSTER_GAUGES`); off: only their sums, no dimension.
    pub cluster_gauges: bool,
    /// How long a cluster's tags are trusted before they are looked up again.
    pub tag_cache_ttl: Duration,
    pub remediation: Remediation,
    /// The EventBridge bus (name or ARN) findings go to; none when unset.
    pub findings_event_bus: Option<String>,
    /// A Lambda function invoked asynchronously with each finding; none when unset.
    pub hook_function_arn: Option<String>,
    pub incidents: Incidents,
    pub sweep: SweepTimes,
    pub accounts: Accounts,
    /// How each message is rendered for chat (`CHAT_FORMAT`).
    pub chat: ChatFormat,
    /// `CRITICAL_PERCENT`: an outage on at least this share of a cluster's instances is
    /// `critical` (alert::severity).
    pub critical_percent: u8,
    /// PagerDuty beside SNS (`PAGERDUTY_ROUTING_KEY_PARAMETER`); none: SNS only.
    pub pagerduty: Option<PagerDutyConfig>,
    /// `DASHBOARD_NAME`: the stack's CloudWatch dashboard, linked from every alert; none: no
    /// link. Read once per process, and kept for its life (every rendering names it).
    pub dashboard: Option<&'static str>,
}

/// How long the sweep lets a problem it found on its own last before it alerts (DESIGN §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepTimes {
    /// A disconnect or a missing daemon first seen by the sweep alerts once it lasted this long:
    /// the same grace period the event queue gives.
    pub grace: Duration,
    /// A suppression (draining, deploying, repairing) older than this is alerted as stuck.
    pub stuck_after: Duration,
    /// An EC2 instance of a cluster's Auto Scaling capacity provider launched longer ago than
    /// this without a container instance is alerted (`instance-not-registered`).
    pub register_within: Duration,
}

/// The incident ledger (DESIGN §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incidents {
    /// The DynamoDB table; none: stateless, every confirmation alerts (local runs).
    pub table_name: Option<String>,
    /// Repeat a still-open incident's alert after this long; zero: never.
    pub remind_after: Duration,
    /// What joins a cluster and kind this long after its notification waits for one digest;
    /// zero: no grouping, every run notifies what it found.
    pub group_interval: Duration,
    /// `FLAP_THRESHOLD`: disconnects an agent recovers from within an hour that make it flapping.
    pub flap_threshold: usize,
}

/// Which clusters are watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterFilter {
    All,
    Tagged { key: String, value: String },
}

/// Where metrics go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsSinkKind {
    /// Embedded Metric Format lines on stdout: no API call, CloudWatch Logs extracts them.
    Emf,
    /// `PutMetricData`, one call per invocation.
    Api,
}

/// A variable that is missing or malformed; the message names it and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {variable} {problem}; accepted: {accepted}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
    pub accepted: &'static str,
}

pub const DEFAULT_TAG_KEY: &str = "ecs-agent-monitoring";
pub const DEFAULT_NAMESPACE: &str = "ECSWatchdog";

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`; an empty value counts as unset, because
    /// CloudFormation passes optional parameters as empty strings. Each part stops at its first
    /// bad variable, in the order below.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let alert_topic_arn = outputs::alert_topic_arn(&get)?;
        let dead_letter_queue_url = outputs::dead_letter_queue_url(&get)?;
        let cluster_filter = clusters::cluster_filter(&get)?;
        let metric_namespace = metrics::namespace(&get)?;
        let metrics_sink = metrics::sink(&get)?;
        let cluster_gauges = metrics::cluster_gauges(&get)?;
        let tag_cache_ttl = clusters::tag_cache_ttl(&get)?;
        let remediation = remediation(&get)?;
        let findings_event_bus = outputs::findings_event_bus(&get)?;
        let hook_function_arn = outputs::hook_function_arn(&get)?;
        let incidents = incidents::incidents(&get)?;
        let sweep = incidents::sweep_times(&get)?;
        let accounts = accounts(&get, &alert_topic_arn)?;
        Ok(Self {
            chat: outputs::chat(&get)?,
            critical_percent: outputs::critical_percent(&get)?,
            pagerduty: pagerduty::pagerduty(&get)?,
            dashboard: outputs::dashboard(&get),
            alert_topic_arn,
            dead_letter_queue_url,
            cluster_filter,
            metric_namespace,
            metrics_sink,
            cluster_gauges,
            tag_cache_ttl,
            remediation,
            findings_event_bus,
            hook_function_arn,
            incidents,
            sweep,
            accounts,
        })
    }

    /// The sweep keeps first sights and alerts once only through the ledger: without a table it
    /// cannot run.
    pub fn require_ledger(&self) -> Result<(), ConfigError> {
        match self.incidents.table_name {
            Some(_) => Ok(()),
            None => Err(ConfigError {
                variable: "INCIDENT_TABLE_NAME",
                problem: "is required by the sweep but not set".to_owned(),
                accepted: "a DynamoDB table name (3 to 255 characters) or its ARN",
            }),
        }
    }
}

#[cfg(test)]
mod tests;
