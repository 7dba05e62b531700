//! The `monitor-impaired` alert's text: the sweep could not make a call it needs (DESIGN §8),
//! so part of the fleet is unwatched. Its incidents are filed under a scope, not a cluster.

use super::kind::Kind;
use crate::finding::steps::{NextSteps, Step};
use crate::finding::{DaemonChecks, Finding, InstanceFinding, Severity};
use crate::kind::AlertKind;
use crate::metrics::Metric;

fn next_steps() -> NextSteps {
    NextSteps {
        note: Some(
            "Until then the sweep goes on with what it can see; the metric MonitorImpaired (dimension Operation) counts \
             each failure."
                .to_owned(),
        ),
        ..NextSteps::numbered(vec![
            Step::says(
                "AccessDenied: the function's role lacks the IAM action named above; update the stack (the template \
                 grants every action the monitor calls) or add the action to a role you manage.",
            ),
            Step::says(
                "An unknown operation: the API is not offered in this region or partition; the checks that need it are skipped.",
            ),
            Step::says(
                "Throttling or server errors past the retries: look at the service's health and the account's API limits.",
            ),
        ])
    }
}

fn instance_lines(instance: &InstanceFinding) -> String {
    format!(
        "The monitor cannot call {}: {}\n",
        instance.container_instance_arn,
        instance.reason.as_deref().unwrap_or("no reason given")
    )
}

pub struct MonitorImpaired;

impl Kind for MonitorImpaired {
    fn kind(&self) -> AlertKind {
        AlertKind::MonitorImpaired
    }

    fn detail_types(&self) -> &'static [&'static str] {
        &[]
    }

    fn headline(&self, _daemons: &[&str]) -> String {
        "ECS Watchdog cannot see".to_owned()
    }

    fn of_a_cluster(&self) -> bool {
        false
    }

    /// None: each operation's line says it all.
    fn opening(&self, _finding: &Finding, _total: usize) -> String {
        String::new()
    }

    fn instance_lines(&self, instance: &InstanceFinding, _now: u64) -> String {
        instance_lines(instance)
    }

    fn next_steps(&self, _finding: &Finding) -> Option<NextSteps> {
        Some(next_steps())
    }

    fn checked(&self, _checks: DaemonChecks, _instances: &[InstanceFinding]) -> Vec<&'static str> {
        vec!["the sweep's own calls"]
    }

    /// Always a warning: the monitor's own problem, no outage of the fleet.
    fn severity(&self, _instances: &[InstanceFinding], _widespread: &dyn Fn(usize) -> bool) -> Severity {
        Severity::Warning
    }

    /// None: it is counted by operation when the call fails (`Tally::impaired`).
    fn metric(&self) -> Option<Metric> {
        None
    }

    fn alarm(&self) -> Option<Metric> {
        Some(Metric::MonitorImpaired)
    }
}
