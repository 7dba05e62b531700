//! `scripts/redrive.py` against the emulator: what waits in either dead-letter queue goes back
//! to the checks queue and is checked like a new event.

use ecs_watchdog::pipeline::PLACE_UNREACHABLE;
use serde_json::json;
use watchdog_tests::emulator::{Emulator, python};
use watchdog_tests::fleet::Fleet;
use watchdog_tests::pipeline::Pipeline;
use watchdog_tests::repo_root;
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::agent_event;
use watchdog_tests::template::rendered;

async fn redrive(emulator: &Emulator, source_url: &str, target_url: &str) -> String {
    let output = run_redrive(emulator, &["--source-url", source_url, "--target-url", target_url]).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn run_redrive(emulator: &Emulator, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(python())
        .arg(repo_root().join("scripts/redrive.py"))
        .args(args)
        .envs(emulator.env())
        .output()
        .await
        .expect("run scripts/redrive.py")
}

/// The stack's redrive role, created in the emulator as the rendered template declares it
/// (with boto3: the tests crate has no IAM client for one call).
async fn redrive_role(emulator: &Emulator) -> String {
    let template = rendered("ecs-watchdog", &[]);
    let role = template["Resources"]["RedriveRole"]["Properties"].to_string();
    let script = r#"
import json, sys, boto3
role = json.loads(sys.argv[1])
iam = boto3.client("iam", region_name="us-east-1")
arn = iam.create_role(RoleName="ecs-watchdog-RedriveRole",
                      AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"]))["Role"]["Arn"]
for policy in role["Policies"]:
    iam.put_role_policy(RoleName="ecs-watchdog-RedriveRole", PolicyName=policy["PolicyName"],
                        PolicyDocument=json.dumps(policy["PolicyDocument"]))
print(arn)
"#;
    let output = tokio::process::Command::new(python())
        .args(["-c", script, &role])
        .envs(emulator.env())
        .output()
        .await
        .expect("create the redrive role");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// moto enforces no IAM: that only the role may send is the queue policy's (tests/iam/contract.rs).
/// Here: the script works through the role (its AssumeRole denied, nothing moves), and a message
/// parked because its member account could not be reached goes back once the role is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redrive_works_through_the_stacks_role_then_parked_messages_go_back() {
    let emulator = Emulator::start().await;
    let pipeline = Pipeline::create(&emulator.sdk, 0).await;
    let role = redrive_role(&emulator).await;
    let parked = json!({"account": "333333333333", "region": "us-east-1", "source": "aws.ecs"}).to_string();
    let reason = aws_sdk_sqs::types::MessageAttributeValue::builder()
        .data_type("String")
        .string_value(PLACE_UNREACHABLE)
        .build()
        .unwrap();
    pipeline
        .sqs
        .send_message()
        .queue_url(&pipeline.dead_letter_queue_url)
        .message_body(&parked)
        .message_attributes("watchdog-reject-reason", reason)
        .send()
        .await
        .expect("SendMessage");
    let args = [
        "--source-url",
        &pipeline.dead_letter_queue_url,
        "--target-url",
        &pipeline.queue_url,
        "--role-arn",
        &role,
    ];

    // When the role cannot be assumed, nothing moves.
    emulator.deny_assume_role(&role, true).await;
    let refused = run_redrive(&emulator, &args).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("AccessDenied"));
    assert_eq!(pipeline.depth(&pipeline.dead_letter_queue_url).await, 1);

    // When it can, the message moves through it, once.
    emulator.deny_assume_role(&role, false).await;
    emulator.reset_calls().await;
    let moved = run_redrive(&emulator, &args).await;
    assert!(moved.status.success(), "{}", String::from_utf8_lossy(&moved.stderr));
    assert!(String::from_utf8_lossy(&moved.stdout).starts_with("moved 1 messages"));
    assert_eq!(emulator.calls().await.get("sts:AssumeRole"), Some(&1));
    assert_eq!(pipeline.depth(&pipeline.dead_letter_queue_url).await, 0);
    let back = pipeline.receive(1).await;
    assert_eq!(back[0]["body"], parked.as_str());
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
    let function = Function::start(&pipeline.function_env(&emulator)).await;
    let (_, response) = pipeline.deliver(&function, 2).await;
    assert_eq!(response, json!({"batchItemFailures": []}));
    let published = emulator.published().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    let email = published[0].message["email"].as_str().unwrap();
    for node in &nodes {
        assert!(email.contains(&node.ec2_instance_id), "{email}");
    }
}

/// `SendMessageBatch` takes at most 256 KiB of bodies in all (`scripts/redrive.py` cites the
/// page). The old script sent what one receive gave, ten bodies of 110 KB in one request: SQS
/// refuses that (the emulator refuses over its 1 MiB), the script stopped and nothing moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_ten_large_dead_letters_are_redriven_then_each_send_stays_within_256_kib_and_all_move() {
    let emulator = Emulator::start().await;
    let pipeline = Pipeline::create(&emulator.sdk, 0).await;
    let bodies: Vec<String> = (0..10).map(|i| format!("{i} {}", "é".repeat(55_000))).collect();
    for body in &bodies {
        pipeline
            .sqs
            .send_message()
            .queue_url(&pipeline.dead_letter_queue_url)
            .message_body(body)
            .send()
            .await
            .expect("SendMessage");
    }

    emulator.reset_calls().await;
    let said = redrive(&emulator, &pipeline.dead_letter_queue_url, &pipeline.queue_url).await;

    assert!(said.starts_with("moved 10 messages"), "{said}");
    let sends = emulator.requests("sqs:SendMessageBatch").await;
    assert!(sends.len() >= 5, "two 110 KB bodies a request at most: {}", sends.len());
    for request in &sends {
        let entries = request["Entries"].as_array().expect("entries");
        let bytes: usize = entries.iter().map(|e| e["MessageBody"].as_str().unwrap().len()).sum();
        assert!(
            entries.len() <= 10 && bytes <= 262_144,
            "{} entries, {bytes} bytes",
            entries.len()
        );
    }
    assert_eq!(pipeline.depth(&pipeline.dead_letter_queue_url).await, 0);
    let mut moved: Vec<String> = pipeline
        .receive(bodies.len())
        .await
        .iter()
        .map(|r| r["body"].as_str().unwrap().to_owned())
        .collect();
    moved.sort();
    let mut sent = bodies.clone();
    sent.sort();
    assert_eq!(moved, sent);
}
