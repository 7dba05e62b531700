//! What [`Ledger::read`] and [`Ledger::write`] do for a ledger that cannot read or write
//! several kinds of record at once: the calls the executor made before transactions, one
//! after the other (the simulation's ledger, which may crash between any two of them).

use std::collections::{BTreeMap, HashSet};

use super::{Answer, AwsError, Batch, Keys, Ledger, Stored, Written};
use crate::incident::{GroupKey, IncidentKey};

/// The incidents, then the groups; no counts, no cluster records.
pub async fn read<L: Ledger + ?Sized>(ledger: &L, keys: &Keys) -> Result<Stored, AwsError> {
    let mut stored = Stored::default();
    if !keys.incidents.is_empty() {
        stored.incidents = ledger.get(&keys.incidents).await?;
    }
    if !keys.groups.is_empty() {
        stored.groups = ledger.groups(&keys.groups).await?;
    }
    Ok(stored)
}

/// The groups first; then the incidents of the groups written (an incident whose group moved
/// was planned on what is no longer stored: it stays untouched); then the counts of what was
/// written; then what is stored in place of what moved.
pub async fn write<L: Ledger + ?Sized>(ledger: &L, batch: &Batch) -> Result<Written, AwsError> {
    let mut written = Written::untouched(batch);
    let mut lost = HashSet::new();
    for (group, answer) in batch.groups.iter().zip(&mut written.groups) {
        *answer = match ledger.put_group(group).await? {
            true => Answer::Written,
            false => {
                lost.insert(group.key.clone());
                Answer::Moved
            }
        };
    }
    let free: Vec<usize> = (0..batch.incidents.len())
        .filter(|i| !lost.contains(&group_of(&batch.incidents[*i].key)))
        .collect();
    let records: Vec<_> = free.iter().map(|i| batch.incidents[*i].clone()).collect();
    if !records.is_empty() {
        for (i, ok) in free.iter().zip(ledger.put(&records).await?) {
            written.incidents[*i] = if ok { Answer::Written } else { Answer::Moved };
        }
    }
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for ((incident, answer), opens) in batch.incidents.iter().zip(&written.incidents).zip(&batch.opens) {
        if *answer == Answer::Written {
            *counts.entry(&incident.key.cluster_arn).or_default() += opens;
        }
    }
    for (cluster, delta) in counts.into_iter().filter(|(_, d)| *d != 0) {
        // A count is best effort (the gauge): what was written stands.
        let _ = ledger.count_open(cluster, delta).await;
    }
    found(ledger, batch, &mut written).await;
    Ok(written)
}

/// Reads what is stored in place of what moved; when that fails they are answered untouched
/// (looked at again), never as moved with nothing found (which says none is stored).
async fn found<L: Ledger + ?Sized>(ledger: &L, batch: &Batch, written: &mut Written) {
    let moved = |answers: &[Answer], i: usize| answers[i] == Answer::Moved;
    let keys = Keys {
        incidents: (0..batch.incidents.len())
            .filter(|i| moved(&written.incidents, *i))
            .map(|i| batch.incidents[i].key.clone())
            .collect(),
        groups: (0..batch.groups.len())
            .filter(|i| moved(&written.groups, *i))
            .map(|i| batch.groups[i].key.clone())
            .collect(),
        ..Keys::default()
    };
    if keys.is_empty() {
        return;
    }
    match read(ledger, &keys).await {
        Ok(stored) => written.found = stored,
        Err(_) => {
            for answer in written.incidents.iter_mut().chain(written.groups.iter_mut()) {
                if *answer == Answer::Moved {
                    *answer = Answer::Untouched;
                }
            }
        }
    }
}

fn group_of(key: &IncidentKey) -> GroupKey {
    GroupKey::new(&key.cluster_arn, key.kind)
}
