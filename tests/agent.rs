//! The agent-disconnected monitor end to end: events through an EventBridge rule and the SQS
//! queue, the real `monitor` binary behind a Lambda Runtime API, SNS and the dead-letter queue
//! read back from the emulator.

use std::collections::HashMap;

use aws_sdk_ecs::operation::describe_container_instances::DescribeContainerInstancesInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_types::config_bag::ConfigBag;
use ecs_watchdog::alert::AlertKind;
use ecs_watchdog::aws::{AutoScalingGroups, AwsInventory, Ec2Inventory, EcsInventory, IN_FLIGHT, OnFirstUse, SsmHosts};
use ecs_watchdog::incident::IncidentKey;
use ecs_watchdog::metrics::Metric;
use serde_json::{Value, json};
use watchdog_tests::emulator::{Emulator, instance_ids};
use watchdog_tests::fleet::{Fleet, Node};
use watchdog_tests::in_process;
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::{MALFORMED_BODY, agent_event};

const TAG: (&str, &str) = ("ecs-agent-monitoring", "enabled");

/// Stack parameters: only clusters tagged `ecs-agent-monitoring=enabled`, no grace period.
const TAGGED_ONLY: [(&str, &str); 4] = [
    ("MonitorAllClusters", "false"),
    ("MonitoringTagValue", "enabled"),
    ("GracePeriodSeconds", "0"),
    // Each batch's own alert: tests/digest.rs groups batches.
    ("GroupIntervalMinutes", "0"),
];

/// Disconnects the agent, as ECS records it, and returns the event ECS would send.
async fn disconnect(emulator: &Emulator, node: &Node) -> Value {
    emulator
        .set_container_instance(&node.cluster_arn, &node.container_instance_arn, Some(false), None)
        .await;
    agent_event(node, 2, false)
}

/// The EC2 ids every alert SNS sent names, sorted.
async fn alerted_instances(emulator: &Emulator) -> Vec<String> {
    let mut ids = Vec::new();
    for alert in emulator.published().await {
        let finding: Value = serde_json::from_str(alert.message["default"].as_str().unwrap()).unwrap();
        ids.extend(instance_ids(&finding));
    }
    ids.sort();
    ids
}

