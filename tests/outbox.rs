//! Never lost, once, in order (DESIGN §7, promises 1 to 3), end to end with the real binaries:
//! a monitor killed while it publishes, then its batch redelivered by the queue to a new
//! process. The kill is the emulator's, on the `Publish` call itself, so it lands at the same
//! point every run, with no sleep to time it.

use serde_json::{Value, json};
use watchdog_tests::emulator::{Emulator, Moment, Published};
use watchdog_tests::fleet::{Fleet, Node};
use watchdog_tests::ledger;
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::agent_event;

/// What the messages of one incident have in common: its cluster, its kind and the container
/// instances they name. DESIGN §7 also has a message carry the incident's id as the SNS
/// attribute `incident`; where a message carries it, it must agree too.
fn incident_of(published: &Published) -> Value {
    let finding: Value =
        serde_json::from_str(published.message["default"].as_str().expect("a default key")).expect("JSON");
    let instances: Vec<&Value> = finding["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| &i["containerInstanceArn"])
        .collect();
    json!({
        "cluster": published.attributes["cluster"],
        "kind": published.attributes["kind"],
        "incident": published.attributes.get("incident"),
        "instances": instances,
    })
}

fn with_status<'a>(published: &'a [Published], status: &str) -> Vec<&'a Published> {
    published.iter().filter(|p| p.attributes["status"] == status).collect()
}

/// One disconnected agent, its event on its way through EventBridge and the checks queue.
async fn disconnected(emulator: &Emulator, pipeline: &Pipeline) -> Node {
    let fleet = Fleet::new(&emulator.sdk).await;
    let cluster = fleet.cluster("prod", &[]).await;
    let node = fleet.nodes(&cluster, 1).await.remove(0);
    emulator
        .set_container_instance(&node.cluster_arn, &node.container_instance_arn, Some(false), None)
        .await;
    pipeline.put_events(&[agent_event(&node, 2, false)]).await;
    node
}

/// Kills the monitor at `moment` of its `Publish`, then lets the queue's visibility timeout pass
/// (the ledger's times move back by it, the message is handed out again) and hands the batch to
/// a new process. Returns what SNS took before the kill, and the new process.
async fn killed_then_redelivered(emulator: &Emulator, pipeline: &Pipeline, moment: Moment) -> (usize, Function) {
    let env = pipeline.function_env(emulator);
    let records = pipeline.receive(1).await;
    let mut first = Function::start(&env).await;
    let pid = first.pid().expect("the monitor runs");
    emulator.kill_on("sns:Publish", pid, moment).await;
    let answer = first.invoke_unless_killed(&sqs_event(&records)).await;
    assert!(answer.is_none(), "killed before it answered: {answer:?}");
    let taken = emulator.published().await.len();

    let dynamodb = aws_sdk_dynamodb::Client::new(&emulator.sdk);
    let waited = pipeline.visibility_timeout().await;
    assert!(ledger::pass(&dynamodb, &pipeline.incident_table(), waited).await > 0);
    pipeline.redeliver(&records).await;
    let second = Function::start(&env).await;
    let (again, answer) = pipeline.deliver(&second, 1).await;
    assert_eq!(
        again[0]["attributes"]["ApproximateReceiveCount"], "2",
        "the same message, again"
    );
    assert_eq!(answer, json!({"batchItemFailures": []}));
    (taken, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_monitor_is_killed_while_publishing_then_the_redelivery_alerts_and_the_resolved_notice_follows() {
    // Before: SNS never took the alert. After: SNS took it, the ledger never heard.
    for moment in [Moment::Before, Moment::After] {
        let emulator = Emulator::start().await;
        let pipeline = Pipeline::from_template(&emulator.sdk, &[("GracePeriodSeconds", "0")]).await;
        let node = disconnected(&emulator, &pipeline).await;

        let (taken, function) = killed_then_redelivered(&emulator, &pipeline, moment).await;

        // Never lost: the redelivery alerts. Once: a second alert only when SNS had taken the
        // first, and then about the same incident.
        assert_eq!(taken, usize::from(moment == Moment::After), "{moment:?}");
        let published = emulator.published().await;
        let firing = with_status(&published, "firing");
        assert_eq!(firing.len(), 1 + taken, "{moment:?}: {published:#?}");
        let incident = incident_of(firing[0]);
        assert_eq!(incident["instances"], json!([node.container_instance_arn]));
        assert!(
            firing.iter().all(|p| incident_of(p) == incident),
            "{moment:?}: {firing:#?}"
        );

        // The same event once more: settled, nothing more is sent.
        pipeline.put_events(&[agent_event(&node, 2, false)]).await;
        pipeline.deliver(&function, 1).await;
        assert_eq!(emulator.published().await.len(), published.len(), "{moment:?}");

        // In order: the agent reconnects; the next look sends the resolved notice, after the alert.
        emulator
            .set_container_instance(&node.cluster_arn, &node.container_instance_arn, Some(true), None)
            .await;
        pipeline.put_events(&[agent_event(&node, 2, false)]).await;
        let (_, answer) = pipeline.deliver(&function, 1).await;
        assert_eq!(answer, json!({"batchItemFailures": []}));
        let published = emulator.published().await;
        let resolved = with_status(&published, "resolved");
        assert_eq!(resolved.len(), 1, "{moment:?}: {published:#?}");
        assert_eq!(incident_of(resolved[0]), incident);
        assert_eq!(
            published.last().map(|p| p.attributes["status"].as_str()),
            Some("resolved")
        );
    }
}

/// The emulator keeps DynamoDB's word on `ClientRequestToken` (API reference, TransactWriteItems:
/// "multiple identical calls have the same effect as one single call"; the same token with other
/// parameters is refused). The SDK resends a transaction with its token after an attempt timeout;
/// moto, slow under load, had carried the first attempt out, so the resend met its own writes,
/// was cancelled, and the ledger planned again what was written (and the cost tests counted the
/// resend as a second call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_transaction_is_sent_again_with_its_token_then_it_takes_effect_once_and_counts_once() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put, ScalarAttributeType,
        TransactWriteItem,
    };
    let emulator = Emulator::start().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&emulator.sdk);
    dynamodb
        .create_table()
        .table_name("ledger")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateTable");
    let put = |id: &str| {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name("ledger")
                    .item("id", AttributeValue::S(id.to_owned()))
                    .condition_expression("attribute_not_exists(id)")
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let send = |id: &'static str, token: &'static str| {
        dynamodb
            .transact_write_items()
            .transact_items(put(id))
            .client_request_token(token)
            .send()
    };
    emulator.reset_calls().await;

    send("a", "token-1").await.expect("the first attempt");
    send("a", "token-1")
        .await
        .expect("the same transaction again: answered as done, not cancelled");
    let calls = emulator.calls().await;
    assert_eq!(calls.get("dynamodb:TransactWriteItems"), Some(&1), "{calls:?}");

    // Another token is another transaction: its condition meets the item.
    let again = send("a", "token-2")
        .await
        .expect_err("a new transaction over the item is cancelled");
    assert!(
        again
            .as_service_error()
            .is_some_and(|e| e.is_transaction_canceled_exception()),
        "{again:?}"
    );
    // The same token with other parameters is refused.
    let mismatch = send("b", "token-1").await.expect_err("the token's parameters changed");
    assert!(
        mismatch
            .as_service_error()
            .is_some_and(|e| e.is_idempotent_parameter_mismatch_exception()),
        "{mismatch:?}"
    );
    let stored = dynamodb.scan().table_name("ledger").send().await.expect("Scan");
    assert_eq!(stored.count(), 1);
}
