//! The places the ledger knows (DESIGN §8): where open incidents are, and which member places
//! sent an event lately, so the sweep covers a member that ever sent one without configuration.
//! One item, `places`, holds one attribute per place, `seen|<account>|<region>`, set to when an
//! event of it was last noted: read with the `BatchGetItem` the ledger already uses, written
//! with one `UpdateItem`. An item holds up to 400 KB, room for thousands of places.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{CLUSTER_INDEX, DynamoLedger, n, s};
use crate::alert::AlertKind;
use crate::config::Place;
use crate::incident::{IncidentKey, State};
use crate::ports::AwsError;

/// The id of the item that lists the places seen.
const PLACES_ID: &str = "places";
const SEEN: &str = "seen|";

impl DynamoLedger {
    /// A `Scan` of the cluster index (it projects only the key, state and what names the
    /// incident), every page, keeping the open incidents.
    /// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html
    pub(super) async fn scan_open(&self) -> Result<Vec<IncidentKey>, AwsError> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let _turn = self.turns.wait().await;
            let output = self
                .client
                .get()
                .scan()
                .table_name(&self.table)
                .index_name(CLUSTER_INDEX)
                .filter_expression("#state <> :closed")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":closed", s(State::Closed.as_str()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| super::super::sdk_error("dynamodb:Scan", e))?;
            keys.extend(output.items().iter().filter_map(key));
            match output.last_evaluated_key() {
                Some(last) if !last.is_empty() => start = Some(last.clone()),
                _ => return Ok(keys),
            }
        }
    }

    pub(super) async fn note(&self, place: &Place, now: u64) -> Result<(), AwsError> {
        let _turn = self.turns.wait().await;
        self.client
            .get()
            .update_item()
            .table_name(&self.table)
            .key("id", s(PLACES_ID))
            .update_expression("SET #place = :now")
            .expression_attribute_names("#place", format!("{SEEN}{}|{}", place.account, place.region))
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(|e| super::super::sdk_error("dynamodb:UpdateItem", e))?;
        Ok(())
    }

    pub(super) async fn seen(&self, since: u64) -> Result<Vec<Place>, AwsError> {
        let items = self.batch_get(&[PLACES_ID.to_owned()]).await?;
        Ok(items.iter().flat_map(|item| seen_since(item, since)).collect())
    }
}

/// The places of the `places` item noted at `since` or later.
fn seen_since(item: &HashMap<String, AttributeValue>, since: u64) -> Vec<Place> {
    item.iter()
        .filter_map(|(name, value)| {
            let (account, region) = name.strip_prefix(SEEN)?.split_once('|')?;
            let at: u64 = value.as_n().ok()?.parse().ok()?;
            (at >= since).then(|| Place::new(account, region))
        })
        .collect()
}

/// An open incident's key, as the cluster index projects it.
pub(super) fn key(item: &HashMap<String, AttributeValue>) -> Option<IncidentKey> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    Some(IncidentKey {
        cluster_arn: text("cluster_arn")?,
        kind: AlertKind::parse(&text("kind")?)?,
        instance: text("instance")?,
        daemon: text("daemon"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_the_places_item_is_read_then_only_places_seen_since_count() {
        let item = HashMap::from([
            ("id".to_owned(), s(PLACES_ID)),
            ("seen|111111111111|eu-west-1".to_owned(), n(1_000)),
            ("seen|222222222222|us-east-1".to_owned(), n(500)),
            ("seen|broken".to_owned(), n(2_000)),
        ]);
        assert_eq!(seen_since(&item, 900), [Place::new("111111111111", "eu-west-1")]);
    }
}
