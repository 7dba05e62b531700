//! The sweep's looks: each survey's incident keys as work items (no event), judged by the same
//! verdicts.

use futures_util::future::join_all;

use super::super::decide::{self, Decision, Outcome};
use super::super::evidence::{self, DaemonChecks, Described};
use super::super::intake::Checked;
use super::super::looks::Looks;
use super::super::monitor::Monitor;
use super::super::run::{Confirmed, Firing};
use super::super::survey::Survey;
use super::SweepReport;
use crate::inventory::cluster_name;
use crate::metrics::Metric;
use crate::ports::Daemons;
use crate::verdict::Verdict;

/// What the surveys show as work items (incident keys, no event), their daemons checked into
/// each survey's snapshot.
pub(super) async fn looks(daemons: &dyn Daemons, surveys: &mut [Survey]) -> Vec<Vec<Checked>> {
    let checked: Vec<Vec<Checked>> = surveys
        .iter()
        .map(|survey| survey.keys().into_iter().map(Checked::look).collect())
        .collect();
    let checks = join_all(
        surveys
            .iter()
            .zip(&checked)
            .map(|(survey, checked)| daemon_checks(daemons, survey, checked)),
    )
    .await;
    for (survey, checks) in surveys.iter_mut().zip(checks) {
        survey.snapshot.daemons = checks;
    }
    checked
}

/// The verdict on each look, with the hosts' evidence (EC2 once for every cluster): what is
/// confirmed (held for the grace period), or suppressed for longer than `STUCK_AFTER_MINUTES`
/// (held that long), joins the confirmed; an undecided look is counted.
pub(super) async fn judge<'a>(
    monitor: &Monitor,
    surveys: &'a [Survey],
    checked: &'a [Vec<Checked>],
    out: &mut SweepReport,
) -> (Confirmed<'a>, Vec<Decision<'a>>) {
    let times = monitor.config.sweep;
    let described: Vec<Described<'_>> = surveys
        .iter()
        .zip(checked)
        .map(|(survey, checked)| Described {
            checked,
            snapshot: &survey.snapshot,
        })
        .collect();
    let ec2 = evidence::hosts(monitor.io.inventory.as_ref(), &described).await;
    let mut decisions: Vec<Decision<'_>> = Vec::new();
    let mut confirmed = Confirmed::new();
    for (survey, checked) in surveys.iter().zip(checked) {
        let looks = Looks {
            snapshot: &survey.snapshot,
            hosts: &ec2,
        };
        for decision in decide::decide(checked, &looks) {
            let held = match &decision.outcome {
                Outcome::Decided(Verdict::Confirmed, Some(finding)) => Some(((**finding).clone(), times.grace)),
                Outcome::Undecided => {
                    let cluster = Some(cluster_name(&survey.cluster));
                    out.report.tally.count(cluster, Metric::CheckErrors);
                    out.undecided += 1;
                    None
                }
                _ => decide::stale(&survey.snapshot, &decision).map(|f| (f, times.stuck_after)),
            };
            if let Some((finding, hold)) = held {
                confirmed
                    .entry((decision.cluster, decision.kind()))
                    .or_default()
                    .push(Firing {
                        key: decision.incident(),
                        time: None,
                        finding,
                        hold: hold.as_secs(),
                    });
            }
            decisions.push(decision);
        }
    }
    (confirmed, decisions)
}

/// What the survey says of the daemons, with whether a deployment of each missing one is under
/// way (one `ListDaemonDeployments` per daemon with an instance missing it).
async fn daemon_checks(daemons: &dyn Daemons, survey: &Survey, checked: &[Checked]) -> DaemonChecks {
    let lost = survey.lost(checked);
    let mut checks = survey.daemon_checks(&lost);
    checks.deployments_of(daemons, &survey.cluster, &lost).await;
    checks
}
