//! Act: the remediation steps on each cluster's confirmed instances that the blast-radius guard
//! lets through; what happened to each is written into its finding.

use std::collections::{BTreeSet, HashMap, HashSet};

use tracing::{info, warn};

use super::batched::log_check_error;
use super::evidence::cluster_state;
use super::run::{Adapters, Confirmed};
use crate::alert::{AlertKind, InstanceFinding};
use crate::config::Remediation;
use crate::inventory::{CapacityProviderType, cluster_name, instance_key};
use crate::kinds;
use crate::metrics::{Metric, Tally};
use crate::ports::{Inventory, error_chain};
use crate::remediation::{self, ActionOutcome, ActionTaken, ClusterState, Scope, StepOutcome, Target};

/// What is said of each instance (its container instance ARN), step by step.
type Said = HashMap<String, Vec<ActionTaken>>;

pub async fn remediate(io: &Adapters, config: &Remediation, confirmed: &mut Confirmed<'_>, tally: &mut Tally) {
    if io.steps.is_empty() {
        return;
    }
    let clusters: BTreeSet<&str> = confirmed.keys().map(|(cluster, _)| *cluster).collect();
    for cluster in clusters {
        if !config.scope.covers(cluster) {
            leave_out_of_scope(confirmed, cluster);
            continue;
        }
        let (mine, mut said) = targets(confirmed, cluster, config);
        if !mine.is_empty() {
            act_on_cluster(io, config, cluster, mine, &mut said, tally).await;
        }
        write_down(confirmed, cluster, &said);
    }
}

/// A cluster's remediable instances, each once, and a word for each instance that is not.
fn targets(confirmed: &Confirmed<'_>, cluster: &str, config: &Remediation) -> (Vec<Target>, Said) {
    let mut mine: Vec<Target> = Vec::new();
    let mut left: Vec<&str> = Vec::new();
    for (kind, firing) in confirmed
        .iter()
        .filter(|((c, _), _)| *c == cluster)
        .flat_map(|((_, kind), f)| f.iter().map(move |f| (*kind, f)))
    {
        let arn = &firing.finding.container_instance_arn;
        // A restart is for a disconnected agent; a lost daemon's instance is alerted only.
        let restart_only = config.action.restarts() && kind != AlertKind::AgentDisconnected;
        if restart_only || !remediable(kind, &firing.finding, config) {
            left.push(arn);
        } else if !mine.iter().any(|t| &t.container_instance_arn == arn) {
            mine.push(Target {
                container_instance_arn: arn.clone(),
                ec2_instance_id: firing.finding.ec2_instance_id.clone(),
                // Drained just now: only an instance that runs no task can go at once; the
                // sweep replaces the others once their tasks left or the time is up.
                replace_now: firing.finding.running_tasks_count == 0,
            });
        }
    }
    let mut said = Said::new();
    for arn in left
        .into_iter()
        .filter(|a| !mine.iter().any(|t| t.container_instance_arn == *a))
    {
        let detail = match config.action.restarts() {
            true => "not restarted: only a disconnected agent is",
            false => {
                "not drained: only a disconnected agent or a lost critical daemon is; a non-critical \
                 daemon's instance stays in service on purpose (REMEDIATE_NON_CRITICAL_DAEMONS=true drains \
                 anyway), and ECS repairs its Managed Instances itself"
            }
        };
        said.entry(arn.to_owned())
            .or_default()
            .push(ActionTaken::by_guard(ActionOutcome::Skipped, detail.to_owned()));
    }
    (mine, said)
}

