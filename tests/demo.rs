//! `make demo`: a small fleet breaks in every way the monitor tells apart, the events travel
//! through an EventBridge rule and the SQS delay queue, and the real `monitor` binary decides.
//! Prints what a platform engineer would look at, then stops everything it started.

use std::time::Instant;

use serde_json::Value;
use watchdog_tests::emulator::{Emulator, Published};
use watchdog_tests::fleet::Fleet;
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::runtime::{Function, sweep_binary};
use watchdog_tests::samples::{
    MALFORMED_BODY, agent_event, daemon_impaired_event, daemon_stopped_event, service_stopped_event,
};

const GRACE_SECONDS: u32 = 3;

fn heading(title: &str) {
    println!("\n\x1b[1m== {title} ==\x1b[0m");
}

/// What a subscriber gets: the e-mail with its attributes, and the same for machines.
fn print_alert(alert: &Published) {
    let resolved = alert.attributes.get("status").is_some_and(|s| s == "resolved");
    heading(if resolved {
        "Resolved notice (e-mail)"
    } else {
        "Alert e-mail"
    });
    println!("Subject: {}", alert.subject);
    let mut attributes: Vec<_> = alert.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    attributes.sort();
    println!("Message attributes: {}\n", attributes.join(", "));
    println!("{}", alert.message["email"].as_str().unwrap_or_default());
    heading("Same message, for machines (the `default` key)");
    let finding: Value = serde_json::from_str(alert.message["default"].as_str().unwrap_or("{}")).unwrap_or_default();
    println!("{}", serde_json::to_string_pretty(&finding).unwrap_or_default());
}

/// PagerDuty beside SNS: a monitor with a routing key in Systems Manager sends its events to a
/// local Events API v2 receiver (which checks the schema) before SNS; prints what it received.
async fn pagerduty(emulator: &Emulator, pipeline: &Pipeline) {
    use watchdog_tests::pagerduty::{ROUTING_KEY, Receiver};
    heading("PagerDuty (Events API v2) beside SNS, to a local receiver");
    let receiver = Receiver::start().await;
    aws_sdk_ssm::Client::new(&emulator.sdk)
        .put_parameter()
        .name("/ecs-watchdog/pagerduty")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value(ROUTING_KEY)
        .send()
        .await
        .expect("PutParameter");
    let mut env = pipeline.function_env(emulator);
    env.push((
        "PAGERDUTY_ROUTING_KEY_PARAMETER".into(),
        "/ecs-watchdog/pagerduty".into(),
    ));
    env.push(("PAGERDUTY_EVENTS_URL".into(), receiver.url()));
    let function = Function::start(&env).await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let payments = fleet.cluster("payments", &[("ecs-agent-monitoring", "enabled")]).await;
    let node = fleet.nodes(&payments, 1).await.remove(0);
    println!("  routing key in SSM SecureString /ecs-watchdog/pagerduty; PagerDuty answers 429 first");
    receiver.fail_next(&[429]).await;
    for connected in [false, true] {
        emulator
            .set_container_instance(&payments, &node.container_instance_arn, Some(connected), None)
            .await;
        pipeline.put_events(&[now_stamped(agent_event(&node, 2, false))]).await;
        let records = pipeline.receive(1).await;
        function
            .invoke(&sqs_event(&records))
            .await
            .expect("the batch is handled");
    }
    for request in receiver.requests().await {
        if request["status"] != 202 {
            println!(
                "\nPagerDuty answered {}: the same event is sent again after a backoff",
                request["status"]
            );
            continue;
        }
        let mut event = request["event"].clone();
        event["routing_key"] = "(the key from SSM)".into();
        if let Some(finding) = event.pointer_mut("/payload/custom_details/finding") {
            *finding = "(the finding, as in the `default` key)".into();
        }
        println!("\nPagerDuty answered 202 to:");
        println!("{}", serde_json::to_string_pretty(&event).unwrap_or_default());
    }
}

