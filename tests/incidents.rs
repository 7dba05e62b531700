//! Incidents end to end, on the emulator's DynamoDB: one alert per problem across invocations
//! (in turn and at once), reminders on a moved clock, a drain reported after a failed alert,
//! resolved notices, and kinds that never collide.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use ecs_watchdog::alert::{Alert, AlertKind, InstanceFinding};
use ecs_watchdog::incident::{Group, GroupKey, Incident, IncidentKey, Lease, Notice, State};
use ecs_watchdog::metrics::Metric;
use ecs_watchdog::ports::{Answer, AwsError, Batch, Keys, Ledger, Notifier, Settle, Stored};
use serde_json::json;
use watchdog_tests::bed::{Bed, NO_GRACE, finding, record};
use watchdog_tests::clock::TestClock;
use watchdog_tests::emulator::Emulator;
use watchdog_tests::in_process::{self, config, messages};
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::{agent_event, daemon_impaired_event, daemon_stopped_event};

const START: u64 = 1_800_000_000;

/// SNS refusing the first message, as it does when throttled past the SDK's retries.
struct FailsOnce {
    real: Box<dyn Notifier>,
    failed: AtomicBool,
}

#[async_trait]
impl Notifier for FailsOnce {
    async fn publish(&self, alert: &Alert) -> Result<(), AwsError> {
        if !self.failed.swap(true, Ordering::SeqCst) {
            return Err(AwsError::new("sns:Publish", "injected: throttled past the retries"));
        }
        self.real.publish(alert).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_same_disconnect_comes_again_in_turn_or_at_once_then_it_alerts_once() {
    let bed = Bed::new(&NO_GRACE, 2).await;
    let env = bed.pipeline.function_env(&bed.emulator);

    // In turn: one invocation, then the same event again (EventBridge delivers at least once).
    let first = bed.disconnect(&bed.nodes[0]).await;
    let function = Function::start(&env).await;
    for _ in 0..2 {
        let answer = function
            .invoke(&sqs_event(std::slice::from_ref(&first)))
            .await
            .expect("handled");
        assert_eq!(answer, json!({"batchItemFailures": []}));
    }
    assert_eq!(bed.emulator.published().await.len(), 1);
    assert_eq!(function.metric("IncidentsOpened", Some("prod")), 1.0);

    // At once: two runtime processes get the same event of the second instance together.
    let second = bed.disconnect(&bed.nodes[1]).await;
    let (a, b) = tokio::join!(Function::start(&env), Function::start(&env));
    let event = sqs_event(std::slice::from_ref(&second));
    let (ra, rb) = tokio::join!(a.invoke(&event), b.invoke(&event));
    for answer in [ra, rb] {
        assert_eq!(answer.expect("handled"), json!({"batchItemFailures": []}));
    }
    let published = bed.emulator.published().await;
    assert_eq!(published.len(), 2, "{published:#?}");
    assert_eq!(
        finding(&published[1])["instances"][0]["ec2InstanceId"],
        bed.nodes[1].ec2_instance_id
    );
    assert_eq!(published[1].attributes["status"], "firing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_an_incident_lasts_then_it_reminds_once_per_interval_and_resolves_once() {
    let bed = Bed::new(&NO_GRACE, 2).await;
    let clock = TestClock::at(START);
    let set = clock.clone();
    let monitor = in_process::monitor(
        &bed.emulator,
        config(&bed.pipeline.function_env(&bed.emulator)),
        move |io| io.clock = Box::new(set),
    );
    let broken = bed.disconnect(&bed.nodes[0]).await;
    let batch = messages(std::slice::from_ref(&broken));

    let report = monitor.process(&batch).await;
    assert_eq!(report.tally.get(Some("prod"), Metric::IncidentsOpened), 1);
    assert_eq!(report.tally.get(Some("prod"), Metric::OpenIncidents), 1);
    clock.advance_minutes(239);
    monitor.process(&batch).await;
    assert_eq!(bed.emulator.published().await.len(), 1, "not yet due");

    // The reminder, once, naming how long it has lasted.
    clock.advance_minutes(1);
    monitor.process(&batch).await;
    monitor.process(&batch).await;
    let published = bed.emulator.published().await;
    assert_eq!(published.len(), 2, "{published:#?}");
    let reminder = &published[1];
    assert!(
        reminder
            .subject
            .starts_with("Still open: ECS agent disconnected on 1 instance in prod"),
        "{}",
        reminder.subject
    );
    let email = reminder.message["email"].as_str().unwrap();
    assert!(email.contains("still open after 4 h 0 min"), "{email}");
    assert_eq!(finding(reminder)["instances"][0]["openFor"], "4 h 0 min");

    // The agent reconnects; the next look at it (and at an instance that never had an incident)
    // closes the incident with one notice.
    bed.set_agent(&bed.nodes[0], true).await;
    clock.advance_minutes(10);
    let never_broken = record(&agent_event(&bed.nodes[1], 2, false));
    let report = monitor.process(&messages(&[broken.clone(), never_broken])).await;
    assert!(report.failures.is_empty());
    assert_eq!(report.tally.get(Some("prod"), Metric::IncidentsResolved), 1);
    assert_eq!(report.tally.get(Some("prod"), Metric::OpenIncidents), 0);
    assert!(
        report
            .tally
            .data()
            .iter()
            .any(|d| d.name == "OpenIncidents" && d.value == 0.0),
        "a gauge that fell to zero is published as zero"
    );
    let published = bed.emulator.published().await;
    assert_eq!(published.len(), 3, "{published:#?}");
    let resolved = &published[2];
    assert_eq!(
        resolved.subject,
        "Resolved: ECS agent disconnected on 1 instance in prod (123456789012, us-east-1)"
    );
    assert_eq!(resolved.attributes["status"], "resolved");
    assert_eq!(resolved.attributes["kind"], "agent-disconnected");
    let notice = finding(resolved);
    assert_eq!(notice["instances"].as_array().unwrap().len(), 1);
    assert_eq!(notice["instances"][0]["ec2InstanceId"], bed.nodes[0].ec2_instance_id);
    assert_eq!(notice["instances"][0]["lastedSeconds"], 250 * 60);

    // Closed stays closed: the same look again sends nothing.
    monitor.process(&messages(std::slice::from_ref(&broken))).await;
    assert_eq!(bed.emulator.published().await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_alert_fails_after_a_drain_then_the_retry_reports_the_drain() {
    let bed = Bed::new(&[("GracePeriodSeconds", "0"), ("RemediationAction", "drain")], 1).await;
    let monitor = in_process::monitor(&bed.emulator, config(&bed.pipeline.function_env(&bed.emulator)), |io| {
        let real = std::mem::replace(&mut io.notifier, Box::new(FailsOnce::placeholder()));
        io.notifier = Box::new(FailsOnce {
            real,
            failed: AtomicBool::new(false),
        });
    });
    let batch = messages(&[bed.disconnect(&bed.nodes[0]).await]);

    // The drain happens, the alert fails: the message goes back to the queue.
    let report = monitor.process(&batch).await;
    assert_eq!(report.failures, vec![batch[0].id.clone()]);
    assert!(bed.emulator.published().await.is_empty());
    assert_eq!(bed.fleet.container_instance(&bed.nodes[0]).await.0, "DRAINING");

    // The retry finds the instance DRAINING, and the incident still owes its alert.
    let report = monitor.process(&batch).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let published = bed.emulator.published().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    let remediation = finding(&published[0])["instances"][0]["remediation"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(remediation.contains("drained"), "{remediation}");

    // And once reported, a third look says nothing.
    monitor.process(&batch).await;
    assert_eq!(bed.emulator.published().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_daemon_named_agent_is_lost_beside_a_disconnected_agent_then_each_kind_alerts() {
    let bed = Bed::new(&NO_GRACE, 1).await;
    let node = &bed.nodes[0];
    let agent = bed.disconnect(node).await;
    let daemon = record(&daemon_impaired_event(node, "agent"));
    let function = Function::start(&bed.pipeline.function_env(&bed.emulator)).await;
    let answer = function.invoke(&sqs_event(&[agent, daemon])).await.expect("handled");
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let mut kinds: Vec<String> = bed
        .emulator
        .published()
        .await
        .iter()
        .map(|p| p.attributes["kind"].clone())
        .collect();
    kinds.sort();
    assert_eq!(kinds, vec!["agent-disconnected", "daemon-lost"]);
}

impl FailsOnce {
    /// What stands in the adapters for the moment the real notifier is moved into the wrapper.
    fn placeholder() -> impl Notifier {
        struct Unused;
        #[async_trait]
        impl Notifier for Unused {
            async fn publish(&self, _: &Alert) -> Result<(), AwsError> {
                unreachable!("replaced before use")
            }
        }
        Unused
    }
}

/// The ledger contract the in-memory fake is held to, run over the DynamoDB adapter here: the
/// simulation's fake and the real ledger answer the same script alike (the outbox index above
/// all: an alert settled after it was seen over stays owed its resolved notice).
#[path = "../crates/ecs-watchdog/src/pipeline/ledger_contract.rs"]
mod contract;
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_contract_script_runs_over_dynamodb_then_it_answers_as_the_fake_ledger_does() {
    let emulator = Emulator::start().await;
    let pipeline = Pipeline::create(&emulator.sdk, 0).await;
    let config = config(&pipeline.function_env(&emulator));
    let io = ecs_watchdog::aws::adapters(&config, &emulator.sdk);
    emulator.reset_calls().await;
    contract::script(io.ledger.as_deref().expect("the incident table is configured")).await;

    // Each transaction carries its own idempotency token, set once before the SDK's retries:
    // a retry after a timeout is not applied twice nor refused as a conflict with itself.
    // https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
    let requests = emulator.requests("dynamodb:TransactWriteItems").await;
    let mut tokens: Vec<&str> = requests
        .iter()
        .filter_map(|r| r["ClientRequestToken"].as_str())
        .collect();
    assert!(requests.len() >= 8, "{} transactions", requests.len());
    assert_eq!(tokens.len(), requests.len(), "every transaction has a token");
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), requests.len(), "no two transactions share one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_batch_confirms_nothing_and_finds_nothing_over_then_it_costs_no_ledger_call() {
    // Given agents disconnected on instances an operator is draining, and a repeat of one.
    let bed = Bed::new(&NO_GRACE, 3).await;
    let mut records = Vec::new();
    for node in &bed.nodes {
        records.push(bed.disconnect(node).await);
        bed.fleet.drain(node).await;
    }
    records.push(records[0].clone());
    let function = Function::start(&bed.pipeline.function_env(&bed.emulator)).await;
    bed.emulator.reset_calls().await;
    let answer = function.invoke(&sqs_event(&records)).await.expect("handled");
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let calls = bed.emulator.calls().await;
    assert!(
        calls.contains_key("ecs:DescribeContainerInstances"),
        "it looked: {calls:?}"
    );
    assert!(
        !calls.keys().any(|operation| operation.starts_with("dynamodb:")),
        "no DynamoDB call: {calls:?}"
    );
    assert_eq!(function.metric("Suppressed", Some("prod")), 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_lost_daemon_runs_again_then_its_incident_resolves_once() {
    // Given log-router's task stopped on an instance and nothing replaced it: one alert.
    let bed = Bed::new(&NO_GRACE, 1).await;
    let node = &bed.nodes[0];
    let log_router = bed.fleet.task_definition("log-router").await;
    let task = format!("{}/log-router-1", node.cluster_arn.replace(":cluster/", ":task/"));
    let stopped = record(&daemon_stopped_event(node, "log-router", &log_router, &task));
    let function = Function::start(&bed.pipeline.function_env(&bed.emulator)).await;
    let event = sqs_event(std::slice::from_ref(&stopped));
    function.invoke(&event).await.expect("handled");
    let published = bed.emulator.published().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    assert_eq!(published[0].attributes["kind"], "daemon-lost");

    // When a new log-router task runs there and the event is looked at again.
    bed.fleet.start_task(node, &log_router, "daemon:log-router").await;
    function.invoke(&event).await.expect("handled");
    function.invoke(&event).await.expect("handled");

    // Then one resolved notice names the daemon.
    let published = bed.emulator.published().await;
    assert_eq!(published.len(), 2, "{published:#?}");
    let resolved = &published[1];
    assert_eq!(
        resolved.subject,
        "Resolved: ECS daemon log-router lost on 1 instance in prod (123456789012, us-east-1)"
    );
    assert_eq!(resolved.attributes["status"], "resolved");
    let notice = finding(resolved);
    assert_eq!(notice["instances"][0]["daemonName"], "log-router");
    assert_eq!(notice["instances"][0]["resolution"], "recovered: the daemon runs again");
}
