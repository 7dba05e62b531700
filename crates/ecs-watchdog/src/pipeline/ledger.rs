//! Ledger: carries out the plan ([`super::plan`]) in a few short steps. Read what is stored
//! (one `BatchGetItem` per 100 keys, `read.rs`), plan, write the plan in all-or-nothing batches
//! (`write.rs`: the incidents with their group's record and count; a notice is leased, never
//! marked sent), plan again what another run moved meanwhile, publish, then settle each lease:
//! `notified` or `closed` once SNS accepted it, given back when it did not. A run that dies
//! anywhere leaves a lease that expires: any later look sends. Without a table (stateless)
//! every confirmed problem alerts, as before incidents.

use std::collections::{BTreeMap, HashMap, HashSet};

use tracing::{error, info};

use super::batched::chunked;
use super::decide::{Decision, Outcome};
use super::intake::Checked;
use super::plan::{self, Look, Move, Settings};
use super::report::{self, Context, Outgoing};
use super::run::{Adapters, BatchReport};
use crate::alert::AlertKind;
use crate::incident::{Group, GroupKey, Incident, IncidentKey, Notice, State};
use crate::inventory::cluster_name;
use crate::kinds;
use crate::metrics::Metric;
use crate::ports::{AwsError, Ledger, Settle, error_chain};
use crate::verdict::Verdict;

pub(super) mod read;
mod write;

/// What a run saw of one incident, and whether a work item of the run said it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub key: IncidentKey,
    pub look: Look,
    /// When the newest event that said it happened; none for a look at the current state.
    pub time: Option<u64>,
    /// Whether a work item of the run spoke of it (a companion, read for another incident's
    /// rule, did not): when it cannot be decided, the item's messages go back to the queue.
    pub told: bool,
}

impl Seen {
    /// A look no event and no work item of the run said (the sweep's, a companion).
    pub fn quiet(key: IncidentKey, look: Look) -> Self {
        Self {
            key,
            look,
            time: None,
            told: false,
        }
    }
}

/// Folds a run's looks into one per incident: the look of the newest event wins, and of events
/// as new, one that found it over (looks at an instance's current state agree; of a
/// deployment's events, a success in the batch ends what a redelivered failure would keep open,
/// and a later deployment's failure opens again what a success ended).
pub fn by_incident(seen: Vec<Seen>) -> Vec<Seen> {
    // A companion (read for another incident's rule) gives way to any look, the outbox's to
    // any look of this run's.
    let rank = |s: &Seen| {
        let newest = s.time;
        let level = match s.look {
            Look::Companion => 0,
            Look::Owed => 1,
            _ => 2,
        };
        (level, newest, matches!(s.look, Look::Over { .. }))
    };
    let mut folded: BTreeMap<IncidentKey, Seen> = BTreeMap::new();
    for s in seen {
        match folded.get_mut(&s.key) {
            Some(kept) => {
                if rank(&s) >= rank(kept) {
                    kept.look = s.look;
                }
                kept.time = kept.time.max(s.time);
                kept.told |= s.told;
            }
            None => {
                folded.insert(s.key.clone(), s);
            }
        }
    }
    folded.into_values().collect()
}

/// How often a run plans again what another run moved meanwhile (or what a batch cancelled
/// with it) before it leaves the messages to the queue's redelivery.
const ROUNDS: usize = 3;

/// One run's ledger stage and its notices, `known` what was read ahead. Returns the group
/// records as read (the monitor sends the digests due among them).
pub async fn run(
    io: &Adapters,
    context: &Context<'_>,
    seen: Vec<Seen>,
    s: &Settings,
    report: &mut BatchReport,
    known: read::Known,
) -> HashMap<GroupKey, Group> {
    let seen = by_incident(seen);
    let Some(ledger) = io.ledger.as_deref() else {
        stateless(io, context, seen, report).await;
        return HashMap::new();
    };
    let (mut known, unknown) = read::first(ledger, &seen, s, known).await;
    let as_read = known.groups.clone();
    let told: HashSet<&IncidentKey> = seen.iter().filter(|x| x.told).map(|x| &x.key).collect();
    let mut pending: Vec<&Seen> = Vec::new();
    for x in &seen {
        match unknown.contains(&x.key) {
            true => _ = undecided(report, x),
            false => pending.push(x),
        }
    }
    let written = rounds(ledger, pending, &mut known, s, report).await;
    let mut moved = Moved::new();
    for m in &written {
        tally_move(m, &mut moved, report);
    }
    gauge(&known.counts, &moved, report);
    let outgoing = outgoing(&written, &told);
    let mut closed = Moved::new();
    let failed = send(io, ledger, context, outgoing, s, &mut closed, report).await;
    let opened: Vec<&Group> = known
        .wrote
        .values()
        .filter(|g| g.window_end == s.now + s.group_interval)
        .collect();
    reopen_windows(ledger, &opened, &as_read, &failed).await;
    count_open(ledger, closed, report).await;
    as_read
}