/// Counts the cluster, lets the guard choose, and runs the steps on what it let through.
async fn act_on_cluster(
    io: &Adapters,
    config: &Remediation,
    cluster: &str,
    mine: Vec<Target>,
    said: &mut Said,
    tally: &mut Tally,
) {
    match cluster_state(io.inventory.as_ref(), cluster).await {
        Err(e) => {
            log_check_error(cluster, &e, mine.len());
            for target in &mine {
                let detail = format!("not attempted: the cluster could not be counted ({})", e.operation);
                said.entry(target.container_instance_arn.clone())
                    .or_default()
                    .push(ActionTaken::by_guard(ActionOutcome::NotAttempted, detail));
            }
        }
        Ok(state) if restarts(io) => {
            let Some((mine, counted)) = restarts_known(io, config, cluster, &state, mine, said).await else {
                return;
            };
            let targets = guarded(io, config, cluster, &counted, mine, said, tally).await;
            let (now, wait) = (io.clock.now(), config.restart_wait.as_secs());
            // A dry run sends nothing, so it claims nothing: a claim would read as a restart sent.
            let ledger = io.ledger.as_deref().filter(|_| !config.dry_run);
            let targets = super::restart::claim(ledger, cluster, targets, now, wait, said).await;
            let refused = run_steps(io, config, cluster, targets, said, tally).await;
            super::restart::release_unsent(ledger, cluster, &refused, now, wait).await;
        }
        Ok(state) => {
            let targets = guarded(io, config, cluster, &state, mine, said, tally).await;
            run_steps(io, config, cluster, targets, said, tally).await;
        }
    }
}

/// Whether the first step restarts the agent (restart-agent, restart-then-drain).
fn restarts(io: &Adapters) -> bool {
    io.steps
        .first()
        .is_some_and(|s| s.name() == crate::remediation::RESTART_STEP)
}

/// The targets not restarted yet, and the cluster as the guard counts it with the restarts in
/// flight; none when the ledger cannot say (fail closed: a restart in flight would not hold its
/// slot, and a restart sent already could be sent again).
async fn restarts_known(
    io: &Adapters,
    config: &Remediation,
    cluster: &str,
    state: &ClusterState,
    mine: Vec<Target>,
    said: &mut Said,
) -> Option<(Vec<Target>, ClusterState)> {
    let (now, wait) = (io.clock.now(), config.restart_wait.as_secs());
    match super::restart::read(io.ledger.as_deref(), cluster, state, &mine, now, wait).await {
        Ok(mut restarts) => {
            let fresh = super::restart::not_yet(&mut restarts, mine, said);
            Some((fresh, restarts.counted(state)))
        }
        Err(e) => {
            warn!(cluster = cluster_name(cluster), error = %error_chain(&e), "restarts unknown: none sent");
            for target in mine {
                let detail = format!(
                    "not attempted: the restarts in flight could not be read ({})",
                    e.operation
                );
                said.entry(target.container_instance_arn)
                    .or_default()
                    .push(ActionTaken::by_guard(ActionOutcome::NotAttempted, detail));
            }
            None
        }
    }
}

/// The targets the guard lets through: ACTIVE, not an ECS Managed Instance, and within the
/// share of the cluster that may drain at once; the others are told why not.
async fn guarded(
    io: &Adapters,
    config: &Remediation,
    cluster: &str,
    state: &ClusterState,
    mine: Vec<Target>,
    said: &mut Said,
    tally: &mut Tally,
) -> Vec<Target> {
    // ECS drains only ACTIVE instances: one still REGISTERING (its critical daemon
    // never started) or already DRAINING is reported, not acted on.
    let (mine, not_active): (Vec<Target>, Vec<Target>) = mine
        .into_iter()
        .partition(|t| state.active.contains(instance_key(&t.container_instance_arn)));
    let mine = leave_managed_instances(io.inventory.as_ref(), state, mine, said).await;
    for target in not_active {
        let detail = "not drained: the instance is not ACTIVE, and ECS drains only ACTIVE instances".to_owned();
        said.entry(target.container_instance_arn)
            .or_default()
            .push(ActionTaken::by_guard(ActionOutcome::Skipped, detail));
    }
    let max_percent = config.max_percent;
    let arns: Vec<String> = mine.iter().map(|t| t.container_instance_arn.clone()).collect();
    let (act, held) = remediation::guard(state, max_percent, &arns);
    let limit = remediation::drain_limit(state.total, max_percent);
    for arn in &held {
        tally.count(Some(cluster_name(cluster)), Metric::RemediationHeldBack);
        let busy = match config.action.restarts() {
            true => "DRAINING or being restarted",
            false => "DRAINING",
        };
        let text = format!(
            "held back by the guard: {} of {} instances {busy}, at most {limit} ({max_percent}%)",
            state.draining, state.total
        );
        said.entry(arn.clone())
            .or_default()
            .push(ActionTaken::by_guard(ActionOutcome::HeldBack, text));
    }
    mine.into_iter()
        .filter(|t| act.contains(&t.container_instance_arn))
        .collect()
}

