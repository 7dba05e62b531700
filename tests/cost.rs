//! What the incident ledger costs in AWS calls, counted by the emulator: counts, not times, so
//! they hold in every build and on every machine. `make bench BENCH_ONLY=calls` writes the same
//! measures down (and a batch that changes nothing, which tests/incidents.rs holds: no DynamoDB
//! call). Issue 21's budgets: 15 calls for 300 new problems, 150 for the 25×20 storm.

use watchdog_tests::cost::{self, of, total};
use watchdog_tests::runtime::monitor_binary;

/// Before the ledger: 3 `DescribeContainerInstances`, 3 `DescribeInstances`, 1 `Publish`, and
/// 1 `DescribeClusters` (the cluster's silence tag, cached for `TAG_CACHE_TTL_SECONDS`) (8).
/// The ledger: 1 `BatchGetItem` (the group record and the cluster's open-incident count: an
/// event's incidents are put without reading them first), 4 + 3 `TransactWriteItems` (each
/// incident leased, with the group record and the count's move: 302 actions, 100 a call; then
/// settled once SNS took the alert). Before the outbox: 313; before these batches: 19 (+1).
/// Issue 21's budget of 15 was set before silences: the ledger's part is 8 (was 12).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_300_new_problems_come_in_one_batch_then_they_cost_16_calls_at_most() {
    let (first, repeat) = cost::new_problems(&monitor_binary(), 300).await;
    assert!(total(&first) <= 16, "{first:?}");
    assert!(of(&first, "dynamodb") <= 8, "{first:?}");
    assert_eq!(total(&first) - of(&first, "dynamodb"), 8, "{first:?}");
    assert_eq!(first.get("sns:Publish"), Some(&1), "{first:?}");
    assert_eq!(first.get("dynamodb:BatchGetItem"), Some(&1), "{first:?}");
    // The same 300 again: the group record read, the blind puts cancelled, each with the item
    // stored (4 `TransactWriteItems` that write nothing), planned again: nothing to write or send.
    assert_eq!(of(&repeat, "sns"), 0, "{repeat:?}");
    assert!(of(&repeat, "dynamodb") <= 5, "{repeat:?}");
    assert!(
        repeat.keys().all(|op| !op.starts_with("dynamodb:")
            || op == "dynamodb:BatchGetItem"
            || op == "dynamodb:TransactWriteItems"),
        "{repeat:?}"
    );
}

/// Each invocation of 20: 1 `DescribeContainerInstances`, 1 `DescribeInstances`, 1
/// `BatchGetItem` (the group record and the count), 1 `TransactWriteItems` (20 held, the group
/// record: last held, digest due; the count's move): 4 × 25, the first page's `Publish` and
/// settling, and 1 `DescribeClusters` (the silence tag, cached across the warm invocations).
/// Before the outbox: 1,162; before these batches: 177.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_500_agents_disconnect_in_25_invocations_of_20_then_the_storm_costs_150_calls_at_most() {
    let storm = cost::storm_25_by_20().await;
    assert!(total(&storm.invocations) <= 150, "{storm:#?}");
    assert_eq!(storm.invocations.get("sns:Publish"), Some(&1), "{storm:#?}");
    assert_eq!(storm.invocations.get("dynamodb:PutItem"), None, "{storm:#?}");
    assert_eq!(storm.invocations.get("dynamodb:UpdateItem"), None, "{storm:#?}");
    // One page, one digest (by the sweep after the interval), and each sweep asks the outbox
    // index once: nothing due costs one `Query`.
    assert_eq!((storm.firing, storm.digests, storm.other), (1, 1, 0), "{storm:#?}");
    assert_eq!(storm.due_queries, (1, 1), "{storm:#?}");
    assert_eq!(of(&storm.idle_sweep, "sns"), 0, "{storm:#?}");
}

/// A batch that confirms nothing and finds nothing over (agents disconnected on instances an
/// operator drains, and a repeat of one): the describe, no DynamoDB call at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_batch_changes_nothing_then_it_costs_no_dynamodb_call() {
    let quiet = cost::quiet_batch(&monitor_binary()).await;
    assert_eq!(of(&quiet, "dynamodb"), 0, "{quiet:?}");
    assert_eq!(of(&quiet, "sns"), 0, "{quiet:?}");
}