/// Planned work on one container instance: its tag `ecs-watchdog-silence-until` holds the alert;
/// once the work is over (the tag moved to a time past) the next look alerts, saying it waited.
async fn silenced_instance(emulator: &Emulator, fleet: &Fleet, pipeline: &Pipeline, function: &Function) {
    use ecs_watchdog::silence::{TAG_KEY, iso};
    let now = || ecs_watchdog::ports::Clock::now(&ecs_watchdog::ports::SystemClock);
    let tag = |value: String, node: String| async move {
        let tag = aws_sdk_ecs::types::Tag::builder().key(TAG_KEY).value(&value).build();
        let tagged = fleet.ecs.tag_resource().resource_arn(node).tags(tag).send().await;
        tagged.expect("TagResource");
        value
    };
    heading("Planned work: a silenced container instance (cluster staging, monitored too)");
    // A cluster of its own: prod's agent page opened a 5-minute group window there, which
    // would hold this alert for the digest.
    let staging = fleet.cluster("staging", &[("ecs-agent-monitoring", "enabled")]).await;
    let node = fleet.nodes(&staging, 1).await.remove(0);
    let until = tag(iso(now() + 3600), node.container_instance_arn.clone()).await;
    println!(
        "  {} tagged {TAG_KEY}={until}; its agent is stopped for an upgrade",
        node.ec2_instance_id
    );
    emulator
        .set_container_instance(&staging, &node.container_instance_arn, Some(false), None)
        .await;
    pipeline.put_events(&[now_stamped(agent_event(&node, 2, false))]).await;
    let record = pipeline.receive(1).await;
    let before = emulator.published().await.len();
    function
        .invoke(&sqs_event(&record))
        .await
        .expect("the batch is handled");
    println!(
        "  {} messages sent: the incident is open, its alert held until {until} (counted Silenced)",
        emulator.published().await.len() - before
    );
    let ended = tag(iso(now() - 60), node.container_instance_arn.clone()).await;
    println!("  the upgrade fails and the work is called off: the tag moves to {ended}; the event comes again");
    function
        .invoke(&sqs_event(&record))
        .await
        .expect("the batch is handled");
    for alert in emulator.published().await.iter().skip(before) {
        print_alert(alert);
    }
}

/// An instance an Auto Scaling group launched for a cluster that never registered (a wrong
/// `ECS_CLUSTER`, say): no ECS event ever tells it; the real `sweep` binary finds it.
async fn never_registered(emulator: &Emulator, fleet: &Fleet, pipeline: &Pipeline) {
    heading("An instance that never registered (cluster batch, monitored too): the sweep finds it");
    let batch = fleet.cluster("batch", &[("ecs-agent-monitoring", "enabled")]).await;
    let (group, ids) = fleet.launch_group(&emulator.sdk, "batch-asg", 2).await;
    fleet.capacity_provider(&batch, "batch-cp", &group).await;
    fleet.register(&batch, &ids[0]).await;
    emulator.launched_ago(&ids[1], 15 * 60).await;
    println!(
        "  Auto Scaling group batch-asg (capacity provider batch-cp): {} registered; {} launched 15 minutes ago, never registered",
        ids[0], ids[1]
    );
    let before = emulator.published().await.len();
    let sweep = Function::start_binary(&sweep_binary(), &pipeline.sweep_env(emulator)).await;
    sweep.invoke(&serde_json::json!({})).await.expect("the sweep runs");
    let published = emulator.published().await;
    let told = published.iter().skip(before);
    for alert in told.filter(|p| p.attributes["kind"] == "instance-not-registered") {
        print_alert(alert);
    }
}