/// Each step in turn on the targets the one before did (or would do) its part for. Returns the
/// targets the first step surely did nothing to (refused, or nothing to do): a restart's claim
/// on them may be given back.
async fn run_steps(
    io: &Adapters,
    config: &Remediation,
    cluster: &str,
    mut targets: Vec<Target>,
    said: &mut Said,
    tally: &mut Tally,
) -> Vec<String> {
    let mut untouched = Vec::new();
    let name = cluster_name(cluster);
    // restart-agent, restart-then-drain: the restart alone, once per incident; the sweep drains
    // what it did not bring back.
    let steps = match restarts(io) {
        true => &io.steps[..1],
        false => &io.steps[..],
    };
    for (n, step) in steps.iter().enumerate() {
        if targets.is_empty() {
            break;
        }
        let outcomes = step.apply(cluster, &targets, config.dry_run).await;
        let mut next = Vec::new();
        for (target, outcome) in targets.into_iter().zip(outcomes) {
            info!(cluster = name, instance = %target.container_instance_arn, step = step.name(), ?outcome, "remediation");
            if n == 0 && matches!(outcome, StepOutcome::Done(_)) {
                tally.count(Some(name), Metric::RemediationStarted);
            }
            if n == 0 && matches!(outcome, StepOutcome::Refused(_) | StepOutcome::Skipped(_)) {
                untouched.push(target.container_instance_arn.clone());
            }
            let mut action = ActionTaken::of(step.name(), &outcome);
            // A restart is timed: the sweep checks the agent RESTART_WAIT_MINUTES after it.
            if step.name() == crate::remediation::RESTART_STEP && matches!(outcome, StepOutcome::Done(_)) {
                action.at = Some(io.clock.now());
            }
            said.entry(target.container_instance_arn.clone())
                .or_default()
                .push(action);
            if matches!(
                outcome,
                StepOutcome::Done(_) | StepOutcome::AlreadyDone(_) | StepOutcome::WouldDo(_)
            ) {
                next.push(target);
            }
        }
        targets = next;
    }
    untouched
}

/// The targets that are surely no ECS Managed Instance; the others are told why not. ECS repairs
/// its Managed Instances itself, so one is never drained nor restarted; one whose capacity
/// provider could not be read may be one, and is left alone too (fail closed: a drain would
/// start its repair early, a restart would act where ECS does).
async fn leave_managed_instances(
    inventory: &dyn Inventory,
    state: &ClusterState,
    mine: Vec<Target>,
    said: &mut Said,
) -> Vec<Target> {
    let capacity = capacity(inventory, state, &mine).await;
    let mut kept = Vec::new();
    for target in mine {
        let key = instance_key(&target.container_instance_arn);
        let action = match (capacity.managed.contains(key), capacity.unknown.get(key)) {
            (true, _) => ActionTaken::by_guard(
                ActionOutcome::Skipped,
                "not drained: an ECS Managed Instance, which ECS drains and replaces itself (auto repair); \
                 the sweep alerts if the repair stalls"
                    .to_owned(),
            ),
            (false, Some(why)) => ActionTaken::by_guard(
                ActionOutcome::NotAttempted,
                format!(
                    "not attempted: it may be an ECS Managed Instance, which ECS repairs itself ({why}); \
                     nothing is done to an instance whose capacity is unknown"
                ),
            ),
            (false, None) => {
                kept.push(target);
                continue;
            }
        };
        said.entry(target.container_instance_arn).or_default().push(action);
    }
    kept
}

