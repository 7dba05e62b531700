//! What a run reads before it plans, in one `BatchGetItem` per 100 keys: the incidents it
//! looked at, except those an event confirmed (news, mostly: they are put without reading, a
//! conflict brings back what is stored), the groups of what it confirmed, and the counts of
//! open incidents of its clusters (the gauge). A quiet run reads nothing. What the cluster
//! look-up read ahead with the clusters' records ([`ahead`]) is not read again.

use std::collections::{BTreeSet, HashMap, HashSet};

use tracing::warn;

use super::super::batched::chunked;
use super::super::decide::Decision;
use super::super::intake::Intake;
use super::super::plan::{Look, Settings};
use super::super::run::Confirmed;
use super::Seen;
use crate::incident::{Group, GroupKey, Incident, IncidentKey};
use crate::ports::{ClusterRecord, Keys, Ledger, Stored, error_chain};

/// What a run knows of the ledger: read, found in place of a record that moved, or written
/// by itself.
#[derive(Debug, Default)]
pub struct Known {
    pub incidents: HashMap<IncidentKey, Incident>,
    /// Each group as read (or found moved); a write of this run moves only its version, so
    /// planning again decides as the first plan did.
    pub groups: HashMap<GroupKey, Group>,
    /// The group records this run wrote, the last of each.
    pub wrote: HashMap<GroupKey, Group>,
    pub counts: HashMap<String, i64>,
    /// What the sweep last saw of clusters, by ARN (read only ahead, with the cluster look-up).
    pub clusters: HashMap<String, ClusterRecord>,
}

impl Known {
    /// Takes in what was found stored in place of records that moved: `moved` lists them,
    /// and one not in `found` is not stored.
    pub fn found(&mut self, moved: (&[IncidentKey], &[GroupKey]), found: Stored) {
        for key in moved.0 {
            self.incidents.remove(key);
        }
        for key in moved.1 {
            self.groups.insert(key.clone(), Group::none(key.clone()));
        }
        self.take(found);
    }

    fn take(&mut self, stored: Stored) {
        self.incidents
            .extend(stored.incidents.into_iter().map(|i| (i.key.clone(), i)));
        self.groups
            .extend(stored.groups.into_iter().map(|g| (g.key.clone(), g)));
        self.counts.extend(stored.counts);
        self.clusters
            .extend(stored.clusters.into_iter().map(|r| (r.cluster_arn.clone(), r)));
    }

    /// Takes in a read of `asked`: a group asked and not found is known to be none.
    fn read(&mut self, asked: Keys, stored: Stored) {
        self.groups
            .extend(asked.groups.into_iter().map(|k| (k.clone(), Group::none(k))));
        self.take(stored);
    }
}

/// Reads ahead, for the cluster look-up: the clusters' records with the run's cluster-level keys
/// (counts, groups) in the same `BatchGetItem`, so the ledger stage does not read them again.
/// What fails is read again by the ledger stage ([`first`]); its records are asked of ECS.
pub async fn ahead(ledger: &dyn Ledger, known: &mut Known, keys: Keys) {
    let keys = Keys {
        groups: keys
            .groups
            .into_iter()
            .filter(|g| !known.groups.contains_key(g))
            .collect(),
        counts: keys
            .counts
            .into_iter()
            .filter(|c| !known.counts.contains_key(c))
            .collect(),
        ..keys
    };
    let keys: Vec<Key> = split(keys);
    for (chunk, answer) in chunked(&keys, |chunk| async move { ledger.read(&gather(chunk)).await }).await {
        match answer {
            Ok(stored) => known.read(gather(chunk), stored),
            Err(e) => warn!(error = %error_chain(&e), "cluster records not read: the tags are asked of ECS"),
        }
    }
}

/// What the ledger stage may read of a batch's clusters: their counts, and their groups of each
/// kind the batch speaks of (grouping on).
pub fn batch_keys(intake: &Intake, grouping: bool) -> Keys {
    let groups: BTreeSet<GroupKey> = match grouping {
        true => intake
            .by_cluster
            .iter()
            .flat_map(|(c, checked)| checked.iter().map(|x| GroupKey::new(c, x.key.kind)))
            .collect(),
        false => BTreeSet::new(),
    };
    Keys {
        groups: groups.into_iter().collect(),
        counts: intake.by_cluster.keys().cloned().collect(),
        ..Keys::default()
    }
}

