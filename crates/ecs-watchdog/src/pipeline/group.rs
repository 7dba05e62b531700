//! Grouping across invocations (DESIGN §7, `GROUP_INTERVAL_MINUTES`): the first incident of a
//! cluster and kind pages at once and opens a window; what joins the group while the window is
//! open (or while others still wait) is held in the ledger, and one digest tells all of it once
//! the window is over, sent by whichever run comes first, the sweep or a later invocation. The
//! group's record decides races: moving its window end is a conditional write, so one run pages
//! and one run sends each digest. Resolved notices are grouped the same way, in a group of their own.

use std::collections::{BTreeMap, HashMap};

use futures_util::future::join_all;
use tracing::{error, info, warn};

use super::evidence::chunked;
use super::{Adapters, BatchReport};
use crate::alert::{self, AlertKind, Status};
use crate::config::Place;
use crate::incident::{Group, GroupKey, Incident};
use crate::ports::{Ledger, error_chain};

/// How long after the last hold the held index surely shows it (a global secondary index
/// lags its table by well under a second).
const SETTLED_SECONDS: u64 = 60;

/// The groups a run has read, by key; a key missing was not read (or grouping is off).
pub type Groups = HashMap<GroupKey, Group>;

/// The groups of a cluster: each kind that alerts per instance, firing and resolved.
pub fn keys(cluster_arn: &str) -> impl Iterator<Item = GroupKey> + '_ {
    AlertKind::ALL
        .into_iter()
        .filter(|k| *k != AlertKind::MonitorImpaired)
        .flat_map(move |kind| [Status::Firing, Status::Resolved].map(|status| GroupKey::new(cluster_arn, kind, status)))
}

/// Reads the records of these groups; one that does not exist yet is an empty group. A group
/// that cannot be read is left out: its incidents page as if ungrouped, which may repeat a
/// notification but never loses one.
pub async fn read(ledger: &dyn Ledger, keys: impl IntoIterator<Item = GroupKey>) -> Groups {
    let mut keys: Vec<GroupKey> = keys.into_iter().collect();
    keys.sort();
    keys.dedup();
    let mut groups = Groups::new();
    for (chunk, answer) in chunked(&keys, |chunk| ledger.groups(chunk)).await {
        match answer {
            Ok(found) => {
                groups.extend(chunk.iter().map(|k| (k.clone(), Group::none(k.clone()))));
                groups.extend(found.into_iter().map(|g| (g.key.clone(), g)));
            }
            Err(e) => error!(error = %error_chain(&e), "incident groups unreadable: their incidents notify ungrouped"),
        }
    }
    groups
}

/// Whether `n` incidents joining `key` now are held for its digest, counted held if so.
/// Otherwise this run notifies them at once, having opened the group's window.
pub async fn hold(ledger: &dyn Ledger, groups: &mut Groups, key: &GroupKey, n: u64, now: u64, interval: u64) -> bool {
    let Some(group) = groups.get_mut(key) else {
        return false;
    };
    if !group.holds(now) {
        match ledger.set_window(key, group.window_end, now + interval).await {
            Ok(true) => {
                group.window_end = now + interval;
                return false;
            }
            // Another run just notified the group: join its window.
            Ok(false) => {}
            Err(e) => {
                warn!(error = %error_chain(&e), "group window not set: notifying at once");
                return false;
            }
        }
    }
    // Counted before the incidents are written held, so a digest is always due for them.
    match ledger.count_held(key, n as i64, now).await {
        Ok(()) => {
            group.held += n;
            group.last_held = now;
            true
        }
        Err(e) => {
            warn!(error = %error_chain(&e), "held count not written: notifying at once");
            false
        }
    }
}

/// Takes back from the count what was counted held but not written held.
pub async fn uncount(ledger: &dyn Ledger, groups: &mut Groups, key: &GroupKey, n: u64) {
    if n == 0 {
        return;
    }
    if let Err(e) = ledger.count_held(key, -(n as i64), 0).await {
        error!(error = %error_chain(&e), "held count not corrected: a later digest finds fewer");
    }
    if let Some(group) = groups.get_mut(key) {
        group.held = group.held.saturating_sub(n);
    }
}

