//! Ledger: carries out the plan ([`super::plan`]) in a few short steps. Read what is stored,
//! plan, write the group records, write the incidents (a notice is leased, never marked sent),
//! publish, then settle each lease: `notified` or `closed` once SNS accepted it, given back when
//! it did not. A run that dies anywhere leaves a lease that expires: any later look sends.
//! Without a table (stateless) every confirmed problem alerts, as before incidents.

use std::collections::{BTreeMap, HashMap, HashSet};

use tracing::{error, info};

use super::decide::{Decision, Outcome};
use super::evidence::chunked;
use super::intake::Message;
use super::plan::{self, Look, Move, Plan, Settings};
use super::report::{self, Context, Outgoing};
use super::{Adapters, BatchReport};
use crate::alert::AlertKind;
use crate::incident::{Group, GroupKey, Incident, IncidentKey, Notice, State};
use crate::inventory::cluster_name;
use crate::metrics::Metric;
use crate::ports::{AwsError, Ledger, Settle, error_chain};
use crate::verdict::Verdict;

/// What a run saw of one incident, and the messages that said it.
#[derive(Debug, Clone)]
pub struct Seen<'a> {
    pub key: IncidentKey,
    pub look: Look,
    pub messages: Vec<&'a Message>,
}

/// Folds a run's looks into one per incident: a look that found it over outweighs a
/// confirmation in the same batch (looks at an instance's current state agree; of a
/// deployment's events, a success in the batch ends what a redelivered failure would keep open).
pub fn by_incident(seen: Vec<Seen<'_>>) -> Vec<Seen<'_>> {
    let mut folded: BTreeMap<IncidentKey, Seen<'_>> = BTreeMap::new();
    for s in seen {
        match folded.get_mut(&s.key) {
            Some(kept) => {
                kept.messages.extend(s.messages);
                // A companion (read for another incident's rule) gives way to any look.
                if !matches!(s.look, Look::Owed | Look::Companion) || kept.look == Look::Companion {
                    kept.look = s.look;
                }
            }
            None => {
                folded.insert(s.key.clone(), s);
            }
        }
    }
    folded.into_values().collect()
}

/// One run's ledger stage and its notices. `groups` are group records read already (the sweep's
/// due ones); the groups of what is confirmed now are read here.
pub async fn run(
    io: &Adapters,
    context: &Context<'_>,
    seen: Vec<Seen<'_>>,
    s: &Settings,
    report: &mut BatchReport,
) -> HashMap<GroupKey, Group> {
    let seen = by_incident(seen);
    let Some(ledger) = io.ledger.as_deref() else {
        stateless(io, context, seen, report).await;
        return HashMap::new();
    };
    let keys: Vec<IncidentKey> = seen.iter().map(|s| s.key.clone()).collect();
    let (stored, unknown) = read(ledger, &keys).await;
    let (seen, unreadable): (Vec<Seen<'_>>, Vec<Seen<'_>>) = seen.into_iter().partition(|x| !unknown.contains(&x.key));
    for x in &unreadable {
        undecided(report, &x.messages);
    }
    let seen: Vec<Seen<'_>> = seen.into_iter().filter(|x| !stale(&stored, x)).collect();
    let groups = read_groups(ledger, &seen, s).await;
    let looks: Vec<(IncidentKey, Look)> = seen.iter().map(|x| (x.key.clone(), x.look.clone())).collect();
    let plan = plan::plan(&stored, &groups, &looks, s);
    for key in &plan.folded {
        report.tally.count(Some(cluster_name(&key.cluster_arn)), Metric::Folded);
    }
    let messages: HashMap<&IncidentKey, &Vec<&Message>> = seen.iter().map(|x| (&x.key, &x.messages)).collect();
    let mut moved = Moved::new();
    let opened: Vec<Group> = plan
        .groups
        .iter()
        .filter(|g| g.window_end == s.now + s.group_interval)
        .cloned()
        .collect();
    let written = write(ledger, plan, &messages, &mut moved, report).await;
    let outgoing = outgoing(&written, &messages);
    let failed = send(io, ledger, context, outgoing, s, &mut moved, report).await;
    reopen_windows(ledger, &opened, &groups, &failed).await;
    count_open(ledger, moved, report).await;
    groups
}

/// Whether the look comes from events older than what its incident knows: they are done with
/// (acknowledged), as the redelivery of an event already told is.
fn stale(stored: &HashMap<IncidentKey, Incident>, x: &Seen<'_>) -> bool {
    let newest = x.messages.iter().filter_map(|m| m.event_time()).max();
    let stale = plan::stale(stored.get(&x.key), &x.look, newest);
    if stale {
        info!(incident = %x.key.id(), "an event older than what the incident knows: it changes nothing");
    }
    stale
}

/// Incidents opened minus closed, per cluster: the open-incidents gauge moves by it.
pub type Moved = BTreeMap<String, i64>;

/// Marks the messages undecided (they go back to the queue); false, for `filter`.
fn undecided(report: &mut BatchReport, messages: &[&Message]) -> bool {
    for message in messages {
        report.tally.count(None, Metric::CheckErrors);
        report.failures.push(message.id.clone());
    }
    false
}

async fn read(ledger: &dyn Ledger, keys: &[IncidentKey]) -> (HashMap<IncidentKey, Incident>, HashSet<IncidentKey>) {
    let mut stored = HashMap::new();
    let mut unknown = HashSet::new();
    for (chunk, answer) in chunked(keys, |chunk| ledger.get(chunk)).await {
        match answer {
            Ok(found) => stored.extend(found.into_iter().map(|i| (i.key.clone(), i))),
            Err(e) => {
                log_ledger_error(&e);
                unknown.extend(chunk.iter().cloned());
            }
        }
    }
    (stored, unknown)
}

/// The groups of what is confirmed now; one that cannot be read is left out, so its incidents
/// page at once: that may page twice, never not at all.
async fn read_groups(ledger: &dyn Ledger, seen: &[Seen<'_>], s: &Settings) -> HashMap<GroupKey, Group> {
    let mut keys: Vec<GroupKey> = seen
        .iter()
        .filter(|x| s.group_interval > 0 && matches!(x.look, Look::Confirmed { .. } | Look::Owed))
        .map(|x| GroupKey::new(&x.key.cluster_arn, x.key.kind))
        .collect();
    keys.sort();
    keys.dedup();
    let mut groups = HashMap::new();
    for (chunk, answer) in chunked(&keys, |chunk| ledger.groups(chunk)).await {
        match answer {
            Ok(found) => {
                groups.extend(chunk.iter().map(|k| (k.clone(), Group::none(k.clone()))));
                groups.extend(found.into_iter().map(|g| (g.key.clone(), g)));
            }
            Err(e) => error!(error = %error_chain(&e), "incident groups unreadable: their incidents page ungrouped"),
        }
    }
    groups
}

/// Writes the plan: the group records, then the incidents whose group record was written. A
/// record another run moved meanwhile (or one that could not be written) leaves its messages
/// undecided: the redelivery looks again. Returns the moves written.
async fn write(
    ledger: &dyn Ledger,
    plan: Plan,
    messages: &HashMap<&IncidentKey, &Vec<&Message>>,
    moved: &mut Moved,
    report: &mut BatchReport,
) -> Vec<Move> {
    let mut lost: HashSet<GroupKey> = HashSet::new();
    for group in &plan.groups {
        match ledger.put_group(group).await {
            Ok(true) => {}
            Ok(false) => {
                info!(group = %group.key.id(), "another run moved the group: its incidents are looked at again");
                lost.insert(group.key.clone());
            }
            Err(e) => {
                log_ledger_error(&e);
                lost.insert(group.key.clone());
            }
        }
    }
    let mut written = Vec::new();
    let (moves, orphaned): (Vec<Move>, Vec<Move>) = plan
        .moves
        .into_iter()
        .partition(|m| m.group.as_ref().is_none_or(|g| !lost.contains(g)));
    for m in orphaned {
        undecided(report, messages.get(&m.incident.key).map_or(&[][..], |v| v.as_slice()));
    }
    let records: Vec<Incident> = moves.iter().map(|m| m.incident.clone()).collect();
    let answers = chunked(&records, |chunk| ledger.put(chunk)).await;
    let mut moves = moves.into_iter();
    for (chunk, answer) in answers {
        let chunk_moves: Vec<Move> = moves.by_ref().take(chunk.len()).collect();
        // A record another run moved meanwhile is that run's to tell; one not written at all
        // (the call failed) leaves its messages for the redelivery.
        let (answer, failed) = match answer {
            Ok(answer) => (answer, false),
            Err(e) => {
                log_ledger_error(&e);
                (vec![false; chunk.len()], true)
            }
        };
        for (m, ok) in chunk_moves.into_iter().zip(answer) {
            if ok {
                tally_move(&m, moved, report);
                written.push(m);
            } else if failed {
                undecided(report, messages.get(&m.incident.key).map_or(&[][..], |v| v.as_slice()));
            }
        }
    }
    written
}

fn tally_move(m: &Move, moved: &mut Moved, report: &mut BatchReport) {
    let arn = &m.incident.key.cluster_arn;
    if m.opens {
        report.tally.count(Some(cluster_name(arn)), Metric::IncidentsOpened);
        *moved.entry(arn.clone()).or_default() += 1;
    }
    if m.silenced {
        report.tally.count(Some(cluster_name(arn)), Metric::Silenced);
    }
    if m.closes {
        report.tally.count(Some(cluster_name(arn)), Metric::IncidentsResolved);
        *moved.entry(arn.clone()).or_default() -= 1;
    }
}

/// The leased incidents as notices: one per cluster, kind and notice.
fn outgoing<'a>(written: &[Move], messages: &HashMap<&IncidentKey, &Vec<&'a Message>>) -> Vec<Outgoing<'a>> {
    let mut out: BTreeMap<(String, AlertKind, Notice), Outgoing<'a>> = BTreeMap::new();
    for m in written {
        let Some(notice) = m.sends else { continue };
        let key = &m.incident.key;
        let o = out
            .entry((key.cluster_arn.clone(), key.kind, notice))
            .or_insert_with(|| Outgoing::new(&key.cluster_arn, key.kind, notice));
        o.incidents.push(m.incident.clone());
        o.messages.extend(messages.get(key).map_or(&[][..], |v| v.as_slice()));
    }
    out.into_values().collect()
}

