//! One hub for many accounts and regions (DESIGN §10). Each message is checked where it came
//! from: the hub's own account and region by the home monitor, every other place by a monitor of
//! its own, whose look-ups and remediation reach that place ([`Reach`]) and whose ledger, topic,
//! queue and findings are the hub's. A place that cannot be reached (its role cannot be assumed)
//! leaves only its messages undecided and files a `monitor-impaired` incident for itself.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use futures_util::future::{join, join_all};
use tracing::warn;

use super::impaired::Impaired;
use super::intake::Message;
use super::intake::{self, Read};
use super::monitor::Monitor;
use super::places;
use super::run::BatchReport;
use crate::config::Place;
use crate::event::Stamp;
use crate::ports::error_chain;

mod reach;
mod sweep;
mod unreachable;

use reach::Places;
pub use reach::Reach;
pub use sweep::HubSweep;
pub use unreachable::PLACE_UNREACHABLE;

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
    /// Each body is parsed once, here: its event names its place, and each monitor takes its
    /// place's messages as parsed. A body that is no event is the home monitor's to reject.
    pub async fn process(&self, messages: &[Message]) -> BatchReport {
        let (home, by_place) = by_place(&self.home.place, intake::parse(messages));
        if !by_place.is_empty() {
            self.note(by_place.keys()).await;
        }
        let (mut report, members) = join(
            self.home.process_intake(intake::group(home)),
            join_all(by_place.into_iter().map(|(place, reads)| self.member(place, reads))),
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

    async fn member(&self, place: Place, reads: Vec<Read<'_>>) -> BatchReport {
        match self.members.reach.ready(&place).await {
            Ok(()) => {
                let monitor = self.members.get(&place, Monitor::at);
                monitor.process_intake(intake::group(reads)).await
            }
            Err(e) => {
                let messages: Vec<&Message> = reads.iter().map(|r| r.message).collect();
                unreachable::unreachable(&self.home, &self.impaired, &place, &messages, e).await
            }
        }
    }
}

/// The parsed messages of the home place, in order, and those of each member place, in order:
/// each where its event came from; a body that names no place is home's, whose intake rejects it.
fn by_place<'m>(home: &Place, reads: Vec<Read<'m>>) -> (Vec<Read<'m>>, BTreeMap<Place, Vec<Read<'m>>>) {
    let mut members: BTreeMap<Place, Vec<Read<'m>>> = BTreeMap::new();
    let mut at_home = Vec::new();
    for read in reads {
        match place_of(&read.stamp).filter(|p| p != home) {
            Some(place) => members.entry(place).or_default().push(read),
            None => at_home.push(read),
        }
    }
    (at_home, members)
}

