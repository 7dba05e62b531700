//! Reading and writing records of several kinds together: one `BatchGetItem` for a run's
//! incidents, group records, counts and cluster records; one `TransactWriteItems` for a batch of the plan, its
//! group records and its count moves, all or nothing. A record whose condition failed comes
//! back with the item stored (`ReturnValuesOnConditionCheckFailure` `ALL_OLD`): a new incident
//! is put without reading it first, and read only when it was not new.
//! https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CancellationReason.html

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

use super::clusters::{CLUSTER_PREFIX, cluster_id, record};
use super::record::{group, group_item, incident, item};
use super::transact::{count_action, put_action};
use super::{COUNT_PREFIX, DynamoLedger, count_id};
use crate::incident::{GroupKey, IncidentKey};
use crate::ports::{Answer, AwsError, Batch, Keys, Stored, Written};

impl DynamoLedger {
    pub(super) async fn read_all(&self, keys: &Keys) -> Result<Stored, AwsError> {
        let ids: Vec<String> = keys
            .incidents
            .iter()
            .map(IncidentKey::id)
            .chain(keys.groups.iter().map(GroupKey::id))
            .chain(keys.counts.iter().map(|c| count_id(c)))
            .chain(keys.clusters.iter().map(|c| cluster_id(c)))
            .collect();
        if ids.is_empty() {
            return Ok(Stored::default());
        }
        let mut stored = stored(&self.batch_get(&ids).await?);
        // No counter yet: nothing was ever open there.
        for cluster in &keys.counts {
            if !stored.counts.iter().any(|(c, _)| c == cluster) {
                stored.counts.push((cluster.clone(), 0));
            }
        }
        Ok(stored)
    }

    pub(super) async fn write_all(&self, batch: &Batch) -> Result<Written, AwsError> {
        let mut actions = Vec::new();
        for g in &batch.groups {
            actions.push(put_action(group_item(g), g.version, &self.table)?);
        }
        for i in &batch.incidents {
            actions.push(put_action(item(i), i.version, &self.table)?);
        }
        for (cluster, delta) in counts(batch) {
            actions.push(count_action(cluster, delta, &self.table)?);
        }
        let mut written = Written::untouched(batch);
        let Some(reasons) = self.transact_all(actions).await? else {
            written.groups.fill(Answer::Written);
            written.incidents.fill(Answer::Written);
            return Ok(written);
        };
        let mut found = Vec::new();
        let answers = written.groups.iter_mut().chain(written.incidents.iter_mut());
        for (answer, reason) in answers.zip(reasons) {
            if reason.failed() {
                *answer = Answer::Moved;
                found.extend(reason.item);
            }
        }
        written.found = stored(&found);
        Ok(written)
    }
}

/// Each cluster's move of its count, from the incidents' own.
fn counts(batch: &Batch) -> BTreeMap<&str, i64> {
    let mut counts = BTreeMap::new();
    for (i, opens) in batch.incidents.iter().zip(&batch.opens) {
        *counts.entry(i.key.cluster_arn.as_str()).or_default() += opens;
    }
    counts.retain(|_, delta| *delta != 0);
    counts
}

/// Items of every kind, read back; one this version cannot read is skipped.
fn stored(items: &[HashMap<String, AttributeValue>]) -> Stored {
    let mut out = Stored::default();
    for item in items {
        let id = item.get("id").and_then(|v| v.as_s().ok()).map_or("", String::as_str);
        if let Some(cluster) = id.strip_prefix(COUNT_PREFIX) {
            let count = item.get("open_count").and_then(|v| v.as_n().ok());
            out.counts
                .push((cluster.to_owned(), count.and_then(|c| c.parse().ok()).unwrap_or(0)));
        } else if let Some(cluster) = id.strip_prefix(CLUSTER_PREFIX) {
            out.clusters.extend(record(cluster, item));
        } else if id.starts_with("group|") {
            out.groups.extend(group(item));
        } else {
            out.incidents.extend(incident(item));
        }
    }
    out
}
