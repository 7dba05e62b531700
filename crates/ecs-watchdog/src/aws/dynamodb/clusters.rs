//! What the sweep saw of each cluster (`DescribeClusters`: the tags the monitor reads and the
//! cluster's size), one item per cluster, `cluster|<cluster ARN>`, read in the monitor's one
//! `BatchGetItem` beside the cluster's open-incident count. A sibling of the count item rather
//! than attributes on it: `BatchWriteItem` puts whole items, and the count is moved by `ADD`
//! inside the incidents' transactions, which a put would overwrite; an `UpdateItem` per
//! cluster would cost the sweep one call per cluster instead of one per 25.
//! https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};

use super::record::{n, s};
use super::transact::backoff;
use super::{DynamoLedger, RETRIES};
use crate::ports::{AwsError, ClusterRecord};

/// What a cluster's record is keyed by, before its ARN.
pub(super) const CLUSTER_PREFIX: &str = "cluster|";
/// A record nobody rewrote (its cluster deleted, or the sweep turned off) leaves with
/// DynamoDB's TTL after this long; the monitor stops trusting it long before.
const KEEP_SECONDS: u64 = 7 * 24 * 3600;
const OPERATION: &str = "dynamodb:BatchWriteItem";

pub(super) fn cluster_id(cluster_arn: &str) -> String {
    format!("{CLUSTER_PREFIX}{cluster_arn}")
}

fn item(record: &ClusterRecord) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("id".to_owned(), s(cluster_id(&record.cluster_arn))),
        ("filter".to_owned(), s(&record.filter)),
        ("monitored".to_owned(), AttributeValue::Bool(record.monitored)),
        ("seen_at".to_owned(), n(record.seen_at)),
        ("expires_at".to_owned(), n(record.seen_at + KEEP_SECONDS)),
    ]);
    if let Some(silence) = &record.silence {
        item.insert("silence".to_owned(), s(silence));
    }
    if let Some(registered) = record.registered {
        item.insert("registered".to_owned(), n(registered as u64));
    }
    item
}

/// Reads a record back; one this version cannot read is skipped (the monitor asks ECS).
pub(super) fn record(cluster_arn: &str, item: &HashMap<String, AttributeValue>) -> Option<ClusterRecord> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
    Some(ClusterRecord {
        cluster_arn: cluster_arn.to_owned(),
        filter: text("filter")?,
        monitored: *item.get("monitored")?.as_bool().ok()?,
        silence: text("silence"),
        registered: number("registered").map(|r: u64| r as usize),
        seen_at: number("seen_at")?,
    })
}

impl DynamoLedger {
    /// One `BatchWriteItem` of these records (at most 25), writing again what DynamoDB left
    /// unprocessed, with a growing pause.
    pub(super) async fn write_clusters(&self, records: &[ClusterRecord]) -> Result<(), AwsError> {
        let mut left = records
            .iter()
            .map(|r| {
                let put = PutRequest::builder().set_item(Some(item(r))).build();
                put.map(|p| WriteRequest::builder().put_request(p).build())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AwsError::new(OPERATION, e))?;
        for attempt in 0..=RETRIES {
            if left.is_empty() {
                return Ok(());
            }
            backoff(attempt).await;
            let _turn = self.turns.wait().await;
            let output = self
                .client
                .get()
                .batch_write_item()
                .request_items(&self.table, std::mem::take(&mut left))
                .send()
                .await
                .map_err(|e| super::super::sdk_error(OPERATION, e))?;
            if let Some(unprocessed) = output.unprocessed_items().and_then(|u| u.get(&self.table)) {
                left = unprocessed.to_vec();
            }
        }
        Err(AwsError::new(
            OPERATION,
            "records still unprocessed after retries (throttled)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_a_cluster_record_is_written_then_it_reads_back_the_same_and_expires_after_a_week() {
        let arn = "arn:aws:ecs:eu-west-1:111111111111:cluster/prod";
        for (silence, registered) in [(Some("2026-12-05T18:00:00Z".to_owned()), Some(40)), (None, None)] {
            let written = ClusterRecord {
                cluster_arn: arn.to_owned(),
                filter: "team=platform".to_owned(),
                monitored: true,
                silence,
                registered,
                seen_at: 1_796_464_800,
            };
            let stored = item(&written);
            assert_eq!(stored["id"], s(format!("cluster|{arn}")));
            assert_eq!(stored["expires_at"], n(1_796_464_800 + KEEP_SECONDS));
            assert_eq!(record(arn, &stored), Some(written));
        }
        let unreadable = HashMap::from([("id".to_owned(), s(cluster_id(arn)))]);
        assert_eq!(record(arn, &unreadable), None);
    }
}
