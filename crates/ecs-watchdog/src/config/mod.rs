//! Configuration, read once at start-up from environment variables.

use std::time::Duration;

mod accounts;
mod metrics;
mod pagerduty;
mod remediation;

use accounts::accounts;
pub use accounts::{Accounts, ChatFormat, DEFAULT_ACCOUNT_ROLE_NAME, Place};
pub use metrics::lambda_sends_unlevelled_lines;
pub use pagerduty::{
    DEFAULT_EVENTS_URL, PAGERDUTY_PARAMETER_ACCEPTED, PAGERDUTY_ROUTING_KEY_PARAMETER, PagerDutyConfig, RoutingKey,
};
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
const DEFAULT_TAG_CACHE_TTL_SECONDS: u64 = 300;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`; an empty value counts as unset, because
    /// CloudFormation passes optional parameters as empty strings.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());

        let alert_topic_arn = required(
            &get,
            "ALERT_TOPIC_ARN",
            "an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>)",
        )?;
        if !is_arn_of(&alert_topic_arn, "sns") {
            return Err(invalid(
                "ALERT_TOPIC_ARN",
                &alert_topic_arn,
                "an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>)",
            ));
        }

        let dead_letter_queue_url = required(
            &get,
            "DEAD_LETTER_QUEUE_URL",
            "an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)",
        )?;
        if !(dead_letter_queue_url.starts_with("https://") || dead_letter_queue_url.starts_with("http://")) {
            return Err(invalid(
                "DEAD_LETTER_QUEUE_URL",
                &dead_letter_queue_url,
                "an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)",
            ));
        }

        let cluster_filter = if boolean(&get, "MONITOR_ALL_CLUSTERS", true)? {
            ClusterFilter::All
        } else {
            let key = get("MONITORING_TAG_KEY").unwrap_or_else(|| DEFAULT_TAG_KEY.to_owned());
            let value = required(
                &get,
                "MONITORING_TAG_VALUE",
                "the tag value that marks a monitored cluster (required when MONITOR_ALL_CLUSTERS=false)",
            )?;
            ClusterFilter::Tagged { key, value }
        };

        let metric_namespace = get("METRIC_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        if metric_namespace.len() > 255 || metric_namespace.starts_with(':') || metric_namespace.starts_with("AWS/") {
            return Err(invalid(
                "METRIC_NAMESPACE",
                &metric_namespace,
                "up to 255 characters, not starting with ':' or 'AWS/'",
            ));
        }

        let in_lambda = get("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let metrics_sink = match get("METRICS_SINK").as_deref() {
            None if in_lambda => MetricsSinkKind::Emf,
            None => MetricsSinkKind::Api,
            Some("emf") => MetricsSinkKind::Emf,
            Some("api") => MetricsSinkKind::Api,
            Some(other) => return Err(invalid("METRICS_SINK", other, "emf, api")),
        };
        metrics::emf_reaches_cloudwatch(&get, metrics_sink)?;
        let cluster_gauges = metrics::cluster_gauges(&get)?;

        let tag_cache_ttl = match get("TAG_CACHE_TTL_SECONDS") {
            None => Duration::from_secs(DEFAULT_TAG_CACHE_TTL_SECONDS),
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|s| *s <= 86_400)
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    invalid(
                        "TAG_CACHE_TTL_SECONDS",
                        &raw,
                        "a whole number of seconds from 0 to 86400",
                    )
                })?,
        };

        let remediation = remediation(&get)?;
        let findings_event_bus = get("FINDINGS_EVENT_BUS");
        if let Some(bus) = &findings_event_bus
            && (bus.len() > 1600 || bus.contains(char::is_whitespace))
        {
            return Err(invalid(
                "FINDINGS_EVENT_BUS",
                bus,
                "an EventBridge event bus name or ARN",
            ));
        }
        let hook_function_arn = get("HOOK_FUNCTION_ARN");
        if let Some(arn) = &hook_function_arn
            && !(is_arn_of(arn, "lambda") && arn.contains(":function:"))
        {
            return Err(invalid(
                "HOOK_FUNCTION_ARN",
                arn,
                "a Lambda function ARN (arn:<partition>:lambda:<region>:<account>:function:<name>)",
            ));
        }

        let table_name = get("INCIDENT_TABLE_NAME");
        if let Some(table) = &table_name
            && !(3..=255).contains(&table.len())
        {
            return Err(invalid(
                "INCIDENT_TABLE_NAME",
                table,
                "a DynamoDB table name (3 to 255 characters) or its ARN",
            ));
        }
        let remind_after = match get("REMIND_AFTER_MINUTES") {
            None => Duration::from_secs(240 * 60),
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|m| *m <= 7 * 24 * 60)
                .map(|m| Duration::from_secs(m * 60))
                .ok_or_else(|| {
                    invalid(
                        "REMIND_AFTER_MINUTES",
                        &raw,
                        "a whole number of minutes from 0 (never) to 10080 (a week)",
                    )
                })?,
        };

        let group_interval = seconds(
            &get,
            "GROUP_INTERVAL_MINUTES",
            5 * 60,
            24 * 3600,
            "a whole number of minutes from 0 (no grouping) to 1440 (a day)",
        )?;

        let grace = seconds(
            &get,
            "GRACE_PERIOD_SECONDS",
            180,
            900,
            "a whole number of seconds from 0 to 900",
        )?;
        let stuck_after = seconds(
            &get,
            "STUCK_AFTER_MINUTES",
            30 * 60,
            7 * 24 * 3600,
            "a whole number of minutes from 1 to 10080 (a week)",
        )?;
        if stuck_after.is_zero() {
            return Err(invalid(
                "STUCK_AFTER_MINUTES",
                "0",
                "a whole number of minutes from 1 to 10080 (a week)",
            ));
        }

        let accounts = accounts(&get, &alert_topic_arn)?;
        let chat = match get("CHAT_FORMAT").as_deref() {
            None | Some("plain") => ChatFormat::Plain,
            Some("chatbot") => ChatFormat::Chatbot,
            Some(other) => return Err(invalid("CHAT_FORMAT", other, "plain, chatbot")),
        };
        let critical_percent = match get("CRITICAL_PERCENT") {
            None => DEFAULT_CRITICAL_PERCENT,
            Some(raw) => raw
                .parse::<u8>()
                .ok()
                .filter(|p| (1..=100).contains(p))
                .ok_or_else(|| invalid("CRITICAL_PERCENT", &raw, "a whole number from 1 to 100"))?,
        };

        let pagerduty = pagerduty::pagerduty(&get)?;
        let dashboard = get("DASHBOARD_NAME").map(|name| &*Box::leak(name.into_boxed_str()));

        Ok(Self {
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
            incidents: Incidents {
                table_name,
                remind_after,
                group_interval,
            },
            sweep: SweepTimes { grace, stuck_after },
            accounts,
            chat,
            critical_percent,
            pagerduty,
            dashboard,
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

/// A duration read as a whole number (seconds, or minutes when the variable says so), at most
/// `max_seconds`.
pub(super) fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default_seconds: u64,
    max_seconds: u64,
    accepted: &'static str,
) -> Result<Duration, ConfigError> {
    let unit = if variable.ends_with("_MINUTES") { 60 } else { 1 };
    match get(variable) {
        None => Ok(Duration::from_secs(default_seconds)),
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .map(|n| n.saturating_mul(unit))
            .filter(|s| *s <= max_seconds)
            .map(Duration::from_secs)
            .ok_or_else(|| invalid(variable, &raw, accepted)),
    }
}

fn required(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    accepted: &'static str,
) -> Result<String, ConfigError> {
    get(variable).ok_or(ConfigError {
        variable,
        problem: "is required but not set".to_owned(),
        accepted,
    })
}

/// A comma-separated variable's items, blanks left out; none when unset.
pub(super) fn list(get: &impl Fn(&str) -> Option<String>, variable: &str) -> Vec<String> {
    get(variable)
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn boolean(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(raw) if raw.eq_ignore_ascii_case("true") => Ok(true),
        Some(raw) if raw.eq_ignore_ascii_case("false") => Ok(false),
        Some(raw) => Err(invalid(variable, &raw, "true, false")),
    }
}

pub(super) fn invalid(variable: &'static str, value: &str, accepted: &'static str) -> ConfigError {
    ConfigError {
        variable,
        problem: format!("has an invalid value {value:?}"),
        accepted,
    }
}

fn is_arn_of(arn: &str, service: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    parts.len() == 6 && parts[0] == "arn" && parts[2] == service && !parts[5].is_empty()
}

#[cfg(test)]
mod tests;
