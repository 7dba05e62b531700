//! The monitor-impaired alert (DESIGN §8): a call the monitor needs cannot be made, so part of
//! the fleet is unwatched. One incident per place and operation, alerted at most once a day; the
//! sweep, which makes every call of its place, closes those that work again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use tracing::{info, warn};

use super::plan::{self, Look, Settings};
use super::run::Adapters;
use super::watched::Fault;
use crate::alert::{self, Alert, AlertKind, InstanceFinding};
use crate::config::Place;
use crate::incident::{Incident, IncidentKey, State};
use crate::ports::{Ledger, Settle, error_chain};

/// A monitor-impaired alert goes out at most this often per operation.
const EVERY_SECONDS: u64 = 24 * 3600;

/// When this Lambda instance last alerted each impaired operation of each scope: the guard when
/// the ledger itself cannot be read.
#[derive(Debug, Default)]
pub struct Impaired {
    alerted: Mutex<HashMap<(String, String), u64>>,
}

impl Impaired {
    /// Closes the scope's open incidents whose operation did not fail this run (silently: the
    /// monitor sees again).
    pub async fn close_recovered(ledger: &dyn Ledger, scope: &str, faults: &[Fault], now: u64) {
        let Ok(open) = ledger.open_incidents(scope).await else {
            return;
        };
        let recovered: Vec<IncidentKey> = open
            .into_iter()
            .filter(|k| !faults.iter().any(|f| f.operation == k.instance))
            .collect();
        if recovered.is_empty() {
            return;
        }
        let Ok(stored) = ledger.get(&recovered).await else {
            return;
        };
        let closed: Vec<Incident> = stored
            .into_iter()
            .filter(|i| i.is_open() && i.lease.is_none())
            .map(|i| Incident {
                version: i.version + 1,
                state: State::Closed,
                closed_at: now,
                resolution: Some("the call works again".to_owned()),
                ..i
            })
            .collect();
        if let Ok(written) = ledger.put(&closed).await {
            for (i, _) in closed.iter().zip(written).filter(|(_, ok)| *ok) {
                info!(scope, operation = %i.key.instance, "the monitor can call it again");
            }
        }
    }

    /// One alert naming each failed operation of `place` that is due one: the ledger holds
    /// when each was last told (at most once a day, whichever instance runs), leased and
    /// settled like any notice; this instance's memory stands in only when the ledger cannot
    /// be read.
    pub async fn alert(
        &self,
        io: &Adapters,
        place: &Place,
        scope: &str,
        faults: &[Fault],
        s: &Settings,
    ) -> Option<Alert> {
        let ledger = io.ledger.as_deref()?;
        let looks = looks(scope, faults);
        if looks.is_empty() {
            return None;
        }
        let keys: Vec<IncidentKey> = looks.iter().map(|(k, _)| k.clone()).collect();
        let Ok(stored) = ledger.get(&keys).await else {
            return self.unrecorded(io, place, scope, looks, s.now).await;
        };
        let (moves, leased) = leased(ledger, stored, &looks, s).await;
        if leased.is_empty() {
            return None;
        }
        let alert = alert::impaired(place, scope, leased);
        let sent = io.notifier.publish(&alert).await;
        settle(ledger, &moves, sent.is_ok(), s).await;
        match sent {
            Ok(()) => Some(alert),
            Err(e) => {
                warn!(error = %error_chain(&e), "monitor-impaired alert not sent: the next run tries again");
                None
            }
        }
    }

    /// The ledger cannot be read: this instance's memory keeps the alert to once a day.
    async fn unrecorded(
        &self,
        io: &Adapters,
        place: &Place,
        scope: &str,
        looks: Vec<(IncidentKey, Look)>,
        now: u64,
    ) -> Option<Alert> {
        let due: Vec<(String, InstanceFinding)> = looks
            .into_iter()
            .filter(|(k, _)| !self.recent(scope, &k.instance, now))
            .filter_map(|(k, look)| match look {
                Look::Confirmed { finding, .. } => Some((k.instance, *finding)),
                _ => None,
            })
            .collect();
        if due.is_empty() {
            return None;
        }
        let alert = alert::impaired(place, scope, due.iter().map(|(_, f)| f.clone()).collect());
        io.notifier.publish(&alert).await.ok()?;
        let mut alerted = self.alerted.lock().unwrap_or_else(|p| p.into_inner());
        alerted.extend(due.into_iter().map(|(op, _)| ((scope.to_owned(), op), now)));
        Some(alert)
    }

    fn recent(&self, scope: &str, operation: &str, now: u64) -> bool {
        let alerted = self.alerted.lock().unwrap_or_else(|p| p.into_inner());
        alerted
            .get(&(scope.to_owned(), operation.to_owned()))
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

/// A look per failed operation of the scope (the first error said of it).
fn looks(scope: &str, faults: &[Fault]) -> Vec<(IncidentKey, Look)> {
    let mut failing: BTreeMap<&'static str, &str> = BTreeMap::new();
    for fault in faults {
        failing.entry(fault.operation).or_insert(&fault.error);
    }
    failing
        .iter()
        .map(|(op, error)| {
            let finding = alert::impaired::finding(op, error);
            let finding = Box::new(finding);
            (key(scope, op), Look::Confirmed { finding, hold: 0 })
        })
        .collect()
}

/// Plans the looks at most once a day against what is stored and writes the plan; returns the
/// moves and the findings whose notice this run leased.
async fn leased(
    ledger: &dyn Ledger,
    stored: Vec<Incident>,
    looks: &[(IncidentKey, Look)],
    s: &Settings,
) -> (Vec<plan::Move>, Vec<InstanceFinding>) {
    let stored: HashMap<IncidentKey, Incident> = stored.into_iter().map(|i| (i.key.clone(), i)).collect();
    let daily = Settings {
        remind_after: EVERY_SECONDS,
        group_interval: 0,
        ..s.clone()
    };
    let moves = plan::plan(&stored, &HashMap::new(), looks, &daily).moves;
    let records: Vec<Incident> = moves.iter().map(|m| m.incident.clone()).collect();
    let written = ledger.put(&records).await.unwrap_or_default();
    let leased: Vec<InstanceFinding> = moves
        .iter()
        .zip(written)
        .filter(|(m, ok)| *ok && m.sends.is_some())
        .map(|(m, _)| m.incident.finding.clone())
        .collect();
    (moves, leased)
}

/// Settles each lease: told once SNS accepted the alert, given back when it did not.
async fn settle(ledger: &dyn Ledger, moves: &[plan::Move], sent: bool, s: &Settings) {
    let settles: Vec<Settle> = moves
        .iter()
        .filter(|m| m.sends.is_some())
        .filter_map(|m| m.incident.lease.as_ref().map(|(_, notice)| (m, *notice)))
        .map(|(m, notice)| Settle {
            key: m.incident.key.clone(),
            token: s.token.clone(),
            state: if sent { notice.to() } else { notice.from() },
            at: s.now,
        })
        .collect();
    if let Err(e) = ledger.settle(&settles).await {
        warn!(error = %error_chain(&e), "monitor-impaired leases not settled: they expire");
    }
}
