//! DynamoDB: the incident ledger. One item per incident, keyed by [`IncidentKey::id`], and one
//! per group (`group|firing|<kind>|<cluster ARN>`); every write is conditional on the version
//! read (or, settling a lease, on its token), so racing runs cannot both send. Writes go in
//! `TransactWriteItems` of up to 100: a plan's batch all or nothing, what moved coming back as
//! stored (`batch.rs`); settles and the digest's marks retried without the items whose condition
//! failed (`transact.rs`). One counter item per cluster (`open-count|<cluster ARN>`) keeps the
//! number of open incidents for the gauge, moved in the same transactions; one record per
//! cluster (`cluster|<cluster ARN>`) keeps what the sweep last saw of it (`clusters.rs`); one
//! claim per restart (`restart-claim|…`) holds it for one run (`claims.rs`).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem, Update};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::shared::{OnFirstUse, Turns};
use crate::incident::{Group, GroupKey, Incident, IncidentKey, State};
use crate::ports::{AwsError, Batch, ClusterRecord, Keys, Ledger, Settle, Stored, Written};

mod batch;
mod claims;
mod clusters;
mod places;
mod record;
mod transact;

use record::{group, group_item, incident, item, n, s};
use transact::{backoff, put_action};

/// What a cluster's count of open incidents is keyed by, before its ARN.
const COUNT_PREFIX: &str = "open-count|";

fn count_id(cluster_arn: &str) -> String {
    format!("{COUNT_PREFIX}{cluster_arn}")
}

/// How long a closed incident stays before DynamoDB's TTL removes it.
const KEEP_CLOSED_SECONDS: u64 = 30 * 24 * 3600;
/// The table's global secondary index by cluster ARN and state: the sweep's one query for a
/// cluster's open incidents. The template creates it under this name.
pub const CLUSTER_INDEX: &str = "by-cluster";
/// The index of held incidents by the group that holds them (sparse: only held items carry
/// `held_group`): a digest's one query. The template creates it under this name.
pub const HELD_INDEX: &str = "by-held-group";
/// The outbox index (sparse: only what is owed carries `outbox` and `due_at`): everything due
/// by a time, in the whole table, in one `Query`. The template creates it under this name.
pub const OUTBOX_INDEX: &str = "by-due";
/// The one value of `outbox`: the index's partition.
const OWED: &str = "owed";
/// `BatchGetItem` answers what it could not read yet as unprocessed, and a cancelled
/// transaction's untouched items are written again: this often, with a growing pause.
const RETRIES: u32 = 4;

pub struct DynamoLedger {
    client: OnFirstUse<Client>,
    table: String,
    turns: Turns,
}

impl DynamoLedger {
    pub fn new(client: OnFirstUse<Client>, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            turns: Turns::new(),
        }
    }

    /// `BatchGetItem` of these ids (at most 100), strongly consistent, asking again for what
    /// DynamoDB left unprocessed.
    async fn batch_get(&self, ids: &[String]) -> Result<Vec<HashMap<String, AttributeValue>>, AwsError> {
        let mut wanted: Vec<HashMap<String, AttributeValue>> =
            ids.iter().map(|id| HashMap::from([("id".to_owned(), s(id))])).collect();
        let mut found = Vec::new();
        for attempt in 0..=RETRIES {
            if wanted.is_empty() {
                return Ok(found);
            }
            backoff(attempt).await;
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut wanted)))
                .consistent_read(true)
                .build()
                .map_err(|e| AwsError::new("dynamodb:BatchGetItem", e))?;
            let _turn = self.turns.wait().await;
            let output = self
                .client
                .get()
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| super::sdk_error("dynamodb:BatchGetItem", e))?;
            if let Some(items) = output.responses().and_then(|r| r.get(&self.table)) {
                found.extend(items.iter().cloned());
            }
            if let Some(left) = output.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                wanted = left.keys().to_vec();
            }
        }
        Err(AwsError::new(
            "dynamodb:BatchGetItem",
            "keys still unprocessed after retries (throttled)",
        ))
    }

    /// A `Query` of one of the table's indexes, every page.
    async fn query(
        &self,
        index: &str,
        condition: &str,
        filter: Option<&str>,
        values: &[(&str, AttributeValue)],
    ) -> Result<Vec<HashMap<String, AttributeValue>>, AwsError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let _turn = self.turns.wait().await;
            let mut request = self
                .client
                .get()
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(condition)
                .set_exclusive_start_key(start);
            if condition.contains("#state") || filter.is_some_and(|f| f.contains("#state")) {
                request = request.expression_attribute_names("#state", "state");
            }
            if let Some(filter) = filter {
                request = request.filter_expression(filter);
            }
            for (name, value) in values {
                request = request.expression_attribute_values(*name, value.clone());
            }
            let output = request
                .send()
                .await
                .map_err(|e| super::sdk_error("dynamodb:Query", e))?;
            items.extend(output.items().iter().cloned());
            match output.last_evaluated_key() {
                Some(last) if !last.is_empty() => start = Some(last.clone()),
                _ => return Ok(items),
            }
        }
    }
}