/// Publishes each notice and settles its leases: sent, or given back (its messages go back to
/// the queue). A lease that cannot be settled expires: a later look sends it again.
pub async fn send(
    io: &Adapters,
    ledger: &dyn Ledger,
    context: &Context<'_>,
    outgoing: Vec<Outgoing<'_>>,
    s: &Settings,
    moved: &mut Moved,
    report: &mut BatchReport,
) -> Vec<GroupKey> {
    let results = report::publish(io, context, &outgoing, s.now, report).await;
    let mut settles = Vec::new();
    let mut failed = Vec::new();
    for (o, sent) in outgoing.iter().zip(results) {
        if !sent {
            undecided(report, &o.messages);
            if o.notice == Notice::Alert {
                failed.push(GroupKey::new(&o.cluster, o.kind));
            }
        }
        for incident in &o.incidents {
            let state = match sent {
                true => o.notice.to(),
                false => o.notice.from(),
            };
            if sent && state == State::Closed {
                let arn = &incident.key.cluster_arn;
                report.tally.count(Some(cluster_name(arn)), Metric::IncidentsResolved);
                *moved.entry(arn.clone()).or_default() -= 1;
            }
            settles.push(Settle {
                key: incident.key.clone(),
                token: s.token.clone(),
                state,
                at: s.now,
            });
        }
    }
    for (_, answer) in chunked(&settles, |chunk| ledger.settle(chunk)).await {
        if let Err(e) = answer {
            error!(error = %error_chain(&e), "leases not settled: they expire, and a later look sends again");
        }
    }
    failed
}

