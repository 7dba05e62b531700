//! Report: renders each notice (one per cluster, kind and notice), publishes it, sends what went
//! out to the finding sinks, and publishes the run's metrics. Says what SNS accepted; settling
//! the leases is the ledger's.

use std::collections::HashSet;

use futures_util::future::join_all;
use tracing::{Instrument, error, info_span};

use super::run::{Adapters, BatchReport};
use crate::alert::{self, Alert, AlertKind, DaemonChecks, InstanceFinding, Status};
use crate::config::{Place, Remediation, RemediationAction};
use crate::incident::{self, Incident, IncidentKey, Notice};
use crate::kinds;
use crate::ports::error_chain;

/// What every alert of the batch shares.
pub struct Context<'a> {
    pub place: &'a Place,
    pub action: String,
    pub deployments_unknown: &'a HashSet<&'a str>,
    /// What the run knows for the severity rule: `CRITICAL_PERCENT`, its clusters' sizes.
    pub settings: &'a super::plan::Settings,
}

/// What the monitor does about confirmed failures, as the finding says it.
pub fn action(remediation: Remediation) -> String {
    match (remediation.action, remediation.dry_run) {
        (RemediationAction::None, _) => "alerted only: remediation is off".to_owned(),
        // A restart in flight holds a slot of the guard as a drain does (`remediation::guard`).
        (action, false) => format!(
            "{} (at most {}% of a cluster {} at once)",
            action.as_str(),
            remediation.max_percent,
            match action.restarts() {
                true => "DRAINING or being restarted",
                false => "DRAINING",
            }
        ),
        (action, true) => format!("dry run of {}: nothing was changed", action.as_str()),
    }
}

/// One notice to publish: the incidents of one cluster and kind it tells, leased (or, stateless,
/// just confirmed), and those of them a work item of the run spoke of.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub cluster: String,
    pub kind: AlertKind,
    pub notice: Notice,
    pub incidents: Vec<Incident>,
    /// The incidents whose work items go back to the queue if this notice is not told.
    pub told: Vec<IncidentKey>,
}

impl Outgoing {
    pub fn new(cluster: &str, kind: AlertKind, notice: Notice) -> Self {
        Self {
            cluster: cluster.to_owned(),
            kind,
            notice,
            incidents: Vec::new(),
            told: Vec::new(),
        }
    }

    /// The message, rendered by the alert module.
    fn render(&self, context: &Context<'_>, now: u64) -> Alert {
        let place = &Place::of_cluster(&self.cluster).unwrap_or_else(|| context.place.clone());
        let findings = || self.incidents.iter().map(|i| i.finding.clone());
        match self.notice {
            Notice::Alert | Notice::Reminder => {
                let checks = DaemonChecks {
                    deployments: !context.deployments_unknown.contains(self.cluster.as_str()),
                };
                let mut findings: Vec<InstanceFinding> = findings().collect();
                if self.notice == Notice::Reminder {
                    for (f, i) in findings.iter_mut().zip(&self.incidents) {
                        f.open_for = Some(incident::lasted(now.saturating_sub(i.opened_at)));
                    }
                }
                let facts = alert::Facts {
                    now,
                    ..context.settings.facts(&self.cluster)
                };
                let alert = alert::alert(
                    self.kind,
                    place,
                    &self.cluster,
                    findings,
                    checks,
                    &context.action,
                    facts,
                );
                match self.notice {
                    Notice::Reminder => alert.as_reminder(),
                    _ => alert,
                }
            }
            Notice::Resolved => {
                let closed = self
                    .incidents
                    .iter()
                    .map(|i| {
                        let how = i.resolution.clone().unwrap_or_else(|| "resolved".to_owned());
                        let how = super::restart::resolution(&i.finding, how);
                        let ended = if i.ended_at > 0 { i.ended_at } else { now };
                        (i.finding.clone(), how, ended.saturating_sub(i.opened_at))
                    })
                    .collect();
                alert::resolved(self.kind, place, &self.cluster, closed)
            }
        }
    }
}

