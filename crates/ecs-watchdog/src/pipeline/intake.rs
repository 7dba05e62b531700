//! Intake: each message body parsed on its own, signals grouped by cluster, repeats within the
//! batch marked, unusable bodies set aside for the dead-letter queue. Pure.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;
use tracing::{info, info_span, warn};

use crate::event::{self, Parsed, RepeatKey, Signal};
use crate::inventory::instance_key;
use crate::kinds;
use crate::ports::Quarantined;
use crate::verdict::{self, Repeat};

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
    /// The event's time, kept when intake parses the body, so no later stage parses it again.
    time: OnceLock<Option<u64>>,
}

impl Message {
    /// A message received for the first time.
    pub fn new(id: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            body: body.into(),
            receive_count: 1,
            time: OnceLock::new(),
        }
    }

    /// When the event happened, as EventBridge's `time` says (UNIX seconds); `None` for a body
    /// without one (the sweep's looks, which are of now).
    pub fn event_time(&self) -> Option<u64> {
        *self.time.get_or_init(|| event::time_of(&self.body))
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
            time: OnceLock::new(),
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

/// A message whose body is a signal to check.
#[derive(Debug)]
pub struct Checked<'a> {
    pub message: &'a Message,
    pub signal: Signal,
    /// Whether another message of the batch already stands for the same problem.
    pub repeat: Repeat,
}

impl Checked<'_> {
    pub fn kept(&self) -> bool {
        self.repeat == Repeat::Kept
    }
}

/// What the batch holds.
#[derive(Debug, Default)]
pub struct Intake<'a> {
    /// Signals by cluster ARN, in message order.
    pub by_cluster: BTreeMap<String, Vec<Checked<'a>>>,
    pub rejected: Vec<Quarantined>,
    pub ignored: u64,
}

/// Parses every message and groups the signals.
pub fn read(messages: &[Message]) -> Intake<'_> {
    let mut intake = Intake::default();
    let mut signals: BTreeMap<String, Vec<(&Message, Signal)>> = BTreeMap::new();
    for message in messages {
        // What is logged of a message (its parse, a reject) names it.
        let _span = info_span!("message", message_id = %message.id).entered();
        let (parsed, time) = kinds::parse_timed(&message.body);
        let _ = message.time.set(time);
        match parsed {
            Parsed::Signal(signal) => signals
                .entry(signal.cluster_arn().to_owned())
                .or_default()
                .push((message, signal)),
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
            signals.iter().map(|(_, s)| (s.repeat_key(), s.version())).collect();
        let repeats = verdict::repeats(&keyed);
        let checked = signals
            .into_iter()
            .zip(repeats)
            .map(|((message, signal), repeat)| Checked {
                message,
                signal,
                repeat,
            })
            .collect();
        intake.by_cluster.insert(cluster, checked);
    }
    intake
}

/// The distinct container instances the kept signals name, in order.
pub fn instances<'a>(checked: &'a [Checked<'a>]) -> Vec<String> {
    let mut seen = HashMap::new();
    checked
        .iter()
        .filter(|c| c.kept() && kinds::of(c.signal.kind()).of_instances())
        .map(|c| c.signal.container_instance_arn())
        .filter(|arn| seen.insert(instance_key(arn), ()).is_none())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body is parsed once: intake keeps the event's time, and the ledger's later reads of
    /// it take what intake kept, not the body again.
    #[test]
    fn when_intake_has_read_a_message_then_its_event_time_is_kept_not_parsed_again() {
        let body = include_str!("../../../../events/container-instance-agent-disconnected.json");
        let expected = event::time_of(body).expect("the sample has a time");
        let mut message = Message::new("m-1", body);
        let intake = read(std::slice::from_ref(&message));
        assert_eq!(intake.by_cluster.values().flatten().count(), 1);
        drop(intake);
        message.body = "not JSON".to_owned();
        assert_eq!(message.event_time(), Some(expected));
        assert_eq!(Message::new("m-2", "not JSON").event_time(), None);
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