/// Plans and writes the pending looks, again for those another run moved meanwhile, at most
/// [`ROUNDS`] times; returns what was written. What fails, waits for the resolved notice or is
/// still moving at the end is left to the queue's redelivery.
async fn rounds(
    ledger: &dyn Ledger,
    mut pending: Vec<&Seen>,
    known: &mut read::Known,
    s: &Settings,
    report: &mut BatchReport,
) -> Vec<Move> {
    let mut written = Vec::new();
    let mut later: HashSet<&IncidentKey> = HashSet::new();
    for _ in 0..ROUNDS {
        pending.retain(|x| !stale(&known.incidents, x));
        if pending.is_empty() {
            break;
        }
        let looks: Vec<(IncidentKey, Look)> = pending.iter().map(|x| (x.key.clone(), x.look.clone())).collect();
        let plan = plan::plan(&known.incidents, &known.groups, &looks, s);
        for key in &plan.folded {
            report.tally.count(Some(cluster_name(&key.cluster_arn)), Metric::Folded);
        }
        for x in pending
            .iter()
            .filter(|x| plan.later.contains(&x.key) && later.insert(&x.key))
        {
            info!(incident = %x.key.id(), "a failure met the resolved notice it follows: taken again after it");
            undecided(report, x);
        }
        // Taken again by the redelivery: not looked at again in this run.
        pending.retain(|x| !later.contains(&x.key));
        let out = write::carry_out(ledger, plan, known).await;
        written.extend(out.written);
        let failed: HashSet<IncidentKey> = out.failed.into_iter().collect();
        let again: HashSet<IncidentKey> = out.again.into_iter().collect();
        pending.retain(|x| match failed.contains(&x.key) {
            true => undecided(report, x),
            false => again.contains(&x.key),
        });
    }
    for x in pending {
        info!(incident = %x.key.id(), "moved by other runs at every look: the redelivery looks again");
        undecided(report, x);
    }
    written
}

/// The open-incidents gauge of each cluster whose count was read, moved by what this run wrote
/// (the count itself moved in the same transactions).
fn gauge(counts: &HashMap<String, i64>, moved: &Moved, report: &mut BatchReport) {
    for (cluster, delta) in moved.iter().filter(|(_, d)| **d != 0) {
        if let Some(before) = counts.get(cluster) {
            let open = (before + delta).max(0) as u64;
            report.tally.gauge(cluster_name(cluster), Metric::OpenIncidents, open);
        }
    }
}

/// Whether the look comes from events older than what its incident knows: they are done with
/// (acknowledged), as the redelivery of an event already told is.
fn stale(stored: &HashMap<IncidentKey, Incident>, x: &Seen) -> bool {
    let stale = plan::stale(stored.get(&x.key), &x.look, x.time);
    if stale {
        info!(incident = %x.key.id(), "an event older than what the incident knows: it changes nothing");
    }
    stale
}

/// Incidents opened minus closed, per cluster: the open-incidents gauge moves by it.
pub type Moved = BTreeMap<String, i64>;

