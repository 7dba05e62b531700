//! The `monitor-impaired` alert's text: the sweep could not make a call it needs (DESIGN §8),
//! so part of the fleet is unwatched. Its incidents are filed under a scope, not a cluster.

use std::fmt::Write;

use super::kind::Kind;
use crate::alert::finding::{DaemonChecks, Finding, InstanceFinding, Severity};
use crate::alert::steps::{NextSteps, Step};
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

fn body(email: &mut String, finding: &Finding) {
    for instance in &finding.instances {
        let _ = writeln!(
            email,
            "The monitor cannot call {}: {}",
            instance.container_instance_arn,
            instance.reason.as_deref().unwrap_or("no reason given")
        );
    }
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

    fn body(&self, email: &mut String, finding: &Finding, _now: u64) {
        body(email, finding);
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
