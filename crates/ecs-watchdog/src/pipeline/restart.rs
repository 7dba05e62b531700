//! The agent restart (restart-agent, restart-then-drain): the monitor restarts a disconnected
//! agent once per incident; the sweep's first look after `RESTART_WAIT_MINUTES` follows up. An
//! agent that reconnected closes the incident the ordinary way (the resolved notice says it
//! recovered after the restart); one still disconnected is drained (restart-then-drain) or left
//! alerted, and the incident says the restart did not help.

use std::collections::{HashMap, HashSet};

use tracing::{info, warn};

use super::batched::chunked;
use super::evidence::cluster_state;
use super::run::Adapters;
use super::survey::Survey;
use crate::alert::{AlertKind, InstanceFinding};
use crate::config::Remediation;
use crate::incident::{Incident, IncidentKey};
use crate::inventory::{InstanceView, instance_key};
use crate::ports::{AwsError, Ledger, error_chain};
use crate::remediation::{self, ActionOutcome, ActionTaken, ClusterState, Target};
use crate::silence::{Hold, Silences};

mod claim;

pub use claim::{claim, claim_id, release_unsent};

use crate::remediation::DRAIN_STEP;
pub use crate::remediation::RESTART_STEP;
/// How the resolved notice says an incident closed after a restart.
pub const RECOVERED_AFTER_RESTART: &str = "recovered after restart";

/// When the agent was restarted; an incident written before restarts were timed: when it opened.
fn restarted_at(incident: &Incident) -> u64 {
    let sent = incident.finding.remediation_actions.iter();
    sent.filter(|a| a.step == RESTART_STEP)
        .find_map(|a| a.at)
        .unwrap_or(incident.opened_at)
}

/// Whether the finding says the agent was restarted (the command was sent).
pub fn restarted(finding: &InstanceFinding) -> bool {
    finding
        .remediation_actions
        .iter()
        .any(|a| a.step == RESTART_STEP && matches!(a.outcome, ActionOutcome::Done | ActionOutcome::AlreadyDone))
}

/// How the resolved notice says an incident ended: an agent that reconnected after the
/// restart recovered after restart.
pub fn resolution(finding: &InstanceFinding, how: String) -> String {
    match how.strip_prefix("recovered") {
        Some(rest) if restarted(finding) => format!("{RECOVERED_AFTER_RESTART}{rest}"),
        _ => how,
    }
}

/// Whether the follow-up already spoke (the restart did not help; maybe drained).
fn followed_up(finding: &InstanceFinding) -> bool {
    finding
        .remediation_actions
        .iter()
        .any(|a| a.step == RESTART_STEP && a.outcome == ActionOutcome::Failed)
}

/// What the ledger says of a cluster's restarts, read before the guard: the instances whose
/// open incident restarted the agent already (what it says of it), and those whose restart is
/// still in flight (within `RESTART_WAIT_MINUTES`, not followed up).
#[derive(Debug, Default)]
pub struct Restarts {
    pub sent: HashMap<String, Vec<ActionTaken>>,
    pub in_flight: HashSet<String>,
}

impl Restarts {
    /// The guard's view of the cluster: a restart in flight holds a slot as a DRAINING instance
    /// does (`MAX_REMEDIATION_PERCENT` caps restarts as it caps drains), and an agent restarted
    /// already is no candidate any more.
    pub fn counted(&self, state: &ClusterState) -> ClusterState {
        ClusterState {
            draining: state.draining + self.in_flight.len(),
            disconnected: state
                .disconnected
                .iter()
                .filter(|arn| !self.sent.contains_key(*arn))
                .cloned()
                .collect(),
            ..state.clone()
        }
    }
}

/// Reads the agent-disconnected incidents of the cluster's disconnected instances and of the
/// targets (one `BatchGetItem` per 100). Without a ledger nothing is known.
pub async fn read(
    ledger: Option<&dyn Ledger>,
    cluster: &str,
    state: &ClusterState,
    targets: &[Target],
    now: u64,
    wait: u64,
) -> Result<Restarts, AwsError> {
    let Some(ledger) = ledger else {
        return Ok(Restarts::default());
    };
    let mut arns: Vec<&String> = targets.iter().map(|t| &t.container_instance_arn).collect();
    arns.extend(&state.disconnected);
    arns.sort();
    arns.dedup();
    let keys: Vec<IncidentKey> = arns
        .into_iter()
        .map(|arn| IncidentKey::new(cluster, AlertKind::AgentDisconnected, arn, None))
        .collect();
    let mut restarts = Restarts::default();
    for (_, answer) in chunked(&keys, |chunk| ledger.get(chunk)).await {
        for incident in answer?.into_iter().filter(|i| i.is_open() && restarted(&i.finding)) {
            let arn = incident.finding.container_instance_arn.clone();
            if !followed_up(&incident.finding) && now.saturating_sub(restarted_at(&incident)) < wait {
                restarts.in_flight.insert(arn.clone());
            }
            restarts.sent.insert(arn, incident.finding.remediation_actions);
        }
    }
    Ok(restarts)
}

