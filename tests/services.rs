//! Services named (issue 25): agent-disconnected and daemon-lost alerts list the services with
//! tasks on each instance they tell, and how many, from `ListTasks` by container instance and
//! `DescribeTasks`, asked only for the instances alerted. End to end on the emulator: moto
//! filters `ListTasks` by `containerInstance` and keeps each task's `group` (`service:<name>`,
//! as `StartTask --group` sets it; ECS sets it so for a service's tasks).

use std::collections::BTreeSet;

use aws_sdk_ecs::operation::list_tasks::ListTasksInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_types::config_bag::ConfigBag;
use ecs_watchdog::aws::{AutoScalingGroups, AwsInventory, Ec2Inventory, EcsInventory, OnFirstUse, SsmHosts};
use serde_json::{Value, json};
use watchdog_tests::emulator::{Emulator, Published};
use watchdog_tests::fleet::{Fleet, Node};
use watchdog_tests::in_process;
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::{agent_event, daemon_stopped_event};

/// A cluster of `instances` with a pipeline (no grace period, no grouping).
struct Bed {
    emulator: Emulator,
    fleet: Fleet,
    pipeline: Pipeline,
    nodes: Vec<Node>,
}

impl Bed {
    async fn new(instances: usize) -> Self {
        let emulator = Emulator::start().await;
        let fleet = Fleet::new(&emulator.sdk).await;
        let parameters = [("GracePeriodSeconds", "0"), ("GroupIntervalMinutes", "0")];
        let pipeline = Pipeline::from_template(&emulator.sdk, &parameters).await;
        let cluster = fleet.cluster("prod", &[]).await;
        let nodes = fleet.nodes(&cluster, instances).await;
        Self {
            emulator,
            fleet,
            pipeline,
            nodes,
        }
    }

    /// Starts `count` tasks of `family` on the node in `group` (`service:web`, `family:batch`).
    async fn run(&self, node: usize, family: &str, group: &str, count: usize) {
        let definition = self.fleet.task_definition(family).await;
        for _ in 0..count {
            self.fleet.start_task(&self.nodes[node], &definition, group).await;
        }
    }

    /// The agent of each node disconnected, as ECS records it, and the events ECS sends.
    async fn disconnect(&self, nodes: &[usize]) -> Vec<Value> {
        let mut events = Vec::new();
        for node in nodes.iter().map(|n| &self.nodes[*n]) {
            self.emulator
                .set_container_instance(&node.cluster_arn, &node.container_instance_arn, Some(false), None)
                .await;
            events.push(agent_event(node, 2, false));
        }
        events
    }

    /// The events through the rule and the queue, as the SQS records Lambda hands over.
    async fn records(&self, events: &[Value]) -> Vec<Value> {
        self.pipeline.put_events(events).await;
        self.pipeline.receive(events.len()).await
    }
}

fn finding(alert: &Published) -> Value {
    serde_json::from_str(alert.message["default"].as_str().expect("a default key")).expect("the finding")
}

