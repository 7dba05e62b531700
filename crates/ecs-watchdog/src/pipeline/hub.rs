//! One hub for many accounts and regions (DESIGN §10). Each message is checked where it came
//! from: the hub's own account and region by the home monitor, every other place by a monitor of
//! its own, whose look-ups and remediation reach that place ([`Reach`]) and whose ledger, topic,
//! queue and findings are the hub's. A place that cannot be reached (its role cannot be assumed)
//! leaves only its messages undecided and files a `monitor-impaired` incident for itself.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::future::{join, join_all};
use serde::Deserialize;
use tracing::warn;

use super::impaired::Impaired;
use super::watched::Fault;
use super::{Adapters, BatchReport, Message, Monitor, REPLACE_STEP, Sweep, SweepReport};
use crate::alert;
use crate::config::{Config, Place};
use crate::metrics::{self, Metric, MetricDatum};
use crate::ports::{AwsError, MetricsSink, error_chain};

/// How the hub reaches a place other than its own.
#[async_trait]
pub trait Reach: Send + Sync {
    /// Makes sure the place's account can be reached: assumes its role when no credentials are
    /// held or they are about to expire; nothing for the hub's own account.
    async fn ready(&self, place: &Place) -> Result<(), AwsError>;
    /// Adapters whose look-ups and remediation act in `place`, the rest the hub's. Built once
    /// per place and Lambda instance.
    fn adapters(&self, place: &Place) -> Adapters;
}

/// The places met so far, each with what checks it, kept across warm invocations.
struct Places<T> {
    config: Config,
    reach: Box<dyn Reach>,
    built: Mutex<HashMap<Place, Arc<T>>>,
}

impl<T> Places<T> {
    fn new(config: Config, reach: Box<dyn Reach>) -> Self {
        Self {
            config,
            reach,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// What checks `place`, built on first need; the place's data carry its account and region.
    fn get(&self, place: &Place, build: impl FnOnce(Config, Place, Adapters) -> T) -> Arc<T> {
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        built
            .entry(place.clone())
            .or_insert_with(|| {
                let mut io = self.reach.adapters(place);
                io.metrics = Box::new(Placed {
                    inner: io.metrics,
                    place: place.clone(),
                });
                Arc::new(build(self.config.clone(), place.clone(), io))
            })
            .clone()
    }
}

/// The monitor of a hub: its own place, and every member place an event comes from.
pub struct Hub {
    home: Monitor,
    members: Places<Monitor>,
    impaired: Impaired,
}

impl Hub {
    pub fn new(home: Monitor, reach: Box<dyn Reach>) -> Self {
        Self {
            members: Places::new(home.config.clone(), reach),
            home,
            impaired: Impaired::default(),
        }
    }

    /// Runs one batch: each place's messages through its own monitor, all places at once.
    pub async fn process(&self, messages: &[Message]) -> BatchReport {
        let mut by_place: BTreeMap<Place, Vec<Message>> = BTreeMap::new();
        let mut home = Vec::new();
        for message in messages {
            match place_of(message).filter(|p| *p != self.home.place) {
                Some(place) => by_place.entry(place).or_default().push(message.clone()),
                None => home.push(message),
            }
        }
        if by_place.is_empty() {
            return self.home.process(messages).await;
        }
        let home: Vec<Message> = home.into_iter().cloned().collect();
        let (mut report, members) = join(
            self.home.process(&home),
            join_all(by_place.iter().map(|(place, messages)| self.member(place, messages))),
        )
        .await;
        for member in members {
            report.failures.extend(member.failures);
            report.alerts.extend(member.alerts);
            report.tally.merge(&member.tally);
        }
        report
    }

    async fn member(&self, place: &Place, messages: &[Message]) -> BatchReport {
        match self.members.reach.ready(place).await {
            Ok(()) => {
                let monitor = self.members.get(place, Monitor::at);
                monitor.process(messages).await
            }
            Err(e) => {
                warn!(account = %place.account, region = %place.region, error = %error_chain(&e), "member account not reachable: its messages go back to the queue");
                let io = &self.home.io;
                let mut report = BatchReport {
                    failures: messages.iter().map(|m| m.id.clone()).collect(),
                    ..BatchReport::default()
                };
                let fault = Fault {
                    operation: e.operation,
                    error: error_chain(&e),
                };
                let scope = alert::impaired::scope(place, false);
                let now = io.clock.now();
                if let Some(alert) = self
                    .impaired
                    .alert(io, place, &scope, &[fault], &self.home.settings(now))
                    .await
                {
                    report.alerts.push(alert);
                }
                report.tally.add(None, Metric::CheckErrors, messages.len() as u64);
                report.tally.count_impaired(e.operation);
                let data = metrics::placed(&report.tally.data(), &place.account, &place.region);
                if let Err(e) = io.metrics.publish(&data).await {
                    warn!(error = %error_chain(&e), "metrics not published");
                }
                report
            }
        }
    }
}

/// The sweep of a hub: its own place and each place of `SWEEP_ACCOUNTS` × `SWEEP_REGIONS`.
pub struct HubSweep {
    home: Sweep,
    members: Places<Sweep>,
}

impl HubSweep {
    pub fn new(home: Sweep, reach: Box<dyn Reach>) -> Self {
        Self {
            members: Places::new(home.monitor.config.clone(), reach),
            home,
        }
    }

    /// Sweeps every place at once; the report adds them up.
    pub async fn run(&self) -> SweepReport {
        let home = &self.home.monitor.place;
        let places = self.members.config.accounts.swept.iter().filter(|p| *p != home);
        let (mut report, members) = join(self.home.run(), join_all(places.map(|p| self.member(p)))).await;
        for member in members {
            report.clusters += member.clusters;
            report.unseen.extend(member.unseen);
            report.undecided += member.undecided;
            report.faults.extend(member.faults);
            report.replaced.extend(member.replaced);
            report.report.alerts.extend(member.report.alerts);
            report.report.tally.merge(&member.report.tally);
        }
        report
    }

    async fn member(&self, place: &Place) -> SweepReport {
        let sweep = self.members.get(place, |config, place, mut io| {
            // The sweep starts no remediation; it finishes the replacements the monitor started.
            io.steps.retain(|step| step.name() == REPLACE_STEP);
            Sweep::at(config, place, false, io)
        });
        match self.members.reach.ready(place).await {
            Ok(()) => sweep.run().await,
            Err(e) => sweep.unreachable(e).await,
        }
    }
}

/// The account and region of an EventBridge event; none for a body that is not one (the home
/// monitor's intake reports it).
fn place_of(message: &Message) -> Option<Place> {
    #[derive(Deserialize)]
    struct Envelope {
        account: String,
        region: String,
    }
    let envelope: Envelope = serde_json::from_str(&message.body).ok()?;
    Some(Place::new(envelope.account, envelope.region))
}

/// A member place's metrics sink: its data carry `Account` and `Region` ([`metrics::placed`]).
struct Placed {
    inner: Box<dyn MetricsSink>,
    place: Place,
}

#[async_trait]
impl MetricsSink for Placed {
    async fn publish(&self, data: &[MetricDatum]) -> Result<(), AwsError> {
        let placed = metrics::placed(data, &self.place.account, &self.place.region);
        self.inner.publish(&placed).await
    }
}
