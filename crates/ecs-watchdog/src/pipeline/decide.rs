//! Decide: work items and evidence in, a verdict (and for confirmed ones the finding) per
//! incident key out. Pure; the counts a batch publishes are derived from the decisions.

use tracing::{info, info_span};

use super::evidence::Ec2Evidence;
use super::intake::Checked;
use super::looks::Looks;
use super::snapshot::Snapshot;
use crate::alert::{AlertKind, InstanceFinding};
use crate::incident::IncidentKey;
use crate::inventory::{InstanceStatus, cluster_name};
use crate::kinds;
use crate::metrics::{Metric, Tally};
use crate::verdict::{Repeat, Suppression, Verdict};

/// The outcome for one work item.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Decided(Verdict, Option<Box<InstanceFinding>>),
    Repeat(Repeat),
    /// A look-up it needed failed: the message goes back to the queue.
    Undecided,
}

/// One work item's decision.
pub struct Decision<'a> {
    pub cluster: &'a str,
    pub checked: &'a Checked,
    pub outcome: Outcome,
}

impl Decision<'_> {
    pub fn kind(&self) -> AlertKind {
        self.checked.key.kind
    }

    /// The incident this work item speaks of.
    pub fn incident(&self) -> IncidentKey {
        self.checked.key.clone()
    }

    /// Whether the look found the problem over: the agent reconnected, the daemon runs again, or
    /// the instance (or its cluster) is gone. A DRAINING instance is not over: it still runs.
    pub fn resolves(&self) -> bool {
        match &self.outcome {
            Outcome::Decided(Verdict::Recovered, _) => true,
            Outcome::Decided(Verdict::Suppressed(s), _) => match s {
                Suppression::ClusterGone
                | Suppression::InstanceGone(_)
                | Suppression::InstanceNotRunning(_)
                | Suppression::HostOffline(_) => true,
                Suppression::Repairing(status) => *status != Some(InstanceStatus::Draining),
                Suppression::Draining | Suppression::Deploying => false,
            },
            _ => false,
        }
    }

    /// Whether the instance is DRAINING now.
    pub fn draining(&self) -> bool {
        matches!(
            &self.outcome,
            Outcome::Decided(
                Verdict::Suppressed(Suppression::Draining | Suppression::Repairing(Some(InstanceStatus::Draining))),
                _
            )
        )
    }
}

/// An outcome per work item of one cluster, in order, from what the look-ups found.
pub fn decide<'a>(checked: &'a [Checked], looks: &Looks<'_>) -> Vec<Decision<'a>> {
    checked
        .iter()
        .map(|checked| {
            // What is logged while deciding names the incident it speaks of.
            let _span = info_span!("decide", incident = %checked.key.id()).entered();
            let outcome = outcome(checked, looks);
            let cluster = checked.key.cluster_arn.as_str();
            let instance = checked.instance();
            info!(cluster = cluster_name(cluster), instance, ?outcome, "decided");
            Decision {
                cluster,
                checked,
                outcome,
            }
        })
        .collect()
}

fn outcome(checked: &Checked, looks: &Looks<'_>) -> Outcome {
    if !checked.kept() {
        return Outcome::Repeat(checked.repeat);
    }
    match kinds::of(checked.key.kind).decide(checked.case(), looks) {
        Some((verdict, finding)) => Outcome::Decided(verdict, finding),
        None => Outcome::Undecided,
    }
}

/// The counts the decisions make: recovered, suppressed, and undecided (check errors).
/// Confirmed failures are counted once their alert is out.
pub fn tally(decisions: &[Decision<'_>], tally: &mut Tally) {
    for decision in decisions {
        let name = Some(cluster_name(decision.cluster));
        match &decision.outcome {
            Outcome::Undecided => tally.count(name, Metric::CheckErrors),
            Outcome::Decided(Verdict::Recovered, _) => tally.count(name, Metric::Recovered),
            Outcome::Decided(Verdict::Suppressed(_), _) => tally.count(name, Metric::Suppressed),
            Outcome::Decided(Verdict::Confirmed | Verdict::Superseded { .. }, _) | Outcome::Repeat(_) => {}
        }
    }
}

/// A suppression that the sweep alerts once it lasted `STUCK_AFTER_MINUTES`, with its finding:
/// a DRAINING instance whose agent is disconnected (ECS cannot stop its tasks, so the drain
/// cannot finish) and an instance ECS drains to replace a lost daemon that stays DRAINING
/// without it. Only while the problem itself is still there: a reconnected agent or a running
/// daemon on a DRAINING instance is an ordinary drain.
pub fn stale(snapshot: &Snapshot, decision: &Decision<'_>) -> Option<InstanceFinding> {
    let Outcome::Decided(Verdict::Suppressed(suppression), _) = &decision.outcome else {
        return None;
    };
    let looks = Looks {
        snapshot,
        hosts: &Ec2Evidence::default(),
    };
    let checked = decision.checked;
    kinds::of(checked.key.kind).stuck(checked.case(), suppression, &looks)
}
