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
use super::{Adapters, BatchReport, Message, Monitor, Sweep, SweepReport, places, replace};
use crate::alert;
use crate::config::{Config, Place};
use crate::incident::IncidentKey;
use crate::metrics::{self, Metric, MetricDatum};
use crate::ports::{AwsError, ErrorKind, MetricsSink, Quarantined, error_chain};

/// The dead-letter reason of a message whose place could not be reached.
pub const PLACE_UNREACHABLE: &str = "place-unreachable";
/// A message of an unreachable place is parked on its second receive: one retry, in case the
/// role came back, and no more.
const TRIES_BEFORE_PARKING: u32 = 2;

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
    /// When this Lambda instance last noted each member place in the ledger.
    noted: Mutex<HashMap<Place, u64>>,
}

impl Hub {
    pub fn new(home: Monitor, reach: Box<dyn Reach>) -> Self {
        Self {
            members: Places::new(home.config.clone(), reach),
            home,
            impaired: Impaired::default(),
            noted: Mutex::new(HashMap::new()),
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
        self.note(by_place.keys()).await;
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

    /// Notes in the ledger that these member places sent events, so the sweep covers them
    /// (DESIGN §8 "Places"): at most once per [`places::NOTE_EVERY_SECONDS`] per place and
    /// Lambda instance. A note that fails is tried with the next batch.
    async fn note(&self, places: impl Iterator<Item = &Place>) {
        let io = &self.home.io;
        let Some(ledger) = io.ledger.as_deref() else {
            return;
        };
        let now = io.clock.now();
        let due: Vec<&Place> = {
            let noted = self.noted.lock().unwrap_or_else(|p| p.into_inner());
            places
                .filter(|p| {
                    noted
                        .get(*p)
                        .is_none_or(|at| now.saturating_sub(*at) >= places::NOTE_EVERY_SECONDS)
                })
                .collect()
        };
        for place in due {
            match ledger.note_place(place, now).await {
                Ok(()) => {
                    let mut noted = self.noted.lock().unwrap_or_else(|p| p.into_inner());
                    noted.insert(place.clone(), now);
                }
                Err(e) => {
                    warn!(place = %place, error = %error_chain(&e), "place not noted: the next batch tries again")
                }
            }
        }
    }

    async fn member(&self, place: &Place, messages: &[Message]) -> BatchReport {
        match self.members.reach.ready(place).await {
            Ok(()) => {
                let monitor = self.members.get(place, Monitor::at);
                monitor.process(messages).await
            }
            Err(e) => self.unreachable(place, messages, e).await,
        }
    }

    /// A place whose role cannot be assumed. A message's first try goes back to the queue (the
    /// role may be back by then); from its second on, it is parked in the dead-letter queue with
    /// the reason [`PLACE_UNREACHABLE`], so an unreachable member never holds the pollers its
    /// five tries long: its storm passes at most twice, beside everyone else's messages. Once
    /// the role is fixed, `make redrive FROM=checks` brings the parked messages back.
    async fn unreachable(&self, place: &Place, messages: &[Message], e: AwsError) -> BatchReport {
        warn!(account = %place.account, region = %place.region, error = %error_chain(&e), "member account not reachable: its messages are retried once, then parked");
        let io = &self.home.io;
        // Only a refusal (AccessDenied, no such role) parks: throttling or a timeout of STS is
        // no broken role, and its messages keep SQS's own tries rather than wait for a redrive.
        let refused = e.kind == ErrorKind::Unavailable;
        let (parked, retried): (Vec<&Message>, Vec<&Message>) = messages
            .iter()
            .partition(|m| refused && m.receive_count >= TRIES_BEFORE_PARKING);
        let parked: Vec<Quarantined> = parked
            .into_iter()
            .map(|m| Quarantined {
                message_id: m.id.clone(),
                body: m.body.clone(),
                reason: PLACE_UNREACHABLE.to_owned(),
            })
            .collect();
        let mut report = BatchReport {
            failures: retried.iter().map(|m| m.id.clone()).collect(),
            ..BatchReport::default()
        };
        report.failures.extend(io.quarantine.quarantine(&parked).await);
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

/// The sweep of a hub: its own place and every place the ledger knows (DESIGN §8 "Places").
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

    /// Sweeps every place at once; the report adds them up. The heartbeat goes out only when
    /// every place's clusters could be listed.
    pub async fn run(&self) -> SweepReport {
        let home = &self.home.monitor.place;
        self.home.fresh();
        let (open, seen) = join(self.home.open_everywhere(), self.home.places_seen()).await;
        // A ledger that could not be read may hide places with open incidents or recent events:
        // then this run did not see the whole watch, and sends no heartbeat.
        let known = self.home.monitor.io.ledger.is_none() || (open.is_some() && seen.is_some());
        let (open, seen) = (open.unwrap_or_default(), seen.unwrap_or_default());
        let places = places::to_sweep(home, &self.members.config.accounts.swept, &open, &seen);
        let (mut report, members) = join(
            self.home.pass(Some(places::of_place(&open, home))),
            join_all(places.iter().map(|p| self.member(p, places::of_place(&open, p)))),
        )
        .await;
        let complete = known && report.complete && members.iter().all(|(_, m)| m.complete);
        if complete {
            report.report.tally.count(None, Metric::SweepCompleted);
        }
        self.home.publish(&report).await;
        for (sweep, member) in members {
            sweep.publish(&member).await;
            report.clusters += member.clusters;
            report.unseen.extend(member.unseen);
            report.undecided += member.undecided;
            report.faults.extend(member.faults);
            report.replaced.extend(member.replaced);
            report.report.alerts.extend(member.report.alerts);
            report.report.tally.merge(&member.report.tally);
        }
        report.complete = complete;
        report
    }

    async fn member(&self, place: &Place, open: Vec<IncidentKey>) -> (Arc<Sweep>, SweepReport) {
        let dry_run = self.members.config.remediation.dry_run;
        let sweep = self.members.get(place, |config, place, mut io| {
            replace::keep_for_sweep(&mut io.steps, dry_run);
            Sweep::at(config, place, false, io)
        });
        sweep.fresh();
        let report = match self.members.reach.ready(place).await {
            Ok(()) => sweep.pass(Some(open)).await,
            Err(e) => sweep.unreachable(e).await,
        };
        (sweep, report)
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::fakes::*;
    use super::*;
    use crate::alert::AlertKind;
    use crate::ports::Quarantine;

    const DENIED: &str = "333333333333";

    /// A member whose role cannot be assumed: refused, or (`true`) STS throttled or timed out.
    struct Unreachable(bool);

    #[async_trait]
    impl Reach for Unreachable {
        async fn ready(&self, _: &Place) -> Result<(), AwsError> {
            Err(match self.0 {
                false => AwsError::unavailable("sts:AssumeRole", "AccessDenied"),
                true => AwsError::new("sts:AssumeRole", "Throttling: Rate exceeded"),
            })
        }
        fn adapters(&self, _: &Place) -> Adapters {
            panic!("an unreachable place has no adapters")
        }
    }

    #[derive(Default)]
    struct Kept(Mutex<Vec<Quarantined>>);

    #[async_trait]
    impl Quarantine for &'static Kept {
        async fn quarantine(&self, messages: &[Quarantined]) -> Vec<String> {
            self.0.lock().unwrap().extend_from_slice(messages);
            Vec::new()
        }
    }

    /// `count` events of the denied member, received for the `receive`-th time.
    fn storm(count: usize, receive: u32) -> Vec<Message> {
        (0..count)
            .map(|n| {
                let mut message = agent(A, n);
                let mut body: serde_json::Value = serde_json::from_str(&message.body).unwrap();
                body["account"] = DENIED.into();
                body["region"] = "eu-west-1".into();
                message.id = format!("member-{n}");
                message.body = body.to_string();
                message.receive_count = receive;
                message
            })
            .collect()
    }

    #[tokio::test]
    async fn when_a_member_cannot_be_reached_then_its_storm_is_retried_once_then_parked_and_the_hubs_alert_goes_at_once()
     {
        let notifier = leak(FakeNotifier::default());
        let kept = leak(Kept::default());
        let mut home = monitor(fleet(), notifier, Some(leak(FakeLedger::default())));
        home.io.quarantine = Box::new(kept);
        let hub = Hub::new(home, Box::new(Unreachable(false)));

        // The first batch: the member's storm and the hub's own disconnect together.
        let mut batch = storm(500, 1);
        batch.push(agent(B, 1));
        let first = hub.process(&batch).await;
        let mut failed = first.failures.clone();
        failed.sort();
        let mut expected: Vec<String> = (0..500).map(|n| format!("member-{n}")).collect();
        expected.sort();
        assert_eq!(
            failed, expected,
            "the storm's first try goes back, the hub's own message does not"
        );
        let kinds: Vec<AlertKind> = first.alerts.iter().map(|a| a.kind).collect();
        assert!(
            kinds.contains(&AlertKind::AgentDisconnected),
            "the hub's own alert, in the same batch: {kinds:?}"
        );
        assert!(kinds.contains(&AlertKind::MonitorImpaired), "{kinds:?}");
        assert!(kept.0.lock().unwrap().is_empty(), "nothing parked on the first try");

        // The second: the storm again, now parked with its reason, nothing left to retry.
        let second = hub.process(&storm(500, 2)).await;
        assert!(second.failures.is_empty(), "{:?}", second.failures);
        let parked = kept.0.lock().unwrap();
        assert_eq!(parked.len(), 500);
        assert!(parked.iter().all(|q| q.reason == PLACE_UNREACHABLE));
        assert_eq!(parked[0].body, storm(1, 2)[0].body, "kept as it came, to be redriven");
    }

    #[tokio::test]
    async fn when_sts_only_throttles_then_the_members_messages_are_not_parked() {
        let kept = leak(Kept::default());
        let mut home = monitor(fleet(), leak(FakeNotifier::default()), None);
        home.io.quarantine = Box::new(kept);
        let hub = Hub::new(home, Box::new(Unreachable(true)));

        let second = hub.process(&storm(5, 2)).await;

        assert_eq!(second.failures.len(), 5, "back to the queue for SQS's own tries");
        assert!(kept.0.lock().unwrap().is_empty(), "nothing parked for a redrive");
    }
}
