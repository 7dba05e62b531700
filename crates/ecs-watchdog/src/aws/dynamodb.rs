//! DynamoDB: the incident ledger. One item per incident, keyed by [`IncidentKey::id`]; every
//! write is conditional, so racing invocations cannot both alert. One counter item per cluster
//! (`open-count|<cluster ARN>`) keeps the number of open incidents for the gauge.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::shared::{OnFirstUse, Turns};
use crate::alert::Status;
use crate::alert::{AlertKind, InstanceFinding};
use crate::incident::{Group, GroupKey, Incident, IncidentKey};
use crate::ports::{AwsError, Ledger};

/// How long a closed incident stays before DynamoDB's TTL removes it.
const KEEP_CLOSED_SECONDS: u64 = 30 * 24 * 3600;
/// The table's global secondary index by cluster ARN and state: the sweep's one query for a
/// cluster's open incidents. The template creates it under this name.
pub const CLUSTER_INDEX: &str = "by-cluster";
/// The index of held incidents by the group that holds them (sparse: only held items carry
/// `held_group`): a digest's one query. The template creates it under this name.
pub const HELD_INDEX: &str = "by-held-group";
/// `BatchGetItem` answers what it could not read yet as unprocessed: asked again this often.
const UNPROCESSED_RETRIES: usize = 3;

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
        for _ in 0..=UNPROCESSED_RETRIES {
            if wanted.is_empty() {
                return Ok(found);
            }
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
            if condition.contains("#state") {
                request = request.expression_attribute_names("#state", "state");
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

    /// An update of one item (an incident or a group record) under a condition; `Ok(false)`
    /// when the condition failed. `#state` stands for `state`, a reserved word.
    async fn update(
        &self,
        id: String,
        update: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<bool, AwsError> {
        let _turn = self.turns.wait().await;
        let mut request = self
            .client
            .get()
            .update_item()
            .table_name(&self.table)
            .key("id", s(id))
            .update_expression(update)
            .condition_expression(condition);
        if update.contains("#state") || condition.contains("#state") {
            request = request.expression_attribute_names("#state", "state");
        }
        for (name, value) in values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        conditional("dynamodb:UpdateItem", request.send().await.map(|_| ()))
    }
}

fn conditional<E>(
    operation: &'static str,
    result: Result<(), SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>>,
) -> Result<bool, AwsError>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_smithy_types::error::metadata::ProvideErrorMetadata;
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(super::sdk_error(operation, e)),
    }
}

fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn n(number: u64) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

fn item(incident: &Incident) -> HashMap<String, AttributeValue> {
    let key = &incident.key;
    let mut item = HashMap::from([
        ("id".to_owned(), s(key.id())),
        ("state".to_owned(), s(if incident.open { "open" } else { "closed" })),
        ("cluster_arn".to_owned(), s(&key.cluster_arn)),
        ("kind".to_owned(), s(key.kind.as_str())),
        ("instance".to_owned(), s(&key.instance)),
        ("opened_at".to_owned(), n(incident.opened_at)),
        ("notified_at".to_owned(), n(incident.notified_at)),
        (
            "finding".to_owned(),
            s(serde_json::to_string(&incident.finding).unwrap_or_default()),
        ),
        (
            "remediation_reported".to_owned(),
            AttributeValue::Bool(incident.remediation_reported),
        ),
    ]);
    if let Some(daemon) = &key.daemon {
        item.insert("daemon".to_owned(), s(daemon));
    }
    if let Some(status) = incident.held {
        let group = GroupKey::new(&key.cluster_arn, key.kind, status);
        item.insert("held_group".to_owned(), s(group.id()));
    }
    item
}

fn held_status(group_id: &str) -> Option<Status> {
    match group_id.split('|').nth(1)? {
        "firing" => Some(Status::Firing),
        "resolved" => Some(Status::Resolved),
        _ => None,
    }
}

/// Reads an item back; one this version did not write (or cannot read) is skipped.
fn incident(item: &HashMap<String, AttributeValue>) -> Option<Incident> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok());
    let kind = AlertKind::parse(&text("kind")?)?;
    let finding: InstanceFinding = serde_json::from_str(&text("finding")?).ok()?;
    Some(Incident {
        key: IncidentKey {
            cluster_arn: text("cluster_arn")?,
            kind,
            instance: text("instance")?,
            daemon: text("daemon"),
        },
        open: text("state")? == "open",
        opened_at: number("opened_at")?,
        notified_at: number("notified_at").unwrap_or(0),
        finding,
        remediation_reported: item
            .get("remediation_reported")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        held: text("held_group").as_deref().and_then(held_status),
        resolution: text("resolution"),
        closed_at: number("closed_at").unwrap_or(0),
    })
}

fn group(item: &HashMap<String, AttributeValue>) -> Option<Group> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    let id = text("id")?;
    let mut parts = id.splitn(4, '|');
    let (_, status, kind, cluster) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let status = held_status(&format!("group|{status}"))?;
    Some(Group {
        key: GroupKey::new(cluster, AlertKind::parse(kind)?, status),
        window_end: number("window_end").unwrap_or(0).max(0) as u64,
        held: number("held").unwrap_or(0).max(0) as u64,
        last_held: number("last_held").unwrap_or(0).max(0) as u64,
    })
}

