//! Finishing replacements (drain-and-replace): the monitor drains a confirmed instance at once
//! but marks it Unhealthy in its Auto Scaling group only when it runs no task; draining moves
//! service tasks first. The sweep finishes the rest: an open incident whose instance it drained
//! and that is still DRAINING is replaced once only daemons run there, or once it has been
//! draining for `REPLACE_AFTER_MINUTES` (a disconnected agent cannot move its tasks at all).

use std::collections::HashMap;

use tracing::{error, info};

use super::batched::chunked;
use super::run::Adapters;
use super::survey::Survey;
use crate::alert::InstanceFinding;
use crate::incident::{Incident, IncidentKey};
use crate::inventory::{ContainerInstance, InstanceStatus, InstanceView, instance_key};
use crate::ports::{Ledger, error_chain};
use crate::remediation::{ActionOutcome, ActionTaken, DRAIN_STEP, RESTART_STEP, RemediationStep, StepOutcome, Target};

pub use crate::remediation::REPLACE_STEP;

/// The sweep's remediation steps: it starts none; with drain-and-replace it keeps the replace
/// step, to finish replacements the monitor started, except in a dry run, where nothing is
/// replaced (the monitor only said what it would drain).
/// With restart-then-drain it keeps the drain step, for the restarts that did not help.
pub fn keep_for_sweep(steps: &mut Vec<Box<dyn RemediationStep>>, dry_run: bool) {
    let restarts = steps.iter().any(|step| step.name() == RESTART_STEP);
    steps.retain(|step| !dry_run && (step.name() == REPLACE_STEP || (restarts && step.name() == DRAIN_STEP)));
}

/// Replaces what is due; returns the instances it acted on, as `cluster/instance: outcome`.
pub async fn finish(
    io: &Adapters,
    ledger: &dyn Ledger,
    surveys: &[Survey],
    now: u64,
    replace_after: u64,
) -> Vec<String> {
    let Some(step) = io.steps.iter().find(|s| s.name() == REPLACE_STEP) else {
        return Vec::new();
    };
    let candidates = draining(surveys);
    if candidates.is_empty() {
        return Vec::new();
    }
    let stored = stored(ledger, &candidates).await;
    let mut done: HashMap<&str, StepOutcome> = HashMap::new();
    let mut acted = Vec::new();
    for (survey, key, instance) in candidates {
        let Some(incident) = stored.get(key).filter(|i| i.is_open()) else {
            continue;
        };
        if !took(&incident.finding, "drain") || took(&incident.finding, REPLACE_STEP) {
            continue;
        }
        let tasks_left = instance.running_tasks_count as usize <= survey.daemon_tasks_on(&key.instance);
        let due = now.saturating_sub(incident.opened_at) >= replace_after;
        if !(tasks_left || due) {
            continue;
        }
        let outcome = replace_once(step.as_ref(), survey, instance, &mut done).await;
        let action = ActionTaken::of(step.name(), &outcome);
        // The same answer as last time (a skip that still holds): told and written once.
        if incident.finding.remediation_actions.contains(&action) {
            continue;
        }
        info!(incident = %key.id(), ?outcome, tasks_left, due, "replacement finished by the sweep");
        acted.push(format!("{}/{}: {outcome:?}", survey.cluster, key.instance));
        write_down(ledger, incident, action).await;
    }
    acted
}

/// The open incidents (of the kinds the monitor drains) whose instance is still DRAINING.
fn draining(surveys: &[Survey]) -> Vec<(&Survey, &IncidentKey, &ContainerInstance)> {
    surveys
        .iter()
        .flat_map(|survey| survey.open.iter().flatten().map(move |key| (survey, key)))
        .filter(|(_, key)| crate::kinds::of(key.kind).drains())
        .filter_map(|(survey, key)| match survey.instances.lookup(&key.instance) {
            InstanceView::Found(instance) if instance.status == InstanceStatus::Draining => {
                Some((survey, key, instance))
            }
            _ => None,
        })
        .collect()
}

/// The candidates' stored incidents; a chunk that cannot be read waits for the next sweep.
async fn stored(
    ledger: &dyn Ledger,
    candidates: &[(&Survey, &IncidentKey, &ContainerInstance)],
) -> HashMap<IncidentKey, Incident> {
    let keys: Vec<&IncidentKey> = candidates.iter().map(|(_, key, _)| *key).collect();
    stored_keys(ledger, &keys).await
}

/// The stored incidents of `keys`; a chunk that cannot be read waits for the next sweep.
pub(super) async fn stored_keys(ledger: &dyn Ledger, keys: &[&IncidentKey]) -> HashMap<IncidentKey, Incident> {
    let keys: Vec<IncidentKey> = keys.iter().map(|key| (*key).clone()).collect();
    let mut stored: HashMap<IncidentKey, Incident> = HashMap::new();
    for (_, answer) in chunked(&keys, |chunk| ledger.get(chunk)).await {
        match answer {
            Ok(found) => stored.extend(found.into_iter().map(|i| (i.key.clone(), i))),
            Err(e) => error!(error = %error_chain(&e), "replacements wait: the ledger could not be read"),
        }
    }
    stored
}

/// Replaces the instance, once a sweep however many of its incidents ask.
async fn replace_once<'a>(
    step: &dyn RemediationStep,
    survey: &Survey,
    instance: &'a ContainerInstance,
    done: &mut HashMap<&'a str, StepOutcome>,
) -> StepOutcome {
    if let Some(outcome) = done.get(instance_key(&instance.arn)) {
        return outcome.clone();
    }
    let target = Target {
        container_instance_arn: instance.arn.clone(),
        ec2_instance_id: instance.ec2_instance_id.clone(),
        replace_now: true,
    };
    let outcome = step
        .apply(&survey.cluster, &[target], false)
        .await
        .pop()
        .unwrap_or(StepOutcome::Failed("no outcome".into()));
    done.insert(instance_key(&instance.arn), outcome.clone());
    outcome
}

/// Writes the replacement's action on its incident.
async fn write_down(ledger: &dyn Ledger, incident: &Incident, action: ActionTaken) {
    let finding = with_action(&incident.finding, action);
    let updated = Incident {
        version: incident.version + 1,
        finding,
        ..incident.clone()
    };
    if let Err(e) = ledger.put(&[updated]).await {
        error!(incident = %incident.key.id(), error = %error_chain(&e), "replacement not written on the incident");
    }
}

/// Whether the finding says `step` acted (or found it done) on the instance. A skip is asked
/// again every sweep: the monitor's "replaced after 15 min" is a skip that waits, and a group
/// tagged or a scope widened later should take effect; asking costs one free read.
fn took(finding: &InstanceFinding, step: &str) -> bool {
    finding
        .remediation_actions
        .iter()
        .any(|a| a.step == step && matches!(a.outcome, ActionOutcome::Done | ActionOutcome::AlreadyDone))
}

fn with_action(finding: &InstanceFinding, action: ActionTaken) -> InstanceFinding {
    let mut finding = finding.clone();
    finding.remediation_actions.retain(|a| a.step != action.step);
    finding.remediation_actions.push(action);
    let texts: Vec<String> = finding.remediation_actions.iter().map(ActionTaken::text).collect();
    finding.remediation = Some(texts.join("; "));
    finding
}
