//! Intake: each message body parsed on its own, signals grouped by cluster as work items (an
//! incident key and what its event said), repeats within the batch marked, unusable bodies set
//! aside for the dead-letter queue. Pure. Past intake nothing sees a message: stages mark
//! incident keys undecided, and intake's map gives them back as the message ids SQS retries.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use tracing::{info, info_span, warn};

use crate::event::{self, DaemonOn, Parsed, RepeatKey, Signal};
use crate::incident::IncidentKey;
use crate::inventory::instance_key;
use crate::kinds;
use crate::ports::Quarantined;
use crate::verdict::{self, Case, Repeat};

/// One SQS record: its id (for batch item failures) and its body. Read straight from the
/// event Lambda hands over, leaving out the receipt handle, attributes and the rest, which a
/// batch of thousands would otherwise hold in memory for nothing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "Record")]
pub struct Message {
    pub id: String,
    pub body: String,
    /// How often SQS has handed the message out, this time included (the record's
    /// `attributes.ApproximateReceiveCount`); 0 when unknown.
    pub receive_count: u32,
}

impl Message {
    /// A message received for the first time.
    pub fn new(id: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            body: body.into(),
            receive_count: 1,
        }
    }
}

/// A record as Lambda hands it over. `attributes` is read as any JSON: a receive count of the
/// wrong type is this record's problem, and failing to deserialize it would fail the whole
/// `SqsBatch`, so every neighbour would go back to the queue with it.
#[derive(Deserialize)]
struct Record {
    #[serde(rename = "messageId", default)]
    id: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    attributes: serde_json::Value,
}

impl From<Record> for Message {
    fn from(record: Record) -> Self {
        let receive_count = receive_count(&record.attributes).unwrap_or_else(|| {
            warn!(message_id = %record.id, attributes = %record.attributes, "ApproximateReceiveCount is not a count: checked with the count unknown (0)");
            0
        });
        Self {
            id: record.id,
            body: record.body,
            receive_count,
        }
    }
}

/// `attributes.ApproximateReceiveCount`, a number in a string: 0 when absent (never parked on
/// a guess), none when it is there but not a count.
fn receive_count(attributes: &serde_json::Value) -> Option<u32> {
    use serde_json::Value;
    match attributes {
        Value::Null => Some(0),
        Value::Object(map) => match map.get("ApproximateReceiveCount") {
            None => Some(0),
            Some(count) => count.as_str()?.parse().ok(),
        },
        _ => None,
    }
}

/// The SQS event Lambda hands over, as the monitor reads it.
#[derive(Debug, Deserialize)]
pub struct SqsBatch {
    #[serde(rename = "Records")]
    pub records: Vec<Message>,
}

/// A work item: an incident key and, when an event set off the look, what the event said (its
/// signal and time). The sweep's items are looks at the current state: the key alone.
#[derive(Debug)]
pub struct Checked {
    pub key: IncidentKey,
    /// The event's signal; none for the sweep's looks. Boxed: a sweep's thousands of looks
    /// carry no room for one.
    pub event: Option<Box<Signal>>,
    /// When the event happened (EventBridge's `time`, UNIX seconds); none for the sweep's looks.
    pub time: Option<u64>,
    /// The event's EventBridge `id` (a redelivery carries it again); none for the sweep's looks.
    pub event_id: Option<String>,
    /// Whether another message of the batch already stands for the same problem.
    pub repeat: Repeat,
}

impl Checked {
    /// A look at the current state (the sweep's): no event, never a repeat.
    pub fn look(key: IncidentKey) -> Self {
        Self {
            key,
            event: None,
            time: None,
            event_id: None,
            repeat: Repeat::Kept,
        }
    }

    pub fn kept(&self) -> bool {
        self.repeat == Repeat::Kept
    }

    /// What its kind's verdict reads: the key and the event, if any.
    pub fn case(&self) -> Case<'_> {
        Case {
            key: &self.key,
            event: self.event.as_deref(),
        }
    }

    /// The container instance as the event names it, or the key's id.
    pub fn instance(&self) -> &str {
        self.case().resource()
    }

    /// The daemon on the container instance, for an incident of a daemon on one (not of a
    /// daemon's deployment, whose event names the daemon as its resource).
    pub fn daemon(&self) -> Option<DaemonOn<'_>> {
        let name = self.key.daemon.as_deref()?;
        let arn = self.event.as_ref().and_then(|e| e.daemon_arn.as_deref());
        (arn != Some(self.instance())).then_some(DaemonOn {
            instance: self.instance(),
            name,
            arn,
        })
    }
}

