//! Ledger: which confirmed problems open, remind or report an incident, and which looks close
//! one. Without a table (stateless) every confirmed problem alerts, as before incidents.

use std::collections::{BTreeMap, HashMap, HashSet};

use tracing::{error, info};

use super::decide::{Decision, Outcome};
use super::evidence::chunked;
use super::group::{self, Groups};
use super::intake::Message;
use super::{BatchReport, Confirmed, Firing};
use crate::alert::{AlertKind, InstanceFinding, Status};
use crate::incident::{self, GroupKey, Incident, IncidentKey, Notice, Step};
use crate::inventory::cluster_name;
use crate::metrics::Metric;
use crate::ports::{AwsError, Ledger, error_chain};
use crate::verdict::Verdict;

/// What the ledger stage needs to know besides the batch.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// UNIX seconds.
    pub now: u64,
    /// Seconds; 0: never remind.
    pub remind_after: u64,
    /// Whether remediation drains instances (a DRAINING instance may then owe an alert).
    pub drains: bool,
    /// Seconds a notification groups what joins its cluster and kind; 0: no grouping.
    pub group_interval: u64,
}

/// How an alert's incident was claimed, so a failed alert can give the claim back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Stateless: nothing to give back.
    None,
    /// This invocation opened it at `at`.
    Opened { at: u64 },
    /// This invocation moved `notified_at` from `previous` to `at`.
    Claimed { at: u64, previous: u64 },
}

/// An incident that closed, for the resolved notice.
#[derive(Debug, Clone)]
pub struct Resolution<'a> {
    pub message: &'a Message,
    pub key: IncidentKey,
    pub finding: InstanceFinding,
    /// What the look found, in words.
    pub how: String,
    pub lasted: u64,
    pub closed_at: u64,
}

/// Resolutions by cluster and kind.
pub type Resolved<'a> = BTreeMap<(&'a str, AlertKind), Vec<Resolution<'a>>>;