/// What the targets' capacity providers are, as far as it is known (by instance key).
#[derive(Default)]
struct Capacity {
    /// ECS Managed Instances.
    managed: HashSet<String>,
    /// Instances whose provider's type is unknown, and why.
    unknown: HashMap<String, String>,
}

/// One `DescribeCapacityProviders` for the providers the targets name. A provider it does not
/// answer for (failed, or not found) leaves its instances unknown, not taken for EC2.
async fn capacity(inventory: &dyn Inventory, state: &ClusterState, targets: &[Target]) -> Capacity {
    let named: Vec<(&str, &String)> = targets
        .iter()
        .map(|t| instance_key(&t.container_instance_arn))
        .filter_map(|key| Some((key, state.capacity_providers.get(key)?)))
        .collect();
    let mut capacity = Capacity::default();
    if named.is_empty() {
        return capacity;
    }
    let names: BTreeSet<&String> = named.iter().map(|(_, name)| *name).collect();
    let names: Vec<String> = names.into_iter().cloned().collect();
    let kinds = inventory.describe_capacity_providers(&names).await;
    if let Err(e) = &kinds {
        warn!(error = %error_chain(e), "capacity providers unknown: their instances are not remediated");
    }
    for (key, name) in named {
        match kinds.as_ref().map(|kinds| kinds.get(name)) {
            Ok(Some(CapacityProviderType::ManagedInstances)) => _ = capacity.managed.insert(key.to_owned()),
            Ok(Some(_)) => {}
            Ok(None) => {
                let why = format!("capacity provider {name} not found by ecs:DescribeCapacityProviders");
                capacity.unknown.insert(key.to_owned(), why);
            }
            Err(e) => {
                let why = format!("capacity provider {name} unknown: {} failed", e.operation);
                capacity.unknown.insert(key.to_owned(), why);
            }
        }
    }
    capacity
}

/// A cluster outside `REMEDIATION_CLUSTER_NAMES`: nothing is read or changed there, and each
/// remediable finding says why (what IAM would refuse, the code does not ask for).
fn leave_out_of_scope(confirmed: &mut Confirmed<'_>, cluster: &str) {
    info!(
        cluster = cluster_name(cluster),
        "outside the remediation scope: not drained"
    );
    let said: Said = confirmed
        .iter()
        .filter(|((c, _), _)| *c == cluster)
        .flat_map(|((_, kind), f)| f.iter().map(move |f| (*kind, f)))
        .filter(|(kind, _)| kinds::of(*kind).drains())
        .map(|(_, f)| {
            let action = ActionTaken::by_guard(ActionOutcome::Skipped, Scope::outside(cluster, "drained"));
            (f.finding.container_instance_arn.clone(), vec![action])
        })
        .collect();
    write_down(confirmed, cluster, &said);
}

/// Writes what was done to each instance into its findings.
fn write_down(confirmed: &mut Confirmed<'_>, cluster: &str, said: &Said) {
    for firing in confirmed
        .iter_mut()
        .filter(|((c, _), _)| *c == cluster)
        .flat_map(|(_, f)| f)
    {
        if let Some(actions) = said.get(&firing.finding.container_instance_arn) {
            let texts: Vec<String> = actions.iter().map(ActionTaken::text).collect();
            firing.finding.remediation = Some(texts.join("; "));
            firing.finding.remediation_actions = actions.clone();
        }
    }
}

/// Whether a confirmed finding may take its instance out of service, as its kind says (an
/// impaired instance or a failed deployment is alerted only: ECS repairs its Managed Instances
/// itself, and a deployment is no instance).
fn remediable(kind: AlertKind, finding: &InstanceFinding, config: &Remediation) -> bool {
    kinds::of(kind).remediable(finding, config)
}
