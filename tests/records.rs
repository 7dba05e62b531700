//! What Lambda hands the monitor, record by record: one record's odd attributes are that
//! record's problem, never its neighbours'.

use serde_json::json;
use watchdog_tests::emulator::{Emulator, instance_ids};
use watchdog_tests::fleet::Fleet;
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::agent_event;

/// The old intake read `ApproximateReceiveCount` as a string inside the deserialization of the
/// whole batch: a number there (or anything else) failed the invocation, and all three went
/// back to the queue. Now the odd record is checked with its count unknown (and logged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_one_records_receive_count_has_the_wrong_type_then_it_and_its_neighbours_are_checked() {
    let emulator = Emulator::start().await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let pipeline = Pipeline::from_template(&emulator.sdk, &[("GracePeriodSeconds", "0")]).await;
    let cluster = fleet.cluster("prod", &[]).await;
    let nodes = fleet.nodes(&cluster, 3).await;
    for node in &nodes {
        emulator
            .set_container_instance(&node.cluster_arn, &node.container_instance_arn, Some(false), None)
            .await;
    }
    pipeline
        .put_events(&nodes.iter().map(|n| agent_event(n, 2, false)).collect::<Vec<_>>())
        .await;
    let mut records = pipeline.receive(3).await;
    records[1]["attributes"]["ApproximateReceiveCount"] = json!(2);

    let function = Function::start(&pipeline.function_env(&emulator)).await;
    let answer = function.invoke(&sqs_event(&records)).await;

    assert_eq!(answer, Ok(json!({"batchItemFailures": []})));
    let published = emulator.published().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    let finding = serde_json::from_str(published[0].message["default"].as_str().unwrap()).unwrap();
    let mut named = instance_ids(&finding);
    named.sort();
    let mut disconnected: Vec<String> = nodes.iter().map(|n| n.ec2_instance_id.clone()).collect();
    disconnected.sort();
    assert_eq!(named, disconnected);
    // Reported: a warning that names the record.
    let odd = &records[1]["messageId"];
    let warned = function
        .output()
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .any(|log| log["level"] == "WARN" && &log["fields"]["message_id"] == odd);
    assert!(warned, "{:#?}", function.output());
}
