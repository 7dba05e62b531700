//! SQS: the dead-letter queue that keeps unusable messages with the reason.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use futures_util::future::join_all;
use tracing::error;

use super::batch;
use super::shared::{OnFirstUse, Turns};
use crate::ports::{AwsError, Quarantine, Quarantined, error_chain};

/// `SendMessageBatch` takes at most ten entries, and 256 KiB of them in all: "the sum of the
/// individual lengths of all of the batched messages"
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html>),
/// where a message's attributes count with its body, name, type and value each
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html>).
const SEND_BATCH_ENTRIES: usize = 10;
const SEND_BATCH_BYTES: usize = 262_144;
pub const REASON_ATTRIBUTE: &str = "watchdog-reject-reason";
pub const MESSAGE_ID_ATTRIBUTE: &str = "watchdog-source-message-id";
const ATTRIBUTE_TYPE: &str = "String";

/// The bytes SQS counts for the message kept: its body and both attributes.
fn message_size(m: &Quarantined) -> usize {
    m.body.len()
        + REASON_ATTRIBUTE.len()
        + ATTRIBUTE_TYPE.len()
        + m.reason.len()
        + MESSAGE_ID_ATTRIBUTE.len()
        + ATTRIBUTE_TYPE.len()
        + m.message_id.len()
}

pub struct DeadLetterQueue {
    client: OnFirstUse<Client>,
    queue_url: String,
    turns: Turns,
}

impl DeadLetterQueue {
    pub fn new(client: OnFirstUse<Client>, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
            turns: Turns::new(),
        }
    }

    /// Sends one batch; returns the positions of the messages that were not kept.
    async fn send(&self, messages: &[&Quarantined]) -> Result<Vec<usize>, AwsError> {
        let entries = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(&m.body)
                    .message_attributes(REASON_ATTRIBUTE, text(&m.reason)?)
                    .message_attributes(MESSAGE_ID_ATTRIBUTE, text(&m.message_id)?)
                    .build()
                    .map_err(|e| AwsError::new("sqs:SendMessageBatch", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let _turn = self.turns.wait().await;
        let output = self
            .client
            .get()
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| super::sdk_error("sqs:SendMessageBatch", e))?;
        Ok(output
            .failed()
            .iter()
            .filter_map(|f| {
                let index: usize = f.id().strip_prefix('m')?.parse().ok()?;
                error!(message_id = %messages.get(index)?.message_id, code = f.code(), reason = f.message(), "not kept in the dead-letter queue");
                Some(index)
            })
            .collect())
    }

    /// Keeps one run of messages, sending those that failed again; returns the ids of those
    /// still not kept.
    async fn keep(&self, run: &[Quarantined]) -> Vec<String> {
        let unkept = batch::with_retries(run.len(), |pending: Vec<usize>| async move {
            let messages: Vec<&Quarantined> = pending.iter().map(|&i| &run[i]).collect();
            match self.send(&messages).await {
                Ok(failed) => failed.into_iter().map(|i| pending[i]).collect(),
                Err(e) => {
                    error!(error = %error_chain(&e), messages = messages.len(), "dead-letter queue unreachable");
                    pending
                }
            }
        })
        .await;
        unkept.into_iter().map(|i| run[i].message_id.clone()).collect()
    }
}

fn text(value: &str) -> Result<MessageAttributeValue, AwsError> {
    MessageAttributeValue::builder()
        .data_type(ATTRIBUTE_TYPE)
        .string_value(value)
        .build()
        .map_err(|e| AwsError::new("sqs:SendMessageBatch", e))
}

#[async_trait::async_trait]
impl Quarantine for DeadLetterQueue {
    /// Messages not kept after the retries go back to the queue (the caller fails them): never
    /// dropped.
    async fn quarantine(&self, messages: &[Quarantined]) -> Vec<String> {
        let sizes: Vec<usize> = messages.iter().map(message_size).collect();
        let runs = batch::split(&sizes, SEND_BATCH_ENTRIES, SEND_BATCH_BYTES);
        join_all(runs.into_iter().map(|run| self.keep(&messages[run])))
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_sqs::operation::send_message_batch::{SendMessageBatchInput, SendMessageBatchOutput};
    use aws_sdk_sqs::types::{BatchResultErrorEntry, SendMessageBatchResultEntry};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    fn rejected(id: &str, bytes: usize) -> Quarantined {
        Quarantined {
            message_id: id.into(),
            body: "x".repeat(bytes),
            reason: "not an ECS event".into(),
        }
    }

    /// A queue that fails messages whose id starts `once` the first time and `always` every
    /// time, and keeps each request's source message ids.
    fn queue() -> (Arc<Mutex<Vec<Vec<String>>>>, DeadLetterQueue) {
        let requests = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
        let seen = requests.clone();
        let send =
            mock!(aws_sdk_sqs::Client::send_message_batch).then_compute_output(move |r: &SendMessageBatchInput| {
                let mut requests = seen.lock().unwrap();
                let source = |e: &SendMessageBatchRequestEntry| {
                    e.message_attributes()
                        .and_then(|a| a.get(MESSAGE_ID_ATTRIBUTE))
                        .and_then(|v| v.string_value())
                        .unwrap_or_default()
                        .to_owned()
                };
                let ids: Vec<String> = r.entries().iter().map(source).collect();
                let fails = |id: &String| {
                    id.starts_with("always") || (id.starts_with("once") && !requests.iter().flatten().any(|s| s == id))
                };
                let (mut ok, mut failed) = (Vec::new(), Vec::new());
                for (entry, id) in r.entries().iter().zip(&ids) {
                    if fails(id) {
                        failed.push(
                            BatchResultErrorEntry::builder()
                                .id(entry.id())
                                .sender_fault(false)
                                .code("InternalError")
                                .build()
                                .unwrap(),
                        );
                    } else {
                        ok.push(
                            SendMessageBatchResultEntry::builder()
                                .id(entry.id())
                                .message_id("m")
                                .md5_of_message_body("0")
                                .build()
                                .unwrap(),
                        );
                    }
                }
                requests.push(ids);
                SendMessageBatchOutput::builder()
                    .set_successful(Some(ok))
                    .set_failed(Some(failed))
                    .build()
                    .unwrap()
            });
        let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&send]);
        (
            requests,
            DeadLetterQueue::new(OnFirstUse::ready(client), "https://sqs/dlq"),
        )
    }

    #[tokio::test]
    async fn when_rejected_messages_are_large_then_each_batch_stays_within_256_kib() {
        let (requests, dlq) = queue();
        let messages: Vec<Quarantined> = (0..6).map(|i| rejected(&format!("m{i}"), 100_000)).collect();
        assert!(dlq.quarantine(&messages).await.is_empty());
        let sizes: Vec<usize> = requests.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 6);
        assert!(sizes.iter().all(|&n| n <= 2), "{sizes:?}");
    }

    #[tokio::test]
    async fn when_some_messages_are_not_kept_then_only_those_are_sent_again() {
        let (requests, dlq) = queue();
        let messages = [rejected("a", 10), rejected("once", 10), rejected("b", 10)];
        assert!(dlq.quarantine(&messages).await.is_empty());
        assert_eq!(requests.lock().unwrap()[1], ["once"]);
    }

    #[tokio::test]
    async fn when_a_message_is_never_kept_then_its_id_goes_back_to_the_caller() {
        let (requests, dlq) = queue();
        let messages = [rejected("a", 10), rejected("always", 10)];
        assert_eq!(dlq.quarantine(&messages).await, ["always"]);
        let sizes: Vec<usize> = requests.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 1, 1]);
    }
}
