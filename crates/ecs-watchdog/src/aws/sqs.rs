//! SQS: the dead-letter queue that keeps unusable messages with the reason.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use futures_util::future::join_all;
use tracing::error;

use super::shared::{OnFirstUse, Turns};
use crate::ports::{AwsError, Quarantine, Quarantined, error_chain};

/// `SendMessageBatch` takes at most ten entries.
const SEND_BATCH_LIMIT: usize = 10;
pub const REASON_ATTRIBUTE: &str = "watchdog-reject-reason";
pub const MESSAGE_ID_ATTRIBUTE: &str = "watchdog-source-message-id";

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

    /// Sends one batch; returns the ids of the messages that were not kept.
    async fn send(&self, messages: &[Quarantined]) -> Result<Vec<String>, AwsError> {
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
                Some(messages.get(index)?.message_id.clone())
            })
            .collect())
    }
}

fn text(value: &str) -> Result<MessageAttributeValue, AwsError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| AwsError::new("sqs:SendMessageBatch", e))
}

#[async_trait::async_trait]
impl Quarantine for DeadLetterQueue {
    async fn quarantine(&self, messages: &[Quarantined]) -> Vec<String> {
        let chunks: Vec<&[Quarantined]> = messages.chunks(SEND_BATCH_LIMIT).collect();
        let results = join_all(chunks.iter().map(|chunk| self.send(chunk))).await;
        chunks
            .into_iter()
            .zip(results)
            .flat_map(|(chunk, result)| match result {
                Ok(unkept) => unkept,
                Err(e) => {
                    error!(error = %error_chain(&e), messages = chunk.len(), "dead-letter queue unreachable: the messages go back to the queue");
                    chunk.iter().map(|m| m.message_id.clone()).collect()
                }
            })
            .collect()
    }
}