/// restart-agent: a disconnected agent is restarted through SSM Run Command with the stack's own
/// document (it runs `systemctl restart ecs` and nothing else); the agent reconnects and the real
/// `sweep` binary's next look resolves the incident "recovered after restart".
async fn restarted_agent(emulator: &Emulator, fleet: &Fleet, pipeline: &Pipeline) {
    heading("restart-agent: a disconnected agent restarted, then reconnected (cluster web, monitored too)");
    let ssm = aws_sdk_ssm::Client::new(&emulator.sdk);
    let document = create_restart_document(&ssm).await;
    // The same stack with RemediationAction=restart-agent; RESTART_WAIT_MINUTES=0 so that the
    // sweep right after is the look that checks the agent (5 minutes by default).
    let remediation = [
        ("REMEDIATION_ACTION".to_owned(), "restart-agent".to_owned()),
        ("RESTART_DOCUMENT_NAME".to_owned(), document.clone()),
        ("RESTART_WAIT_MINUTES".to_owned(), "0".to_owned()),
    ];
    let mut monitor_env = pipeline.function_env(emulator);
    monitor_env.extend(remediation.iter().cloned());
    let mut sweep_env = pipeline.sweep_env(emulator);
    sweep_env.extend(remediation.iter().cloned());
    let monitor = Function::start(&monitor_env).await;

    let web = fleet.cluster("web", &[("ecs-agent-monitoring", "enabled")]).await;
    let node = fleet.nodes(&web, 1).await.remove(0);
    emulator
        .set_container_instance(&web, &node.container_instance_arn, Some(false), None)
        .await;
    println!(
        "  {} loses its agent; the event waits out the grace period",
        node.ec2_instance_id
    );
    pipeline.put_events(&[now_stamped(agent_event(&node, 2, false))]).await;
    let records = pipeline.receive(1).await;
    let before = emulator.published().await.len();
    monitor
        .invoke(&sqs_event(&records))
        .await
        .expect("the batch is handled");

    let commands = ssm.list_commands().send().await.expect("ListCommands");
    for command in commands.commands() {
        println!(
            "  SSM Run Command {}: document {}, on {}, no parameters",
            command.command_id().unwrap_or_default(),
            command.document_name().unwrap_or_default(),
            node.ec2_instance_id,
        );
    }
    let content = ssm.get_document().name(&document).send().await.expect("GetDocument");
    let content: Value = serde_json::from_str(content.content().unwrap_or("{}")).unwrap_or_default();
    println!(
        "  document {document} runs: {}",
        content["mainSteps"][0]["inputs"]["runCommand"]
    );
    for alert in emulator.published().await.iter().skip(before) {
        print_alert(alert);
    }

    emulator
        .set_container_instance(&web, &node.container_instance_arn, Some(true), None)
        .await;
    println!(
        "
  the restart worked: {}'s agent reconnects; the sweep runs",
        node.ec2_instance_id
    );
    let before = emulator.published().await.len();
    let sweep = Function::start_binary(&sweep_binary(), &sweep_env).await;
    sweep.invoke(&serde_json::json!({})).await.expect("the sweep runs");
    let published = emulator.published().await;
    let resolved = published.iter().skip(before).filter(|p| {
        let default = p.message["default"].as_str().unwrap_or_default();
        p.attributes["kind"] == "agent-disconnected" && default.contains(&node.container_instance_arn)
    });
    for alert in resolved {
        print_alert(alert);
    }
}

/// The template's `RestartAgentDocument`, created as the stack creates it (with restart-agent);
/// returns its name.
async fn create_restart_document(ssm: &aws_sdk_ssm::Client) -> String {
    let name = "ecs-watchdog-reader-restart-agent".to_owned();
    watchdog_tests::pipeline::create_command_document(ssm, "RestartAgentDocument", &name).await;
    name
}

