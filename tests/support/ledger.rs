//! Time passing for the incident ledger of the real binaries, which read the system clock: the
//! table's times move back instead, as the queue's redelivery would find them after a wait.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// What a UNIX time in seconds looks like (2001 to 2096): versions, counts and sizes are far
/// below, so only times move.
const TIMES: std::ops::RangeInclusive<u64> = 1_000_000_000..=4_000_000_000;

/// Moves every time the table holds `seconds` into the past (opened, notified, lease and due
/// times, group windows): as if that long had passed since the ledger was written. Returns how
/// many items it rewrote.
pub async fn pass(client: &aws_sdk_dynamodb::Client, table: &str, seconds: u64) -> usize {
    let mut start = None;
    let mut rewritten = 0;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("Scan");
        for item in page.items() {
            let aged = aged(item, seconds);
            if &aged != item {
                client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(aged))
                    .send()
                    .await
                    .expect("PutItem");
                rewritten += 1;
            }
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return rewritten;
        }
    }
}

fn aged(item: &HashMap<String, AttributeValue>, seconds: u64) -> HashMap<String, AttributeValue> {
    item.iter()
        .map(|(name, value)| {
            let time = value
                .as_n()
                .ok()
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|t| TIMES.contains(t));
            let value = time.map_or_else(|| value.clone(), |t| AttributeValue::N((t - seconds).to_string()));
            (name.clone(), value)
        })
        .collect()
}