/// Whether a settle finds the incident seen over while its notice went out (`ended_at` set by
/// another run): an update expression cannot branch on an attribute, so settling to
/// `notified` comes in two forms, each conditional on it, and the second is tried only when
/// the first's condition failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    No,
    Yes,
}

/// Settling a lease: only its holder may. The outbox index follows the record as
/// [`Incident::due_at`] says: a settled alert leaves it, unless it was seen over meanwhile and
/// its resolved notice is owed from `ended_at`; a lease given back is due again at once.
fn settle_action(settle: &Settle, ended: Ended, table: &str) -> Result<TransactWriteItem, AwsError> {
    const LEASE: &str = "lease_token, lease_until, lease_notice";
    let (update, condition, values) = match (settle.state, ended) {
        (State::Notified, Ended::No) => (
            format!(
                "SET #state = :state, notified_at = :at ADD version :one REMOVE {LEASE}, held_group, outbox, due_at"
            ),
            "lease_token = :token AND attribute_not_exists(ended_at)",
            vec![(":at", n(settle.at))],
        ),
        (State::Notified, Ended::Yes) => (
            format!(
                "SET #state = :state, notified_at = :at, outbox = :owed, due_at = ended_at ADD version :one \
                 REMOVE {LEASE}, held_group"
            ),
            "lease_token = :token AND attribute_exists(ended_at)",
            vec![(":at", n(settle.at)), (":owed", s(OWED))],
        ),
        (State::Closed, _) => (
            format!(
                "SET #state = :state, closed_at = :at, expires_at = :expires ADD version :one REMOVE {LEASE}, outbox, due_at"
            ),
            "lease_token = :token",
            vec![(":at", n(settle.at)), (":expires", n(settle.at + KEEP_CLOSED_SECONDS))],
        ),
        _ => (
            format!("SET #state = :state, outbox = :owed, due_at = :at ADD version :one REMOVE {LEASE}"),
            "lease_token = :token",
            vec![(":at", n(settle.at.max(1))), (":owed", s(OWED))],
        ),
    };
    let mut builder = Update::builder()
        .table_name(table)
        .key("id", s(settle.key.id()))
        .update_expression(update)
        .condition_expression(condition)
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":state", s(settle.state.as_str()))
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":token", s(&settle.token));
    for (name, value) in values {
        builder = builder.expression_attribute_values(name, value);
    }
    let update = builder
        .build()
        .map_err(|e| AwsError::new("dynamodb:TransactWriteItems", e))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

#[async_trait::async_trait]
impl Ledger for DynamoLedger {
    async fn get(&self, keys: &[IncidentKey]) -> Result<Vec<Incident>, AwsError> {
        let ids: Vec<String> = keys.iter().map(IncidentKey::id).collect();
        Ok(self.batch_get(&ids).await?.iter().filter_map(incident).collect())
    }

    async fn read(&self, keys: &Keys) -> Result<Stored, AwsError> {
        self.read_all(keys).await
    }

    async fn write(&self, batch: &Batch) -> Result<Written, AwsError> {
        self.write_all(batch).await
    }

    async fn put(&self, incidents: &[Incident]) -> Result<Vec<bool>, AwsError> {
        let actions = incidents
            .iter()
            .map(|i| put_action(item(i), i.version, &self.table))
            .collect::<Result<Vec<_>, _>>()?;
        self.transact(actions).await
    }