/// What the batch holds.
#[derive(Debug, Default)]
pub struct Intake {
    /// Work items by cluster ARN, in message order.
    pub by_cluster: BTreeMap<String, Vec<Checked>>,
    pub rejected: Vec<Quarantined>,
    pub ignored: u64,
    /// The messages each cluster's items came from, repeats included.
    cluster_ids: BTreeMap<String, Vec<String>>,
    /// The messages that stand for each incident (repeats left out: they were decided as such).
    key_ids: HashMap<IncidentKey, Vec<String>>,
}

impl Intake {
    /// The messages of a cluster, all undecided when its scope is unknown.
    pub fn cluster_ids(&self, cluster: &str) -> &[String] {
        self.cluster_ids.get(cluster).map_or(&[], Vec::as_slice)
    }

    /// The messages that stand for the incident `key` (none for a key no message named).
    pub fn ids(&self, key: &IncidentKey) -> &[String] {
        self.key_ids.get(key).map_or(&[], Vec::as_slice)
    }
}

/// A message's signal and its event's time.
type Said<'m> = (&'m Message, Signal, event::Stamp);

/// One message as parsed: its signal (or why none) and its event's stamp, which names the
/// place it came from. The hub splits a batch by place on these, so a body is parsed once.
pub struct Read<'m> {
    pub message: &'m Message,
    pub parsed: Parsed,
    pub stamp: event::Stamp,
}

/// Parses every message and groups the signals.
pub fn read(messages: &[Message]) -> Intake {
    group(parse(messages))
}

/// Parses every message, each on its own.
pub fn parse(messages: &[Message]) -> Vec<Read<'_>> {
    messages
        .iter()
        .map(|message| {
            // What is logged of a message's parse names it.
            let _span = info_span!("message", message_id = %message.id).entered();
            let (parsed, stamp) = kinds::parse_timed(&message.body);
            Read { message, parsed, stamp }
        })
        .collect()
}