/// The account and region an event came from; none for a body that is no event (the home
/// monitor's intake rejects it).
fn place_of(stamp: &Stamp) -> Option<Place> {
    Some(Place::new(stamp.account.clone()?, stamp.region.clone()?))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::super::fakes::*;
    use super::*;
    use crate::alert::AlertKind;
    use crate::event::RejectReason;
    use crate::pipeline::Adapters;
    use crate::ports::{AwsError, Quarantine, Quarantined};

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

    /// The hub parses each body once, to split the batch by place; a body that names no place
    /// (no JSON, no event) still reaches the home monitor's intake, which sets it aside for the
    /// dead-letter queue with its reason, while the member's event goes to the member.
    #[tokio::test]
    async fn when_a_body_is_no_event_then_the_home_monitor_rejects_it_and_the_members_event_goes_to_the_member() {
        let notifier = leak(FakeNotifier::default());
        let kept = leak(Kept::default());
        let mut home = monitor(fleet(), notifier, None);
        home.io.quarantine = Box::new(kept);
        let hub = Hub::new(home, Box::new(Unreachable(false)));
        let mut batch = storm(1, 1);
        batch.push(Message::new("not-json", "{ not json"));
        batch.push(Message::new("no-event", r#"{"detail": {}}"#));
        batch.push(agent(B, 1));

        let report = hub.process(&batch).await;

        assert_eq!(
            report.failures,
            ["member-0"],
            "the member's event is the member's: retried"
        );
        let kept = kept.0.lock().unwrap();
        let rejected: Vec<(&str, &str)> = kept
            .iter()
            .map(|q| (q.message_id.as_str(), q.reason.as_str()))
            .collect();
        let not_an_event = RejectReason::NotAnEvent.to_string();
        assert_eq!(rejected.len(), 2, "{rejected:?}");
        assert_eq!(rejected[0].0, "not-json");
        assert!(rejected[0].1.starts_with("body is not JSON"), "{}", rejected[0].1);
        assert_eq!(rejected[1], ("no-event", not_an_event.as_str()));
        let kinds: Vec<AlertKind> = report.alerts.iter().map(|a| a.kind).collect();
        assert!(
            kinds.contains(&AlertKind::AgentDisconnected),
            "the hub's own event: {kinds:?}"
        );
    }

    /// Over many generated batches (events of the hub's place and of members', bodies whose
    /// account or region is missing, empty or no string, bodies that are no JSON), the one
    /// parse splits each batch so that every message is in exactly one place's list, in batch
    /// order: its event's place (as serde reads the body on its own), else home's.
    #[test]
    fn when_a_batch_is_split_by_place_then_each_message_goes_once_to_its_events_place_else_home() {
        use crate::seeded::splitmix;
        let home = Place::new("111111111111", "eu-west-1");
        let places = [
            home.clone(),
            Place::new(DENIED, "eu-west-1"),
            Place::new(DENIED, "us-east-1"),
            Place::new("444444444444", "eu-west-1"),
        ];
        for seed in 0..300u64 {
            let mut state = seed;
            let len = splitmix(&mut state) % 30;
            let batch: Vec<Message> = (0..len)
                .map(|n| {
                    let mut body: serde_json::Value = serde_json::from_str(&agent(A, n as usize).body).unwrap();
                    let place = &places[(splitmix(&mut state) % places.len() as u64) as usize];
                    body["account"] = place.account.as_str().into();
                    body["region"] = place.region.as_str().into();
                    let field = ["account", "region"][(splitmix(&mut state) % 2) as usize];
                    let body = match splitmix(&mut state) % 8 {
                        0 => body.as_object().map(|o| {
                            let mut o = o.clone();
                            o.remove(field);
                            o.into()
                        }),
                        1 => Some({
                            let mut b = body.clone();
                            b[field] = "".into();
                            b
                        }),
                        2 => Some({
                            let mut b = body.clone();
                            b[field] = 7.into();
                            b
                        }),
                        3 => None,
                        _ => Some(body),
                    };
                    let text = body.map_or_else(|| "{ no json".to_owned(), |b| b.to_string());
                    Message::new(format!("m-{n}"), text)
                })
                .collect();

            let (at_home, members) = by_place(&home, intake::parse(&batch));

            let ids = |reads: &[Read<'_>]| reads.iter().map(|r| r.message.id.clone()).collect::<Vec<_>>();
            let mut expected: BTreeMap<Place, Vec<String>> = BTreeMap::new();
            for m in &batch {
                let place = serde_json::from_str::<serde_json::Value>(&m.body).ok().and_then(|v| {
                    let text = |f: &str| v.get(f)?.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
                    Some(Place::new(text("account")?, text("region")?))
                });
                expected
                    .entry(place.unwrap_or_else(|| home.clone()))
                    .or_default()
                    .push(m.id.clone());
            }
            let mut got: BTreeMap<Place, Vec<String>> = members
                .iter()
                .map(|(place, reads)| (place.clone(), ids(reads)))
                .collect();
            assert!(!got.contains_key(&home), "seed {seed}: home is no member");
            if !at_home.is_empty() {
                got.insert(home.clone(), ids(&at_home));
            }
            assert_eq!(got, expected, "seed {seed}");
        }
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
