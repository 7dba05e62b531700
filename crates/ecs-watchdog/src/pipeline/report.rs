//! Report: one firing alert and one resolved notice per cluster and kind, the findings to the
//! sinks, and the batch's metrics. A notice that SNS refused sends its messages back to the
//! queue and gives its incidents' claims back.

use std::collections::HashSet;

use futures_util::future::join_all;
use tracing::error;

use super::ledger::{self, Resolution, Resolved};
use super::{Adapters, BatchReport, Confirmed, Firing};
use crate::alert::{self, Alert, AlertKind, DaemonChecks};
use crate::config::{Place, Remediation, RemediationAction};
use crate::incident::Notice;
use crate::metrics::Metric;
use crate::ports::error_chain;

/// What every alert of the batch shares.
pub struct Context<'a> {
    pub place: &'a Place,
    pub action: String,
    pub deployments_unknown: &'a HashSet<&'a str>,
}

/// What the monitor does about confirmed failures, as the finding says it.
pub fn action(remediation: Remediation) -> String {
    match (remediation.action, remediation.dry_run) {
        (RemediationAction::None, _) => "alerted only: remediation is off".to_owned(),
        (action, false) => format!(
            "{} (at most {}% of a cluster DRAINING at once)",
            action.as_str(),
            remediation.max_percent
        ),
        (action, true) => format!("dry run of {}: nothing was changed", action.as_str()),
    }
}

pub async fn send(
    io: &Adapters,
    context: &Context<'_>,
    firing: Confirmed<'_>,
    resolved: Resolved<'_>,
    report: &mut BatchReport,
) {
    let alerts: Vec<(Alert, &Vec<Firing<'_>>)> = firing
        .iter()
        .map(|((cluster, kind), firings)| {
            let checks = DaemonChecks {
                deployments: !context.deployments_unknown.contains(cluster),
            };
            let findings = firings.iter().map(|f| f.finding.clone()).collect();
            let reminder = firings.iter().all(|f| f.notice == Notice::Reminder);
            let alert = alert::alert(*kind, context.place, cluster, findings, checks, &context.action);
            (if reminder { alert.as_reminder() } else { alert }, firings)
        })
        .collect();
    let notices: Vec<(Alert, &Vec<Resolution<'_>>)> = resolved
        .iter()
        .map(|((cluster, kind), resolutions)| {
            let closed = resolutions
                .iter()
                .map(|r| (r.finding.clone(), r.how.clone(), r.lasted))
                .collect();
            (alert::resolved(*kind, context.place, cluster, closed), resolutions)
        })
        .collect();
    let (sent, sent_notices) = futures_util::future::join(
        join_all(alerts.iter().map(|(alert, _)| io.notifier.publish(alert))),
        join_all(notices.iter().map(|(alert, _)| io.notifier.publish(alert))),
    )
    .await;

    let mut failed_firings: Vec<&Firing<'_>> = Vec::new();
    let mut out = Vec::new();
    for ((alert, firings), result) in alerts.into_iter().zip(sent) {
        match result {
            Ok(()) => {
                for f in firings.iter().filter(|f| f.notice != Notice::Reminder) {
                    let cluster = Some(alert.cluster_name.as_str());
                    match (alert.kind, &f.finding.daemon_name) {
                        (AlertKind::DaemonLost, Some(daemon)) => {
                            report.tally.count_daemon_lost(&alert.cluster_name, daemon)
                        }
                        (AlertKind::DaemonLost, None) => report.tally.count(cluster, Metric::DaemonLost),
                        (AlertKind::InstanceImpaired, _) => report.tally.count(cluster, Metric::InstanceImpaired),
                        (AlertKind::DaemonDeploymentFailed, _) => {
                            report.tally.count(cluster, Metric::DaemonDeploymentFailed)
                        }
                        (AlertKind::AgentDisconnected | AlertKind::MonitorImpaired, _) => {
                            report.tally.count(cluster, Metric::AgentDisconnected)
                        }
                    }
                }
                out.push(alert);
            }
            Err(e) => {
                error!(cluster = %alert.cluster_name, kind = alert.kind.as_str(), error = %error_chain(&e), "alert not sent: its messages go back to the queue");
                report
                    .failures
                    .extend(firings.iter().flat_map(|f| &f.messages).map(|m| m.id.clone()));
                failed_firings.extend(firings.iter());
            }
        }
    }
    let mut failed_resolutions: Vec<&Resolution<'_>> = Vec::new();
    let mut resolved_out = Vec::new();
    for ((notice, resolutions), result) in notices.into_iter().zip(sent_notices) {
        match result {
            Ok(()) => resolved_out.push(notice),
            Err(e) => {
                error!(cluster = %notice.cluster_name, kind = notice.kind.as_str(), error = %error_chain(&e), "resolved notice not sent: its messages go back to the queue");
                report.failures.extend(resolutions.iter().map(|r| r.message.id.clone()));
                failed_resolutions.extend(resolutions.iter());
            }
        }
    }
    if let Some(ledger) = &io.ledger
        && (!failed_firings.is_empty() || !failed_resolutions.is_empty())
    {
        ledger::roll_back(ledger.as_ref(), &failed_firings, &failed_resolutions).await;
    }

    if !out.is_empty() {
        let sent = join_all(io.findings.iter().map(|sink| sink.send(&out))).await;
        for e in sent.into_iter().filter_map(Result::err) {
            // The alert is out; a retry would repeat it, so the failure is logged, not retried.
            error!(operation = e.operation, error = %error_chain(&e), "findings not sent");
        }
    }
    report.alerts.extend(out);
    report.alerts.extend(resolved_out);

    let data = report.tally.data();
    if !data.is_empty()
        && let Err(e) = io.metrics.publish(&data).await
    {
        // Metrics are best effort: retrying the batch would repeat its alerts.
        error!(error = %error_chain(&e), "metrics not published");
    }
}
