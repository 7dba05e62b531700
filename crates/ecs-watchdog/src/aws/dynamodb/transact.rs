//! `TransactWriteItems`: up to 100 conditional actions, all or nothing. A cancelled
//! transaction says, for each action in request order, why: `None` (its condition held),
//! `ConditionalCheckFailed` (with the item stored, when asked with `ALL_OLD`), or a conflict
//! with another transaction or throttling (worth trying again).
//! https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
//! https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CancellationReason.html

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};

use super::record::{n, s};
use super::{DynamoLedger, RETRIES};
use crate::ports::AwsError;

const OPERATION: &str = "dynamodb:TransactWriteItems";
const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// Why one action of a cancelled transaction did not go through.
pub(super) struct Reason {
    pub code: String,
    /// The item stored, for an action whose condition failed (none: no item is stored).
    pub item: Option<HashMap<String, AttributeValue>>,
}

impl Reason {
    pub fn failed(&self) -> bool {
        self.code == CONDITION_FAILED
    }
}

impl DynamoLedger {
    /// One attempt: `None` when written, the reasons when cancelled.
    async fn attempt(&self, actions: Vec<TransactWriteItem>) -> Result<Option<Vec<Reason>>, AwsError> {
        let _turn = self.turns.wait().await;
        let result = self
            .client
            .get()
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(e) => match cancelled(&e) {
                Some(reasons) => Ok(Some(reasons)),
                None => Err(super::super::sdk_error(OPERATION, e)),
            },
        }
    }

    /// Writes each action (at most 100) in one `TransactWriteItems`; one answer each: `false`
    /// when its condition failed. A cancelled transaction writes nothing: the actions whose
    /// condition held are sent again, without the others.
    pub(super) async fn transact(&self, actions: Vec<TransactWriteItem>) -> Result<Vec<bool>, AwsError> {
        let mut answers: Vec<Option<bool>> = vec![None; actions.len()];
        for attempt in 0..=RETRIES {
            let pending: Vec<usize> = (0..actions.len()).filter(|i| answers[*i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            backoff(attempt).await;
            let sent = pending.iter().map(|i| actions[*i].clone()).collect();
            match self.attempt(sent).await? {
                None => pending.iter().for_each(|i| answers[*i] = Some(true)),
                Some(reasons) => {
                    for (i, reason) in pending.iter().zip(reasons) {
                        if reason.failed() {
                            answers[*i] = Some(false);
                        }
                    }
                }
            }
        }
        answers
            .into_iter()
            .map(|a| a.ok_or_else(|| AwsError::new(OPERATION, "still cancelled after retries")))
            .collect()
    }

    /// Writes the actions together or not at all: `None` when written; when a condition failed,
    /// each action's reason (what to do with the others is the caller's: they were planned
    /// together). A transaction cancelled only by conflicts or throttling is sent again whole.
    pub(super) async fn transact_all(&self, actions: Vec<TransactWriteItem>) -> Result<Option<Vec<Reason>>, AwsError> {
        for attempt in 0..=RETRIES {
            backoff(attempt).await;
            match self.attempt(actions.clone()).await? {
                Some(reasons) if !reasons.iter().any(Reason::failed) => continue,
                answer => return Ok(answer),
            }
        }
        Err(AwsError::new(OPERATION, "still cancelled after retries"))
    }
}

/// The cancellation reasons of a cancelled transaction, in request order.
fn cancelled(
    e: &SdkError<TransactWriteItemsError, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> Option<Vec<Reason>> {
    match e.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(t) => Some(
            t.cancellation_reasons()
                .iter()
                .map(|r| Reason {
                    code: r.code().unwrap_or("None").to_owned(),
                    item: r.item().cloned(),
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Before a retry: 0, 50, 100, 200 … ms.
pub(super) async fn backoff(attempt: u32) {
    if attempt > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
    }
}

/// A conditional put of a whole record, written only if the stored version is one less; when
/// it is not, the cancellation carries the item stored.
pub(super) fn put_action(
    item: HashMap<String, AttributeValue>,
    version: u64,
    table: &str,
) -> Result<TransactWriteItem, AwsError> {
    let mut put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    put = if version <= 1 {
        put.condition_expression("attribute_not_exists(id)")
    } else {
        put.condition_expression("version = :previous")
            .expression_attribute_values(":previous", n(version - 1))
    };
    let put = put.build().map_err(|e| AwsError::new(OPERATION, e))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Moves a cluster's count of open incidents (no condition: it only adds).
pub(super) fn count_action(cluster_arn: &str, delta: i64, table: &str) -> Result<TransactWriteItem, AwsError> {
    let update = Update::builder()
        .table_name(table)
        .key("id", s(super::count_id(cluster_arn)))
        .update_expression("ADD open_count :delta")
        .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()))
        .build()
        .map_err(|e| AwsError::new(OPERATION, e))?;
    Ok(TransactWriteItem::builder().update(update).build())
}
