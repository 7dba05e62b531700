//! The restart's claim: each target's restart is claimed in the ledger (a conditional write)
//! before its command goes out, so of two runs that read no restart only one sends it; a claim
//! whose command was not sent is given back, so the next run may send it.

use std::collections::HashMap;

use tracing::{info, warn};

use super::RESTART_STEP;
use crate::alert::AlertKind;
use crate::incident::IncidentKey;
use crate::ports::{Ledger, error_chain};
use crate::remediation::{ActionOutcome, ActionTaken, Target};

/// The least time a restart's claim holds, whatever `RESTART_WAIT_MINUTES`: longer than a
/// redelivery takes (the checks queue's visibility timeout, 720 s, and a run, 120 s), so a run
/// whose ledger write failed after the restart went out cannot let its redelivery restart again.
const CLAIM_AT_LEAST: u64 = 900;

/// Until when a claim taken at `now` holds: the restart's wait, at least [`CLAIM_AT_LEAST`].
/// It also names the claim when it is given back (see `aws/dynamodb/claims.rs`).
fn until(now: u64, wait: u64) -> u64 {
    now + wait.max(CLAIM_AT_LEAST)
}

/// Claims each target's restart in the ledger, a conditional write: of two runs that read no
/// restart at once, only one sends it, and the other says so. A claim holds for the restart's
/// wait: at most one restart per instance in that time. Without a ledger every target is kept.
pub async fn claim(
    ledger: Option<&dyn Ledger>,
    cluster: &str,
    targets: Vec<Target>,
    now: u64,
    wait: u64,
    said: &mut HashMap<String, Vec<ActionTaken>>,
) -> Vec<Target> {
    let Some(ledger) = ledger else {
        return targets;
    };
    let until = until(now, wait);
    let ids: Vec<String> = targets
        .iter()
        .map(|t| claim_id(cluster, &t.container_instance_arn))
        .collect();
    let claims = futures_util::future::join_all(ids.iter().map(|id| ledger.claim(id, now, until))).await;
    let mut kept = Vec::new();
    for (target, claimed) in targets.into_iter().zip(claims) {
        let action = match claimed {
            Ok(true) => {
                kept.push(target);
                continue;
            }
            Ok(false) => ActionTaken {
                step: RESTART_STEP.to_owned(),
                outcome: ActionOutcome::AlreadyDone,
                detail: "agent restart sent by another run at the same time".to_owned(),
                at: Some(now),
            },
            Err(e) => ActionTaken::by_guard(
                ActionOutcome::NotAttempted,
                format!("not restarted: the restart could not be claimed ({})", e.operation),
            ),
        };
        said.entry(target.container_instance_arn).or_default().push(action);
    }
    kept
}

/// Gives back the claims (taken by [`claim`] at `now`) of the instances whose restart surely did
/// not go out: `ssm:SendCommand` was refused (never sent, throttled, a client error), or there
/// was no node to send it to. After a timeout or a lost answer the command may run: that claim
/// holds. Kept, such a claim would
/// stop every restart of the instance for its whole time (15 min at least) although none went
/// out. Only this run's claim is deleted, never a later run's. A claim that cannot be given
/// back holds until it ends, as before.
pub async fn release_unsent(ledger: Option<&dyn Ledger>, cluster: &str, refused: &[String], now: u64, wait: u64) {
    let Some(ledger) = ledger else {
        return;
    };
    let until = until(now, wait);
    let ids: Vec<String> = refused.iter().map(|arn| claim_id(cluster, arn)).collect();
    let released = futures_util::future::join_all(ids.iter().map(|id| ledger.release(id, until))).await;
    for (id, released) in ids.iter().zip(released) {
        match released {
            Ok(true) => info!(claim = %id, "restart not sent: its claim given back"),
            Ok(false) => info!(claim = %id, "restart not sent: its claim was not this run's any more"),
            Err(e) => {
                warn!(claim = %id, error = %error_chain(&e), "restart not sent, its claim not given back: it holds until it ends")
            }
        }
    }
}

/// The ledger id of an instance's restart claim (beside, never among, the incidents).
pub fn claim_id(cluster: &str, container_instance_arn: &str) -> String {
    let key = IncidentKey::new(cluster, AlertKind::AgentDisconnected, container_instance_arn, None);
    format!("restart-claim|{}", key.id())
}
