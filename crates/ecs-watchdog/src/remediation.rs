//! Remediation: take confirmed broken instances out of service, never more than the
//! blast-radius guard allows. The guard is a pure function of the cluster's own state, so it
//! holds across concurrent invocations and retries; the steps are a trait a team can implement
//! with its own action and register next to the built-in drain and replace.

use std::collections::HashSet;

use async_trait::async_trait;

/// Where remediation may act: the clusters of `REMEDIATION_CLUSTER_NAMES` and, with
/// `REPLACE_ONLY_TAGGED_GROUPS`, only Auto Scaling groups tagged `ecs-watchdog-replace=true`.
/// IAM enforces the same scope (template.yaml, spoke.yaml); the code checks it too, so a role
/// granted more (an older spoke, a hand-made role) still acts only where it was asked to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    /// The cluster names remediation may act on; none: every cluster (`*`).
    pub clusters: Option<std::collections::BTreeSet<String>>,
    pub only_tagged_groups: bool,
}

/// The tag an Auto Scaling group carries when `REPLACE_ONLY_TAGGED_GROUPS` lets it be replaced.
pub const REPLACE_TAG: (&str, &str) = ("ecs-watchdog-replace", "true");

impl Scope {
    /// Whether remediation may act in the cluster (by ARN or name).
    pub fn covers(&self, cluster: &str) -> bool {
        let name = crate::inventory::cluster_name(cluster);
        self.clusters.as_ref().is_none_or(|names| names.contains(name))
    }

    /// Why a target of `cluster` is not `done` (drained, replaced), in the finding's words.
    pub fn outside(cluster: &str, done: &str) -> String {
        format!(
            "not {done}: cluster {} is outside the remediation scope (REMEDIATION_CLUSTER_NAMES)",
            crate::inventory::cluster_name(cluster)
        )
    }
}

/// A confirmed instance a step acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub container_instance_arn: String,
    pub ec2_instance_id: Option<String>,
    /// Whether the instance may be replaced now: its tasks have left (only daemons run there),
    /// or it has been draining for `REPLACE_AFTER_MINUTES`. Draining moves service tasks first.
    pub replace_now: bool,
}

/// What a step did to one instance, in words for the alert and the finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// It acted.
    Done(String),
    /// The instance was already in that state: nothing done twice.
    AlreadyDone(String),
    /// Dry run: what it would have done.
    WouldDo(String),
    /// Nothing for this step to do here.
    Skipped(String),
    Failed(String),
    /// Refused before anything was done (never sent, or a client error such as throttling): a
    /// failure told as one, which the restart's claim may give back. A timeout or a lost answer
    /// is [`StepOutcome::Failed`]: the call may have gone through.
    Refused(String),
}

/// What one step did to one instance, as the finding's `remediationActions` carry it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionTaken {
    /// `drain`, `replace`, a custom step's name, or `guard` when held back before any step.
    pub step: String,
    pub outcome: ActionOutcome,
    pub detail: String,
    /// When it was done (seconds since the epoch), where a later look waits from it: the agent
    /// restart, which the sweep checks `RESTART_WAIT_MINUTES` later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionOutcome {
    Done,
    AlreadyDone,
    WouldDo,
    Skipped,
    Failed,
    HeldBack,
    NotAttempted,
}

impl ActionTaken {
    /// What the guard decided for an instance, before (and instead of) any step.
    pub fn by_guard(outcome: ActionOutcome, detail: String) -> Self {
        Self {
            step: "guard".to_owned(),
            outcome,
            detail,
            at: None,
        }
    }

    /// In words, as the alert's `remediation` line says it.
    pub fn text(&self) -> String {
        match self.outcome {
            ActionOutcome::AlreadyDone => format!("{} (already; nothing done twice)", self.detail),
            ActionOutcome::WouldDo => format!("would {} (dry run)", self.detail),
            ActionOutcome::Failed => format!("failed: {}", self.detail),
            _ => self.detail.clone(),
        }
    }

    pub fn of(step: &str, outcome: &StepOutcome) -> Self {
        let (kind, detail) = match outcome {
            StepOutcome::Done(d) => (ActionOutcome::Done, d),
            StepOutcome::AlreadyDone(d) => (ActionOutcome::AlreadyDone, d),
            StepOutcome::WouldDo(d) => (ActionOutcome::WouldDo, d),
            StepOutcome::Skipped(d) => (ActionOutcome::Skipped, d),
            StepOutcome::Failed(d) | StepOutcome::Refused(d) => (ActionOutcome::Failed, d),
        };
        Self {
            step: step.to_owned(),
            outcome: kind,
            detail: detail.clone(),
            at: None,
        }
    }
}

/// The names of the built-in steps, as findings and the ledger record them.
pub const DRAIN_STEP: &str = "drain";
/// Restarts the agent through SSM Run Command.
pub const RESTART_STEP: &str = "restart";
/// Replaces an instance in its Auto Scaling group.
pub const REPLACE_STEP: &str = "replace";