/// Publishes each notice; whether SNS accepted it, in order. What went out goes to the finding
/// sinks and is counted.
pub async fn publish(
    io: &Adapters,
    context: &Context<'_>,
    outgoing: &[Outgoing],
    now: u64,
    report: &mut BatchReport,
) -> Vec<bool> {
    let named = named(io, context.place, outgoing).await;
    let alerts: Vec<Alert> = named.iter().map(|o| o.render(context, now)).collect();
    // What is logged while a notice goes out names its incident (or its group's key).
    let results = join_all(alerts.iter().map(|a| {
        let span = info_span!("notice", incident = %a.incident, status = a.message_status.as_str());
        io.notifier.publish(a).instrument(span)
    }))
    .await;
    let mut out = Vec::new();
    let mut accepted = Vec::new();
    for ((alert, o), result) in alerts.into_iter().zip(outgoing).zip(results) {
        match result {
            Ok(()) => {
                if o.notice == Notice::Alert {
                    count_alerted(&alert, &o.incidents, report);
                }
                out.push(alert.published());
                accepted.push(true);
            }
            Err(e) => {
                error!(cluster = %alert.cluster_name, kind = alert.kind.as_str(), error = %error_chain(&e), "notice not sent: its lease is given back");
                accepted.push(false);
            }
        }
    }
    // Borrowed: an alert holds its whole SNS message (up to 256 KiB), not to be held twice.
    let firing: Vec<&Alert> = out.iter().filter(|a| a.status == Status::Firing).collect();
    if !firing.is_empty() && !findings(io, &firing).await {
        // What a sink still refused after its retries is not dropped: the messages that told it
        // go back to the queue, and past its receive count to the dead-letter queue, where
        // they are kept. The redelivery finds the incidents told and does not alert again.
        let told = outgoing
            .iter()
            .zip(&accepted)
            .filter(|(o, sent)| **sent && o.notice == Notice::Alert);
        report.undecided.extend(told.flat_map(|(o, _)| o.told.iter().cloned()));
    }
    report.alerts.extend(out);
    accepted
}

/// The notices with the services on each instance that fires (`pipeline/services.rs`), looked
/// up now, just before rendering; what is stored of the incidents is left as it was.
async fn named(io: &Adapters, place: &Place, outgoing: &[Outgoing]) -> Vec<Outgoing> {
    let mut named = outgoing.to_vec();
    let firing = named
        .iter_mut()
        .enumerate()
        .filter(|(_, o)| o.notice != Notice::Resolved);
    let firing = firing.flat_map(|(message, o)| {
        let Outgoing {
            cluster,
            kind,
            incidents,
            ..
        } = o;
        let (cluster, kind) = (cluster.as_str(), *kind);
        incidents
            .iter_mut()
            .map(move |i| (message, cluster, kind, &mut i.finding))
    });
    super::services::name(io.inventory.as_ref(), place, firing).await;
    named
}

/// Sends the findings of what went out to every sink; false if one refused some.
pub async fn findings(io: &Adapters, firing: &[&Alert]) -> bool {
    let mut all = true;
    for e in join_all(io.findings.iter().map(|sink| sink.send(firing)))
        .await
        .into_iter()
        .filter_map(Result::err)
    {
        error!(operation = e.operation, error = %error_chain(&e), "findings not sent");
        all = false;
    }
    all
}

fn count_alerted(alert: &Alert, incidents: &[Incident], report: &mut BatchReport) {
    let cluster = Some(alert.cluster_name.as_str());
    for i in incidents {
        let kind = kinds::of(alert.kind);
        match &i.finding.daemon_name {
            Some(daemon) if kind.counted_by_daemon() => report.tally.count_daemon_lost(&alert.cluster_name, daemon),
            _ => {
                if let Some(metric) = kind.metric() {
                    report.tally.count(cluster, metric)
                }
            }
        }
    }
}

/// Publishes the run's metrics; best effort: retrying the batch would repeat its alerts.
pub async fn metrics(io: &Adapters, report: &BatchReport) {
    let data = report.tally.data();
    if !data.is_empty()
        && let Err(e) = io.metrics.publish(&data).await
    {
        error!(error = %error_chain(&e), "metrics not published");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::action;
    use crate::config::{Remediation, RemediationAction};

    fn remediation(action: RemediationAction, dry_run: bool) -> Remediation {
        Remediation {
            action,
            dry_run,
            max_percent: 10,
            non_critical_daemons: false,
            replace_after: Duration::from_secs(900),
            restart_wait: Duration::from_secs(300),
            restart_document: Some("restart-ecs-agent".to_owned()),
            scope: Default::default(),
        }
    }

    /// The guard counts a restart in flight against the same share as a drain, so the finding
    /// says so where the action restarts (it said DRAINING alone under restart-agent).
    #[test]
    fn when_the_action_is_told_then_the_guard_names_what_it_counts() {
        let cases = [
            (RemediationAction::None, false, "alerted only: remediation is off"),
            (
                RemediationAction::Drain,
                false,
                "drain (at most 10% of a cluster DRAINING at once)",
            ),
            (
                RemediationAction::DrainAndReplace,
                false,
                "drain-and-replace (at most 10% of a cluster DRAINING at once)",
            ),
            (
                RemediationAction::RestartAgent,
                false,
                "restart-agent (at most 10% of a cluster DRAINING or being restarted at once)",
            ),
            (
                RemediationAction::RestartThenDrain,
                false,
                "restart-then-drain (at most 10% of a cluster DRAINING or being restarted at once)",
            ),
            (
                RemediationAction::RestartAgent,
                true,
                "dry run of restart-agent: nothing was changed",
            ),
        ];
        for (kind, dry_run, told) in cases {
            assert_eq!(action(remediation(kind, dry_run)), told, "{kind:?}");
        }
    }
}