/// Marks the look undecided when a work item said it (its messages go back to the queue);
/// false, for `filter`.
fn undecided(report: &mut BatchReport, x: &Seen) -> bool {
    if x.told {
        report.undecided.push(x.key.clone());
    }
    false
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
fn outgoing(written: &[Move], told: &HashSet<&IncidentKey>) -> Vec<Outgoing> {
    let mut out: BTreeMap<(String, AlertKind, Notice), Outgoing> = BTreeMap::new();
    for m in written {
        let Some(notice) = m.sends else { continue };
        let key = &m.incident.key;
        let o = out
            .entry((key.cluster_arn.clone(), key.kind, notice))
            .or_insert_with(|| Outgoing::new(&key.cluster_arn, key.kind, notice));
        o.incidents.push(m.incident.clone());
        if told.contains(key) {
            o.told.push(key.clone());
        }
    }
    out.into_values().collect()
}

/// Publishes each notice and settles its leases: sent, or given back (its messages go back to
/// the queue). A lease that cannot be settled expires: a later look sends it again.
pub async fn send(
    io: &Adapters,
    ledger: &dyn Ledger,
    context: &Context<'_>,
    outgoing: Vec<Outgoing>,
    s: &Settings,
    moved: &mut Moved,
    report: &mut BatchReport,
) -> Vec<GroupKey> {
    let results = report::publish(io, context, &outgoing, s.now, report).await;
    let mut settles = Vec::new();
    let mut failed = Vec::new();
    for (o, sent) in outgoing.iter().zip(results) {
        if !sent {
            report.undecided.extend(o.told.iter().cloned());
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
async fn reopen_windows(ledger: &dyn Ledger, opened: &[&Group], read: &HashMap<GroupKey, Group>, failed: &[GroupKey]) {
    for group in opened.iter().filter(|g| failed.contains(&g.key)) {
        let back = Group {
            version: group.version + 1,
            window_end: read.get(&group.key).map_or(0, |g| g.window_end),
            ..(*group).clone()
        };
        if let Err(e) = ledger.put_group(&back).await {
            error!(group = %back.key.id(), error = %error_chain(&e), "window not given back: the retry waits for the digest");
        }
    }
}

/// Stateless: every confirmed problem alerts.
async fn stateless(io: &Adapters, context: &Context<'_>, seen: Vec<Seen>, report: &mut BatchReport) {
    let mut out: BTreeMap<(String, AlertKind), Outgoing> = BTreeMap::new();
    for x in seen {
        let Look::Confirmed { finding, .. } = x.look else {
            continue;
        };
        let o = out
            .entry((x.key.cluster_arn.clone(), x.key.kind))
            .or_insert_with(|| Outgoing::new(&x.key.cluster_arn, x.key.kind, Notice::Alert));
        if x.told {
            o.told.push(x.key.clone());
        }
        o.incidents.push(Incident::new(x.key, State::Due, *finding, 0));
    }
    let out: Vec<Outgoing> = out.into_values().collect();
    let results = report::publish(io, context, &out, 0, report).await;
    for (o, sent) in out.iter().zip(results) {
        if !sent {
            report.undecided.extend(o.told.iter().cloned());
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
pub fn over(decision: &Decision<'_>) -> Option<Seen> {
    let Outcome::Decided(verdict, _) = &decision.outcome else {
        return None;
    };
    decision.resolves().then(|| Seen {
        key: decision.incident(),
        look: Look::Over {
            how: how(decision.kind(), verdict),
            // A deployment's success decides by itself, as of its event; the other kinds'
            // verdicts are of the current state, now.
            at: kinds::of(decision.kind())
                .ended_by_its_events()
                .then_some(decision.checked.time)
                .flatten(),
            event: event_seen(decision.checked),
        },
        time: decision.checked.time,
        told: true,
    })
}

/// The event behind a work item: its time and EventBridge `id`, both read at intake.
fn event_seen(checked: &Checked) -> Option<plan::EventSeen> {
    Some(plan::EventSeen {
        time: checked.time?,
        id: checked.event_id.clone()?,
    })
}

fn how(kind: AlertKind, verdict: &Verdict) -> String {
    match (kinds::of(kind).recovered(), verdict) {
        (Some(recovered), Verdict::Recovered) => recovered.to_owned(),
        (_, Verdict::Suppressed(s)) => format!("gone: {s}"),
        (_, other) => format!("{other:?}"),
    }
}

pub fn log_ledger_error(e: &AwsError) {
    error!(operation = e.operation, error = %error_chain(e), "incident ledger unavailable: the message goes back to the queue");
}
