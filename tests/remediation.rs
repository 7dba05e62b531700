//! Remediation end to end: the real binary drains and replaces confirmed broken instances,
//! within the blast-radius guard, and sends findings on for custom remediation.

use std::sync::{Arc, Mutex};

use aws_sdk_ecs::types::ContainerInstanceStatus;
use aws_sdk_eventbridge::types::Target;
use aws_sdk_lambda::operation::invoke::InvokeOutput;
use aws_sdk_lambda::types::InvocationType;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use ecs_watchdog::aws::{EventBridgeFindings, LambdaHook};
use serde_json::{Value, json};
use watchdog_tests::emulator::{ACCOUNT, Emulator, Published, REGION};
use watchdog_tests::fleet::{Fleet, Node};
use watchdog_tests::in_process;
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::agent_event;

async fn disconnect(emulator: &Emulator, node: &Node) -> Value {
    emulator
        .set_container_instance(&node.cluster_arn, &node.container_instance_arn, Some(false), None)
        .await;
    agent_event(node, 2, false)
}

fn finding(alert: &Published) -> Value {
    serde_json::from_str(alert.message["default"].as_str().unwrap()).unwrap()
}

/// A queue that receives every finding on the bus through an EventBridge rule.
async fn findings_queue(emulator: &Emulator, bus: &str) -> String {
    let events = aws_sdk_eventbridge::Client::new(&emulator.sdk);
    let sqs = aws_sdk_sqs::Client::new(&emulator.sdk);
    events
        .create_event_bus()
        .name(bus)
        .send()
        .await
        .expect("CreateEventBus");
    let url = sqs
        .create_queue()
        .queue_name("findings")
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .unwrap()
        .to_owned();
    let pattern = json!({"source": ["ecs-watchdog"], "detail-type": ["ECS Watchdog Finding"]});
    events
        .put_rule()
        .name("findings")
        .event_bus_name(bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .expect("PutRule");
    let target = Target::builder()
        .id("queue")
        .arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:findings"))
        .build()
        .unwrap();
    events
        .put_targets()
        .rule("findings")
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .expect("PutTargets");
    url
}

async fn received(emulator: &Emulator, url: &str) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(&emulator.sdk);
    let output = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("ReceiveMessage");
    output
        .messages()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap_or_default()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_disconnect_is_confirmed_in_an_auto_scaling_group_then_it_is_drained_and_replaced_once() {
    // Given drain-and-replace, and i1 of an Auto Scaling group with a disconnected agent.
    let emulator = Emulator::start().await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let parameters = [("GracePeriodSeconds", "0"), ("RemediationAction", "drain-and-replace")];
    let pipeline = Pipeline::from_template(&emulator.sdk, &parameters).await;
    let cluster = fleet.cluster("prod", &[]).await;
    let nodes = fleet.auto_scaling_group(&emulator.sdk, "prod-asg", &cluster, 2).await;
    let i1 = &nodes[0];
    pipeline.put_events(&[disconnect(&emulator, i1).await]).await;
    let records = pipeline.receive(1).await;
    let function = Function::start(&pipeline.function_env(&emulator)).await;

    // When the batch runs.
    let response = function
        .invoke(&sqs_event(&records))
        .await
        .expect("the batch is handled");

    // Then i1 is DRAINING and Unhealthy in its group, i2 untouched, and the alert says so.
    assert_eq!(response, json!({"batchItemFailures": []}));
    assert_eq!(fleet.container_instance(i1).await.0, "DRAINING");
    assert_eq!(fleet.health(&emulator.sdk, i1).await.to_ascii_lowercase(), "unhealthy");
    assert_eq!(fleet.container_instance(&nodes[1]).await.0, "ACTIVE");
    let published = emulator.published().await;
    assert_eq!(published.len(), 1);
    let email = published[0].message["email"].as_str().unwrap();
    assert!(
        email.contains("remediation: drained (DRAINING); marked Unhealthy in Auto Scaling group prod-asg"),
        "{email}"
    );
    assert!(email.contains("What it did: drain-and-replace"), "{email}");
    assert_eq!(
        finding(&published[0])["instances"][0]["remediation"],
        "drained (DRAINING); marked Unhealthy in Auto Scaling group prod-asg, which replaces it"
    );
    assert_eq!(
        finding(&published[0])["instances"][0]["remediationActions"],
        serde_json::json!([
            {"step": "drain", "outcome": "done", "detail": "drained (DRAINING)"},
            {"step": "replace", "outcome": "done", "detail": "marked Unhealthy in Auto Scaling group prod-asg, which replaces it"}
        ]),
        "the same, step by step, for machines"
    );
    assert_eq!(function.metric("RemediationStarted", Some("prod")), 1.0);

    // When the same message is delivered again, nothing changes twice and the log says why.
    function.clear_output();
    let response = function
        .invoke(&sqs_event(&records))
        .await
        .expect("the retry is handled");
    assert_eq!(response, json!({"batchItemFailures": []}));
    assert_eq!(emulator.published().await.len(), 1, "no second alert");
    assert_eq!(fleet.container_instance(i1).await.0, "DRAINING");
    assert_eq!(function.metric("RemediationStarted", None), 0.0);
    assert_eq!(function.metric("Suppressed", Some("prod")), 1.0);
    let log = function.output().join("\n");
    assert!(log.contains("Suppressed(Draining)"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_remediation_is_a_dry_run_then_nothing_changes_and_the_alert_and_finding_say_what_would_have() {
    let emulator = Emulator::start().await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let findings = findings_queue(&emulator, "ops").await;
    let parameters = [
        ("GracePeriodSeconds", "0"),
        ("RemediationAction", "drain-and-replace"),
        ("RemediationDryRun", "true"),
        ("FindingsEventBusName", "ops"),
    ];
    let pipeline = Pipeline::from_template(&emulator.sdk, &parameters).await;
    let cluster = fleet.cluster("prod", &[]).await;
    let nodes = fleet.auto_scaling_group(&emulator.sdk, "prod-asg", &cluster, 1).await;
    pipeline.put_events(&[disconnect(&emulator, &nodes[0]).await]).await;
    let records = pipeline.receive(1).await;
    let function = Function::start(&pipeline.function_env(&emulator)).await;

    function
        .invoke(&sqs_event(&records))
        .await
        .expect("the batch is handled");

    assert_eq!(fleet.container_instance(&nodes[0]).await.0, "ACTIVE", "nothing changed");
    assert_eq!(
        fleet.health(&emulator.sdk, &nodes[0]).await.to_ascii_lowercase(),
        "healthy"
    );
    let expected =
        "would drain (set to DRAINING) (dry run); would mark Unhealthy in Auto Scaling group prod-asg (dry run)";
    let published = emulator.published().await;
    assert!(published[0].message["email"].as_str().unwrap().contains(expected));
    let events = received(&emulator, &findings).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["source"], "ecs-watchdog");
    assert_eq!(events[0]["detail-type"], "ECS Watchdog Finding");
    assert_eq!(events[0]["detail"]["instances"][0]["remediation"], expected);
    assert_eq!(
        events[0]["detail"]["action"],
        "dry run of drain-and-replace: nothing was changed"
    );
    assert_eq!(function.metric("RemediationStarted", None), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_40_of_100_instances_fail_across_two_concurrent_invocations_then_the_guard_drains_exactly_10() {
    // Given a 100-instance cluster with 40 confirmed disconnects and a 10 % guard.
    let emulator = Emulator::start().await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let parameters = [
        ("GracePeriodSeconds", "0"),
        ("RemediationAction", "drain"),
        ("MaxRemediationPercent", "10"),
        // Each invocation alerts what it found (tests/digest.rs groups them).
        ("GroupIntervalMinutes", "0"),
    ];
    let pipeline = Pipeline::from_template(&emulator.sdk, &parameters).await;
    let cluster = fleet.cluster("prod", &[]).await;
    let nodes = fleet.nodes(&cluster, 100).await;
    let mut events = Vec::new();
    for node in &nodes[..40] {
        events.push(disconnect(&emulator, node).await);
    }
    pipeline.put_events(&events).await;
    let records = pipeline.receive(40).await;
    let env = pipeline.function_env(&emulator);
    let (a, b) = (Function::start(&env).await, Function::start(&env).await);

    // When the batch arrives split across two concurrent invocations.
    let (first, second) = (sqs_event(&records[..20]), sqs_event(&records[20..]));
    let (ra, rb) = tokio::join!(a.invoke(&first), b.invoke(&second));
    assert_eq!(
        (ra.unwrap(), rb.unwrap()),
        (json!({"batchItemFailures": []}), json!({"batchItemFailures": []}))
    );

    // Then exactly 10 are DRAINING and the other 30 are named as held back.
    assert_eq!(fleet.count(&cluster, ContainerInstanceStatus::Draining).await, 10);
    let published = emulator.published().await;
    assert_eq!(published.len(), 2);
    let remediations: Vec<String> = published
        .iter()
        .flat_map(|alert| finding(alert)["instances"].as_array().unwrap().clone())
        .map(|i| i["remediation"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(remediations.len(), 40);
    assert_eq!(remediations.iter().filter(|r| r.starts_with("drained")).count(), 10);
    assert_eq!(
        remediations
            .iter()
            .filter(|r| r.starts_with("held back by the guard"))
            .count(),
        30
    );
    assert!(
        published
            .iter()
            .any(|p| p.message["email"].as_str().unwrap().contains("held back by the guard"))
    );
    assert_eq!(
        a.metric("RemediationStarted", None) + b.metric("RemediationStarted", None),
        10.0
    );
    assert_eq!(
        a.metric("RemediationHeldBack", None) + b.metric("RemediationHeldBack", None),
        30.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_finding_is_confirmed_then_the_bus_and_the_hook_get_the_same_documented_json() {
    let emulator = Emulator::start().await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let findings = findings_queue(&emulator, "ops").await;
    let parameters = [("GracePeriodSeconds", "0"), ("FindingsEventBusName", "ops")];
    let pipeline = Pipeline::from_template(&emulator.sdk, &parameters).await;
    let cluster = fleet.cluster("prod", &[]).await;
    let nodes = fleet.nodes(&cluster, 1).await;
    pipeline.put_events(&[disconnect(&emulator, &nodes[0]).await]).await;
    let records = pipeline.receive(1).await;

    // The emulator cannot run Lambda functions: the hook is answered at the SDK layer.
    let payloads = Arc::new(Mutex::new(Vec::<Value>::new()));
    let seen = payloads.clone();
    let invoke = mock!(aws_sdk_lambda::Client::invoke)
        .match_requests(move |r| {
            let async_call = r.invocation_type() == Some(&InvocationType::Event)
                && r.function_name() == Some("arn:aws:lambda:us-east-1:123456789012:function:fix-it");
            if let Some(payload) = r.payload() {
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_slice(payload.as_ref()).unwrap());
            }
            async_call
        })
        .then_output(|| InvokeOutput::builder().status_code(202).build());
    let hook = LambdaHook::new(
        mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&invoke]),
        "arn:aws:lambda:us-east-1:123456789012:function:fix-it",
    );
    let config = in_process::config(&pipeline.monitor_env());
    let monitor = in_process::monitor(&emulator, config, |io| {
        io.findings = vec![
            Box::new(EventBridgeFindings::new(
                aws_sdk_eventbridge::Client::new(&emulator.sdk),
                "ops",
            )),
            Box::new(hook),
        ];
    });

    let report = monitor.process(&in_process::messages(&records)).await;

    assert!(report.failures.is_empty());
    let events = received(&emulator, &findings).await;
    assert_eq!(events.len(), 1);
    let detail = &events[0]["detail"];
    for field in [
        "schemaVersion",
        "kind",
        "severity",
        "region",
        "clusterName",
        "clusterArn",
        "instances",
        "checked",
        "action",
    ] {
        assert!(detail.get(field).is_some(), "the finding has {field}: {detail}");
    }
    assert_eq!(detail["kind"], "agent-disconnected");
    assert_eq!(
        detail["instances"][0]["ec2InstanceId"],
        nodes[0].ec2_instance_id.as_str()
    );
    assert_eq!(invoke.num_calls(), 1);
    assert_eq!(
        payloads.lock().unwrap().as_slice(),
        std::slice::from_ref(detail),
        "the hook gets the same JSON"
    );
    let published = emulator.published().await;
    assert_eq!(&finding(&published[0]), detail, "and so does the SNS default key");
}

/// Defence in depth (moto enforces no IAM, so here the role would allow anything): the code
/// itself keeps to `RemediationClusterNames` and `ReplaceOnlyTaggedGroups`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_cluster_or_group_is_outside_the_remediation_scope_then_its_confirmed_instance_is_left_alone() {
    // Given drain-and-replace limited to the cluster payments and to tagged groups, and a
    // disconnected agent in prod (out of scope), in payments' untagged group and its tagged one.
    let emulator = Emulator::start().await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let parameters = [
        ("GracePeriodSeconds", "0"),
        ("RemediationAction", "drain-and-replace"),
        ("RemediationClusterNames", "payments"),
        ("ReplaceOnlyTaggedGroups", "true"),
        ("MaxRemediationPercent", "100"),
    ];
    let pipeline = Pipeline::from_template(&emulator.sdk, &parameters).await;
    let prod = fleet.cluster("prod", &[]).await;
    let payments = fleet.cluster("payments", &[]).await;
    let outside = fleet.auto_scaling_group(&emulator.sdk, "prod-asg", &prod, 1).await;
    let untagged = fleet
        .auto_scaling_group(&emulator.sdk, "payments-a", &payments, 1)
        .await;
    let tagged = fleet
        .auto_scaling_group(&emulator.sdk, "payments-b", &payments, 1)
        .await;
    let tag = aws_sdk_autoscaling::types::Tag::builder()
        .resource_id("payments-b")
        .resource_type("auto-scaling-group")
        .key("ecs-watchdog-replace")
        .value("true")
        .propagate_at_launch(false)
        .build();
    aws_sdk_autoscaling::Client::new(&emulator.sdk)
        .create_or_update_tags()
        .tags(tag)
        .send()
        .await
        .expect("CreateOrUpdateTags");
    let mut events = Vec::new();
    for node in [&outside[0], &untagged[0], &tagged[0]] {
        events.push(disconnect(&emulator, node).await);
    }
    pipeline.put_events(&events).await;
    let records = pipeline.receive(3).await;
    let function = Function::start(&pipeline.function_env(&emulator)).await;

    // When the batch runs.
    let response = function.invoke(&sqs_event(&records)).await.expect("handled");
    assert_eq!(response, json!({"batchItemFailures": []}));

    // Then prod's instance is alerted and untouched, and its finding says why.
    assert_eq!(fleet.container_instance(&outside[0]).await.0, "ACTIVE");
    assert_eq!(
        fleet.health(&emulator.sdk, &outside[0]).await.to_ascii_lowercase(),
        "healthy"
    );
    let published = emulator.published().await;
    let prod_alert = published
        .iter()
        .find(|p| finding(p)["clusterName"] == "prod")
        .expect("prod's alert");
    assert_eq!(
        finding(prod_alert)["instances"][0]["remediationActions"],
        json!([{"step": "guard", "outcome": "skipped",
                "detail": "not drained: cluster prod is outside the remediation scope (REMEDIATION_CLUSTER_NAMES)"}])
    );
    // payments' untagged group's instance is drained but not replaced; the tagged one is both.
    assert_eq!(fleet.container_instance(&untagged[0]).await.0, "DRAINING");
    assert_eq!(
        fleet.health(&emulator.sdk, &untagged[0]).await.to_ascii_lowercase(),
        "healthy"
    );
    assert_eq!(fleet.container_instance(&tagged[0]).await.0, "DRAINING");
    assert_eq!(
        fleet.health(&emulator.sdk, &tagged[0]).await.to_ascii_lowercase(),
        "unhealthy"
    );
    let payments_alert = published
        .iter()
        .find(|p| finding(p)["clusterName"] == "payments")
        .expect("payments' alert");
    let replaced: Vec<(String, String)> = finding(payments_alert)["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let replace = &i["remediationActions"][1];
            (
                i["ec2InstanceId"].as_str().unwrap().to_owned(),
                replace["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        replaced.contains(&(untagged[0].ec2_instance_id.clone(), "skipped".to_owned())),
        "{replaced:?}"
    );
    assert!(
        replaced.contains(&(tagged[0].ec2_instance_id.clone(), "done".to_owned())),
        "{replaced:?}"
    );
    // One drain call, in payments only: none was made in prod.
    let drains = emulator.requests("ecs:UpdateContainerInstancesState").await;
    assert_eq!(drains.len(), 1, "{drains:?}");
    assert_eq!(drains[0]["cluster"], payments);
}