/// What the ledger stage will read of the clusters a run looks at: their counts, and the groups
/// of what it confirmed (grouping on). Returns the clusters with the keys.
pub fn ahead_keys(
    confirmed: &Confirmed<'_>,
    decisions: &[Decision<'_>],
    drains: bool,
    grouping: bool,
) -> (Vec<String>, Keys) {
    let over = decisions
        .iter()
        .filter(|d| super::over(d).is_some() || (drains && d.draining()));
    let clusters: BTreeSet<&str> = confirmed
        .keys()
        .map(|(c, _)| *c)
        .chain(over.map(|d| d.cluster))
        .collect();
    let groups = match grouping {
        true => confirmed.keys().map(|(c, kind)| GroupKey::new(c, *kind)).collect(),
        false => Vec::new(),
    };
    let clusters: Vec<String> = clusters.into_iter().map(str::to_owned).collect();
    let keys = Keys {
        groups,
        counts: clusters.clone(),
        ..Keys::default()
    };
    (clusters, keys)
}

/// Whether an event confirmed it: an event is mostly a first sight, so the incident is put
/// without reading it first. The sweep's looks (no event time) are of what it mostly knows
/// already, every few minutes, and a failed conditional write costs write capacity: read.
pub fn news(x: &Seen) -> bool {
    matches!(x.look, Look::Confirmed { .. }) && x.time.is_some()
}

#[derive(Debug, Clone)]
enum Key {
    Incident(IncidentKey),
    Group(GroupKey),
    Count(String),
    Cluster(String),
}

/// Reads what the run plans with. Returns it with the incidents that cannot be planned: those
/// unread, and those confirmed or owed whose group is unread (one `BatchGetItem` failed for
/// both: their messages go back to the queue, as the incidents' own).
pub async fn first(
    ledger: &dyn Ledger,
    seen: &[Seen],
    s: &Settings,
    mut known: Known,
) -> (Known, HashSet<IncidentKey>) {
    let keys = keys(seen, s, &known);
    let mut unknown = HashSet::new();
    let mut unread = HashSet::new();
    let read = chunked(&keys, |chunk| async move { ledger.read(&gather(chunk)).await }).await;
    for (chunk, answer) in read {
        let asked = gather(chunk);
        match answer {
            Ok(stored) => known.read(asked, stored),
            Err(e) => {
                super::log_ledger_error(&e);
                unknown.extend(asked.incidents);
                unread.extend(asked.groups);
            }
        }
    }
    let grouped = seen.iter().filter(|x| needs_group(x, s));
    unknown.extend(
        grouped
            .clone()
            .filter(|x| unread.contains(&group_of(x)))
            .map(|x| x.key.clone()),
    );
    // Read ahead for kinds that confirmed nothing: not this run's groups (their digests are
    // the sweep's or a later run's to send).
    let needed: HashSet<GroupKey> = grouped.map(group_of).collect();
    known.groups.retain(|k, _| needed.contains(k));
    (known, unknown)
}

fn needs_group(x: &Seen, s: &Settings) -> bool {
    s.group_interval > 0 && matches!(x.look, Look::Confirmed { .. } | Look::Owed)
}

fn group_of(x: &Seen) -> GroupKey {
    GroupKey::new(&x.key.cluster_arn, x.key.kind)
}

/// The keys to read: incidents not news; the groups of what is confirmed or owed (grouping on);
/// the clusters looked at, for their counts; none already known.
fn keys(seen: &[Seen], s: &Settings, known: &Known) -> Vec<Key> {
    let incidents = seen.iter().filter(|x| !news(x)).map(|x| Key::Incident(x.key.clone()));
    let groups: BTreeSet<GroupKey> = seen
        .iter()
        .filter(|x| needs_group(x, s))
        .map(group_of)
        .filter(|g| !known.groups.contains_key(g))
        .collect();
    let clusters: BTreeSet<&str> = seen
        .iter()
        .map(|x| x.key.cluster_arn.as_str())
        .filter(|c| !known.counts.contains_key(*c))
        .collect();
    incidents
        .chain(groups.into_iter().map(Key::Group))
        .chain(clusters.into_iter().map(|c| Key::Count(c.to_owned())))
        .collect()
}

fn split(keys: Keys) -> Vec<Key> {
    let incidents = keys.incidents.into_iter().map(Key::Incident);
    let groups = keys.groups.into_iter().map(Key::Group);
    let counts = keys.counts.into_iter().map(Key::Count);
    incidents
        .chain(groups)
        .chain(counts)
        .chain(keys.clusters.into_iter().map(Key::Cluster))
        .collect()
}

fn gather(chunk: &[Key]) -> Keys {
    let mut keys = Keys::default();
    for key in chunk {
        match key {
            Key::Incident(k) => keys.incidents.push(k.clone()),
            Key::Group(k) => keys.groups.push(k.clone()),
            Key::Count(c) => keys.counts.push(c.clone()),
            Key::Cluster(c) => keys.clusters.push(c.clone()),
        }
    }
    keys
}
