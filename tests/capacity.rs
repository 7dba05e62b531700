//! Remediation by the capacity behind an instance: an Auto Scaling group's instance is drained at
//! once and marked Unhealthy only once its tasks have left or `REPLACE_AFTER_MINUTES` passed (the
//! sweep finishes it); an ECS Managed Instance, or one that is not ACTIVE, is never drained.

use aws_sdk_ecs::types::ContainerInstanceStatus;
use serde_json::{Value, json};
use watchdog_tests::bed::{Bed, finding, no_daemons};
use watchdog_tests::clock::TestClock;
use watchdog_tests::fleet::Node;
use watchdog_tests::pipeline::sqs_event;
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::agent_event;

/// A cluster `prod` with drain-and-replace on, and two instances: in an Auto Scaling group, or not.
async fn bed(in_a_group: bool) -> Bed {
    let parameters = [
        ("GracePeriodSeconds", "0"),
        ("RemediationAction", "drain-and-replace"),
        ("MaxRemediationPercent", "50"),
        ("ReplaceAfterMinutes", "15"),
    ];
    let mut bed = Bed::new(&parameters, 0).await;
    bed.nodes = match in_a_group {
        true => {
            bed.fleet
                .auto_scaling_group(&bed.emulator.sdk, "web", &bed.cluster, 2)
                .await
        }
        false => bed.fleet.nodes(&bed.cluster, 2).await,
    };
    bed
}

/// Runs a web task on the instance; returns its ARN.
async fn busy(bed: &Bed, node: &Node) -> String {
    let web = bed.fleet.task_definition("web").await;
    bed.fleet.start_task(node, &web, "service:web").await
}

/// The agent of `node` disconnects (version `version` after it) and the real `monitor` gets
/// the event.
async fn disconnect_and_check(bed: &Bed, node: &Node, version: i64) {
    bed.emulator
        .set_container_instance(&bed.cluster, &node.container_instance_arn, Some(false), None)
        .await;
    let record = json!({"messageId": "m-1", "body": agent_event(node, version, false).to_string()});
    let function = Function::start(&bed.pipeline.function_env(&bed.emulator)).await;
    let answer = function.invoke(&sqs_event(&[record])).await.expect("handled");
    assert_eq!(answer, json!({"batchItemFailures": []}));
}

/// The one alert, as its finding's first instance.
async fn alerted_instance(bed: &Bed) -> Value {
    let published = bed.emulator.published().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    finding(&published[0])["instances"][0].clone()
}

async fn health(bed: &Bed, node: &Node) -> String {
    bed.fleet.health(&bed.emulator.sdk, node).await
}

async fn draining(bed: &Bed) -> usize {
    bed.fleet.count(&bed.cluster, ContainerInstanceStatus::Draining).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_drained_instance_still_runs_tasks_then_the_sweep_replaces_it_after_the_timeout() {
    let bed = bed(true).await;
    let node = &bed.nodes[0];
    busy(&bed, node).await;

    // The monitor drains it at once, and leaves it in service while its task is there.
    disconnect_and_check(&bed, node, 2).await;
    let actions = alerted_instance(&bed).await["remediationActions"].clone();
    assert_eq!(
        (&actions[0]["step"], &actions[0]["outcome"]),
        (&json!("drain"), &json!("done"))
    );
    assert_eq!(
        (&actions[1]["step"], &actions[1]["outcome"]),
        (&json!("replace"), &json!("skipped"))
    );
    assert!(
        actions[1]["detail"].as_str().unwrap().contains("after 15 min"),
        "{actions}"
    );
    assert_eq!(draining(&bed).await, 1);
    assert_eq!(health(&bed, node).await, "Healthy");

    // The sweep: nothing within the 15 minutes while the task is there, then Unhealthy once
    // they passed; once only.
    let clock = TestClock::now();
    let sweep = bed.sweep(&clock, no_daemons());
    assert!(sweep.run().await.replaced.is_empty(), "within REPLACE_AFTER_MINUTES");
    assert_eq!(health(&bed, node).await, "Healthy");
    clock.advance_minutes(16);
    let run = sweep.run().await;
    assert_eq!(run.replaced.len(), 1, "{:?}", run.replaced);
    assert_eq!(health(&bed, node).await, "Unhealthy");
    clock.advance_minutes(5);
    assert!(sweep.run().await.replaced.is_empty(), "replaced once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_drained_instance_s_tasks_have_left_then_the_sweep_replaces_it_before_the_timeout() {
    let bed = bed(true).await;
    let node = &bed.nodes[0];
    let task = busy(&bed, node).await;
    disconnect_and_check(&bed, node, 2).await;
    assert_eq!(health(&bed, node).await, "Healthy", "its task is still there");

    // The task moves away; a minute later the sweep replaces the instance.
    let stop = bed.fleet.ecs.stop_task().cluster(&bed.cluster).task(&task);
    stop.send().await.expect("StopTask");
    let clock = TestClock::now();
    clock.advance_minutes(1);
    let run = bed.sweep(&clock, no_daemons()).run().await;
    assert_eq!(run.replaced.len(), 1, "{:?}", run.replaced);
    assert_eq!(health(&bed, node).await, "Unhealthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_drained_instance_runs_no_task_then_it_is_replaced_at_once() {
    let bed = bed(true).await;
    disconnect_and_check(&bed, &bed.nodes[0], 2).await;
    assert_eq!(health(&bed, &bed.nodes[0]).await, "Unhealthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_managed_instance_breaks_then_it_is_not_drained_and_the_alert_says_ecs_repairs_it() {
    let bed = bed(false).await;
    let node = &bed.nodes[0];
    bed.emulator
        .set_capacity_provider(
            &bed.cluster,
            &node.container_instance_arn,
            "managed-instances",
            "MANAGED_INSTANCES",
        )
        .await;

    disconnect_and_check(&bed, node, 2).await;

    assert_eq!(draining(&bed).await, 0, "not drained");
    let instance = alerted_instance(&bed).await;
    assert_eq!(instance["remediationActions"][0]["outcome"], "skipped");
    let remediation = instance["remediation"].as_str().unwrap();
    assert!(remediation.contains("ECS Managed Instance"), "{remediation}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_confirmed_instance_is_not_active_then_it_is_not_drained() {
    let bed = bed(false).await;
    let node = &bed.nodes[0];
    // Its critical daemon never started, so it stays REGISTERING; then its agent drops.
    bed.emulator
        .set_container_instance(&bed.cluster, &node.container_instance_arn, None, Some("REGISTERING"))
        .await;

    disconnect_and_check(&bed, node, 3).await;

    assert_eq!(draining(&bed).await, 0);
    let remediation = alerted_instance(&bed).await["remediation"].clone();
    assert!(remediation.as_str().unwrap().contains("not ACTIVE"), "{remediation}");
}