fn ec2_ids(nodes: &[Node]) -> Vec<String> {
    let mut ids: Vec<String> = nodes.iter().map(|n| n.ec2_instance_id.clone()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_batch_holds_every_agent_case_then_one_alert_names_only_the_confirmed_instance() {
    // Given a tagged cluster A with four broken agents, an untagged cluster C, and a bad body.
    let emulator = Emulator::start().await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let pipeline = Pipeline::from_template(&emulator.sdk, &TAGGED_ONLY).await;
    let a = fleet.cluster("A", &[TAG]).await;
    let c = fleet.cluster("C", &[]).await;
    let nodes = fleet.nodes(&a, 4).await;
    let [i1, i2, i3, i4] = [&nodes[0], &nodes[1], &nodes[2], &nodes[3]];
    let c1 = &fleet.nodes(&c, 1).await[0];

    let i1_event = disconnect(&emulator, i1).await;
    let mut events = vec![i1_event.clone(), i1_event];
    for node in [i2, i3, i4, c1] {
        events.push(disconnect(&emulator, node).await);
    }
    pipeline.put_events(&events).await;
    pipeline.send_raw(MALFORMED_BODY).await;
    // During the grace period: i2 reconnects, i3's instance stops, someone drains i4.
    emulator
        .set_container_instance(&a, &i2.container_instance_arn, Some(true), None)
        .await;
    fleet.stop_instance(i3).await;
    fleet.drain(i4).await;

    // When the queue delivers the batch to the real binary.
    let function = Function::start(&pipeline.function_env(&emulator)).await;
    let (_, response) = pipeline.deliver(&function, 7).await;

    // Then: no failures, one alert for A naming i1 only, the metrics, the quarantined body.
    assert_eq!(response, json!({"batchItemFailures": []}));
    let published = emulator.published().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    let alert = &published[0];
    assert_eq!(
        alert.subject,
        "ECS agent disconnected on 1 instance in A (123456789012, us-east-1)"
    );
    assert_eq!(
        alert.attributes,
        HashMap::from([
            ("account".into(), "123456789012".into()),
            ("cluster".into(), "A".into()),
            // The incident's id: the ledger's key, which a later resolved notice carries too.
            (
                "incident".into(),
                IncidentKey::new(&a, AlertKind::AgentDisconnected, &i1.container_instance_arn, None).id()
            ),
            ("kind".into(), "agent-disconnected".into()),
            ("region".into(), "us-east-1".into()),
            // One agent of A's four registered instances: 25%, over CRITICAL_PERCENT (20).
            ("severity".into(), "critical".into()),
            ("status".into(), "firing".into())
        ])
    );
    let email = alert.message["email"].as_str().unwrap();
    assert!(email.contains(&i1.ec2_instance_id), "{email}");
    for other in [i2, i3, i4, c1] {
        assert!(
            !email.contains(&other.ec2_instance_id),
            "{} must not be in:\n{email}",
            other.ec2_instance_id
        );
    }
    let finding: Value = serde_json::from_str(alert.message["default"].as_str().unwrap()).unwrap();
    assert_eq!(instance_ids(&finding), vec![i1.ec2_instance_id.clone()]);
    assert_eq!(finding["clusterName"], "A");

    assert_eq!(function.metric("AgentDisconnected", Some("A")), 1.0);
    assert_eq!(function.metric("Recovered", Some("A")), 1.0);
    assert_eq!(function.metric("Suppressed", Some("A")), 2.0);
    assert_eq!(function.metric("EventsRejected", None), 1.0);
    assert_eq!(
        function.emf().iter().filter(|d| d["ClusterName"] == "C").count(),
        0,
        "C is not monitored"
    );

    let dead = pipeline.dead_letters(1).await;
    assert_eq!(dead[0].body, MALFORMED_BODY);
    assert!(
        dead[0]
            .reason
            .as_deref()
            .unwrap_or_default()
            .starts_with("body is not JSON"),
        "{:?}",
        dead[0].reason
    );
}

/// Fails `DescribeContainerInstances` for one cluster, as an outage after the SDK's retries would.
#[derive(Debug)]
struct EcsDownFor(String);

impl Intercept for EcsDownFor {
    fn name(&self) -> &'static str {
        "EcsDownFor"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match context.input().downcast_ref::<DescribeContainerInstancesInput>() {
            Some(input) if input.cluster() == Some(self.0.as_str()) => {
                Err("injected: ECS is unavailable for this cluster".into())
            }
            _ => Ok(()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_ecs_fails_for_one_cluster_then_only_its_messages_go_back_to_the_queue() {
    // Given two monitored clusters with a confirmed disconnect each, and ECS down for A.
    let emulator = Emulator::start().await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let pipeline = Pipeline::from_template(&emulator.sdk, &TAGGED_ONLY).await;
    let a = fleet.cluster("A", &[TAG]).await;
    let b = fleet.cluster("B", &[TAG]).await;
    let a_nodes = fleet.nodes(&a, 2).await;
    let b_nodes = fleet.nodes(&b, 1).await;
    let mut events = Vec::new();
    for node in a_nodes.iter().chain(&b_nodes) {
        events.push(disconnect(&emulator, node).await);
    }
    pipeline.put_events(&events).await;
    pipeline.send_raw(MALFORMED_BODY).await;
    let records = pipeline.receive(4).await;

    let ecs = aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::config::Builder::from(&emulator.sdk)
            .interceptor(EcsDownFor(a.clone()))
            .build(),
    );
    let monitor = in_process::monitor(&emulator, in_process::config(&pipeline.monitor_env()), |io| {
        io.inventory = Box::new(AwsInventory {
            ecs: EcsInventory::new(ecs),
            ec2: Ec2Inventory::new(aws_sdk_ec2::Client::new(&emulator.sdk)),
            ssm: SsmHosts::new(OnFirstUse::new(&emulator.sdk, aws_sdk_ssm::Client::new)),
            groups: AutoScalingGroups::new(OnFirstUse::new(&emulator.sdk, aws_sdk_autoscaling::Client::new)),
        });
    });
    let messages = in_process::messages(&records);

    // When the batch runs.
    let report = monitor.process(&messages).await;

    // Then A's two messages are failures, B's alert went out, the bad body is quarantined.
    let a_ids: Vec<&str> = messages
        .iter()
        .filter(|m| m.body.contains("cluster/A"))
        .map(|m| m.id.as_str())
        .collect();
    let mut failures: Vec<&str> = report.failures.iter().map(String::as_str).collect();
    failures.sort();
    let mut expected = a_ids.clone();
    expected.sort();
    assert_eq!(a_ids.len(), 2);
    assert_eq!(failures, expected);
    let published = emulator.published().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    assert_eq!(published[0].attributes["cluster"], "B");
    assert_eq!(report.tally.get(Some("A"), Metric::CheckErrors), 2);
    assert_eq!(report.tally.get(Some("B"), Metric::AgentDisconnected), 1);
    assert_eq!(report.tally.get(None, Metric::EventsRejected), 1);
    assert_eq!(pipeline.dead_letters(1).await[0].body, MALFORMED_BODY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_500_agents_disconnect_then_each_batch_of_100_costs_one_call_per_api() {
    // Given 500 disconnected agents in one tagged cluster.
    let emulator = Emulator::start().await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let pipeline = Pipeline::from_template(&emulator.sdk, &TAGGED_ONLY).await;
    let storm = fleet.cluster("storm", &[TAG]).await;
    let nodes = fleet.nodes(&storm, 500).await;
    let mut events = Vec::with_capacity(nodes.len());
    for node in &nodes {
        events.push(disconnect(&emulator, node).await);
    }
    pipeline.put_events(&events).await;
    let records = pipeline.receive(500).await;
    let function = Function::start(&pipeline.function_env(&emulator)).await;

    // When they arrive as five batches of 100.
    for (n, batch) in records.chunks(100).enumerate() {
        emulator.reset_calls().await;
        let response = function.invoke(&sqs_event(batch)).await.expect("the batch is handled");
        assert_eq!(response, json!({"batchItemFailures": []}));

        // Then each costs at most one call per API, counted by the emulator.
        let calls = emulator.calls().await;
        let count = |operation: &str| calls.get(operation).copied().unwrap_or(0);
        assert_eq!(count("ecs:DescribeContainerInstances"), 1, "batch {n}: {calls:?}");
        assert_eq!(count("ec2:DescribeInstances"), 1, "batch {n}: {calls:?}");
        assert_eq!(count("sns:Publish"), 1, "batch {n}: {calls:?}");
        assert!(count("monitoring:PutMetricData") <= 1, "batch {n}: {calls:?}");
        // The ledger: one read for the batch (the cluster's open-incident count: the incidents
        // are new, put without reading them), two transactions that lease the alert (100
        // conditional puts and the count's move are 101 actions), one that records it sent.
        assert_eq!(count("dynamodb:BatchGetItem"), 1, "batch {n}: {calls:?}");
        assert_eq!(count("dynamodb:TransactWriteItems"), 3, "batch {n}: {calls:?}");
        assert_eq!(
            count("dynamodb:UpdateItem"),
            0,
            "the count moves in the transactions: {calls:?}"
        );
        assert_eq!(
            count("ecs:DescribeClusters"),
            if n == 0 { 1 } else { 0 },
            "tags are cached across warm invocations: {calls:?}"
        );
        assert_eq!(
            calls.values().sum::<u64>(),
            3 + 1 + 3 + u64::from(n == 0),
            "no other call: {calls:?}"
        );
    }
    for alert in emulator.published().await {
        assert_eq!(
            alert.subject,
            "ECS agent disconnected on 100 instances in storm (123456789012, us-east-1)"
        );
    }
    assert_eq!(
        alerted_instances(&emulator).await,
        ec2_ids(&nodes),
        "every instance alerted exactly once"
    );
    assert_eq!(function.metric("AgentDisconnected", Some("storm")), 500.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_storm_spans_12_clusters_then_ec2_is_asked_once_per_100_instances_and_calls_are_bounded() {
    // Given 10 disconnected agents in each of 12 clusters, as an AZ outage leaves them.
    let emulator = Emulator::start().await;
    let pipeline = Pipeline::create(&emulator.sdk, 0).await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let mut nodes = Vec::new();
    for c in 0..12 {
        let cluster = fleet.cluster(&format!("zone-outage-{c}"), &[]).await;
        nodes.extend(fleet.nodes(&cluster, 10).await);
    }
    let mut events = Vec::with_capacity(nodes.len());
    for node in &nodes {
        events.push(disconnect(&emulator, node).await);
    }
    pipeline.put_events(&events).await;
    let records = pipeline.receive(nodes.len()).await;
    let function = Function::start(&pipeline.function_env(&emulator)).await;

    // When they arrive in one batch.
    emulator.reset_calls().await;
    let response = function
        .invoke(&sqs_event(&records))
        .await
        .expect("the batch is handled");

    // Then every one is decided: ECS once per cluster, EC2 (regional) once per 100 instances,
    // one alert per cluster, and never more than IN_FLIGHT calls to a service at once.
    assert_eq!(response, json!({"batchItemFailures": []}));
    let calls = emulator.calls().await;
    let count = |operation: &str| calls.get(operation).copied().unwrap_or(0);
    assert_eq!(count("ecs:DescribeContainerInstances"), 12, "{calls:?}");
    assert_eq!(count("ec2:DescribeInstances"), 2, "120 instances: {calls:?}");
    assert_eq!(count("sns:Publish"), 12, "{calls:?}");
    let peaks = emulator.peak_in_flight().await;
    for (service, peak) in &peaks {
        assert!(*peak <= IN_FLIGHT as u64, "{service}: {peak} calls at once: {peaks:?}");
    }
    assert_eq!(
        alerted_instances(&emulator).await,
        ec2_ids(&nodes),
        "every instance alerted exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_dead_letter_queue_cannot_take_a_bad_body_then_it_goes_back_to_the_queue() {
    // Given a malformed body and a dead-letter queue that does not exist.
    let emulator = Emulator::start().await;
    let pipeline = Pipeline::create(&emulator.sdk, 0).await;
    pipeline.send_raw(MALFORMED_BODY).await;
    let records = pipeline.receive(1).await;
    let mut env = pipeline.function_env(&emulator);
    env.push((
        "DEAD_LETTER_QUEUE_URL".into(),
        format!("{}/123456789012/no-such-queue", emulator.endpoint),
    ));
    let function = Function::start(&env).await;

    // When the batch runs, then the body is reported as a failure, not dropped.
    let response = function
        .invoke(&sqs_event(&records))
        .await
        .expect("the batch is handled");
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": records[0]["messageId"]}]})
    );
    assert_eq!(function.metric("EventsRejected", None), 0.0, "counted once it is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_configuration_is_bad_then_the_function_stops_at_init_naming_the_variable() {
    let emulator = Emulator::start().await;
    let mut env = emulator.env();
    env.push((
        "ALERT_TOPIC_ARN".into(),
        "arn:aws:sns:us-east-1:123456789012:alerts".into(),
    ));
    env.push((
        "DEAD_LETTER_QUEUE_URL".into(),
        "http://127.0.0.1/123456789012/dlq".into(),
    ));
    env.push(("MONITOR_ALL_CLUSTERS".into(), "sometimes".into()));
    let mut function = Function::start(&env).await;
    let status = function.exit_status().await;
    assert!(!status.success());
    let output = function.output().join("\n");
    assert!(
        output.contains("MONITOR_ALL_CLUSTERS") && output.contains("accepted: true, false"),
        "{output}"
    );
}

/// The severity rule on the cluster's own size: `CRITICAL_PERCENT` (20) of a cluster's
/// registered instances is `critical`, fewer is `high`. The monitor counts them from the
/// `DescribeClusters` it makes for the scope and the silence tags (`registeredContainerInstancesCount`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_an_outage_takes_a_fifth_of_a_cluster_then_its_alert_is_critical_and_one_instance_is_high() {
    // Given two tagged clusters of ten instances: three agents lost in big, one in small.
    let emulator = Emulator::start().await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let pipeline = Pipeline::from_template(&emulator.sdk, &TAGGED_ONLY).await;
    let big = fleet.cluster("big", &[TAG]).await;
    let small = fleet.cluster("small", &[TAG]).await;
    let mut events = Vec::new();
    for node in fleet.nodes(&big, 10).await.iter().take(3) {
        events.push(disconnect(&emulator, node).await);
    }
    events.push(disconnect(&emulator, &fleet.nodes(&small, 10).await[0]).await);
    pipeline.put_events(&events).await;

    // When the batch is checked.
    let function = Function::start(&pipeline.function_env(&emulator)).await;
    let (_, response) = pipeline.deliver(&function, 4).await;
    assert_eq!(response, json!({"batchItemFailures": []}));

    // Then 3 of 10 (30%) pages as critical, 1 of 10 as high, in the attribute and the finding.
    let published = emulator.published().await;
    let severity = |cluster: &str| {
        let alert = published
            .iter()
            .find(|p| p.attributes.get("cluster").map(String::as_str) == Some(cluster))
            .unwrap_or_else(|| panic!("no alert for {cluster}: {published:#?}"));
        let finding: Value =
            serde_json::from_str(alert.message["default"].as_str().unwrap_or_default()).expect("the finding");
        assert_eq!(finding["severity"], alert.attributes["severity"], "{cluster}");
        alert.attributes["severity"].clone()
    };
    assert_eq!(severity("big"), "critical");
    assert_eq!(severity("small"), "high");
}