    async fn settle(&self, settles: &[Settle]) -> Result<Vec<bool>, AwsError> {
        let actions = settles
            .iter()
            .map(|x| settle_action(x, Ended::No, &self.table))
            .collect::<Result<Vec<_>, _>>()?;
        let mut answers = self.transact(actions).await?;
        // Settled to `notified` but its condition failed: seen over meanwhile, or not ours.
        let again: Vec<usize> = (0..settles.len())
            .filter(|i| !answers[*i] && settles[*i].state == State::Notified)
            .collect();
        if again.is_empty() {
            return Ok(answers);
        }
        let actions = again
            .iter()
            .map(|i| settle_action(&settles[*i], Ended::Yes, &self.table))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, ok) in again.into_iter().zip(self.transact(actions).await?) {
            answers[i] = ok;
        }
        Ok(answers)
    }

    async fn open_incidents(&self, cluster_arn: &str) -> Result<Vec<IncidentKey>, AwsError> {
        let items = self
            .query(
                CLUSTER_INDEX,
                "cluster_arn = :cluster",
                Some("#state <> :closed"),
                &[(":cluster", s(cluster_arn)), (":closed", s(State::Closed.as_str()))],
            )
            .await?;
        Ok(items.iter().filter_map(places::key).collect())
    }

    async fn count_open(&self, cluster_arn: &str, delta: i64) -> Result<i64, AwsError> {
        let _turn = self.turns.wait().await;
        let output = self
            .client
            .get()
            .update_item()
            .table_name(&self.table)
            .key("id", s(count_id(cluster_arn)))
            .update_expression("ADD open_count :delta")
            .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| super::sdk_error("dynamodb:UpdateItem", e))?;
        Ok(output
            .attributes()
            .and_then(|a| a.get("open_count"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    async fn groups(&self, keys: &[GroupKey]) -> Result<Vec<Group>, AwsError> {
        let ids: Vec<String> = keys.iter().map(GroupKey::id).collect();
        Ok(self.batch_get(&ids).await?.iter().filter_map(group).collect())
    }

    async fn put_group(&self, record: &Group) -> Result<bool, AwsError> {
        let _turn = self.turns.wait().await;
        let mut request = self
            .client
            .get()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(group_item(record)));
        request = if record.version <= 1 {
            request.condition_expression("attribute_not_exists(id)")
        } else {
            request
                .condition_expression("version = :previous")
                .expression_attribute_values(":previous", n(record.version - 1))
        };
        written("dynamodb:PutItem", request.send().await)
    }

    async fn claim(&self, id: &str, now: u64, until: u64) -> Result<bool, AwsError> {
        self.take_claim(id, now, until).await
    }

    async fn release(&self, id: &str, until: u64) -> Result<bool, AwsError> {
        self.give_back(id, until).await
    }

    async fn held(&self, key: &GroupKey) -> Result<Vec<Incident>, AwsError> {
        let items = self
            .query(HELD_INDEX, "held_group = :group", None, &[(":group", s(key.id()))])
            .await?;
        Ok(items.iter().filter_map(incident).collect())
    }

    async fn owed(&self, now: u64) -> Result<(Vec<Incident>, Vec<Group>), AwsError> {
        let items = self
            .query(
                OUTBOX_INDEX,
                "outbox = :owed AND due_at <= :now",
                None,
                &[(":owed", s(OWED)), (":now", n(now))],
            )
            .await?;
        let (groups, incidents): (Vec<_>, Vec<_>) = items.iter().partition(|item| {
            item.get("id")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|id| id.starts_with("group|"))
        });
        Ok((
            incidents.into_iter().filter_map(incident).collect(),
            groups.into_iter().filter_map(group).collect(),
        ))
    }

    async fn open_everywhere(&self) -> Result<Vec<IncidentKey>, AwsError> {
        self.scan_open().await
    }

    async fn note_place(&self, place: &crate::config::Place, now: u64) -> Result<(), AwsError> {
        self.note(place, now).await
    }

    async fn places_seen(&self, since: u64) -> Result<Vec<crate::config::Place>, AwsError> {
        self.seen(since).await
    }

    async fn note_clusters(&self, records: &[ClusterRecord]) -> Result<(), AwsError> {
        self.write_clusters(records).await
    }
}

/// A conditional write's answer: written, or its condition did not hold (another run's).
fn written<T, E>(operation: &'static str, sent: Result<T, SdkError<E, HttpResponse>>) -> Result<bool, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match sent {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(super::sdk_error(operation, e)),
    }
}