/// The targets whose incident has not restarted the agent yet; the others keep what their
/// incident says (the first command's id): a redelivered event or a later one of the same
/// incident sends no second command.
pub fn not_yet(
    restarts: &mut Restarts,
    targets: Vec<Target>,
    said: &mut HashMap<String, Vec<ActionTaken>>,
) -> Vec<Target> {
    let (done, fresh): (Vec<Target>, Vec<Target>) = targets
        .into_iter()
        .partition(|t| restarts.sent.contains_key(&t.container_instance_arn));
    for target in done {
        let actions = restarts
            .sent
            .get(&target.container_instance_arn)
            .cloned()
            .unwrap_or_default();
        said.entry(target.container_instance_arn).or_default().extend(actions);
    }
    fresh
}

/// The sweep's follow-up: each open agent-disconnected incident restarted at least `wait`
/// seconds ago whose agent is still disconnected. Returns what it did, as
/// `cluster/instance: outcome`.
pub async fn follow_up(
    io: &Adapters,
    ledger: &dyn Ledger,
    surveys: &[Survey],
    now: u64,
    config: &Remediation,
    silences: &Silences,
) -> Vec<String> {
    if !config.action.restarts() || config.dry_run {
        return Vec::new();
    }
    let mut acted = Vec::new();
    for survey in surveys {
        let still: Vec<&IncidentKey> = survey
            .open
            .iter()
            .flatten()
            .filter(|key| key.kind == AlertKind::AgentDisconnected)
            .filter(
                |key| matches!(survey.instances.lookup(&key.instance), InstanceView::Found(i) if !i.agent_connected),
            )
            .collect();
        if still.is_empty() {
            continue;
        }
        let stored = super::replace::stored_keys(ledger, &still).await;
        let wait = config.restart_wait.as_secs();
        let due: Vec<&Incident> = still
            .iter()
            .filter_map(|key| stored.get(*key))
            .filter(|i| due(i, now, wait, silences))
            .collect();
        for incident in due {
            let actions = conclude(io, config, &survey.cluster, incident).await;
            info!(incident = %incident.key.id(), ?actions, "the restart did not bring the agent back");
            acted.push(format!("{}/{}: {actions:?}", survey.cluster, incident.key.instance));
            write_down(ledger, incident, actions).await;
        }
    }
    acted
}

/// What follows a restart that did not help: the word, and the drain where it is asked for
/// (within the guard's share of the cluster).
async fn conclude(io: &Adapters, config: &Remediation, cluster: &str, incident: &Incident) -> Vec<ActionTaken> {
    let wait = config.restart_wait.as_secs() / 60;
    let mut actions = vec![ActionTaken {
        step: RESTART_STEP.to_owned(),
        outcome: ActionOutcome::Failed,
        detail: format!("the restart did not help: the agent is still disconnected after {wait} min"),
        at: None,
    }];
    let Some(drain) = io.steps.iter().find(|s| s.name() == DRAIN_STEP) else {
        return actions;
    };
    let arn = incident.finding.container_instance_arn.clone();
    let state = match cluster_state(io.inventory.as_ref(), cluster).await {
        Ok(state) => state,
        Err(e) => {
            let detail = format!("not drained: the cluster could not be counted ({})", e.operation);
            actions.push(ActionTaken::by_guard(ActionOutcome::NotAttempted, detail));
            return actions;
        }
    };
    if !state.active.contains(instance_key(&arn)) {
        let detail = "not drained: the instance is not ACTIVE".to_owned();
        actions.push(ActionTaken::by_guard(ActionOutcome::Skipped, detail));
        return actions;
    }
    let (act, _) = remediation::guard(&state, config.max_percent, std::slice::from_ref(&arn));
    if act.is_empty() {
        let detail = format!(
            "held back by the guard: {} of {} instances DRAINING, at most {}%",
            state.draining, state.total, config.max_percent
        );
        actions.push(ActionTaken::by_guard(ActionOutcome::HeldBack, detail));
        return actions;
    }
    let target = Target {
        container_instance_arn: arn,
        ec2_instance_id: incident.finding.ec2_instance_id.clone(),
        replace_now: false,
    };
    let outcome = drain.apply(cluster, &[target], false).await.pop();
    actions.extend(outcome.map(|o| ActionTaken::of(DRAIN_STEP, &o)));
    actions
}

