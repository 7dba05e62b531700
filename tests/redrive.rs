//! `scripts/redrive.py` against the emulator: what waits in either dead-letter queue goes back
//! to the checks queue and is checked like a new event.

use serde_json::json;
use watchdog_tests::emulator::{Emulator, python};
use watchdog_tests::fleet::Fleet;
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::repo_root;
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::agent_event;

async fn redrive(emulator: &Emulator, source_url: &str, target_url: &str) -> String {
    let output = tokio::process::Command::new(python())
        .arg(repo_root().join("scripts/redrive.py"))
        .args(["--source-url", source_url, "--target-url", target_url])
        .envs(emulator.env())
        .output()
        .await
        .expect("run scripts/redrive.py");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_dead_letters_are_redriven_then_they_are_checked_like_new_events() {
    // Given a disconnected agent whose event EventBridge could not deliver (it waits in the
    // rules' dead-letter queue, body = the event), and one that failed five checks.
    let emulator = Emulator::start().await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let pipeline = Pipeline::create(&emulator.sdk, 0).await;
    let cluster = fleet.cluster("prod", &[]).await;
    let nodes = fleet.nodes(&cluster, 2).await;
    for node in &nodes {
        emulator
            .set_container_instance(&node.cluster_arn, &node.container_instance_arn, Some(false), None)
            .await;
    }
    let rules_dlq = pipeline.queue("RulesDeadLetterQueue").to_owned();
    for (queue, node) in [(&rules_dlq, &nodes[0]), (&pipeline.dead_letter_queue_url, &nodes[1])] {
        pipeline
            .sqs
            .send_message()
            .queue_url(queue)
            .message_body(agent_event(node, 2, false).to_string())
            .send()
            .await
            .expect("SendMessage");
    }

    // When both are redriven.
    let said = redrive(&emulator, &rules_dlq, &pipeline.queue_url).await;
    assert!(said.starts_with("moved 1 messages"), "{said}");
    let said = redrive(&emulator, &pipeline.dead_letter_queue_url, &pipeline.queue_url).await;
    assert!(said.starts_with("moved 1 messages"), "{said}");

    // Then the dead-letter queues are empty and the monitor checks and alerts both.
    assert_eq!(pipeline.depth(&rules_dlq).await, 0);
    assert_eq!(pipeline.depth(&pipeline.dead_letter_queue_url).await, 0);
    let records = pipeline.receive(2).await;
    let function = Function::start(&pipeline.function_env(&emulator)).await;
    let response = function.invoke(&sqs_event(&records)).await.expect("handled");
    assert_eq!(response, json!({"batchItemFailures": []}));
    let published = emulator.published().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    let email = published[0].message["email"].as_str().unwrap();
    for node in &nodes {
        assert!(email.contains(&node.ec2_instance_id), "{email}");
    }
}