/// Groups parsed messages' signals by cluster; sets aside what they ignore or reject.
pub fn group(reads: Vec<Read<'_>>) -> Intake {
    let mut intake = Intake::default();
    let mut signals: BTreeMap<String, Vec<Said<'_>>> = BTreeMap::new();
    for Read { message, parsed, stamp } in reads {
        // What is logged of a message (a reject) names it.
        let _span = info_span!("message", message_id = %message.id).entered();
        match parsed {
            Parsed::Signal(signal) => signals
                .entry(signal.cluster_arn().to_owned())
                .or_default()
                .push((message, signal, stamp)),
            Parsed::Ignored(reason) => {
                info!(message_id = %message.id, %reason, "ignored");
                intake.ignored += 1;
            }
            Parsed::Rejected(reason) => {
                warn!(message_id = %message.id, %reason, "rejected: quarantining in the dead-letter queue");
                intake.rejected.push(Quarantined {
                    message_id: message.id.clone(),
                    body: message.body.clone(),
                    reason: reason.to_string(),
                });
            }
        }
    }
    for (cluster, signals) in signals {
        let keyed: Vec<(RepeatKey<'_>, Option<i64>)> =
            signals.iter().map(|(_, s, _)| (s.repeat_key(), s.version())).collect();
        let repeats = verdict::repeats(&keyed);
        let ids = signals.iter().map(|(m, _, _)| m.id.clone()).collect();
        intake.cluster_ids.insert(cluster.clone(), ids);
        let checked = signals
            .into_iter()
            .zip(repeats)
            .map(|((message, signal, stamp), repeat)| {
                let key = IncidentKey::of(&signal);
                if repeat == Repeat::Kept {
                    intake.key_ids.entry(key.clone()).or_default().push(message.id.clone());
                }
                Checked {
                    key,
                    event: Some(Box::new(signal)),
                    time: stamp.time,
                    event_id: stamp.id,
                    repeat,
                }
            })
            .collect();
        intake.by_cluster.insert(cluster, checked);
    }
    intake
}

/// The distinct container instances the kept work items name, in order.
pub fn instances(checked: &[Checked]) -> Vec<String> {
    let mut seen = HashMap::new();
    checked
        .iter()
        .filter(|c| c.kept() && kinds::of(c.key.kind).of_instances())
        .map(Checked::instance)
        .filter(|arn| seen.insert(instance_key(arn), ()).is_none())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body is parsed once: intake keeps the event's time on the work item, and the
    /// ledger's later reads of it take what intake kept, not the body again.
    #[test]
    fn when_intake_has_read_a_message_then_its_event_time_is_kept_on_the_work_item() {
        let body = include_str!("../../../../events/container-instance-agent-disconnected.json");
        let expected = event::time_of(body).expect("the sample has a time");
        let intake = read(&[Message::new("m-1", body)]);
        let times: Vec<Option<u64>> = intake.by_cluster.values().flatten().map(|c| c.time).collect();
        assert_eq!(times, [Some(expected)]);
    }

    /// Past intake only incident keys travel: the map gives each key back as the messages that
    /// stand for it (a repeat was decided as one and stays decided), and a cluster's as all.
    #[test]
    fn when_a_batch_names_an_incident_twice_then_its_key_maps_back_to_the_kept_message_only() {
        let body = include_str!("../../../../events/container-instance-agent-disconnected.json");
        let other = body.replace("9f1c2d3e4b5a46789abc0def12345678", "0000000000000000000000000000beef");
        let older = body.replace("\"version\": 42", "\"version\": 41");
        assert_ne!(older, body, "the sample's version is replaced");
        let messages = [
            Message::new("old", older),
            Message::new("new", body),
            Message::new("other", other),
            Message::new("garbage", "not JSON"),
        ];
        let intake = read(&messages);
        let (cluster, items) = intake.by_cluster.iter().next().expect("one cluster");
        assert_eq!(intake.by_cluster.len(), 1);
        let kept: Vec<(&[String], Option<u64>)> = items
            .iter()
            .filter(|c| c.kept())
            .map(|c| (intake.ids(&c.key), c.time))
            .collect();
        let time = event::time_of(&messages[1].body);
        assert!(time.is_some());
        assert_eq!(
            kept,
            [(&["new".to_owned()][..], time), (&["other".to_owned()][..], time)]
        );
        assert_eq!(intake.cluster_ids(cluster), ["old", "new", "other"]);
        assert_eq!(
            intake.cluster_ids("arn:aws:ecs:eu-west-1:123456789012:cluster/none"),
            [] as [String; 0]
        );
        let unnamed = IncidentKey::new(cluster, crate::alert::AlertKind::AgentDisconnected, "arn/ci/none", None);
        assert!(intake.ids(&unnamed).is_empty(), "a key no message named maps to none");
        assert_eq!(intake.rejected.len(), 1);
    }

    #[test]
    fn when_lambda_hands_over_a_record_then_its_receive_count_is_read() {
        let batch: SqsBatch = serde_json::from_str(
            r#"{"Records": [
                {"messageId": "a", "body": "{}", "attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1"}},
                {"messageId": "b", "body": "{}", "attributes": {"ApproximateReceiveCount": "many"}},
                {"messageId": "c", "body": "{}"}
            ]}"#,
        )
        .unwrap();
        let counts: Vec<u32> = batch.records.iter().map(|m| m.receive_count).collect();
        assert_eq!(counts, [2, 0, 0], "unknown counts are 0: never parked on a guess");
    }

    /// On the old intake a count of the wrong type failed the deserialization of the whole
    /// `SqsBatch`: Lambda's invocation errored and every neighbour went back to the queue.
    #[test]
    fn when_one_records_receive_count_has_the_wrong_type_then_only_that_count_is_unknown() {
        let wrong = [
            r#"3"#,
            r#"-1"#,
            r#""4294967296""#,
            r#"null"#,
            r#"{"n": 1}"#,
            r#"["2"]"#,
            r#"true"#,
        ];
        for count in wrong {
            for attributes in [format!(r#"{{"ApproximateReceiveCount": {count}}}"#), count.to_owned()] {
                let text = format!(
                    r#"{{"Records": [
                        {{"messageId": "before", "body": "x", "attributes": {{"ApproximateReceiveCount": "3"}}}},
                        {{"messageId": "odd", "body": "y", "attributes": {attributes}}},
                        {{"messageId": "after", "body": "z", "attributes": {{"ApproximateReceiveCount": "1"}}}}
                    ]}}"#
                );
                let batch: SqsBatch = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{attributes}: {e}"));
                let read: Vec<(&str, &str, u32)> = batch
                    .records
                    .iter()
                    .map(|m| (m.id.as_str(), m.body.as_str(), m.receive_count))
                    .collect();
                assert_eq!(
                    read,
                    [("before", "x", 3), ("odd", "y", 0), ("after", "z", 1)],
                    "{attributes}"
                );
            }
        }
    }
}