/// The finding's line of the node's instance.
fn instance<'a>(finding: &'a Value, node: &Node) -> &'a Value {
    let instances = finding["instances"].as_array().expect("instances");
    instances
        .iter()
        .find(|i| i["ec2InstanceId"] == node.ec2_instance_id.as_str())
        .unwrap_or_else(|| panic!("{} is listed: {finding}", node.ec2_instance_id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_agents_disconnect_under_services_then_the_alert_names_them_asking_only_the_instances_alerted() {
    // Given i0 running web ×2 and api, i1 web and a standalone task, i2 nothing, all three
    // disconnected; and i3 running web, whose event arrives after its agent came back.
    let bed = Bed::new(4).await;
    bed.run(0, "web", "service:web", 2).await;
    bed.run(0, "api", "service:api", 1).await;
    bed.run(1, "web", "service:web", 1).await;
    bed.run(1, "batch", "family:batch", 1).await;
    bed.run(3, "web", "service:web", 1).await;
    let mut events = bed.disconnect(&[0, 1, 2]).await;
    events.push(agent_event(&bed.nodes[3], 2, false));
    let records = bed.records(&events).await;
    let function = Function::start(&bed.pipeline.function_env(&bed.emulator)).await;
    bed.emulator.reset_calls().await;

    // When the monitor takes the batch.
    let response = function.invoke(&sqs_event(&records)).await.expect("handled");

    // Then one alert names each alerted instance's services with their tasks.
    assert_eq!(response, json!({"batchItemFailures": []}));
    let published = bed.emulator.published().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    let email = published[0].message["email"].as_str().unwrap();
    assert!(
        email.contains("\n    services: web (2 tasks), api (1 task)\n"),
        "{email}"
    );
    assert!(email.contains("\n    services: web (1 task)\n"), "{email}");
    let finding = finding(&published[0]);
    let [i0, i1, i2, i3] = [0, 1, 2, 3].map(|n| &bed.nodes[n]);
    assert_eq!(
        instance(&finding, i0)["services"],
        json!([{"name": "web", "tasks": 2}, {"name": "api", "tasks": 1}])
    );
    assert_eq!(instance(&finding, i1)["services"], json!([{"name": "web", "tasks": 1}]));
    assert_eq!(instance(&finding, i2).get("services"), None, "ECS says it runs no task");
    assert_eq!(finding["instances"].as_array().unwrap().len(), 3, "i3 recovered");
    // And ListTasks was asked once for each alerted instance running tasks, by container
    // instance; their 5 tasks described in one call; nothing asked of i2 or i3.
    let calls = bed.emulator.calls().await;
    assert_eq!(calls.get("ecs:ListTasks"), Some(&2), "{calls:?}");
    assert_eq!(calls.get("ecs:DescribeTasks"), Some(&1), "{calls:?}");
    let asked: BTreeSet<String> = bed
        .emulator
        .requests("ecs:ListTasks")
        .await
        .iter()
        .map(|r| {
            r["containerInstance"]
                .as_str()
                .expect("by container instance")
                .to_owned()
        })
        .collect();
    let expected = BTreeSet::from([i0.container_instance_arn.clone(), i1.container_instance_arn.clone()]);
    assert_eq!(asked, expected);
    assert!(!asked.contains(&i3.container_instance_arn));
}

/// Fails every `ListTasks` before it is sent, as an AccessDenied would (moto enforces no IAM).
#[derive(Debug)]
struct ListTasksDenied;

impl Intercept for ListTasksDenied {
    fn name(&self) -> &'static str {
        "ListTasksDenied"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match context.input().downcast_ref::<ListTasksInput>() {
            Some(_) => Err("injected: AccessDeniedException: not authorized to perform ecs:ListTasks".into()),
            None => Ok(()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_list_tasks_fails_then_the_alert_goes_out_and_says_the_services_could_not_be_listed() {
    let bed = Bed::new(1).await;
    bed.run(0, "web", "service:web", 1).await;
    let events = bed.disconnect(&[0]).await;
    let records = bed.records(&events).await;
    let ecs = aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::config::Builder::from(&bed.emulator.sdk)
            .interceptor(ListTasksDenied)
            .build(),
    );
    let sdk = &bed.emulator.sdk;
    let env = bed.pipeline.function_env(&bed.emulator);
    let monitor = in_process::monitor(&bed.emulator, in_process::config(&env), |io| {
        io.inventory = Box::new(AwsInventory {
            ecs: EcsInventory::new(ecs),
            ec2: Ec2Inventory::new(aws_sdk_ec2::Client::new(sdk)),
            ssm: SsmHosts::new(OnFirstUse::new(sdk, aws_sdk_ssm::Client::new)),
            groups: AutoScalingGroups::new(OnFirstUse::new(sdk, aws_sdk_autoscaling::Client::new)),
        });
    });

    let report = monitor.process(&in_process::messages(&records)).await;

    assert_eq!(report.failures, Vec::<String>::new(), "nothing held back");
    let published = bed.emulator.published().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    let email = published[0].message["email"].as_str().unwrap();
    assert!(
        email.contains("\n    services: could not be listed (ecs:ListTasks failed"),
        "{email}"
    );
    let line = instance(&finding(&published[0]), &bed.nodes[0]).clone();
    assert_eq!(line.get("services"), None);
    let error = line["servicesError"].as_str().expect("the error is in the finding");
    assert!(error.contains("AccessDeniedException"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_daemon_is_lost_on_an_instance_running_services_then_its_alert_names_them() {
    // Given web ×3 on i0, whose log-router daemon task stopped (the emulator has no Managed
    // Daemons: the monitor decides from the tasks and the instance, and says so).
    let bed = Bed::new(1).await;
    bed.run(0, "web", "service:web", 3).await;
    let log_router = bed.fleet.task_definition("log-router").await;
    let node = &bed.nodes[0];
    let task = format!("{}/log-router-0", node.cluster_arn.replace(":cluster/", ":task/"));
    let records = bed
        .records(&[daemon_stopped_event(node, "log-router", &log_router, &task)])
        .await;
    let function = Function::start(&bed.pipeline.function_env(&bed.emulator)).await;

    let response = function.invoke(&sqs_event(&records)).await.expect("handled");

    assert_eq!(response, json!({"batchItemFailures": []}));
    let published = bed.emulator.published().await;
    let lost: Vec<&Published> = published
        .iter()
        .filter(|p| p.attributes["kind"] == "daemon-lost")
        .collect();
    assert_eq!(lost.len(), 1, "{published:#?}");
    let email = lost[0].message["email"].as_str().unwrap();
    assert!(email.contains("\n    services: web (3 tasks)\n"), "{email}");
    assert_eq!(
        instance(&finding(lost[0]), node)["services"],
        json!([{"name": "web", "tasks": 3}])
    );
}
