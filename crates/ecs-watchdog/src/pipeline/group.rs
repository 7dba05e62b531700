//! Digests (DESIGN §7, `GROUP_INTERVAL_MINUTES`): the first incident of a cluster and kind pages
//! at once and opens a window; what becomes due while it is open waits, held, and one digest
//! tells all of it when the window ends. Each group record carries when its digest is due, so
//! any run sends it: the monitor for the groups it read, the sweep for every group due in the
//! table. A digest is sent under the group's lease, then its incidents are marked told.

use tracing::{error, info, warn};

use super::batched::chunked;
use super::plan::Settings;
use super::report;
use super::run::{Adapters, BatchReport};
use crate::alert;
use crate::config::Place;
use crate::incident::{Group, GroupKey, Incident, State};
use crate::ports::{AwsError, Ledger, error_chain};

/// How long after the last hold the held index surely shows it (a global secondary index
/// lags its table by well under a second).
const SETTLED_SECONDS: u64 = 60;

/// Sends every digest that is due among `groups`.
pub async fn send_due(
    io: &Adapters,
    ledger: &dyn Ledger,
    home: &Place,
    groups: impl IntoIterator<Item = Group>,
    s: &Settings,
    report: &mut BatchReport,
) {
    let mut sent = Vec::new();
    for group in groups.into_iter().filter(|g| g.digest_due(s.now)) {
        if let Some(alert) = send_one(io, ledger, home, group, s).await {
            sent.push(alert);
        }
    }
    // A digest has no message to give back: what a sink refused is logged there.
    if !sent.is_empty() {
        report::findings(io, &sent.iter().collect::<Vec<_>>()).await;
    }
    report.alerts.extend(sent.into_iter().map(alert::Alert::published));
}

/// One digest: lease the group (a racing run sends none), read what it holds, publish, mark
/// each incident told, and give the lease back with what is still due. A run that dies in
/// between leaves the lease to expire: the next run sends the digest (again, at worst).
async fn send_one(
    io: &Adapters,
    ledger: &dyn Ledger,
    home: &Place,
    group: Group,
    s: &Settings,
) -> Option<alert::Alert> {
    let key = group.key.clone();
    let leased = Group {
        version: group.version + 1,
        lease: Some(s.lease()),
        ..group.clone()
    };
    if !ledger.put_group(&leased).await.unwrap_or(false) {
        info!(group = %key.id(), "another run sends this digest");
        return None;
    }
    let held = match still_held(ledger, &key).await {
        Ok(held) => held,
        Err(e) => {
            warn!(error = %error_chain(&e), "held incidents unreadable: the next run sends the digest");
            unlease(ledger, &leased, group.digest_due).await;
            return None;
        }
    };
    if held.is_empty() {
        // The index may lag right after a hold: look again later; once settled, nothing waits.
        unlease(ledger, &leased, later(&group, s)).await;
        return None;
    }
    let digest = render(io, ledger, home, &key, &held, s).await;
    if let Err(e) = io.notifier.publish(&digest).await {
        error!(group = %key.id(), error = %error_chain(&e), "digest not sent: the next run sends it");
        unlease(ledger, &leased, group.digest_due).await;
        return None;
    }
    let all_told = mark_told(ledger, &held, s.now).await;
    // One not marked (it moved meanwhile) is told again by the next digest rather than never.
    unlease(ledger, &leased, if all_told { later(&group, s) } else { s.now }).await;
    Some(digest)
}

/// The digest of what the group holds, with how many of its kind are still open in the cluster
/// (none said when that cannot be read).
async fn render(
    io: &Adapters,
    ledger: &dyn Ledger,
    home: &Place,
    key: &GroupKey,
    held: &[Incident],
    s: &Settings,
) -> alert::Alert {
    let still_open = match ledger.open_incidents(&key.cluster_arn).await {
        Ok(open) => Some(open.iter().filter(|k| k.kind == key.kind).count()),
        Err(_) => None,
    };
    let place = Place::of_cluster(&key.cluster_arn).unwrap_or_else(|| home.clone());
    let mut joined = joined(held);
    let cluster = key.cluster_arn.as_str();
    let firing = joined.iter_mut().map(|f| (0, cluster, key.kind, f));
    super::services::name(io.inventory.as_ref(), home, firing).await;
    alert::digest(
        key.kind,
        &place,
        &key.cluster_arn,
        joined,
        still_open,
        s.facts(&key.cluster_arn),
    )
}

