//! What a run reads before it plans, in one `BatchGetItem` per 100 keys: the incidents it
//! looked at, except those an event confirmed (news, mostly: they are put without reading, a
//! conflict brings back what is stored), the groups of what it confirmed, and the counts of
//! open incidents of its clusters (the gauge). A quiet run reads nothing.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::super::evidence::chunked;
use super::super::plan::{Look, Settings};
use super::Seen;
use crate::incident::{Group, GroupKey, Incident, IncidentKey};
use crate::ports::{Keys, Ledger, Stored};

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
    }
}

/// Whether an event confirmed it: an event is mostly a first sight, so the incident is put
/// without reading it first. The sweep's looks (no event time) are of what it mostly knows
/// already, every few minutes, and a failed conditional write costs write capacity: read.
pub fn news(x: &Seen<'_>) -> bool {
    matches!(x.look, Look::Confirmed { .. }) && x.messages.iter().any(|m| m.event_time().is_some())
}

#[derive(Debug, Clone)]
enum Key {
    Incident(IncidentKey),
    Group(GroupKey),
    Count(String),
}

/// Reads what the run plans with. Returns it with the incidents that cannot be planned: those
/// unread, and those confirmed or owed whose group is unread (one `BatchGetItem` failed for
/// both: their messages go back to the queue, as the incidents' own).
pub async fn first(ledger: &dyn Ledger, seen: &[Seen<'_>], s: &Settings) -> (Known, HashSet<IncidentKey>) {
    let keys = keys(seen, s);
    let mut known = Known::default();
    let mut unknown = HashSet::new();
    let mut unread = HashSet::new();
    let read = chunked(&keys, |chunk| async move { ledger.read(&gather(chunk)).await }).await;
    for (chunk, answer) in read {
        let asked = gather(chunk);
        match answer {
            Ok(stored) => {
                known
                    .groups
                    .extend(asked.groups.into_iter().map(|k| (k.clone(), Group::none(k))));
                known.take(stored);
            }
            Err(e) => {
                super::log_ledger_error(&e);
                unknown.extend(asked.incidents);
                unread.extend(asked.groups);
            }
        }
    }
    let grouped = seen.iter().filter(|x| needs_group(x, s));
    unknown.extend(grouped.filter(|x| unread.contains(&group_of(x))).map(|x| x.key.clone()));
    (known, unknown)
}

fn needs_group(x: &Seen<'_>, s: &Settings) -> bool {
    s.group_interval > 0 && matches!(x.look, Look::Confirmed { .. } | Look::Owed)
}

fn group_of(x: &Seen<'_>) -> GroupKey {
    GroupKey::new(&x.key.cluster_arn, x.key.kind)
}

/// The keys to read: incidents not news; the groups of what is confirmed or owed (grouping on);
/// the clusters looked at, for their counts.
fn keys(seen: &[Seen<'_>], s: &Settings) -> Vec<Key> {
    let incidents = seen.iter().filter(|x| !news(x)).map(|x| Key::Incident(x.key.clone()));
    let groups: BTreeSet<GroupKey> = seen.iter().filter(|x| needs_group(x, s)).map(group_of).collect();
    let clusters: BTreeSet<&str> = seen.iter().map(|x| x.key.cluster_arn.as_str()).collect();
    incidents
        .chain(groups.into_iter().map(Key::Group))
        .chain(clusters.into_iter().map(|c| Key::Count(c.to_owned())))
        .collect()
}

fn gather(chunk: &[Key]) -> Keys {
    let mut keys = Keys::default();
    for key in chunk {
        match key {
            Key::Incident(k) => keys.incidents.push(k.clone()),
            Key::Group(k) => keys.groups.push(k.clone()),
            Key::Count(c) => keys.counts.push(c.clone()),
        }
    }
    keys
}
