//! The sweep end to end: the real `sweep` binary behind the Lambda Runtime API where the system
//! clock will do, the sweep in this process with a moved clock where minutes must pass, and the
//! Managed Daemons APIs (which the emulator lacks) answered at the SDK layer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_ecs::operation::describe_daemon::DescribeDaemonOutput;
use aws_sdk_ecs::operation::list_daemon_deployments::ListDaemonDeploymentsOutput;
use aws_sdk_ecs::operation::list_daemons::ListDaemonsOutput;
use aws_sdk_ecs::types::{DaemonDeploymentStatus, DaemonDeploymentSummary, DaemonDetail, DaemonSummary};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use ecs_watchdog::SweepReport;
use ecs_watchdog::metrics::Metric;
use serde_json::{Value, json};
use watchdog_tests::bed::{Bed, finding, no_daemons};
use watchdog_tests::clock::TestClock;
use watchdog_tests::emulator::{Emulator, Published};
use watchdog_tests::fleet::Fleet;
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::runtime::{Function, sweep_binary};
use watchdog_tests::samples::agent_event;

const START: u64 = 1_800_000_000;
const DAEMON_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:daemon/prod/log-router";

fn clock() -> TestClock {
    TestClock::at(START)
}

/// The last value of a gauge the binary printed as EMF for `cluster`; `None` if never printed.
fn gauge(function: &Function, name: &str, cluster: &str) -> Option<f64> {
    function
        .emf()
        .iter()
        .rev()
        .filter(|d| d["ClusterName"] == cluster && d.get("DaemonName").is_none())
        .find_map(|d| d.get(name).and_then(Value::as_f64))
}

/// The last aggregate (no dimension) value of a metric the binary printed; `None` if never.
fn total(function: &Function, name: &str) -> Option<f64> {
    function
        .emf()
        .iter()
        .rev()
        .filter(|d| d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0] == json!([]))
        .find_map(|d| d.get(name).and_then(Value::as_f64))
}

