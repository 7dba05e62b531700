//! Remediation by the capacity behind an instance: an Auto Scaling group's instance is drained at
//! once and marked Unhealthy only once its tasks have left or `REPLACE_AFTER_MINUTES` passed (the
//! sweep finishes it); an ECS Managed Instance, or one that is not ACTIVE, is never drained.

use aws_sdk_ecs::operation::list_daemons::ListDaemonsOutput;
use aws_sdk_ecs::types::ContainerInstanceStatus;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use ecs_watchdog::Sweep;
use ecs_watchdog::aws::EcsDaemons;
use serde_json::{Value, json};
use watchdog_tests::clock::TestClock;
use watchdog_tests::emulator::{Emulator, Published};
use watchdog_tests::fleet::{Fleet, Node};
use watchdog_tests::in_process;
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::agent_event;

/// A cluster `prod` with drain-and-replace on, and two instances: in an Auto Scaling group, or not.
struct Bed {
    emulator: Emulator,
    fleet: Fleet,
    pipeline: Pipeline,
    cluster: String,
    nodes: Vec<Node>,
}

impl Bed {
    async fn new(in_a_group: bool) -> Self {
        let emulator = Emulator::start().await;
        let fleet = Fleet::new(&emulator.sdk).await;
        let parameters = [
            ("GracePeriodSeconds", "0"),
            ("RemediationAction", "drain-and-replace"),
            ("MaxRemediationPercent", "50"),
            ("ReplaceAfterMinutes", "15"),
        ];
        let pipeline = Pipeline::from_template(&emulator.sdk, &parameters).await;
        let cluster = fleet.cluster("prod", &[]).await;
        let nodes = match in_a_group {
            true => fleet.auto_scaling_group(&emulator.sdk, "web", &cluster, 2).await,
            false => fleet.nodes(&cluster, 2).await,
        };
        Self {
            emulator,
            fleet,
            pipeline,
            cluster,
            nodes,
        }
    }

    /// Runs a web task on the instance; returns its ARN.
    async fn busy(&self, node: &Node) -> String {
        let web = self.fleet.task_definition("web").await;
        self.fleet.start_task(node, &web, "service:web").await
    }

    /// The agent of `node` disconnects (version `version` after it) and the real `monitor` gets
    /// the event.
    async fn disconnect_and_check(&self, node: &Node, version: i64) {
        self.emulator
            .set_container_instance(&self.cluster, &node.container_instance_arn, Some(false), None)
            .await;
        let record = json!({"messageId": "m-1", "body": agent_event(node, version, false).to_string()});
        let function = Function::start(&self.pipeline.function_env(&self.emulator)).await;
        let answer = function.invoke(&sqs_event(&[record])).await.expect("handled");
        assert_eq!(answer, json!({"batchItemFailures": []}));
    }

    /// The one alert, as its finding's first instance.
    async fn alerted_instance(&self) -> Value {
        let published = self.emulator.published().await;
        assert_eq!(published.len(), 1, "{published:#?}");
        finding(&published[0])["instances"][0].clone()
    }

    async fn health(&self, node: &Node) -> String {
        self.fleet.health(&self.emulator.sdk, node).await
    }

    async fn draining(&self) -> usize {
        self.fleet.count(&self.cluster, ContainerInstanceStatus::Draining).await
    }

    /// The sweep in this process on `clock`, in a region without Managed Daemons.
    fn sweep(&self, clock: &TestClock) -> Sweep {
        let list = mock!(aws_sdk_ecs::Client::list_daemons).then_output(|| ListDaemonsOutput::builder().build());
        let config = in_process::config(&self.pipeline.sweep_env(&self.emulator));
        in_process::sweep(&self.emulator, config, |io| {
            io.clock = Box::new(clock.clone());
            io.daemons = Box::new(EcsDaemons::new(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list])));
        })
    }
}

fn finding(alert: &Published) -> Value {
    serde_json::from_str(alert.message["default"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_drained_instance_still_runs_tasks_then_the_sweep_replaces_it_after_the_timeout() {
    let bed = Bed::new(true).await;
    let node = &bed.nodes[0];
    bed.busy(node).await;

    // The monitor drains it at once, and leaves it in service while its task is there.
    bed.disconnect_and_check(node, 2).await;
    let actions = bed.alerted_instance().await["remediationActions"].clone();
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
    assert_eq!(bed.draining().await, 1);
    assert_eq!(bed.health(node).await, "Healthy");

    // The sweep: nothing within the 15 minutes while the task is there, then Unhealthy once
    // they passed; once only.
    let clock = TestClock::now();
    let sweep = bed.sweep(&clock);
    assert!(sweep.run().await.replaced.is_empty(), "within REPLACE_AFTER_MINUTES");
    assert_eq!(bed.health(node).await, "Healthy");
    clock.advance_minutes(16);
    let run = sweep.run().await;
    assert_eq!(run.replaced.len(), 1, "{:?}", run.replaced);
    assert_eq!(bed.health(node).await, "Unhealthy");
    clock.advance_minutes(5);
    assert!(sweep.run().await.replaced.is_empty(), "replaced once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_drained_instance_s_tasks_have_left_then_the_sweep_replaces_it_before_the_timeout() {
    let bed = Bed::new(true).await;
    let node = &bed.nodes[0];
    let task = bed.busy(node).await;
    bed.disconnect_and_check(node, 2).await;
    assert_eq!(bed.health(node).await, "Healthy", "its task is still there");

    // The task moves away; a minute later the sweep replaces the instance.
    let stop = bed.fleet.ecs.stop_task().cluster(&bed.cluster).task(&task);
    stop.send().await.expect("StopTask");
    let clock = TestClock::now();
    clock.advance_minutes(1);
    let run = bed.sweep(&clock).run().await;
    assert_eq!(run.replaced.len(), 1, "{:?}", run.replaced);
    assert_eq!(bed.health(node).await, "Unhealthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_drained_instance_runs_no_task_then_it_is_replaced_at_once() {
    let bed = Bed::new(true).await;
    bed.disconnect_and_check(&bed.nodes[0], 2).await;
    assert_eq!(bed.health(&bed.nodes[0]).await, "Unhealthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_managed_instance_breaks_then_it_is_not_drained_and_the_alert_says_ecs_repairs_it() {
    let bed = Bed::new(false).await;
    let node = &bed.nodes[0];
    bed.emulator
        .set_capacity_provider(
            &bed.cluster,
            &node.container_instance_arn,
            "managed-instances",
            "MANAGED_INSTANCES",
        )
        .await;

    bed.disconnect_and_check(node, 2).await;

    assert_eq!(bed.draining().await, 0, "not drained");
    let instance = bed.alerted_instance().await;
    assert_eq!(instance["remediationActions"][0]["outcome"], "skipped");
    let remediation = instance["remediation"].as_str().unwrap();
    assert!(remediation.contains("ECS Managed Instance"), "{remediation}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_confirmed_instance_is_not_active_then_it_is_not_drained() {
    let bed = Bed::new(false).await;
    let node = &bed.nodes[0];
    // Its critical daemon never started, so it stays REGISTERING; then its agent drops.
    bed.emulator
        .set_container_instance(&bed.cluster, &node.container_instance_arn, None, Some("REGISTERING"))
        .await;

    bed.disconnect_and_check(node, 3).await;

    assert_eq!(bed.draining().await, 0);
    let remediation = bed.alerted_instance().await["remediation"].clone();
    assert!(remediation.as_str().unwrap().contains("not ACTIVE"), "{remediation}");
}
