//! `scripts/deploy_cargo_lambda.py`, the deploy path without CloudFormation, against the
//! emulator: it must create the pipeline the template declares, wired so that an ECS event ends
//! in the function's queue and the function's environment works. moto keeps no function logging
//! settings and cannot run an arm64 bootstrap, so the code goes up as a zip with boto3 here and
//! the real `monitor` binary runs with the environment the script gave the function.

use serde_json::{Value, json};
use watchdog_tests::emulator::Emulator;
use watchdog_tests::fleet::Fleet;
use watchdog_tests::pipeline::sqs_event;
use watchdog_tests::repo_root;
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::agent_event;
use watchdog_tests::template::{properties, sam_python, template};

async fn deploy(emulator: &Emulator, zip: &std::path::Path) -> Value {
    deploy_with(emulator, zip, &[]).await
}

/// The script with `GracePeriodSeconds=0` and these parameters (`KEY=VALUE`).
async fn deploy_with(emulator: &Emulator, zip: &std::path::Path, parameters: &[&str]) -> Value {
    let output = tokio::process::Command::new(sam_python())
        .arg(repo_root().join("scripts/deploy_cargo_lambda.py"))
        .args(["--name", "wd", "--param", "GracePeriodSeconds=0"])
        .args(parameters.iter().flat_map(|p| ["--param", p]))
        .arg("--code-zip")
        .arg(zip)
        .envs(emulator.env())
        .env("AWS_DEFAULT_REGION", watchdog_tests::emulator::REGION)
        .output()
        .await
        .expect("run scripts/deploy_cargo_lambda.py");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the script prints what it made")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_deployed_with_cargo_lambda_then_events_reach_a_function_configured_as_the_template_says() {
    let emulator = Emulator::start().await;
    let dir = std::env::temp_dir().join(format!("watchdog-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let zip = dir.join("monitor.zip");
    let made = std::process::Command::new(sam_python())
        .args([
            "-c",
            "import sys, zipfile; zipfile.ZipFile(sys.argv[1], 'w').writestr('bootstrap', 'x')",
        ])
        .arg(&zip)
        .status()
        .unwrap();
    assert!(made.success());

    // Twice: the second run updates what the first made.
    deploy(&emulator, &zip).await;
    let made = deploy(&emulator, &zip).await;

    let lambda = aws_sdk_lambda::Client::new(&emulator.sdk);
    let function = lambda
        .get_function_configuration()
        .function_name("wd-monitor")
        .send()
        .await
        .expect("the function exists");
    let declared = properties("MonitorFunction");
    assert_eq!(
        Some(i64::from(function.timeout().unwrap())),
        declared["Timeout"].as_i64()
    );
    assert_eq!(
        Some(i64::from(function.memory_size().unwrap())),
        declared["MemorySize"].as_i64()
    );
    assert_eq!(function.role(), made["role"].as_str());
    let environment = function
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    let declared_env = declared["Environment"]["Variables"].as_object().unwrap();
    assert_eq!(
        environment.keys().collect::<std::collections::BTreeSet<_>>(),
        declared_env.keys().collect(),
        "the template's variables, no more, no less"
    );

    let mappings = lambda
        .list_event_source_mappings()
        .function_name("wd-monitor")
        .send()
        .await
        .unwrap();
    let [mapping] = mappings.event_source_mappings() else {
        panic!("one event source mapping: {mappings:?}")
    };
    let source = &declared["Events"]["Checks"]["Properties"];
    assert_eq!(mapping.batch_size().map(i64::from), source["BatchSize"].as_i64());
    assert_eq!(
        mapping
            .function_response_types()
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>(),
        vec!["ReportBatchItemFailures"]
    );
    assert_eq!(
        mapping
            .scaling_config()
            .and_then(|s| s.maximum_concurrency())
            .map(i64::from),
        source["ScalingConfig"]["MaximumConcurrency"].as_i64()
    );

    // moto would now run the function itself, in Docker, for each message: this test bed plays
    // Lambda's poller instead, with the mapping disabled.
    lambda
        .update_event_source_mapping()
        .uuid(mapping.uuid().unwrap())
        .enabled(false)
        .send()
        .await
        .unwrap();

    let events = aws_sdk_eventbridge::Client::new(&emulator.sdk);
    let stack = watchdog_tests::template::Stack::new(&[]);
    for rule in watchdog_tests::template::created_of_type(&stack, "AWS::Events::Rule") {
        let found = events
            .describe_rule()
            .name(format!("wd-{rule}"))
            .send()
            .await
            .expect(rule);
        let pattern: Value = serde_json::from_str(found.event_pattern().unwrap()).unwrap();
        assert_eq!(
            pattern,
            template()["Resources"][rule]["Properties"]["EventPattern"],
            "{rule}"
        );
    }

    // The queue's policy came after the rules: it names each as EventBridge answered, and
    // denies every other sender but the redrive role. Every alarm of the template exists.
    let sqs = aws_sdk_sqs::Client::new(&emulator.sdk);
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(made["queues"]["ChecksQueue"].as_str().unwrap())
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::Policy)
        .send()
        .await
        .unwrap();
    let policy: Value =
        serde_json::from_str(&attributes.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::Policy])
            .unwrap();
    let deny = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "NoOtherSender")
        .expect("the Deny");
    let excepted = &deny["Condition"]["ArnNotEquals"];
    assert_eq!(excepted["aws:PrincipalArn"], made["redriveRole"]);
    for rule in watchdog_tests::template::created_of_type(&stack, "AWS::Events::Rule") {
        let arn = events.describe_rule().name(format!("wd-{rule}")).send().await.unwrap();
        let arn = json!(arn.arn().unwrap());
        assert!(excepted["aws:SourceArn"].as_array().unwrap().contains(&arn), "{rule}");
    }
    let alarms = watchdog_tests::template::created_of_type(&stack, "AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 20, "{alarms:?}");
    let expected: std::collections::BTreeSet<String> = alarms.iter().map(|a| format!("wd-{a}")).collect();
    let made_alarms = made["alarms"].as_array().unwrap().iter();
    let made_alarms: std::collections::BTreeSet<String> = made_alarms.map(|a| a.as_str().unwrap().to_owned()).collect();
    assert_eq!(made_alarms, expected);

    // An ECS event goes through the rule into the queue, and the binary, with the function's
    // environment, checks it and alerts.
    let fleet = Fleet::new(&emulator.sdk).await;
    let cluster = fleet.cluster("prod", &[]).await;
    let node = &fleet.nodes(&cluster, 1).await[0];
    emulator
        .set_container_instance(&node.cluster_arn, &node.container_instance_arn, Some(false), None)
        .await;
    let event = agent_event(node, 2, false);
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source("aws.ecs")
        .detail_type(event["detail-type"].as_str().unwrap())
        .detail(event["detail"].to_string())
        .build();
    events.put_events().entries(entry).send().await.unwrap();
    let queue_url = made["queues"]["ChecksQueue"].as_str().unwrap();
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    let [message] = received.messages() else {
        panic!("the rule queued the event: {received:?}")
    };
    let record = json!({"messageId": message.message_id(), "body": message.body()});
    let topic = environment["ALERT_TOPIC_ARN"].clone();
    let mut env = emulator.env();
    env.extend(environment);
    let function = Function::start(&env).await;
    let response = function.invoke(&sqs_event(&[record])).await.expect("handled");
    assert_eq!(response, json!({"batchItemFailures": []}));
    let published = emulator.published().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    assert_eq!(published[0].topic_arn, topic, "the topic the script gave the function");

    // The sweep: its function with its own role and the template's environment, on its schedule;
    // run with that environment it sees the cluster and finds the incident already alerted.
    let sweep = lambda
        .get_function_configuration()
        .function_name("wd-sweep")
        .send()
        .await
        .expect("the sweep exists");
    let declared = properties("SweepFunction");
    assert_eq!(sweep.function_arn(), made["sweep"].as_str());
    assert!(
        sweep.role().is_some_and(|r| r.ends_with("/wd-SweepRole")),
        "{:?}",
        sweep.role()
    );
    let sweep_env = sweep
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        sweep_env.keys().collect::<std::collections::BTreeSet<_>>(),
        declared["Environment"]["Variables"]
            .as_object()
            .unwrap()
            .keys()
            .collect(),
    );
    let schedule = aws_sdk_scheduler_schedule(&emulator).await;
    assert_eq!(schedule["ScheduleExpression"], "rate(5 minutes)");
    assert_eq!(schedule["Target"]["Arn"], made["sweep"]);
    let mut env = emulator.env();
    env.extend(sweep_env);
    let function = Function::start_binary(&watchdog_tests::runtime::sweep_binary(), &env).await;
    let summary = function.invoke(&json!({})).await.expect("swept");
    assert_eq!(summary["clusters"], 1, "{summary}");
    let agent_alerts = emulator
        .published()
        .await
        .into_iter()
        .filter(|p| p.attributes["kind"] == "agent-disconnected")
        .count();
    assert_eq!(
        agent_alerts, 1,
        "the sweep found the event path's incident and said nothing new"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The schedule the script made, read back with boto3 (the Rust SDK's Scheduler client is not
/// a dependency for one test).
async fn aws_sdk_scheduler_schedule(emulator: &Emulator) -> Value {
    let script = "import boto3, json, sys; s = boto3.client('scheduler', region_name=sys.argv[1]); \
                  print(json.dumps(s.get_schedule(Name='wd-sweep'), default=str))";
    let output = tokio::process::Command::new(sam_python())
        .args(["-c", script, watchdog_tests::emulator::REGION])
        .envs(emulator.env())
        .output()
        .await
        .expect("read the schedule");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("GetSchedule as JSON")
}

/// A zip with a placeholder `bootstrap` (moto runs no function here).
fn placeholder_zip(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("watchdog-deploy-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let zip = dir.join("monitor.zip");
    let made = std::process::Command::new(sam_python())
        .args([
            "-c",
            "import sys, zipfile; zipfile.ZipFile(sys.argv[1], 'w').writestr('bootstrap', 'x')",
        ])
        .arg(&zip)
        .status()
        .unwrap();
    assert!(made.success());
    zip
}

/// With restart-agent the script creates the template's Command document (read from the
/// rendered template, the one source of its content) under the name the functions'
/// `RESTART_DOCUMENT_NAME` gives, and a second run keeps it: a stack deployed this way named a
/// document that did not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_deployed_with_cargo_lambda_to_restart_agents_then_the_restart_document_exists() {
    let emulator = Emulator::start().await;
    let zip = placeholder_zip("restart");
    deploy_with(&emulator, &zip, &["RemediationAction=restart-agent"]).await;
    deploy_with(&emulator, &zip, &["RemediationAction=restart-agent"]).await;

    let lambda = aws_sdk_lambda::Client::new(&emulator.sdk);
    let ssm = aws_sdk_ssm::Client::new(&emulator.sdk);
    for function in ["wd-monitor", "wd-sweep"] {
        let configuration = lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .expect(function);
        let environment = configuration.environment().and_then(|e| e.variables()).unwrap();
        let name = &environment["RESTART_DOCUMENT_NAME"];
        assert!(!name.is_empty(), "{function}");
        let document = ssm.get_document().name(name).send().await.expect("GetDocument");
        assert_eq!(document.document_type().map(|t| t.as_str()), Some("Command"));
        let content: Value = serde_json::from_str(document.content().unwrap()).unwrap();
        assert_eq!(content, properties("RestartAgentDocument")["Content"], "{function}");
    }
}