/// The event as ECS would send it now: every time in the samples (the event's `time`, the
/// detail's `updatedAt`, `stoppedAt`, ...) is a fixed date weeks old.
fn now_stamped(mut event: Value) -> Value {
    use aws_smithy_types::date_time::{DateTime, Format};
    let now = ecs_watchdog::silence::iso(ecs_watchdog::ports::Clock::now(&ecs_watchdog::ports::SystemClock));
    fn stamp(value: &mut Value, now: &str) {
        match value {
            Value::String(text) if DateTime::from_str(text, Format::DateTime).is_ok() => *text = now.to_owned(),
            Value::Array(items) => items.iter_mut().for_each(|v| stamp(v, now)),
            Value::Object(fields) => fields.values_mut().for_each(|v| stamp(v, now)),
            _ => {}
        }
    }
    stamp(&mut event, &now);
    event
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    heading("Starting the local AWS emulator (moto on a free loopback port)");
    let emulator = Emulator::start().await;
    println!("emulator at {}", emulator.endpoint);
    let fleet = Fleet::new(&emulator.sdk).await;
    // Queues, rules, topic and the function's environment as template.yaml declares them.
    let grace = GRACE_SECONDS.to_string();
    let parameters = [
        ("GracePeriodSeconds", grace.as_str()),
        ("MonitorAllClusters", "false"),
        ("MonitoringTagValue", "enabled"),
    ];
    let pipeline = Pipeline::from_template(&emulator.sdk, &parameters).await;

    heading("Seeding a fleet: cluster prod (tagged ecs-agent-monitoring=enabled) and cluster dev (untagged)");
    let prod = fleet
        .cluster("prod", &[("ecs-agent-monitoring", "enabled"), ("team", "platform")])
        .await;
    let dev = fleet.cluster("dev", &[]).await;
    let mut nodes = fleet.nodes(&prod, 9).await;
    let daemon_nodes = nodes.split_off(5);
    let dev_node = fleet.nodes(&dev, 1).await.remove(0);
    for node in nodes.iter().chain(&daemon_nodes) {
        println!("prod  {}  {}", node.ec2_instance_id, node.container_instance_arn);
    }
    println!(
        "dev   {}  {}",
        dev_node.ec2_instance_id, dev_node.container_instance_arn
    );

    heading("Breaking agents; ECS sends an event for each, and the rule queues it");
    let stories = [
        "agent stays disconnected              -> confirmed: alert",
        "agent reconnects within the grace     -> recovered: counted, no alert",
        "EC2 instance is stopped               -> instance not running: suppressed",
        "someone drains the instance           -> draining: suppressed",
        "the event arrives twice (same version) -> one verdict, not two",
    ];
    let mut events = Vec::new();
    for (node, story) in nodes.iter().zip(stories) {
        emulator
            .set_container_instance(&prod, &node.container_instance_arn, Some(false), None)
            .await;
        events.push(agent_event(node, 2, false));
        println!("{}  {story}", node.ec2_instance_id);
    }
    // The fifth instance's event is delivered twice, as EventBridge may.
    events.push(events[4].clone());
    emulator
        .set_container_instance(&dev, &dev_node.container_instance_arn, Some(false), None)
        .await;
    events.push(agent_event(&dev_node, 2, false));
    println!(
        "{}  in dev, which is not monitored -> ignored",
        dev_node.ec2_instance_id
    );

    heading("Losing daemons: log-router runs on every prod instance, security-agent should too");
    let log_router = fleet.task_definition("log-router").await;
    let web = fleet.task_definition("web").await;
    let [d1, d2, d3, d4] = [&daemon_nodes[0], &daemon_nodes[1], &daemon_nodes[2], &daemon_nodes[3]];
    for (n, (node, story)) in [
        (
            d1,
            "log-router stops; ECS drains the instance  -> repairing: suppressed",
        ),
        (
            d2,
            "log-router stops; a new one starts         -> recovered: counted, no alert",
        ),
        (d3, "log-router stops (exit 139); nothing since -> confirmed: alert"),
    ]
    .into_iter()
    .enumerate()
    {
        let task = format!("{}/log-router-{n}", node.cluster_arn.replace(":cluster/", ":task/"));
        events.push(daemon_stopped_event(node, "log-router", &log_router, &task));
        println!("{}  {story}", node.ec2_instance_id);
    }
    fleet.drain(d1).await;
    fleet.start_task(d2, &log_router, "daemon:log-router").await;
    events.push(daemon_impaired_event(d4, "security-agent"));
    println!(
        "{}  security-agent cannot start (no CPU)   -> confirmed: alert",
        d4.ec2_instance_id
    );
    let web_task = fleet.start_task(d3, &web, "service:web").await;
    events.push(service_stopped_event(d3, &web, &web_task));
    println!(
        "{}  a service task stops                   -> not a daemon: the rule does not even queue it",
        d3.ec2_instance_id
    );

    let events: Vec<Value> = events.into_iter().map(now_stamped).collect();
    pipeline.put_events(&events).await;
    pipeline.send_raw(MALFORMED_BODY).await;
    println!("\nand a truncated body lands on the queue -> quarantined in the dead-letter queue");

    println!("\nduring the grace period ({GRACE_SECONDS} s delay on the queue):");
    emulator
        .set_container_instance(&prod, &nodes[1].container_instance_arn, Some(true), None)
        .await;
    println!("  {} reconnects", nodes[1].ec2_instance_id);
    fleet.stop_instance(&nodes[2]).await;
    println!("  {} is stopped", nodes[2].ec2_instance_id);
    fleet.drain(&nodes[3]).await;
    println!("  {} is set to DRAINING", nodes[3].ec2_instance_id);

    let waited = Instant::now();
    // Every event but the service task's passes a rule; plus the malformed body.
    let records = pipeline.receive(events.len()).await;
    println!(
        "  the queue released {} messages after {:.1} s",
        records.len(),
        waited.elapsed().as_secs_f64()
    );

    heading("Running the real monitor binary behind a local Lambda Runtime API");
    let function = Function::start(&pipeline.function_env(&emulator)).await;
    emulator.reset_calls().await;
    let response = function
        .invoke(&sqs_event(&records))
        .await
        .expect("the batch is handled");
    let calls = emulator.calls().await;

    heading("Batch response (SQS partial batch failures)");
    println!("{}", serde_json::to_string_pretty(&response).unwrap_or_default());

    println!(
        "\nThe emulator (moto) lacks some APIs the monitor uses in AWS: ECS Managed Daemons (ListDaemons, \
         DescribeDaemon, DescribeDaemonRevisions, ListDaemonDeployments) and CloudWatch's CBOR protocol. So \
         below the daemon alert says a deployment \"could not be ruled out\" (in AWS it asks), and metrics \
         are the EMF lines the function prints (PutMetricData is tested against a mock)."
    );
    for alert in emulator.published().await {
        print_alert(&alert);
    }

    heading("Later: the same event again (EventBridge delivers at least once)");
    let first = records
        .iter()
        .find(|r| {
            r["body"]
                .as_str()
                .unwrap_or_default()
                .contains(&nodes[0].container_instance_arn)
        })
        .cloned()
        .expect("the first instance's event");
    let before = emulator.published().await.len();
    function
        .invoke(&sqs_event(std::slice::from_ref(&first)))
        .await
        .expect("the batch is handled");
    let after = emulator.published().await.len();
    println!(
        "{} messages sent: the incident of {} is open and alerted, so nothing is sent again",
        after - before,
        nodes[0].ec2_instance_id
    );

    heading("Someone restarts the agent; its next event finds it connected");
    emulator
        .set_container_instance(&prod, &nodes[0].container_instance_arn, Some(true), None)
        .await;
    println!(
        "  {} reconnects; a late disconnect event of it arrives",
        nodes[0].ec2_instance_id
    );
    pipeline
        .put_events(&[now_stamped(agent_event(&nodes[0], 3, false))])
        .await;
    let late = pipeline.receive(1).await;
    function.invoke(&sqs_event(&late)).await.expect("the batch is handled");
    for alert in emulator.published().await.iter().skip(after) {
        print_alert(alert);
    }

    silenced_instance(&emulator, &fleet, &pipeline, &function).await;
    never_registered(&emulator, &fleet, &pipeline).await;
    restarted_agent(&emulator, &fleet, &pipeline).await;

    heading("Metrics (Embedded Metric Format lines the function printed)");
    println!("{:<20} {:<10} {:<16} {:>5}", "metric", "cluster", "daemon", "value");
    for document in function.emf() {
        let cluster = document.get("ClusterName").and_then(Value::as_str).unwrap_or("(all)");
        let daemon = document.get("DaemonName").and_then(Value::as_str).unwrap_or("");
        for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let name = metric["Name"].as_str().unwrap_or_default();
            println!("{name:<20} {cluster:<10} {daemon:<16} {:>5}", document[name]);
        }
    }

    heading("Dead-letter queue");
    for letter in pipeline.dead_letters(1).await {
        println!("reason: {}", letter.reason.unwrap_or_default());
        println!("body:   {}", letter.body);
    }

    heading("AWS calls the monitor made for this batch");
    let mut calls: Vec<_> = calls.into_iter().collect();
    calls.sort();
    for (operation, count) in calls {
        println!("{count:>3}  {operation}");
    }

    pagerduty(&emulator, &pipeline).await;

    heading("Stopping the function and the emulator");
    drop(function);
    drop(emulator);
    heading("What next");
    println!(
        "Deploy it to your account without a compiler:\n  \
         make package\n  \
         sam deploy --template dist/packaged.yaml --guided\n\
         The guided deploy asks where alerts go: NotificationEmail (a subscription to confirm) or \
         AlertTopicArn (an SNS topic you already route to chat or paging). Every alert above would \
         go there. make test runs the whole suite against the same emulator."
    );
}