#[async_trait::async_trait]
impl Ledger for DynamoLedger {
    async fn get(&self, keys: &[IncidentKey]) -> Result<Vec<Incident>, AwsError> {
        let ids: Vec<String> = keys.iter().map(IncidentKey::id).collect();
        Ok(self.batch_get(&ids).await?.iter().filter_map(incident).collect())
    }

    async fn open(&self, incident: &Incident) -> Result<bool, AwsError> {
        let _turn = self.turns.wait().await;
        let result = self
            .client
            .get()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(incident)))
            .condition_expression("attribute_not_exists(id) OR #state = :closed")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":closed", s("closed"))
            .send()
            .await
            .map(|_| ());
        conditional("dynamodb:PutItem", result)
    }

    async fn claim(&self, incident: &Incident, expected: u64) -> Result<bool, AwsError> {
        let finding = serde_json::to_string(&incident.finding).unwrap_or_default();
        self.update(
            incident.key.id(),
            "SET notified_at = :now, finding = :finding, remediation_reported = :reported",
            "#state = :open AND notified_at = :expected",
            &[
                (":now", n(incident.notified_at)),
                (":finding", s(finding)),
                (":reported", AttributeValue::Bool(incident.remediation_reported)),
                (":open", s("open")),
                (":expected", n(expected)),
            ],
        )
        .await
    }

    async fn release(&self, key: &IncidentKey, claimed: u64, to: u64) -> Result<bool, AwsError> {
        self.update(
            key.id(),
            "SET notified_at = :to, remediation_reported = :no",
            "#state = :open AND notified_at = :claimed",
            &[
                (":to", n(to)),
                (":no", AttributeValue::Bool(false)),
                (":open", s("open")),
                (":claimed", n(claimed)),
            ],
        )
        .await
    }

    async fn close(&self, key: &IncidentKey, now: u64, how: &str, hold: Option<&GroupKey>) -> Result<bool, AwsError> {
        let mut values = vec![
            (":closed", s("closed")),
            (":now", n(now)),
            (":expires", n(now + KEEP_CLOSED_SECONDS)),
            (":open", s("open")),
            (":how", s(how)),
        ];
        let mut update = "SET #state = :closed, closed_at = :now, expires_at = :expires, resolution = :how".to_owned();
        if let Some(group) = hold {
            update.push_str(", held_group = :group");
            values.push((":group", s(group.id())));
        }
        self.update(key.id(), &update, "#state = :open", &values).await
    }

    async fn open_incidents(&self, cluster_arn: &str) -> Result<Vec<IncidentKey>, AwsError> {
        let items = self
            .query(
                CLUSTER_INDEX,
                "cluster_arn = :cluster AND #state = :open",
                &[(":cluster", s(cluster_arn)), (":open", s("open"))],
            )
            .await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
                Some(IncidentKey {
                    cluster_arn: text("cluster_arn")?,
                    kind: AlertKind::parse(&text("kind")?)?,
                    instance: text("instance")?,
                    daemon: text("daemon"),
                })
            })
            .collect())
    }

    async fn count_open(&self, cluster_arn: &str, delta: i64) -> Result<i64, AwsError> {
        let _turn = self.turns.wait().await;
        let output = self
            .client
            .get()
            .update_item()
            .table_name(&self.table)
            .key("id", s(format!("open-count|{cluster_arn}")))
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

    async fn set_window(&self, key: &GroupKey, expected: u64, to: u64) -> Result<bool, AwsError> {
        let condition = if expected == 0 {
            "attribute_not_exists(window_end) OR window_end = :expected"
        } else {
            "window_end = :expected"
        };
        self.update(
            key.id(),
            "SET window_end = :to",
            condition,
            &[(":to", n(to)), (":expected", n(expected))],
        )
        .await
    }

    async fn count_held(&self, key: &GroupKey, delta: i64, now: u64) -> Result<(), AwsError> {
        let _turn = self.turns.wait().await;
        let mut request = self
            .client
            .get()
            .update_item()
            .table_name(&self.table)
            .key("id", s(key.id()))
            .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()));
        request = if delta > 0 {
            request
                .update_expression("ADD held :delta SET last_held = :now")
                .expression_attribute_values(":now", n(now))
        } else {
            request.update_expression("ADD held :delta")
        };
        request
            .send()
            .await
            .map_err(|e| super::sdk_error("dynamodb:UpdateItem", e))?;
        Ok(())
    }

    async fn held(&self, key: &GroupKey) -> Result<Vec<Incident>, AwsError> {
        let items = self
            .query(HELD_INDEX, "held_group = :group", &[(":group", s(key.id()))])
            .await?;
        Ok(items.iter().filter_map(incident).collect())
    }

    async fn told(&self, key: &IncidentKey, group: &GroupKey, now: u64) -> Result<bool, AwsError> {
        self.update(
            key.id(),
            // The digest carried the finding, what remediation did included.
            "SET notified_at = :now, remediation_reported = :reported REMOVE held_group",
            "held_group = :group",
            &[
                (":now", n(now)),
                (":reported", AttributeValue::Bool(true)),
                (":group", s(group.id())),
            ],
        )
        .await
    }

    async fn reopen(&self, key: &IncidentKey, closed_at: u64) -> Result<bool, AwsError> {
        self.update(
            key.id(),
            "SET #state = :open REMOVE closed_at, expires_at",
            "#state = :closed AND closed_at = :at",
            &[(":open", s("open")), (":closed", s("closed")), (":at", n(closed_at))],
        )
        .await
    }
}
