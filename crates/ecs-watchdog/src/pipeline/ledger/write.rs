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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertKind, InstanceFinding};
    use crate::incident::{Incident, State};

    const A: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/a";
    const B: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/b";

    fn held(cluster: &str, n: usize) -> Move {
        let key = IncidentKey::new(cluster, AlertKind::AgentDisconnected, &format!("{cluster}/{n}"), None);
        Move {
            incident: Incident::new(key, State::Due, InstanceFinding::default(), 0),
            group: Some(GroupKey::new(cluster, AlertKind::AgentDisconnected)),
            sends: None,
            opens: true,
            closes: false,
            silenced: false,
        }
    }

    fn group(cluster: &str, version: u64) -> Group {
        Group {
            version,
            ..Group::none(GroupKey::new(cluster, AlertKind::AgentDisconnected))
        }
    }

    #[test]
    fn when_300_incidents_of_one_group_are_packed_then_each_batch_carries_the_group_and_the_count() {
        let plan = Plan {
            groups: vec![group(A, 4)],
            moves: (0..300).map(|n| held(A, n)).collect(),
            ..Plan::default()
        };
        let packed = pack(plan);
        let sizes: Vec<usize> = packed.iter().map(Packed::actions).collect();
        assert_eq!(sizes, vec![100, 100, 100, 8]);
        let versions: Vec<u64> = packed.iter().map(|p| p.batch.groups[0].version).collect();
        assert_eq!(versions, vec![4, 5, 6, 7], "each batch's group write follows the last");
        for p in &packed {
            assert_eq!(p.batch.incidents.len(), p.moves.len());
            assert!(p.batch.opens.iter().all(|o| *o == 1));
        }
        assert_eq!(packed.iter().map(|p| p.moves.len()).sum::<usize>(), 300);
    }

    #[test]
    fn when_incidents_of_two_clusters_are_packed_then_a_batch_never_exceeds_100_actions() {
        let moves = (0..150).map(|n| held(if n % 2 == 0 { A } else { B }, n));
        let plan = Plan {
            groups: vec![group(A, 1), group(B, 1)],
            moves: moves.collect(),
            ..Plan::default()
        };
        let packed = pack(plan);
        assert!(packed.iter().all(|p| p.actions() <= TRANSACTION_LIMIT));
        // Two groups and two counts a batch: 96 incidents in the first.
        assert_eq!(packed[0].moves.len(), 96);
        assert_eq!(packed.iter().map(|p| p.moves.len()).sum::<usize>(), 150);
        // A move that changes no count costs no count action.
        let quiet = Move {
            opens: false,
            group: None,
            ..held(A, 0)
        };
        let packed = pack(Plan {
            groups: vec![],
            moves: vec![quiet; 100],
            ..Plan::default()
        });
        assert_eq!(packed.len(), 1);
    }
}