/// A page SNS refused opened its group's window for nothing: the window goes back to what it
/// was, so the retry pages rather than wait for a digest (if no run moved the group since).
async fn reopen_windows(ledger: &dyn Ledger, opened: &[Group], read: &HashMap<GroupKey, Group>, failed: &[GroupKey]) {
    for group in opened.iter().filter(|g| failed.contains(&g.key)) {
        let back = Group {
            version: group.version + 1,
            window_end: read.get(&group.key).map_or(0, |g| g.window_end),
            ..group.clone()
        };
        if let Err(e) = ledger.put_group(&back).await {
            error!(group = %back.key.id(), error = %error_chain(&e), "window not given back: the retry waits for the digest");
        }
    }
}

/// Stateless: every confirmed problem alerts.
async fn stateless(io: &Adapters, context: &Context<'_>, seen: Vec<Seen<'_>>, report: &mut BatchReport) {
    let mut out: BTreeMap<(String, AlertKind), Outgoing<'_>> = BTreeMap::new();
    for x in seen {
        let Look::Confirmed { finding, .. } = x.look else {
            continue;
        };
        let o = out
            .entry((x.key.cluster_arn.clone(), x.key.kind))
            .or_insert_with(|| Outgoing::new(&x.key.cluster_arn, x.key.kind, Notice::Alert));
        o.incidents.push(Incident::new(x.key, State::Due, *finding, 0));
        o.messages.extend(x.messages);
    }
    let out: Vec<Outgoing<'_>> = out.into_values().collect();
    let results = report::publish(io, context, &out, 0, report).await;
    for (o, sent) in out.iter().zip(results) {
        if !sent {
            undecided(report, &o.messages);
        }
    }
}

/// Moves the open-incidents gauge of each cluster by what opened and closed this run.
pub async fn count_open(ledger: &dyn Ledger, moved: Moved, report: &mut BatchReport) {
    for (cluster, delta) in moved.into_iter().filter(|(_, d)| *d != 0) {
        match ledger.count_open(&cluster, delta).await {
            Ok(open) => report
                .tally
                .gauge(cluster_name(&cluster), Metric::OpenIncidents, open.max(0) as u64),
            // A gauge is best effort: the notices are decided.
            Err(e) => error!(operation = e.operation, error = %error_chain(&e), "open incidents not counted"),
        }
    }
}

/// A look that found its problem over, as the ledger takes it.
pub fn over<'a>(decision: &Decision<'a>) -> Option<Seen<'a>> {
    let Outcome::Decided(verdict, _) = &decision.outcome else {
        return None;
    };
    decision.resolves().then(|| Seen {
        key: decision.incident(),
        look: Look::Over {
            how: how(decision.kind(), verdict),
        },
        messages: vec![decision.checked.message],
    })
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

pub fn log_ledger_error(e: &AwsError) {
    error!(operation = e.operation, error = %error_chain(e), "incident ledger unavailable: the message goes back to the queue");
}
