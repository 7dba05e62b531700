//! A run's claim on an action (the agent restart): one item beside the incidents, `id` and
//! `claimed_until`, expiring by TTL. Taken by a conditional `PutItem` (no claim, or one that
//! ended); given back by a conditional `DeleteItem` on the `claimed_until` it was taken with.
//! That value identifies the claim: a later claim is written only once this one ended
//! (`claimed_until <= now`) and holds past `now`, so its `claimed_until` is greater: a release
//! never deletes another run's newer claim.
//! https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html

use super::record::{n, s};
use super::{DynamoLedger, written};
use crate::ports::AwsError;

impl DynamoLedger {
    pub(super) async fn take_claim(&self, id: &str, now: u64, until: u64) -> Result<bool, AwsError> {
        let _turn = self.turns.wait().await;
        let request = self
            .client
            .get()
            .put_item()
            .table_name(&self.table)
            .item("id", s(id))
            .item("claimed_until", n(until))
            .item("expires_at", n(until))
            .condition_expression("attribute_not_exists(id) OR claimed_until <= :now")
            .expression_attribute_values(":now", n(now));
        written("dynamodb:PutItem", request.send().await)
    }

    pub(super) async fn give_back(&self, id: &str, until: u64) -> Result<bool, AwsError> {
        let _turn = self.turns.wait().await;
        let request = self
            .client
            .get()
            .delete_item()
            .table_name(&self.table)
            .key("id", s(id))
            .condition_expression("claimed_until = :until")
            .expression_attribute_values(":until", n(until));
        written("dynamodb:DeleteItem", request.send().await)
    }
}
