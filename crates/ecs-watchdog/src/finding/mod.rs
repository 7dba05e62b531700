//! What an alert is made of, as plain data: the finding machines read, each instance in it, the
//! severity and status receivers route on, and the rendered alert. Below rendering and the
//! kinds, which all fill or read it.

pub mod lines;
pub mod steps;

use serde::{Deserialize, Serialize};

use crate::config::Place;
use crate::event::ContainerExit;
pub use crate::kind::AlertKind;
/// How many instances the e-mail lists one by one; the JSON lists all that fit.
pub(crate) const EMAIL_LISTED: usize = 50;

/// A confirmed failure on one cluster, as machines read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub schema_version: &'static str,
    pub kind: AlertKind,
    pub severity: Severity,
    /// The account the cluster belongs to (DESIGN §10).
    pub account: String,
    pub region: String,
    pub cluster_name: String,
    pub cluster_arn: String,
    pub instances: Vec<InstanceFinding>,
    /// Instances confirmed but left out of `instances` to keep the message within SNS's limit.
    #[serde(rename = "omitted", skip_serializing_if = "is_zero")]
    pub omitted_instances: usize,
    /// What the monitor looked at before deciding.
    pub checked: Vec<&'static str>,
    /// What the monitor does about confirmed failures; each instance's `remediation` says
    /// what was done to it.
    pub action: String,
    /// Set in a digest: the instances that joined a group already alerted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Counts>,
}

impl Finding {
    /// Where the cluster is, as alerts say it: `123456789012, eu-west-1`.
    pub fn place(&self) -> String {
        Place::new(&self.account, &self.region).to_string()
    }
}

/// `instance` or `instances`, for `n`.
pub(crate) fn instances(n: usize) -> &'static str {
    if n == 1 { "instance" } else { "instances" }
}

pub(super) fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One container instance in a finding. The daemon fields are set for `daemon-lost` only.
/// The incident ledger keeps it as JSON, so it reads back what it wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InstanceFinding {
    pub container_instance_arn: String,
    /// The id of this instance's incident (the `incident` attribute of a message about it alone),
    /// for a receiver to fold repeats and pair the alert with its resolved notice. Set when
    /// rendered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
    /// The container instance is DRAINING (a drain that cannot finish, a repair that stalls).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub draining: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ec2_instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// When ECS reported the change, as the event said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    pub running_tasks_count: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daemon_name: Option<String>,
    /// Whether the daemon is critical (ECS replaces the instance) or not (the instance runs on
    /// without it); absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerExit>,
    /// `TASK_FAILED_TO_RUN` or `TASK_CREATION_FAILED`, for a daemon that could not start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What remediation did (or would do, in a dry run) to this instance, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    /// The same, step by step, for machines.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remediation_actions: Vec<crate::remediation::ActionTaken>,
    /// Why a state the event path leaves alone is alerted anyway: it lasted too long (a drain that
    /// cannot finish, a repair that does not happen). Set by the sweep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stuck: Option<String>,
    /// For `agent-disconnected` and `agent-flapping`: when (UNIX seconds) the agent was seen
    /// back from a disconnect within the last hour, oldest first (`FLAP_THRESHOLD`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flaps: Vec<u64>,
    /// For `agent-disconnected`, kept in the ledger: the EventBridge ids of the latest events
    /// counted in `flaps`, so a redelivered event is counted once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flap_events: Vec<String>,
    /// For `instance-impaired`: the health checks that are not OK.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<crate::event::HealthCheck>,
    /// For `daemon-deployment-failed`: the deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_arn: Option<String>,
    /// For `daemon-deployment-failed`: the rollback failed too (`DAEMON_DEPLOYMENT_ROLLBACK_FAILED`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rollback_failed: bool,
    /// For `agent-disconnected` and `daemon-lost`: the services (task group `service:<name>`)
    /// with tasks ECS means to run on the instance (`ListTasks` by container instance, desired
    /// status RUNNING), most tasks first, at most [`SERVICES_LISTED`]; `[]` when none of its
    /// tasks is a service's. Absent when not looked up: ECS says no task runs there, or the
    /// look-up failed (`servicesError`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<ServiceTasks>>,
    /// How many services with tasks there `services` leaves out to keep the message short.
    #[serde(skip_serializing_if = "is_zero")]
    pub services_omitted: usize,
    /// Why the services could not be listed (the call that failed and its error): the alert
    /// goes out without them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub services_error: Option<String>,
    /// For an ECS Anywhere host: what Systems Manager said of it (`Systems Manager: Online`, or
    /// that it could not be checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_check: Option<String>,
    /// In a reminder: how long the incident has been open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_for: Option<String>,
    /// In a digest: how it ended, for an incident that resolved before the digest went out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
    /// Until when (ISO-8601) a silence held its alerts (`ecs-watchdog-silence-until`); its
    /// alert waits for that time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silenced_until: Option<String>,
    /// What carries that silence: `cluster prod`, `container instance 0b4a…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silenced_on: Option<String>,
    /// A silence tag that is there but not honoured, and why: the alert goes out and says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silence_refused: Option<String>,
}

