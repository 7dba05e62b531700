//! What the incident ledger costs in AWS calls, counted by the emulator: counts, not times, so
//! they hold in every build and on every machine. `make bench BENCH_ONLY=calls` writes the same
//! measures down (and a batch that changes nothing, which tests/incidents.rs holds: no DynamoDB
//! call). Issue 21's budgets are 15 calls for 300 new problems and 150 for the 25×20
//! storm; the ledger's design does not reach them yet (BENCHMARKS.md, "The outbox's calls",
//! says which calls and what would), so these hold today's counts as ceilings.

use watchdog_tests::cost::{self, of, total};
use watchdog_tests::runtime::monitor_binary;

/// Before the ledger: 3 `DescribeContainerInstances`, 3 `DescribeInstances`, 1 `Publish`, and
/// 1 `DescribeClusters` (the cluster's silence tag, cached for `TAG_CACHE_TTL_SECONDS`) (8).
/// The ledger: 3 + 1 `BatchGetItem` (the incidents, 100 a call, and the group record), 1
/// `PutItem` (the group opens its window), 3 + 3 `TransactWriteItems` (each incident leased,
/// then settled once SNS took the alert, 100 a call), 1 `UpdateItem` (the open-incident count).
/// Before the outbox: 313.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_300_new_problems_come_in_one_batch_then_they_cost_20_calls_at_most() {
    let (first, repeat) = cost::new_problems(&monitor_binary(), 300).await;
    assert_eq!(total(&first) - of(&first, "dynamodb"), 8, "{first:?}");
    assert_eq!(first.get("sns:Publish"), Some(&1), "{first:?}");
    assert!(of(&first, "dynamodb") <= 12, "{first:?}");
    // The same 300 again: read (3 `BatchGetItem`, and 1 of the group record, read for every
    // confirmation before the plan knows that none is newly owed), nothing written, nothing sent.
    assert_eq!(of(&repeat, "sns"), 0, "{repeat:?}");
    assert!(of(&repeat, "dynamodb") <= 4, "{repeat:?}");
    assert!(
        repeat
            .keys()
            .all(|op| !op.starts_with("dynamodb:") || op == "dynamodb:BatchGetItem"),
        "{repeat:?}"
    );
}

/// Each invocation of 20: 1 `DescribeContainerInstances`, 1 `DescribeInstances`, 2
/// `BatchGetItem` (the incidents, the group record), 1 `PutItem` (the group: last held, digest
/// due), 1 `TransactWriteItems` (20 held), 1 `UpdateItem` (the count): 7 × 25, the first
/// page's `Publish` and settling, and 1 `DescribeClusters` (the silence tag, cached across the
/// warm invocations). Before the outbox: 1,162.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_500_agents_disconnect_in_25_invocations_of_20_then_the_storm_costs_178_calls_at_most() {
    let storm = cost::storm_25_by_20().await;
    assert!(total(&storm.invocations) <= 178, "{storm:#?}");
    assert_eq!(storm.invocations.get("sns:Publish"), Some(&1), "{storm:#?}");
    // One page, one digest (by the sweep after the interval), and each sweep asks the outbox
    // index once: nothing due costs one `Query`.
    assert_eq!((storm.firing, storm.digests, storm.other), (1, 1, 0), "{storm:#?}");
    assert_eq!(storm.due_queries, (1, 1), "{storm:#?}");
    assert_eq!(of(&storm.idle_sweep, "sns"), 0, "{storm:#?}");
}
