//! What the incident ledger costs in AWS calls, counted by the emulator: counts, not times, so
//! they hold in every build and on every machine. `make bench BENCH_ONLY=calls` writes the same
//! measures down (and a batch that changes nothing, which tests/incidents.rs holds: no DynamoDB
//! call). Issue 21's budgets: 15 calls for 300 new problems, 150 for the 25×20 storm.

use serde_json::{Value, json};
use watchdog_tests::cost::{self, of, total};
use watchdog_tests::emulator::Emulator;
use watchdog_tests::fleet::Fleet;
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::runtime::{Function, monitor_binary, sweep_binary};
use watchdog_tests::samples::agent_event;

/// Before the ledger: 3 `DescribeContainerInstances`, 3 `DescribeInstances`, 1 `Publish`, and,
/// with no sweep yet to have recorded the cluster, 1 `DescribeClusters` (the cluster's silence
/// tag and size, cached for `TAG_CACHE_TTL_SECONDS`) (8). The ledger: 1 `BatchGetItem` (the
/// cluster's record, none yet, its open-incident count and the group record: an event's
/// incidents are put without reading them first), 4 + 3 `TransactWriteItems` (each incident
/// leased, with the group record and the count's move: 302 actions, 100 a call; then settled
/// once SNS took the alert). Before the outbox: 313; before these batches: 19 (+1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_300_new_problems_come_in_one_batch_before_any_sweep_then_they_cost_16_calls_at_most() {
    let (first, repeat) = cost::new_problems(&monitor_binary(), 300).await;
    assert!(total(&first) <= 16, "{first:?}");
    assert!(of(&first, "dynamodb") <= 8, "{first:?}");
    assert_eq!(total(&first) - of(&first, "dynamodb"), 8, "{first:?}");
    assert_eq!(first.get("ecs:DescribeClusters"), Some(&1), "{first:?}");
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

/// Issue 21's budget: once the sweep has recorded the cluster (its tags and size, in the item
/// the monitor reads beside the cluster's count), the monitor does not ask ECS for them: the 7
/// calls of the look and the ledger's 8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_300_new_problems_come_in_one_batch_after_a_sweep_then_they_cost_15_calls_at_most_and_no_describe_clusters()
 {
    let calls = cost::new_problems_after_a_sweep(&monitor_binary(), 300).await;
    assert!(total(&calls) <= 15, "{calls:?}");
    assert_eq!(calls.get("ecs:DescribeClusters"), None, "{calls:?}");
    assert_eq!(total(&calls) - of(&calls, "dynamodb"), 7, "{calls:?}");
    assert_eq!(calls.get("dynamodb:BatchGetItem"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("sns:Publish"), Some(&1), "{calls:?}");
}

/// Tagged mode: the sweep's record says the untagged cluster is not monitored, so a batch over
/// both clusters describes only the tagged one's instances, alerts only there, and asks ECS for
/// no cluster's tags (the record is read with the counts, in the one `BatchGetItem`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_clusters_are_monitored_by_tag_after_a_sweep_then_the_record_keeps_an_untagged_cluster_out_without_describe_clusters()
 {
    let emulator = Emulator::start().await;
    let parameters = [
        ("MonitorAllClusters", "false"),
        ("MonitoringTagValue", "enabled"),
        ("GracePeriodSeconds", "0"),
    ];
    let pipeline = Pipeline::from_template(&emulator.sdk, &parameters).await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let watched = fleet.cluster("watched", &[("ecs-agent-monitoring", "enabled")]).await;
    let other = fleet.cluster("other", &[]).await;
    let nodes = [fleet.nodes(&watched, 2).await, fleet.nodes(&other, 2).await].concat();
    let sweep = Function::start_binary(&sweep_binary(), &pipeline.sweep_env(&emulator)).await;
    sweep.invoke(&json!({})).await.expect("the sweep runs");
    let mut records: Vec<Value> = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        emulator
            .set_container_instance(&node.cluster_arn, &node.container_instance_arn, Some(false), None)
            .await;
        let body = agent_event(node, 2, false).to_string();
        records.push(json!({"messageId": format!("tagged-{n}"), "body": body}));
    }
    let before = emulator.published().await.len();
    let monitor = Function::start_binary(&monitor_binary(), &pipeline.function_env(&emulator)).await;
    emulator.reset_calls().await;

    let answer = monitor.invoke(&sqs_event(&records)).await.expect("handled");

    assert_eq!(answer, json!({"batchItemFailures": []}));
    let calls = emulator.calls().await;
    assert_eq!(calls.get("ecs:DescribeClusters"), None, "{calls:?}");
    assert_eq!(calls.get("ecs:DescribeContainerInstances"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("dynamodb:BatchGetItem"), Some(&1), "{calls:?}");
    let mut published = emulator.published().await.split_off(before);
    published.retain(|p| p.attributes["kind"] == "agent-disconnected");
    assert_eq!(published.len(), 1, "{published:#?}");
    assert!(published[0].subject.contains("watched"), "{}", published[0].subject);
}

/// Each invocation of 20: 1 `DescribeContainerInstances`, 1 `DescribeInstances`, 1
/// `BatchGetItem` (the group record, the count, and the cluster's record, written by the sweep
/// that ran before the storm: no `DescribeClusters`), 1 `TransactWriteItems` (20 held, the group
/// record: last held, digest due; the count's move): 4 × 25, and the first page's `Publish` and
/// settling. Before the outbox: 1,162; before these batches: 177.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_500_agents_disconnect_in_25_invocations_of_20_then_the_storm_costs_150_calls_at_most() {
    let storm = cost::storm_25_by_20().await;
    assert!(total(&storm.invocations) <= 150, "{storm:#?}");
    assert_eq!(storm.invocations.get("sns:Publish"), Some(&1), "{storm:#?}");
    assert_eq!(storm.invocations.get("ecs:DescribeClusters"), None, "{storm:#?}");
    assert_eq!(
        storm.sweep_before.get("dynamodb:BatchWriteItem"),
        Some(&1),
        "{storm:#?}"
    );
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