/// Sweeps with the binary until an alert of `kind` appears, or the deadline passes.
async fn sweep_until_alerted(bed: &Bed, function: &Function, kind: &str, deadline: Duration) -> Vec<Published> {
    let start = Instant::now();
    loop {
        function.invoke(&json!({})).await.expect("the sweep runs");
        let published = bed.published(kind).await;
        if !published.is_empty() || start.elapsed() > deadline {
            return published;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_an_agent_disconnects_without_an_event_then_the_sweep_alerts_once_after_the_grace_period_and_resolves() {
    // Per-cluster gauges on (ClusterGauges=true): each is published per cluster too.
    let bed = Bed::new(&[("GracePeriodSeconds", "3"), ("ClusterGauges", "true")], 3).await;
    let lost = &bed.nodes[1];
    bed.set_agent(lost, false).await;
    let function = Function::start_binary(&sweep_binary(), &bed.pipeline.sweep_env(&bed.emulator)).await;

    // The first sweep sees it and records it: no alert yet.
    let first_seen = Instant::now();
    let summary = function.invoke(&json!({})).await.expect("the sweep runs");
    assert_eq!(summary["clusters"], 1, "{summary}");
    assert!(bed.published("agent-disconnected").await.is_empty());
    assert_eq!(gauge(&function, "DisconnectedAgents", "prod"), Some(1.0));
    assert_eq!(gauge(&function, "MonitoredInstances", "prod"), Some(3.0));
    assert_eq!(
        gauge(&function, "OpenIncidents", "prod"),
        Some(1.0),
        "first sight is open, untold"
    );
    assert_eq!(function.metric("SweepCompleted", None), 1.0);
    // The alarms watch the totals over the clusters seen.
    assert_eq!(total(&function, "DisconnectedAgents"), Some(1.0));
    assert_eq!(total(&function, "MonitoredInstances"), Some(3.0));
    assert_eq!(
        total(&function, "InstancesWithoutDaemon"),
        None,
        "the emulator has no Managed Daemons APIs: unseen, not zero"
    );

    // A sweep once the grace period has passed sends one alert naming the instance.
    let alerts = sweep_until_alerted(&bed, &function, "agent-disconnected", Duration::from_secs(30)).await;
    // The ledger keeps whole seconds, so the grace period may end up to a second early.
    assert!(
        first_seen.elapsed() >= Duration::from_secs(2),
        "alerted within the grace period"
    );
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(
        alerts[0].subject,
        "ECS agent disconnected on 1 instance in prod (123456789012, us-east-1)"
    );
    assert_eq!(alerts[0].attributes["status"], "firing");
    let named = finding(&alerts[0]);
    assert_eq!(named["instances"][0]["ec2InstanceId"], lost.ec2_instance_id.as_str());

    // Further sweeps send nothing: the incident is open and alerted.
    for _ in 0..2 {
        function.invoke(&json!({})).await.expect("the sweep runs");
    }
    assert_eq!(bed.published("agent-disconnected").await.len(), 1);

    // The agent reconnects: the next sweep sends one resolved notice, and the gauges say so.
    bed.set_agent(lost, true).await;
    function.clear_output();
    function.invoke(&json!({})).await.expect("the sweep runs");
    let all = bed.published("agent-disconnected").await;
    let resolved: Vec<&Published> = all.iter().filter(|p| p.attributes["status"] == "resolved").collect();
    assert_eq!((all.len(), resolved.len()), (2, 1), "{all:#?}");
    assert!(
        resolved[0]
            .subject
            .starts_with("Resolved: ECS agent disconnected on 1 instance in prod")
    );
    assert_eq!(gauge(&function, "DisconnectedAgents", "prod"), Some(0.0));
    assert_eq!(gauge(&function, "OpenIncidents", "prod"), Some(0.0));
    assert_eq!(gauge(&function, "MonitoredInstances", "prod"), Some(3.0));
    assert_eq!(total(&function, "DisconnectedAgents"), Some(0.0));
    function.invoke(&json!({})).await.expect("the sweep runs");
    assert_eq!(bed.published("agent-disconnected").await.len(), 2, "resolved once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_event_path_already_alerted_then_the_sweep_sends_nothing_new() {
    let bed = Bed::new(&[("GracePeriodSeconds", "0")], 2).await;
    let lost = &bed.nodes[0];
    bed.set_agent(lost, false).await;
    let record = json!({"messageId": "m-1", "body": agent_event(lost, 2, false).to_string()});
    let monitor = Function::start(&bed.pipeline.function_env(&bed.emulator)).await;
    monitor.invoke(&sqs_event(&[record])).await.expect("handled");
    assert_eq!(bed.published("agent-disconnected").await.len(), 1);

    let sweep = Function::start_binary(&sweep_binary(), &bed.pipeline.sweep_env(&bed.emulator)).await;
    for _ in 0..2 {
        let summary = sweep.invoke(&json!({})).await.expect("the sweep runs");
        assert_eq!(summary["undecided"], 0, "{summary}");
    }
    assert_eq!(bed.published("agent-disconnected").await.len(), 1, "no second alert");
    // ClusterGauges off, the default: the gauges only summed, no cluster named; the cost does
    // not grow with clusters.
    assert_eq!(total(&sweep, "DisconnectedAgents"), Some(1.0));
    assert_eq!(total(&sweep, "OpenIncidents"), Some(1.0));
    assert_eq!(total(&sweep, "MonitoredInstances"), Some(2.0));
    let documents = sweep.emf();
    assert!(!documents.is_empty());
    let named: Vec<&Value> = documents.iter().filter(|d| d.get("ClusterName").is_some()).collect();
    assert!(named.is_empty(), "{named:#?}");
}

/// The sweep's reminders follow the incident, as the monitor's do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_disconnect_lasts_then_the_sweep_reminds_after_the_interval_only() {
    let bed = Bed::new(&[("GracePeriodSeconds", "180"), ("RemindAfterMinutes", "60")], 1).await;
    bed.set_agent(&bed.nodes[0], false).await;
    let clock = clock();
    let sweep = bed.sweep(&clock, no_daemons());
    let mut subjects = Vec::new();
    for _ in 0..14 {
        let run = sweep.run().await;
        subjects.extend(alerts_of(&run, "agent-disconnected"));
        clock.advance_minutes(5);
    }
    // Seen at 0, alerted at 5 min (the first look after 3 min), reminded at 65 min.
    assert_eq!(
        subjects,
        vec![
            "ECS agent disconnected on 1 instance in prod (123456789012, us-east-1)".to_owned(),
            "Still open: ECS agent disconnected on 1 instance in prod (123456789012, us-east-1)".to_owned(),
        ]
    );
}

fn alerts_of(run: &SweepReport, kind: &str) -> Vec<String> {
    run.report
        .alerts
        .iter()
        .filter(|a| a.kind.as_str() == kind)
        .map(|a| a.subject.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_draining_instance_stays_disconnected_then_one_alert_says_the_drain_cannot_finish() {
    let bed = Bed::new(&[("StuckAfterMinutes", "30")], 2).await;
    let stuck = &bed.nodes[0];
    bed.fleet.drain(stuck).await;
    bed.set_agent(stuck, false).await;
    let clock = clock();
    let sweep = bed.sweep(&clock, no_daemons());

    let mut sent = Vec::new();
    for minute in [0, 10, 29] {
        clock.set(START + minute * 60);
        sent.extend(sweep.run().await.report.alerts);
    }
    assert!(
        sent.is_empty(),
        "draining for less than 30 minutes is left alone: {sent:#?}"
    );
    for minute in [31, 36, 41] {
        clock.set(START + minute * 60);
        sent.extend(sweep.run().await.report.alerts);
    }
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].kind.as_str(), "agent-disconnected");
    let finding: Value = serde_json::from_str(&sent[0].default).unwrap();
    assert_eq!(finding["instances"][0]["ec2InstanceId"], stuck.ec2_instance_id.as_str());
    let why = finding["instances"][0]["stuck"].as_str().unwrap();
    assert!(why.contains("drain cannot finish"), "{why}");
    assert!(sent[0].email.contains("drain cannot finish"));
}

/// log-router belongs on every instance (its revision names no capacity provider); whether a
/// deployment of it is in progress is what `deploying` says.
fn log_router(deploying: Arc<AtomicBool>) -> aws_sdk_ecs::Client {
    let list = mock!(aws_sdk_ecs::Client::list_daemons).then_output(|| {
        ListDaemonsOutput::builder()
            .daemon_summaries_list(DaemonSummary::builder().daemon_arn(DAEMON_ARN).build())
            .build()
    });
    let describe = mock!(aws_sdk_ecs::Client::describe_daemon).then_output(|| {
        DescribeDaemonOutput::builder()
            .daemon(DaemonDetail::builder().daemon_arn(DAEMON_ARN).build())
            .build()
    });
    let deployments = mock!(aws_sdk_ecs::Client::list_daemon_deployments).then_output(move || {
        let mut output = ListDaemonDeploymentsOutput::builder();
        if deploying.load(Ordering::SeqCst) {
            output = output.daemon_deployments(
                DaemonDeploymentSummary::builder()
                    .status(DaemonDeploymentStatus::InProgress)
                    .build(),
            );
        }
        output.build()
    });
    mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list, &describe, &deployments])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_daemon_is_missing_without_an_event_then_one_alert_and_none_while_it_deploys() {
    let bed = Bed::new(&[("GracePeriodSeconds", "180")], 3).await;
    let task_definition = bed.fleet.task_definition("log-router").await;
    for node in &bed.nodes[..2] {
        bed.fleet.start_task(node, &task_definition, "daemon:log-router").await;
    }
    let without = &bed.nodes[2];
    let deploying = Arc::new(AtomicBool::new(true));
    let clock = clock();
    let sweep = bed.sweep(&clock, log_router(deploying.clone()));

    // While a deployment of it is in progress: nothing, however long.
    let mut sent = Vec::new();
    for _ in 0..3 {
        let run = sweep.run().await;
        assert_eq!(
            run.report
                .tally
                .per_daemon("prod", "log-router", Metric::InstancesWithoutDaemon),
            1
        );
        sent.extend(run.report.alerts);
        clock.advance_minutes(20);
    }
    assert!(sent.is_empty(), "{sent:#?}");

    // The deployment ends with the daemon still missing: seen, then one alert after the grace period.
    deploying.store(false, Ordering::SeqCst);
    for _ in 0..4 {
        sent.extend(sweep.run().await.report.alerts);
        clock.advance_minutes(2);
    }
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(
        sent[0].subject,
        "ECS daemon log-router lost on 1 instance in prod (123456789012, us-east-1)"
    );
    let finding: Value = serde_json::from_str(&sent[0].default).unwrap();
    assert_eq!(
        finding["instances"][0]["ec2InstanceId"],
        without.ec2_instance_id.as_str()
    );
    assert_eq!(finding["instances"][0]["daemonName"], "log-router");

    // It starts there: the next sweep resolves it.
    bed.fleet
        .start_task(without, &task_definition, "daemon:log-router")
        .await;
    let run = sweep.run().await;
    let subjects: Vec<&str> = run.report.alerts.iter().map(|a| a.subject.as_str()).collect();
    assert_eq!(
        subjects,
        vec!["Resolved: ECS daemon log-router lost on 1 instance in prod (123456789012, us-east-1)"]
    );
    let without_daemon: Vec<f64> = run
        .report
        .tally
        .data()
        .iter()
        .filter(|d| d.name == "InstancesWithoutDaemon" && d.dimensions.len() == 2)
        .map(|d| d.value)
        .collect();
    assert_eq!(without_daemon, vec![0.0], "published, and zero");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_an_operation_is_denied_then_the_sweep_says_so_once_and_sweeps_the_rest() {
    let bed = Bed::new(&[("GracePeriodSeconds", "180")], 2).await;
    bed.set_agent(&bed.nodes[0], false).await;
    let denied = || {
        let body =
            r#"{"__type":"AccessDeniedException","message":"User is not authorized to perform: ecs:ListDaemons"}"#;
        Response::new(StatusCode::try_from(400).unwrap(), SdkBody::from(body))
    };
    let list = mock!(aws_sdk_ecs::Client::list_daemons).then_http_response(denied);
    let clock = clock();
    let sweep = bed.sweep(&clock, mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list]));

    let first = sweep.run().await;
    assert_eq!(first.report.tally.get(None, Metric::MonitorImpaired), 1);
    let impaired = alerts_of(&first, "monitor-impaired");
    assert_eq!(
        impaired,
        vec!["ECS Watchdog cannot call ecs:ListDaemons (123456789012, us-east-1)".to_owned()]
    );
    let alert = first
        .report
        .alerts
        .iter()
        .find(|a| a.kind.as_str() == "monitor-impaired")
        .unwrap();
    assert!(
        alert.email.contains("not authorized to perform: ecs:ListDaemons"),
        "{}",
        alert.email
    );
    // The agents are still swept: seen now, alerted after the grace period.
    assert_eq!(first.report.tally.get(Some("prod"), Metric::DisconnectedAgents), 1);
    assert!(
        !first
            .report
            .tally
            .data()
            .iter()
            .any(|d| d.name == "InstancesWithoutDaemon"),
        "daemons unseen are not reported as none missing"
    );

    clock.advance_minutes(5);
    let second = sweep.run().await;
    assert_eq!(
        second.report.tally.get(None, Metric::MonitorImpaired),
        1,
        "counted every run"
    );
    assert!(alerts_of(&second, "monitor-impaired").is_empty(), "alerted once a day");
    assert_eq!(alerts_of(&second, "agent-disconnected").len(), 1);
    let sns = bed.published("monitor-impaired").await;
    assert_eq!(sns.len(), 1);
    assert_eq!(sns[0].attributes["status"], "firing");
}

/// Issue 21: the sweep read incidents only of the clusters it monitors, so a cluster untagged
/// (or deleted) after its alert kept its incident open for good: no resolved notice, and an
/// OpenIncidents of 0 while the ledger held it. The sweep now reads every open incident of its
/// place (one Scan of the ledger's cluster index) and closes those whose cluster is gone,
/// saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_cluster_is_untagged_after_its_alert_then_the_next_sweep_resolves_it_saying_why() {
    let emulator = Emulator::start().await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let parameters = [
        ("GracePeriodSeconds", "0"),
        ("MonitorAllClusters", "false"),
        ("MonitoringTagValue", "enabled"),
    ];
    let pipeline = Pipeline::from_template(&emulator.sdk, &parameters).await;
    let cluster = fleet.cluster("prod", &[("ecs-agent-monitoring", "enabled")]).await;
    let node = fleet.nodes(&cluster, 1).await.remove(0);
    emulator
        .set_container_instance(&cluster, &node.container_instance_arn, Some(false), None)
        .await;
    let env = pipeline.sweep_env(&emulator);
    let alerting = Function::start_binary(&sweep_binary(), &env).await;
    alerting.invoke(&json!({})).await.expect("the sweep runs");
    let agent = |status: &'static str| {
        let emulator = &emulator;
        async move {
            let all = emulator.published().await;
            let mut of: Vec<Published> = all
                .into_iter()
                .filter(|p| p.attributes["kind"] == "agent-disconnected")
                .collect();
            of.retain(|p| p.attributes["status"] == status);
            of
        }
    };
    assert_eq!(agent("firing").await.len(), 1);

    // When the cluster loses its tag (a new Lambda instance: its tag cache is empty).
    fleet
        .ecs
        .untag_resource()
        .resource_arn(&cluster)
        .tag_keys("ecs-agent-monitoring")
        .send()
        .await
        .unwrap();
    let sweep = Function::start_binary(&sweep_binary(), &env).await;
    let summary = sweep.invoke(&json!({})).await.expect("the sweep runs");

    // Then its incident is resolved once, saying why, and the gauge agrees with the ledger.
    assert_eq!(summary["clusters"], 0, "{summary}");
    let resolved = agent("resolved").await;
    assert_eq!(resolved.len(), 1);
    let told = finding(&resolved[0]);
    assert_eq!(
        told["instances"][0]["resolution"],
        ecs_watchdog::pipeline::NOT_MONITORED,
        "{told}"
    );
    assert_eq!(total(&sweep, "OpenIncidents"), Some(0.0));
    assert_eq!(total(&sweep, "SweepCompleted"), Some(1.0));
    sweep.invoke(&json!({})).await.expect("the sweep runs");
    assert_eq!(agent("resolved").await.len(), 1, "resolved once");
}