/// How many services one instance's finding names; the rest are counted (`servicesOmitted`,
/// "and N more"), so an instance running many services cannot crowd the others out of the
/// message (SNS's 256 KB).
pub const SERVICES_LISTED: usize = 10;

/// A service with tasks on an instance, and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTasks {
    /// The service's name: its tasks' group without `service:`.
    pub name: String,
    pub tasks: usize,
}

/// Whether a message says a problem is there or over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// A rendered alert, ready to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub cluster_name: String,
    pub kind: AlertKind,
    pub status: Status,
    /// What the message is (attribute `status`): firing, reminder, digest or resolved.
    pub message_status: MessageStatus,
    pub severity: Severity,
    pub account: String,
    pub region: String,
    /// Attribute `incident`: the incident's id, or the group's key for several (DESIGN §7).
    pub incident: String,
    pub subject: String,
    pub email: String,
    /// What to do next, as the e-mail says it from `steps_at` on; none in a resolved notice.
    pub next_steps: Option<steps::NextSteps>,
    /// Where the e-mail's steps begin: before them, what happened and what was checked.
    pub steps_at: usize,
    /// The finding as JSON.
    pub default: String,
    /// What a chat thread groups: `account/region/cluster/kind`, the same for the alert and
    /// the notice that resolves it.
    pub thread: String,
    /// The SNS message as the frame measured it, with the chat key (`https`) from `plain_end` on:
    /// [`Alert::message`] hands it over as is.
    pub sent: String,
    pub plain_end: usize,
}

impl Alert {
    /// The SNS message attributes (name, value), each a `String`, so subscribers can filter;
    /// SNS refuses an empty value, so an unknown account is left out.
    pub fn attributes(&self) -> Vec<(&'static str, &str)> {
        [
            ("account", self.account.as_str()),
            ("cluster", &self.cluster_name),
            ("incident", &self.incident),
            ("kind", self.kind.as_str()),
            ("region", &self.region),
            ("severity", self.severity.as_str()),
            ("status", self.message_status.as_str()),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect()
    }
}

/// What the monitor could check before it confirmed a lost daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaemonChecks {
    /// False when a deployment in progress could not be ruled out: the Managed Daemons APIs
    /// were unavailable, or `ListDaemons` did not list the daemon.
    pub deployments: bool,
}

/// How urgent a message is (attribute `severity`), by the rule [`severity`] documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Warning => "warning",
        }
    }
}

/// What a message is (attribute `status`): a first alert, a reminder of incidents already
/// alerted, a digest of incidents that joined a group already alerted, or a resolved notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Firing,
    Reminder,
    Digest,
    Resolved,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Firing => "firing",
            MessageStatus::Reminder => "reminder",
            MessageStatus::Digest => "digest",
            MessageStatus::Resolved => "resolved",
        }
    }
}

/// What a digest adds up, in its JSON as `digest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Incidents that joined since the group's last notification.
    pub joined: usize,
    /// Of which this many resolved before the digest went out.
    pub resolved: usize,
    /// Open incidents of the cluster and kind now, all told; absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub still_open: Option<usize>,
}

/// What a chat thread groups: the alert and the notice that resolves it share it.
pub(crate) fn thread(account: &str, region: &str, cluster: &str, kind: AlertKind) -> String {
    format!("{account}/{region}/{cluster}/{}", kind.as_str())
}
