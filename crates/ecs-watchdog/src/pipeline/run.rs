//! What one run carries through its stages: the doors to the outside it uses, what it confirmed,
//! and what it came to. Below every stage, so each stage takes these from here, not from the
//! pipeline that runs them.

use std::collections::BTreeMap;

use crate::alert::{Alert, AlertKind, InstanceFinding};
use crate::incident::IncidentKey;
use crate::metrics::Tally;
use crate::ports::{Clock, Daemons, FindingSink, Inventory, Ledger, MetricsSink, Notifier, Quarantine, SystemClock};
use crate::remediation::RemediationStep;

/// What a batch came to.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Ids of the messages left undecided: the queue delivers them again.
    pub failures: Vec<String>,
    /// The incidents the ledger and report stages left undecided; the monitor gives their
    /// messages back to the queue through intake's map ([`super::intake::Intake::ids`]).
    pub(crate) undecided: Vec<IncidentKey>,
    pub tally: Tally,
    /// What SNS accepted: firing alerts, then resolved notices.
    pub alerts: Vec<Alert>,
}

/// The doors to the outside the monitor uses.
pub struct Adapters {
    pub inventory: Box<dyn Inventory>,
    pub daemons: Box<dyn Daemons>,
    pub notifier: Box<dyn Notifier>,
    pub quarantine: Box<dyn Quarantine>,
    pub metrics: Box<dyn MetricsSink>,
    /// Remediation steps, in order; empty when remediation is off.
    pub steps: Vec<Box<dyn RemediationStep>>,
    /// Where findings go for custom remediation; empty when none is configured.
    pub findings: Vec<Box<dyn FindingSink>>,
    /// The incident ledger; none: stateless, every confirmation alerts.
    pub ledger: Option<Box<dyn Ledger>>,
    pub clock: Box<dyn Clock>,
}

impl Adapters {
    /// The system clock, no ledger, no remediation, no finding sinks: what is left to give.
    pub fn new(
        inventory: Box<dyn Inventory>,
        daemons: Box<dyn Daemons>,
        notifier: Box<dyn Notifier>,
        quarantine: Box<dyn Quarantine>,
        metrics: Box<dyn MetricsSink>,
    ) -> Self {
        Self {
            inventory,
            daemons,
            notifier,
            quarantine,
            metrics,
            steps: Vec::new(),
            findings: Vec::new(),
            ledger: None,
            clock: Box::new(SystemClock),
        }
    }
}

/// A confirmed problem: its incident, when its newest event happened, and its finding.
#[derive(Debug, Clone)]
pub struct Firing {
    pub key: IncidentKey,
    /// The event's time; none for a look at the current state (the sweep's).
    pub time: Option<u64>,
    pub finding: InstanceFinding,
    /// Seconds the problem must have lasted since first sight before it alerts (the sweep's).
    pub(super) hold: u64,
}

/// Confirmed problems by cluster and kind: one alert each.
pub type Confirmed<'a> = BTreeMap<(&'a str, AlertKind), Vec<Firing>>;
