//! Act: the remediation steps on each cluster's confirmed instances that the blast-radius guard
//! lets through; what happened to each is written into its finding.

use std::collections::{BTreeSet, HashMap};

use tracing::info;

use super::evidence::{cluster_state, log_check_error};
use super::{Adapters, Confirmed};
use crate::config::Remediation;
use crate::inventory::cluster_name;
use crate::metrics::{Metric, Tally};
use crate::remediation::{self, ActionOutcome, ActionTaken, StepOutcome, Target};

pub async fn remediate(io: &Adapters, config: Remediation, confirmed: &mut Confirmed<'_>, tally: &mut Tally) {
    if io.steps.is_empty() {
        return;
    }
    let clusters: BTreeSet<&str> = confirmed.keys().map(|(cluster, _)| *cluster).collect();
    for cluster in clusters {
        let name = cluster_name(cluster);
        let mut mine: Vec<Target> = Vec::new();
        for firing in confirmed
            .iter()
            .filter(|((c, _), _)| *c == cluster)
            .flat_map(|(_, f)| f)
        {
            let arn = &firing.finding.container_instance_arn;
            if !mine.iter().any(|t| &t.container_instance_arn == arn) {
                mine.push(Target {
                    container_instance_arn: arn.clone(),
                    ec2_instance_id: firing.finding.ec2_instance_id.clone(),
                });
            }
        }
        let mut said: HashMap<String, Vec<ActionTaken>> = HashMap::new();
        match cluster_state(io.inventory.as_ref(), cluster).await {
            Err(e) => {
                log_check_error(cluster, &e, mine.len());
                for target in &mine {
                    let detail = format!("not attempted: the cluster could not be counted ({})", e.operation);
                    said.entry(target.container_instance_arn.clone())
                        .or_default()
                        .push(guard(ActionOutcome::NotAttempted, detail));
                }
            }
            Ok(state) => {
                let max_percent = config.max_percent;
                let arns: Vec<String> = mine.iter().map(|t| t.container_instance_arn.clone()).collect();
                let (act, held) = remediation::guard(&state, max_percent, &arns);
                let limit = remediation::drain_limit(state.total, max_percent);
                for arn in &held {
                    tally.count(Some(name), Metric::RemediationHeldBack);
                    let text = format!(
                        "held back by the guard: {} of {} instances DRAINING, at most {limit} ({max_percent}%)",
                        state.draining, state.total
                    );
                    said.entry(arn.clone())
                        .or_default()
                        .push(guard(ActionOutcome::HeldBack, text));
                }
                let mut targets: Vec<Target> = mine
                    .into_iter()
                    .filter(|t| act.contains(&t.container_instance_arn))
                    .collect();
                for (n, step) in io.steps.iter().enumerate() {
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
                        said.entry(target.container_instance_arn.clone())
                            .or_default()
                            .push(ActionTaken::of(step.name(), &outcome));
                        if matches!(
                            outcome,
                            StepOutcome::Done(_) | StepOutcome::AlreadyDone(_) | StepOutcome::WouldDo(_)
                        ) {
                            next.push(target);
                        }
                    }
                    targets = next;
                }
            }
        }
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
}

/// What the guard (no step) decided for an instance.
fn guard(outcome: ActionOutcome, detail: String) -> ActionTaken {
    ActionTaken {
        step: "guard".to_owned(),
        outcome,
        detail,
    }
}
