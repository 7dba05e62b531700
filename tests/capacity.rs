//! Remediation by the capacity behind an instance: an Auto Scaling group's instance is drained at
//! once and marked Unhealthy only once its tasks have left or `REPLACE_AFTER_MINUTES` passed (the
//! sweep finishes it); an ECS Managed Instance is never drained (ECS repairs it itself).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_ecs::operation::list_daemons::ListDaemonsOutput;
use aws_sdk_ecs::types::ContainerInstanceStatus;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use ecs_watchdog::aws::EcsDaemons;
use ecs_watchdog::ports::Clock;
use serde_json::{Value, json};
use watchdog_tests::emulator::{Emulator, Published};
use watchdog_tests::fleet::{Fleet, Node};
use watchdog_tests::in_process;
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::agent_event;

#[derive(Clone)]
struct TestClock(Arc<AtomicU64>);

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn finding(alert: &Published) -> Value {
    serde_json::from_str(alert.message["default"].as_str().unwrap()).unwrap()
}

async fn disconnect(emulator: &Emulator, node: &Node) -> Value {
    emulator
        .set_container_instance(&node.cluster_arn, &node.container_instance_arn, Some(false), None)
        .await;
    json!({"messageId": "m-1", "body": agent_event(node, 2, false).to_string()})
}

fn replace_params() -> [(&'static str, &'static str); 4] {
    [
        ("GracePeriodSeconds", "0"),
        ("RemediationAction", "drain-and-replace"),
        ("MaxRemediationPercent", "50"),
        ("ReplaceAfterMinutes", "15"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_drained_instance_still_runs_tasks_then_the_sweep_replaces_it_after_the_timeout() {
    let emulator = Emulator::start().await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let pipeline = Pipeline::from_template(&emulator.sdk, &replace_params()).await;
    let cluster = fleet.cluster("prod", &[]).await;
    let nodes = fleet.auto_scaling_group(&emulator.sdk, "web", &cluster, 2).await;
    let busy = &nodes[0];
    let web = fleet.task_definition("web").await;
    fleet.start_task(busy, &web, "service:web").await;
    let record = disconnect(&emulator, busy).await;

    // The monitor drains it at once, and leaves it in service while its task is there.
    let function = Function::start(&pipeline.function_env(&emulator)).await;
    let answer = function.invoke(&sqs_event(&[record])).await.expect("handled");
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let published = emulator.published().await;
    assert_eq!(published.len(), 1);
    let actions = finding(&published[0])["instances"][0]["remediationActions"].clone();
    assert_eq!(actions[0]["step"], "drain");
    assert_eq!(actions[0]["outcome"], "done");
    assert_eq!(actions[1]["step"], "replace");
    assert_eq!(actions[1]["outcome"], "skipped");
    assert!(
        actions[1]["detail"].as_str().unwrap().contains("after 15 min"),
        "{actions}"
    );
    assert_eq!(fleet.count(&cluster, ContainerInstanceStatus::Draining).await, 1);
    assert_eq!(fleet.health(&emulator.sdk, busy).await, "Healthy");

    // The sweep: not yet within the 15 minutes (its agent is disconnected: the task cannot
    // leave), then Unhealthy once they passed; once only.
    let clock = TestClock(Arc::new(AtomicU64::new(0)));
    let list = mock!(aws_sdk_ecs::Client::list_daemons).then_output(|| ListDaemonsOutput::builder().build());
    let config = in_process::config(&pipeline.sweep_env(&emulator));
    let sweep = in_process::sweep(&emulator, config, |io| {
        io.clock = Box::new(clock.clone());
        io.daemons = Box::new(EcsDaemons::new(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list])));
    });
    // The incident was opened at the system clock's now; the sweep's clock starts there too.
    clock.0.store(now(), Ordering::SeqCst);
    assert!(sweep.run().await.replaced.is_empty(), "within REPLACE_AFTER_MINUTES");
    assert_eq!(fleet.health(&emulator.sdk, busy).await, "Healthy");
    clock.0.fetch_add(16 * 60, Ordering::SeqCst);
    let run = sweep.run().await;
    assert_eq!(run.replaced.len(), 1, "{:?}", run.replaced);
    assert_eq!(fleet.health(&emulator.sdk, busy).await, "Unhealthy");
    clock.0.fetch_add(5 * 60, Ordering::SeqCst);
    assert!(sweep.run().await.replaced.is_empty(), "replaced once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_drained_instance_runs_no_task_then_it_is_replaced_at_once() {
    let emulator = Emulator::start().await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let pipeline = Pipeline::from_template(&emulator.sdk, &replace_params()).await;
    let cluster = fleet.cluster("prod", &[]).await;
    let nodes = fleet.auto_scaling_group(&emulator.sdk, "web", &cluster, 2).await;
    let record = disconnect(&emulator, &nodes[0]).await;

    let function = Function::start(&pipeline.function_env(&emulator)).await;
    function.invoke(&sqs_event(&[record])).await.expect("handled");

    assert_eq!(fleet.health(&emulator.sdk, &nodes[0]).await, "Unhealthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_managed_instance_breaks_then_it_is_not_drained_and_the_alert_says_ecs_repairs_it() {
    let emulator = Emulator::start().await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let pipeline = Pipeline::from_template(&emulator.sdk, &replace_params()).await;
    let cluster = fleet.cluster("prod", &[]).await;
    let nodes = fleet.nodes(&cluster, 2).await;
    let managed = &nodes[0];
    emulator
        .set_capacity_provider(
            &cluster,
            &managed.container_instance_arn,
            "managed-instances",
            "MANAGED_INSTANCES",
        )
        .await;
    let record = disconnect(&emulator, managed).await;

    let function = Function::start(&pipeline.function_env(&emulator)).await;
    let answer = function.invoke(&sqs_event(&[record])).await.expect("handled");

    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(
        fleet.count(&cluster, ContainerInstanceStatus::Draining).await,
        0,
        "not drained"
    );
    let published = emulator.published().await;
    assert_eq!(published.len(), 1);
    let instance = finding(&published[0])["instances"][0].clone();
    assert_eq!(instance["remediationActions"][0]["outcome"], "skipped");
    assert!(
        instance["remediation"]
            .as_str()
            .unwrap()
            .contains("ECS Managed Instance"),
        "{instance}"
    );
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