/// Sends every digest that is due among `groups`: claims it (moving the window end, so a
/// racing run sends none), tells what the group holds in one message, then marks each incident
/// told. A digest SNS refuses gives its claim back: the next run sends it.
pub async fn send_due(
    io: &Adapters,
    ledger: &dyn Ledger,
    place: &Place,
    groups: &Groups,
    now: u64,
    interval: u64,
    report: &mut BatchReport,
) {
    let due: BTreeMap<&GroupKey, &Group> = groups.iter().filter(|(_, g)| g.digest_due(now)).collect();
    let mut sent = Vec::new();
    for (key, group) in due {
        match ledger.set_window(key, group.window_end, now + interval).await {
            Ok(true) => {}
            Ok(false) => {
                info!(group = %key.id(), "another run sends this digest");
                continue;
            }
            Err(e) => {
                warn!(error = %error_chain(&e), "digest not claimed: the next run tries");
                continue;
            }
        }
        let held = match ledger.held(key).await {
            Ok(held) => held,
            Err(e) => {
                warn!(error = %error_chain(&e), "held incidents unreadable: the next run sends the digest");
                let _ = ledger.set_window(key, now + interval, group.window_end).await;
                continue;
            }
        };
        if held.is_empty() {
            if now >= group.last_held + SETTLED_SECONDS {
                // Counted, never written held (a run that stopped in between): nothing to tell.
                let _ = ledger.count_held(key, -(group.held as i64), now).await;
            } else {
                // The index is eventually consistent and something was held just now: the
                // count stays and the claim goes back, so the next run looks again.
                let _ = ledger.set_window(key, now + interval, group.window_end).await;
            }
            continue;
        }
        let alert = match key.status {
            Status::Firing => {
                let still_open = match ledger.open_incidents(&key.cluster_arn).await {
                    Ok(open) => Some(open.iter().filter(|k| k.kind == key.kind).count()),
                    Err(_) => None,
                };
                alert::digest(key.kind, place, &key.cluster_arn, joined(&held), still_open)
            }
            Status::Resolved => alert::resolved(key.kind, place, &key.cluster_arn, closed(&held)),
        };
        if let Err(e) = io.notifier.publish(&alert).await {
            error!(group = %key.id(), error = %error_chain(&e), "digest not sent: the next run sends it");
            let _ = ledger.set_window(key, now + interval, group.window_end).await;
            continue;
        }
        let mut told = 0;
        for incident in &held {
            match ledger.told(&incident.key, key, now).await {
                Ok(true) => told += 1,
                Ok(false) => {}
                // Still held: the next digest tells it again, rather than never.
                Err(e) => error!(incident = %incident.key.id(), error = %error_chain(&e), "not marked told"),
            }
        }
        if let Err(e) = ledger.count_held(key, -(told as i64), now).await {
            error!(error = %error_chain(&e), "held count not lowered: the next run finds nothing more to tell");
        }
        sent.push(alert);
    }
    if !sent.is_empty() {
        for e in join_all(io.findings.iter().map(|sink| sink.send(&sent)))
            .await
            .into_iter()
            .filter_map(Result::err)
        {
            error!(operation = e.operation, error = %error_chain(&e), "findings not sent");
        }
    }
    report.alerts.extend(sent);
}

/// What joined a firing group: each instance's finding, marked when it resolved since.
fn joined(held: &[Incident]) -> Vec<alert::InstanceFinding> {
    held.iter()
        .map(|i| {
            let mut finding = i.finding.clone();
            if !i.open {
                let lasted = crate::incident::lasted(i.closed_at.saturating_sub(i.opened_at));
                let how = i.resolution.as_deref().unwrap_or("resolved");
                finding.resolved = Some(format!("{how}, after {lasted}"));
            }
            finding
        })
        .collect()
}

/// What a resolved group holds, as the resolved notice lists it.
fn closed(held: &[Incident]) -> Vec<(alert::InstanceFinding, String, u64)> {
    held.iter()
        .map(|i| {
            let how = i.resolution.clone().unwrap_or_else(|| "resolved".to_owned());
            (i.finding.clone(), how, i.closed_at.saturating_sub(i.opened_at))
        })
        .collect()
}
