//! The monitor-impaired alert (DESIGN §8): a call the monitor needs cannot be made, so part of
//! the fleet is unwatched. One incident per place and operation, alerted at most once a day; the
//! sweep, which makes every call of its place, closes those that work again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use tracing::{info, warn};

use super::Adapters;
use super::watched::Fault;
use crate::alert::{self, Alert, AlertKind};
use crate::config::Place;
use crate::incident::{self, Incident, IncidentKey, Step};
use crate::ports::{Ledger, error_chain};

/// A monitor-impaired alert goes out at most this often per operation.
const EVERY_SECONDS: u64 = 24 * 3600;

/// When this Lambda instance last alerted each impaired operation of each scope: the guard when
/// the ledger itself cannot be read.
#[derive(Debug, Default)]
pub struct Impaired {
    alerted: Mutex<HashMap<(String, &'static str), u64>>,
}

impl Impaired {
    /// Closes the scope's open incidents whose operation did not fail this run.
    pub async fn close_recovered(ledger: &dyn Ledger, scope: &str, faults: &[Fault], now: u64) {
        let Ok(open) = ledger.open_incidents(scope).await else {
            return;
        };
        for key in open
            .iter()
            .filter(|k| !faults.iter().any(|f| f.operation == k.instance))
        {
            if ledger
                .close(key, now, "the call works again", None)
                .await
                .unwrap_or(false)
            {
                info!(scope, operation = %key.instance, "the monitor can call it again");
            }
        }
    }

    /// One alert naming each failed operation of `place` that is due one: an incident opens (or
    /// its daily reminder is claimed) in the ledger, and this instance's memory stands in when
    /// the ledger is what fails.
    pub async fn alert(&self, io: &Adapters, place: &Place, scope: &str, faults: &[Fault], now: u64) -> Option<Alert> {
        let ledger = io.ledger.as_deref()?;
        let mut failing: BTreeMap<&'static str, &str> = BTreeMap::new();
        for fault in faults {
            failing.entry(fault.operation).or_insert(&fault.error);
        }
        failing.retain(|operation, _| !self.recent(scope, operation, now));
        if failing.is_empty() {
            return None;
        }
        let keys: Vec<IncidentKey> = failing.keys().map(|op| key(scope, op)).collect();
        let stored: HashMap<IncidentKey, Incident> = ledger
            .get(&keys)
            .await
            .map(|found| found.into_iter().map(|i| (i.key.clone(), i)).collect())
            .unwrap_or_default();
        let mut due = Vec::new();
        for (operation, error) in &failing {
            let key = key(scope, operation);
            let finding = alert::impaired::finding(operation, error);
            let current = stored.get(&key);
            let claimed = match incident::on_confirmed(current, false, now, EVERY_SECONDS, 0) {
                Step::Quiet | Step::Watch => continue,
                Step::Open => {
                    let opened = Incident::opened(key.clone(), finding.clone(), now, now);
                    ledger.open(&opened).await.map(|ok| ok.then_some(0))
                }
                Step::Notify { expected, .. } => {
                    let current = current.expect("an open incident");
                    let claim = Incident {
                        notified_at: now,
                        finding: finding.clone(),
                        ..current.clone()
                    };
                    ledger.claim(&claim, expected).await.map(|ok| ok.then_some(expected))
                }
            };
            match claimed {
                Ok(Some(previous)) => due.push((*operation, finding, Some(previous))),
                Ok(None) => {}
                // The ledger cannot say: this instance's memory keeps it to once a day.
                Err(_) => due.push((*operation, finding, None)),
            }
        }
        if due.is_empty() {
            return None;
        }
        let alert = alert::impaired(place, scope, due.iter().map(|(_, f, _)| f.clone()).collect());
        match io.notifier.publish(&alert).await {
            Ok(()) => {
                let mut alerted = self.alerted.lock().unwrap_or_else(|p| p.into_inner());
                alerted.extend(due.iter().map(|(op, _, _)| ((scope.to_owned(), *op), now)));
                Some(alert)
            }
            Err(e) => {
                warn!(error = %error_chain(&e), "monitor-impaired alert not sent: the next run tries again");
                for (operation, _, previous) in &due {
                    if let Some(previous) = previous {
                        let _ = ledger.release(&key(scope, operation), now, *previous).await;
                    }
                }
                None
            }
        }
    }

    fn recent(&self, scope: &str, operation: &'static str, now: u64) -> bool {
        let alerted = self.alerted.lock().unwrap_or_else(|p| p.into_inner());
        alerted
            .get(&(scope.to_owned(), operation))
            .is_some_and(|at| now.saturating_sub(*at) < EVERY_SECONDS)
    }
}

fn key(scope: &str, operation: &str) -> IncidentKey {
    IncidentKey {
        cluster_arn: scope.to_owned(),
        kind: AlertKind::MonitorImpaired,
        instance: operation.to_owned(),
        daemon: None,
    }
}
