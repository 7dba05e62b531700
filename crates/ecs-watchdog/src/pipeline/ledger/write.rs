//! Writing a plan: its records packed into batches of at most 100 actions, one
//! `TransactWriteItems` each, all or nothing, sent one after the other. A group's record goes
//! into every batch that holds incidents of it, its versions chained: a hold and its group write
//! are one step, and a batch after one that failed fails on the group's condition instead of
//! paging on its own. Each batch moves the open-incident counts by what its own incidents open
//! and close.

use std::collections::{BTreeSet, HashMap};

use tracing::info;

use super::super::plan::{Move, Plan};
use super::read::Known;
use crate::incident::{Group, GroupKey, IncidentKey};
use crate::ports::{Answer, Batch, Ledger, Written};

/// Actions a `TransactWriteItems` takes at most.
/// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
pub const TRANSACTION_LIMIT: usize = 100;

/// A batch and the moves its incidents carry out, in order.
#[derive(Debug, Default)]
pub struct Packed {
    pub batch: Batch,
    pub moves: Vec<Move>,
    /// Clusters whose count the batch moves (one action each).
    counted: BTreeSet<String>,
}

impl Packed {
    fn actions(&self) -> usize {
        self.batch.groups.len() + self.batch.incidents.len() + self.counted.len()
    }
}

/// What a move adds to its cluster's count of open incidents.
pub fn opens(m: &Move) -> i64 {
    i64::from(m.opens) - i64::from(m.closes)
}

/// The plan's moves in batches of at most [`TRANSACTION_LIMIT`] actions.
pub fn pack(plan: Plan) -> Vec<Packed> {
    let mut next: HashMap<GroupKey, Group> = plan.groups.into_iter().map(|g| (g.key.clone(), g)).collect();
    let mut out = Vec::new();
    let mut current = Packed::default();
    for m in plan.moves {
        let cluster = &m.incident.key.cluster_arn;
        let needs = |p: &Packed| {
            let group = m
                .group
                .as_ref()
                .is_some_and(|g| next.contains_key(g) && !p.batch.groups.iter().any(|x| &x.key == g));
            let counted = opens(&m) != 0 && !p.counted.contains(cluster);
            1 + usize::from(group) + usize::from(counted)
        };
        if current.actions() + needs(&current) > TRANSACTION_LIMIT {
            out.push(std::mem::take(&mut current));
        }
        if let Some(group) = m.group.as_ref().and_then(|g| next.get_mut(g))
            && !current.batch.groups.iter().any(|x| x.key == group.key)
        {
            current.batch.groups.push(group.clone());
            group.version += 1;
        }
        if opens(&m) != 0 {
            current.counted.insert(cluster.clone());
        }
        current.batch.incidents.push(m.incident.clone());
        current.batch.opens.push(opens(&m));
        current.moves.push(m);
    }
    if !current.moves.is_empty() {
        out.push(current);
    }
    out
}

/// What carrying out a plan came to.
#[derive(Debug, Default)]
pub struct Outcome {
    pub written: Vec<Move>,
    /// Not written: planned again with what was found stored.
    pub again: Vec<IncidentKey>,
    /// Not written, the ledger failing: their messages go back to the queue.
    pub failed: Vec<IncidentKey>,
}

/// Writes the plan's batches one after the other, learning what moved.
pub async fn carry_out(ledger: &dyn Ledger, plan: Plan, known: &mut Known) -> Outcome {
    let mut out = Outcome::default();
    for packed in pack(plan) {
        match ledger.write(&packed.batch).await {
            Ok(written) => learn(known, &packed.batch, written, &mut out, packed.moves),
            Err(e) => {
                super::log_ledger_error(&e);
                out.failed.extend(packed.moves.into_iter().map(|m| m.incident.key));
            }
        }
    }
    out
}

fn learn(known: &mut Known, batch: &Batch, written: Written, out: &mut Outcome, moves: Vec<Move>) {
    let mut moved_groups = Vec::new();
    for (group, answer) in batch.groups.iter().zip(&written.groups) {
        match answer {
            Answer::Written => {
                if let Some(read) = known.groups.get_mut(&group.key) {
                    read.version = group.version;
                }
                known.wrote.insert(group.key.clone(), group.clone());
            }
            Answer::Moved => {
                info!(group = %group.key.id(), "another run moved the group: its incidents are planned again");
                moved_groups.push(group.key.clone());
            }
            Answer::Untouched => {}
        }
    }
    let mut moved = Vec::new();
    for (m, answer) in moves.into_iter().zip(&written.incidents) {
        match answer {
            Answer::Written => out.written.push(m),
            Answer::Moved => {
                moved.push(m.incident.key.clone());
                out.again.push(m.incident.key);
            }
            Answer::Untouched => out.again.push(m.incident.key),
        }
    }
    known.found((&moved, &moved_groups), written.found);
}