/// Whether an incident's follow-up is due: restarted, not yet followed up, the wait over, and not
/// silenced (a silence holds remediation: nothing is drained under one, as on the monitor's path).
fn due(incident: &Incident, now: u64, wait: u64, silences: &Silences) -> bool {
    incident.is_open()
        && restarted(&incident.finding)
        && !followed_up(&incident.finding)
        && now.saturating_sub(restarted_at(incident)) >= wait
        && !matches!(silences.of(&incident.key, now), Hold::Until { .. })
}

/// Writes the follow-up's actions on the incident (a conditional write on its version).
async fn write_down(ledger: &dyn Ledger, incident: &Incident, actions: Vec<ActionTaken>) {
    let mut finding = incident.finding.clone();
    finding.remediation_actions.extend(actions);
    let texts: Vec<String> = finding.remediation_actions.iter().map(ActionTaken::text).collect();
    finding.remediation = Some(texts.join("; "));
    let updated = Incident {
        version: incident.version + 1,
        finding,
        ..incident.clone()
    };
    match ledger.put(&[updated]).await {
        Ok(written) if written.first() == Some(&false) => {
            info!(incident = %incident.key.id(), "the restart's follow-up raced another write: the next sweep looks again")
        }
        Ok(_) => {}
        Err(e) => warn!(incident = %incident.key.id(), error = %error_chain(&e), "the restart's follow-up not written"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remediation::StepOutcome;

    fn with(actions: &[(&str, StepOutcome)]) -> InstanceFinding {
        let mut finding = crate::alert::impaired::finding("ecs:ListClusters", "test");
        finding.remediation_actions = actions.iter().map(|(step, o)| ActionTaken::of(step, o)).collect();
        finding
    }

    #[test]
    fn when_an_incident_closes_then_only_a_restarted_agent_recovered_after_restart() {
        let agent = "recovered: the agent reconnected".to_owned();
        let sent = with(&[(
            RESTART_STEP,
            StepOutcome::Done("agent restarted (SSM command c-1)".into()),
        )]);
        assert_eq!(
            resolution(&sent, agent.clone()),
            "recovered after restart: the agent reconnected"
        );
        let carried = with(&[(RESTART_STEP, StepOutcome::AlreadyDone("agent restarted".into()))]);
        assert!(resolution(&carried, agent.clone()).starts_with(RECOVERED_AFTER_RESTART));
        for not_sent in [
            with(&[]),
            with(&[(RESTART_STEP, StepOutcome::WouldDo("restart the agent".into()))]),
            with(&[(RESTART_STEP, StepOutcome::Failed("AccessDenied".into()))]),
            with(&[(DRAIN_STEP, StepOutcome::Done("drained (DRAINING)".into()))]),
        ] {
            assert_eq!(
                resolution(&not_sent, agent.clone()),
                agent,
                "{:?}",
                not_sent.remediation_actions
            );
        }
        // A look that found it gone some other way says so, restart or not.
        let gone = "gone: the container instance was deregistered".to_owned();
        assert_eq!(resolution(&sent, gone.clone()), gone);
    }

    /// A silence set after the restart (on-call looking into it) holds the drain that would
    /// follow a restart that did not help, until it ends.
    #[test]
    fn when_a_restarted_instance_is_silenced_then_its_follow_up_waits_for_the_silence() {
        const NOW: u64 = 1_800_000_000;
        let key = IncidentKey::new(
            "arn:aws:ecs:us-east-1:111122223333:cluster/prod",
            AlertKind::AgentDisconnected,
            "arn:aws:ecs:us-east-1:111122223333:container-instance/prod/1",
            None,
        );
        let mut finding = with(&[(RESTART_STEP, StepOutcome::Done("agent restarted".into()))]);
        finding.remediation_actions[0].at = Some(NOW - 600);
        let incident = Incident::new(key.clone(), crate::incident::State::Notified, finding, NOW - 600);
        let quiet = Silences::default();
        assert!(due(&incident, NOW, 300, &quiet));
        assert!(!due(&incident, NOW, 900, &quiet), "the wait is not over");

        let mut silenced = Silences::default();
        silenced.instance(&key.cluster_arn, &key.instance, &crate::silence::iso(NOW + 3600));
        assert!(!due(&incident, NOW, 300, &silenced));
        assert!(due(&incident, NOW + 3601, 300, &silenced), "the silence has ended");
    }

    #[test]
    fn when_the_follow_up_spoke_then_it_is_not_asked_again() {
        let sent = with(&[(RESTART_STEP, StepOutcome::Done("agent restarted".into()))]);
        assert!(restarted(&sent) && !followed_up(&sent));
        let mut told = sent.clone();
        told.remediation_actions.push(ActionTaken {
            step: RESTART_STEP.to_owned(),
            outcome: ActionOutcome::Failed,
            detail: "the restart did not help".to_owned(),
            at: None,
        });
        assert!(followed_up(&told));
    }
}