/// Marks each held incident told; whether every one was (one that moved meanwhile was not).
async fn mark_told(ledger: &dyn Ledger, held: &[Incident], now: u64) -> bool {
    let told: Vec<Incident> = held.iter().map(|i| told(i, now)).collect();
    let mut all_told = true;
    let mut moved = Vec::new();
    for (chunk, answer) in chunked(&told, |chunk| ledger.put(chunk)).await {
        all_told &= answer.as_ref().is_ok_and(|a| a.iter().all(|ok| *ok));
        let answer = answer.unwrap_or_default();
        moved.extend(
            chunk
                .iter()
                .zip(answer)
                .filter(|(_, ok)| !ok)
                .map(|(i, _)| i.key.clone()),
        );
    }
    told_ended(ledger, &moved, now).await;
    all_told
}

/// The incidents a digest named firing that a look closed meanwhile as never told (it read
/// them before the close, SNS took it after): they were told, so they are written as alerted
/// and ended, and their resolved notice is owed. Otherwise a comeback before the next digest
/// reopens them as new and alerts again, and without one no resolved notice follows.
async fn told_ended(ledger: &dyn Ledger, moved: &[crate::incident::IncidentKey], now: u64) {
    let mut ended = Vec::new();
    for (_, answer) in chunked(moved, |chunk| ledger.get(chunk)).await {
        let closed_untold = |i: &Incident| i.state == State::Closed && i.notified_at == 0 && i.held;
        ended.extend(
            answer
                .unwrap_or_default()
                .into_iter()
                .filter(closed_untold)
                .map(|i| Incident {
                    version: i.version + 1,
                    state: State::Notified,
                    notified_at: now,
                    ended_at: i.closed_at,
                    closed_at: 0,
                    held: false,
                    ..i
                }),
        );
    }
    for (_, answer) in chunked(&ended, |chunk| ledger.put(chunk)).await {
        if let Err(e) = answer {
            error!(error = %error_chain(&e), "a digest's ended incidents not marked told: no resolved notice follows");
        }
    }
}

/// What the group holds: the held index names the candidates, a consistent read of each says
/// whether it is still held (the index lags its table: one told by the last digest may still
/// show there, and would be told twice).
async fn still_held(ledger: &dyn Ledger, key: &GroupKey) -> Result<Vec<Incident>, AwsError> {
    let listed: Vec<_> = ledger.held(key).await?.into_iter().map(|i| i.key).collect();
    let mut held = Vec::new();
    for (_, answer) in chunked(&listed, |chunk| ledger.get(chunk)).await {
        held.extend(answer?.into_iter().filter(|i| i.held));
    }
    held.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(held)
}

/// When to look again after a digest: a run that held an incident at `last_held` (its own
/// `now`) writes it within its lease, and the held index shows it a little after; until then
/// something may still join, so the digest stays due.
fn later(group: &Group, s: &Settings) -> u64 {
    let settled = group.last_held + s.lease + SETTLED_SECONDS;
    if s.now < settled { settled } else { 0 }
}

/// Gives the group's lease back, its digest due at `due` (0: nothing waits).
async fn unlease(ledger: &dyn Ledger, leased: &Group, due: u64) {
    let next = Group {
        version: leased.version + 1,
        lease: None,
        digest_due: due,
        ..leased.clone()
    };
    if let Err(e) = ledger.put_group(&next).await {
        error!(group = %next.key.id(), error = %error_chain(&e), "group lease not given back: it expires");
    }
}

/// A held incident once its digest went out.
fn told(held: &Incident, now: u64) -> Incident {
    let mut next = Incident {
        version: held.version + 1,
        held: false,
        ..held.clone()
    };
    if next.state == State::Due {
        next.state = State::Notified;
        next.notified_at = now;
    }
    next
}

/// What joined a firing group: each instance's finding, marked when it resolved since.
fn joined(held: &[Incident]) -> Vec<alert::InstanceFinding> {
    held.iter()
        .map(|i| {
            let mut finding = i.finding.clone();
            if !i.is_open() {
                let lasted = crate::incident::lasted(i.closed_at.saturating_sub(i.opened_at));
                let how = i.resolution.as_deref().unwrap_or("resolved");
                finding.resolved = Some(format!("{how}, after {lasted}"));
            }
            finding
        })
        .collect()
}