/// One remediation action. Built in: drain (ECS) and replace (Auto Scaling). `apply` returns one
/// outcome per target, in order, and never fails the batch: a failed action is an outcome.
#[async_trait]
pub trait RemediationStep: Send + Sync {
    fn name(&self) -> &str;
    async fn apply(&self, cluster_arn: &str, targets: &[Target], dry_run: bool) -> Vec<StepOutcome>;
}

/// What the guard reads of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterState {
    /// ACTIVE and DRAINING container instances.
    pub total: usize,
    pub draining: usize,
    /// ACTIVE container instances whose agent is disconnected: the candidates of every
    /// invocation, not only this one's.
    pub disconnected: Vec<String>,
    /// Keys of the ACTIVE container instances: the only ones ECS drains.
    pub active: HashSet<String>,
    /// The capacity provider of each instance (by key) that has one.
    pub capacity_providers: std::collections::HashMap<String, String>,
}

/// The most instances of the cluster that may be DRAINING at once: `max_percent` of them, and
/// at least one.
pub fn drain_limit(total: usize, max_percent: u8) -> usize {
    (total * usize::from(max_percent) / 100).max(1)
}

/// Splits this invocation's candidates into those to act on and those held back.
///
/// Every invocation ranks the same candidates the same way (ARN order over the cluster's
/// disconnected instances and its own) and takes only the free slots' worth from the top. Two
/// invocations that read the cluster at once pick disjoint parts of the same top; one that
/// reads after another drained finds fewer free slots and that many fewer candidates. Either
/// way no more than the limit are DRAINING. Candidates that are not this invocation's and never
/// get acted on only leave slots unused: the guard errs on the side of draining less.
pub fn guard(state: &ClusterState, max_percent: u8, mine: &[String]) -> (Vec<String>, Vec<String>) {
    let free = drain_limit(state.total, max_percent).saturating_sub(state.draining);
    let mut ranked: Vec<&String> = state.disconnected.iter().chain(mine).collect();
    ranked.sort();
    ranked.dedup();
    let allowed: HashSet<&String> = ranked.into_iter().take(free).collect();
    mine.iter().cloned().partition(|arn| allowed.contains(arn))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arns(range: std::ops::Range<usize>) -> Vec<String> {
        range
            .map(|n| format!("arn:aws:ecs:eu-west-1:1:container-instance/prod/{n:03}"))
            .collect()
    }

    #[test]
    fn when_a_scope_names_clusters_then_it_covers_only_those() {
        let named = Scope {
            clusters: Some(["payments".to_owned()].into()),
            only_tagged_groups: false,
        };
        assert!(named.covers("arn:aws:ecs:eu-west-1:1:cluster/payments"));
        assert!(named.covers("payments"));
        assert!(!named.covers("arn:aws:ecs:eu-west-1:1:cluster/prod"));
        assert!(!named.covers("arn:aws:ecs:eu-west-1:1:cluster/payments-old"));
        assert!(
            Scope::default().covers("arn:aws:ecs:eu-west-1:1:cluster/prod"),
            "none named: every cluster"
        );
    }

    #[test]
    fn when_the_limit_is_computed_then_it_is_a_share_of_the_cluster_and_at_least_one() {
        assert_eq!(drain_limit(100, 10), 10);
        assert_eq!(drain_limit(5, 10), 1);
        assert_eq!(drain_limit(0, 10), 1);
        assert_eq!(drain_limit(250, 100), 250);
    }

    #[test]
    fn when_candidates_exceed_the_free_slots_then_the_rest_is_held_back() {
        let state = ClusterState {
            total: 100,
            draining: 3,
            disconnected: arns(0..40),
            active: HashSet::new(),
            capacity_providers: Default::default(),
        };
        let (act, held) = guard(&state, 10, &arns(0..40));
        assert_eq!((act.len(), held.len()), (7, 33));
        let full = ClusterState {
            total: 100,
            draining: 10,
            disconnected: arns(0..40),
            active: HashSet::new(),
            capacity_providers: Default::default(),
        };
        assert_eq!(guard(&full, 10, &arns(0..40)).0.len(), 0, "no slot free");
    }

    #[test]
    fn when_two_invocations_split_a_batch_then_together_they_stay_within_the_limit() {
        let mine_a: Vec<String> = arns(0..40).into_iter().step_by(2).collect();
        let mine_b: Vec<String> = arns(0..40).into_iter().skip(1).step_by(2).collect();
        // Both read the cluster at once.
        let state = ClusterState {
            total: 100,
            draining: 0,
            disconnected: arns(0..40),
            active: HashSet::new(),
            capacity_providers: Default::default(),
        };
        let (a, _) = guard(&state, 10, &mine_a);
        let (b, _) = guard(&state, 10, &mine_b);
        assert_eq!(a.len() + b.len(), 10);
        assert!(a.iter().all(|arn| !b.contains(arn)));
        // B reads after A drained its share.
        let after_a = ClusterState {
            total: 100,
            draining: a.len(),
            disconnected: arns(0..40).into_iter().filter(|arn| !a.contains(arn)).collect(),
            active: HashSet::new(),
            capacity_providers: Default::default(),
        };
        let (b_later, held) = guard(&after_a, 10, &mine_b);
        assert_eq!(a.len() + b_later.len(), 10);
        assert_eq!(held.len(), 20 - b_later.len());
    }
}