/// Decides, against the ledger, which confirmed problems alert and which incidents close.
/// Messages whose incident could not be read or written go back to the queue.
///
/// Reads the ledger only for what may change an incident: problems confirmed, problems found
/// over, and (when remediation drains) DRAINING instances whose alert may still be owed. A batch
/// of anything else costs no DynamoDB call.
pub async fn settle<'a>(
    ledger: &dyn Ledger,
    clock: Clock,
    mut confirmed: Confirmed<'a>,
    decisions: &[Decision<'a>],
    report: &mut BatchReport,
) -> (Confirmed<'a>, Resolved<'a>, Groups) {
    let Clock {
        now,
        remind_after,
        drains,
        group_interval,
    } = clock;
    let mut keys: Vec<IncidentKey> = confirmed.values().flatten().map(|f| f.key.clone()).collect();
    keys.extend(
        decisions
            .iter()
            .filter(|d| may_change(d, drains))
            .map(Decision::incident),
    );
    keys.sort();
    keys.dedup();
    let mut resolved = Resolved::new();
    if keys.is_empty() {
        return (confirmed, resolved, Groups::new());
    }
    let (current, unknown) = read(ledger, &keys).await;
    let mut groups = if group_interval > 0 {
        let firing = confirmed.keys().map(|(c, k)| GroupKey::new(c, *k, Status::Firing));
        let ending = decisions
            .iter()
            .filter(|d| d.resolves())
            .map(|d| GroupKey::new(d.cluster, d.kind(), Status::Resolved));
        group::read(ledger, firing.chain(ending)).await
    } else {
        Groups::new()
    };
    let mut undecided: Vec<&Message> = Vec::new();
    // Incidents opened minus closed, per cluster: the open-incidents gauge moves by it.
    let mut moved: BTreeMap<&'a str, i64> = BTreeMap::new();

    let mut firing = Confirmed::new();
    for (group, firings) in std::mem::take(&mut confirmed) {
        // New incidents of a group whose window is open wait for its digest.
        let key = GroupKey::new(group.0, group.1, Status::Firing);
        let opening = firings
            .iter()
            .filter(|f| !unknown.contains(&f.key))
            .filter(|f| incident::on_confirmed(current.get(&f.key), false, now, remind_after, f.hold) == Step::Open)
            .count() as u64;
        let held = opening > 0 && group::hold(ledger, &mut groups, &key, opening, now, group_interval).await;
        let mut written_held = 0;
        for mut f in firings {
            if unknown.contains(&f.key) {
                undecided.extend(&f.messages);
                continue;
            }
            let stored = current.get(&f.key);
            let acted_now = f.finding.remediation.is_some()
                && stored.is_none_or(|i| i.finding.remediation != f.finding.remediation);
            let result = match incident::on_confirmed(stored, acted_now, now, remind_after, f.hold) {
                Step::Quiet => {
                    info!(incident = %f.key.id(), "already alerted, or not yet lasted its hold");
                    continue;
                }
                Step::Watch => {
                    let watched = Incident::opened(f.key.clone(), f.finding.clone(), now, 0);
                    match ledger.open(&watched).await {
                        Ok(true) => {
                            info!(incident = %f.key.id(), "first sight: alerts if it lasts");
                            report.tally.count(Some(cluster_name(group.0)), Metric::IncidentsOpened);
                            *moved.entry(group.0).or_default() += 1;
                        }
                        Ok(false) => {}
                        Err(e) => {
                            log_ledger_error(&e);
                            undecided.extend(&f.messages);
                        }
                    }
                    continue;
                }
                Step::Open if held => {
                    let mut opened = Incident::opened(f.key.clone(), f.finding.clone(), now, 0);
                    opened.held = Some(Status::Firing);
                    match ledger.open(&opened).await {
                        Ok(true) => {
                            info!(incident = %f.key.id(), "held for its group's digest");
                            report.tally.count(Some(cluster_name(group.0)), Metric::IncidentsOpened);
                            *moved.entry(group.0).or_default() += 1;
                            written_held += 1;
                        }
                        Ok(false) => {}
                        Err(e) => {
                            log_ledger_error(&e);
                            undecided.extend(&f.messages);
                        }
                    }
                    continue;
                }
                Step::Open => {
                    let opened = Incident::opened(f.key.clone(), f.finding.clone(), now, now);
                    f.claim = Claim::Opened { at: now };
                    f.notice = Notice::New;
                    ledger.open(&opened).await
                }
                Step::Notify { notice, expected } => {
                    let stored = stored.expect("an open incident");
                    if f.finding.remediation.is_none() {
                        f.finding.remediation = stored.finding.remediation.clone();
                    }
                    f.notice = notice;
                    f.claim = Claim::Claimed {
                        at: now,
                        previous: expected,
                    };
                    // The ledger keeps the finding; how long it lasts belongs to this reminder only.
                    let result = ledger.claim(&claimed(stored, &f.finding, now), expected).await;
                    if notice == Notice::Reminder {
                        f.finding.open_for = Some(incident::lasted(now.saturating_sub(stored.opened_at)));
                    }
                    result
                }
            };
            match result {
                Ok(true) => {
                    if f.notice == Notice::New {
                        report.tally.count(Some(cluster_name(group.0)), Metric::IncidentsOpened);
                        *moved.entry(group.0).or_default() += 1;
                    }
                    firing.entry(group).or_default().push(f);
                }
                Ok(false) => info!(incident = %f.key.id(), "another invocation alerts for it"),
                Err(e) => {
                    log_ledger_error(&e);
                    undecided.extend(&f.messages);
                }
            }
        }
        if held {
            group::uncount(ledger, &mut groups, &key, opening - written_held).await;
        }
    }

    // Resolved notices group as alerts do: per cluster and kind, those due a notice.
    let mut notices: BTreeMap<(&'a str, AlertKind), u64> = BTreeMap::new();
    for decision in decisions.iter().filter(|d| d.resolves()) {
        let key = decision.incident();
        if !unknown.contains(&key) && incident::closes_with_notice(current.get(&key)) == Some(true) {
            *notices.entry((decision.cluster, decision.kind())).or_default() += 1;
        }
    }
    let mut holding: BTreeMap<(&'a str, AlertKind), (GroupKey, u64)> = BTreeMap::new();
    for ((cluster, kind), n) in notices {
        let key = GroupKey::new(cluster, kind, Status::Resolved);
        if group::hold(ledger, &mut groups, &key, n, now, group_interval).await {
            holding.insert((cluster, kind), (key, n));
        }
    }

    for decision in decisions {
        let Outcome::Decided(verdict, _) = &decision.outcome else {
            continue;
        };
        let key = decision.incident();
        if unknown.contains(&key) && may_change(decision, drains) {
            // Its incident could not be read: closing it, or the alert it owes, waits for a retry.
            undecided.push(decision.checked.message);
            continue;
        }
        let Some(stored) = current.get(&key).filter(|i| i.open) else {
            continue;
        };
        let owed = stored.held.is_none() && (stored.notified_at == 0 || !stored.remediation_reported);
        if drains && decision.draining() && owed {
            // The alert that carried what remediation did failed, and the instance is DRAINING
            // now: the incident's finding still owes it.
            let f = Firing {
                messages: vec![decision.checked.message],
                key: key.clone(),
                finding: stored.finding.clone(),
                notice: Notice::Unreported,
                claim: Claim::Claimed {
                    at: now,
                    previous: stored.notified_at,
                },
                hold: 0,
            };
            match ledger
                .claim(&claimed(stored, &stored.finding, now), stored.notified_at)
                .await
            {
                Ok(true) => firing.entry((decision.cluster, decision.kind())).or_default().push(f),
                Ok(false) => {}
                Err(e) => {
                    log_ledger_error(&e);
                    undecided.push(decision.checked.message);
                }
            }
        } else if decision.resolves() {
            let how = how(decision.kind(), verdict);
            let notice = incident::closes_with_notice(Some(stored)) == Some(true);
            let hold = holding.get_mut(&(decision.cluster, decision.kind())).filter(|_| notice);
            match ledger.close(&key, now, &how, hold.as_ref().map(|(g, _)| g)).await {
                Ok(true) => {
                    report
                        .tally
                        .count(Some(cluster_name(decision.cluster)), Metric::IncidentsResolved);
                    *moved.entry(decision.cluster).or_default() -= 1;
                    if let Some((_, waiting)) = hold {
                        // Told by the group's resolved digest.
                        *waiting -= 1;
                    } else if notice {
                        resolved
                            .entry((decision.cluster, decision.kind()))
                            .or_default()
                            .push(Resolution {
                                message: decision.checked.message,
                                key,
                                finding: stored.finding.clone(),
                                how,
                                lasted: now.saturating_sub(stored.opened_at),
                                closed_at: now,
                            });
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    log_ledger_error(&e);
                    undecided.push(decision.checked.message);
                }
            }
        }
    }
    for (key, not_written) in holding.into_values() {
        group::uncount(ledger, &mut groups, &key, not_written).await;
    }
    for message in undecided {
        report.tally.count(None, Metric::CheckErrors);
        report.failures.push(message.id.clone());
    }
    for (cluster, delta) in moved.into_iter().filter(|(_, d)| *d != 0) {
        match ledger.count_open(cluster, delta).await {
            Ok(open) => report
                .tally
                .gauge(cluster_name(cluster), Metric::OpenIncidents, open.max(0) as u64),
            // A gauge is best effort: the alerts are decided.
            Err(e) => error!(operation = e.operation, error = %error_chain(&e), "open incidents not counted"),
        }
    }
    (firing, resolved, groups)
}

/// Gives back the claims of alerts that did not go out, and reopens the incidents whose
/// resolved notice did not: the retried messages find them as they were.
pub async fn roll_back(ledger: &dyn Ledger, firings: &[&Firing<'_>], resolutions: &[&Resolution<'_>]) {
    for f in firings {
        let result = match f.claim {
            Claim::None => continue,
            Claim::Opened { at } => ledger.release(&f.key, at, 0).await,
            Claim::Claimed { at, previous } => ledger.release(&f.key, at, previous).await,
        };
        if let Err(e) = result {
            // The reminder sends it again later; nothing better can be done now.
            error!(incident = %f.key.id(), error = %error_chain(&e), "claim not given back");
        }
    }
    for r in resolutions {
        if let Err(e) = ledger.reopen(&r.key, r.closed_at).await {
            error!(incident = %r.key.id(), error = %error_chain(&e), "incident not reopened");
        }
    }
}

async fn read(ledger: &dyn Ledger, keys: &[IncidentKey]) -> (HashMap<IncidentKey, Incident>, HashSet<IncidentKey>) {
    let mut current = HashMap::new();
    let mut unknown = HashSet::new();
    for (chunk, answer) in chunked(keys, |chunk| ledger.get(chunk)).await {
        match answer {
            Ok(found) => current.extend(found.into_iter().map(|i| (i.key.clone(), i))),
            Err(e) => {
                log_ledger_error(&e);
                unknown.extend(chunk.iter().cloned());
            }
        }
    }
    (current, unknown)
}

/// Whether a look that confirmed nothing may still change its incident: it finds the problem
/// over, or (when remediation drains) the instance DRAINING with an alert perhaps still owed.
fn may_change(decision: &Decision<'_>, drains: bool) -> bool {
    decision.resolves() || (drains && decision.draining())
}

fn claimed(stored: &Incident, finding: &InstanceFinding, now: u64) -> Incident {
    Incident {
        notified_at: now,
        remediation_reported: finding.remediation.is_some(),
        finding: finding.clone(),
        ..stored.clone()
    }
}

fn how(kind: AlertKind, verdict: &Verdict) -> String {
    match (kind, verdict) {
        (AlertKind::AgentDisconnected, Verdict::Recovered) => "recovered: the agent reconnected".to_owned(),
        (AlertKind::DaemonLost, Verdict::Recovered) => "recovered: the daemon runs again".to_owned(),
        (AlertKind::InstanceImpaired, Verdict::Recovered) => {
            "recovered: ECS reports the instance healthy again".to_owned()
        }
        (AlertKind::DaemonDeploymentFailed, Verdict::Recovered) => {
            "recovered: a later deployment of the daemon succeeded".to_owned()
        }
        (_, Verdict::Suppressed(s)) => format!("gone: {s}"),
        (_, other) => format!("{other:?}"),
    }
}

fn log_ledger_error(e: &AwsError) {
    error!(operation = e.operation, error = %error_chain(e), "incident ledger unavailable: the message goes back to the queue");
}
