//! Lost daemons end to end: daemon task and daemon service events through the EventBridge
//! rules and the queue, the real `monitor` binary, SNS read back from the emulator. The
//! Managed Daemons APIs, which the emulator lacks, are answered at the SDK layer where a test
//! needs them.

use aws_sdk_ecs::operation::describe_daemon::DescribeDaemonOutput;
use aws_sdk_ecs::operation::describe_daemon_revisions::DescribeDaemonRevisionsOutput;
use aws_sdk_ecs::operation::list_daemon_deployments::ListDaemonDeploymentsOutput;
use aws_sdk_ecs::operation::list_daemons::ListDaemonsOutput;
use aws_sdk_ecs::types::{
    ContainerInstanceStatus, DaemonDeploymentStatus, DaemonDeploymentSummary, DaemonDetail, DaemonRevision,
    DaemonRevisionDetail, DaemonSummary,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;
use ecs_watchdog::aws::EcsDaemons;
use ecs_watchdog::metrics::Metric;
use serde_json::{Value, json};
use watchdog_tests::emulator::Emulator;
use watchdog_tests::fleet::{Fleet, Node};
use watchdog_tests::in_process;
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::{agent_event, daemon_impaired_event, daemon_stopped_event, service_stopped_event};

/// A cluster with log-router running on every instance, as Managed Daemons would place it.
struct DaemonFleet {
    emulator: Emulator,
    fleet: Fleet,
    pipeline: Pipeline,
    nodes: Vec<Node>,
    log_router: String,
    web: String,
}

impl DaemonFleet {
    async fn new(instances: usize) -> Self {
        let emulator = Emulator::start().await;
        let fleet = Fleet::new(&emulator.sdk).await;
        let pipeline = Pipeline::create(&emulator.sdk, 0).await;
        let cluster = fleet.cluster("prod", &[]).await;
        let nodes = fleet.nodes(&cluster, instances).await;
        let log_router = fleet.task_definition("log-router").await;
        let web = fleet.task_definition("web").await;
        Self {
            emulator,
            fleet,
            pipeline,
            nodes,
            log_router,
            web,
        }
    }

    /// The event of log-router's task on `node` stopping (the task itself is gone).
    fn log_router_stopped(&self, node: &Node, n: usize) -> Value {
        let task = format!("{}/log-router-{n}", node.cluster_arn.replace(":cluster/", ":task/"));
        daemon_stopped_event(node, "log-router", &self.log_router, &task)
    }

    /// The monitor in this process, with the Managed Daemons APIs answered by `daemons`.
    fn monitor_with(&self, daemons: aws_sdk_ecs::Client) -> ecs_watchdog::Monitor {
        in_process::monitor(&self.emulator, in_process::config(&self.env()), |io| {
            io.daemons = Box::new(EcsDaemons::new(daemons))
        })
    }

    fn env(&self) -> Vec<(String, String)> {
        self.pipeline.function_env(&self.emulator)
    }
}

fn finding(alert: &watchdog_tests::emulator::Published) -> Value {
    serde_json::from_str(alert.message["default"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_daemons_are_lost_in_every_way_then_one_alert_names_only_the_unreplaced_ones() {
    // Given log-router stopped on i1 (now DRAINING), on i2 (replaced), on i3 (nothing since),
    // security-agent that cannot start on i4, and a service task that stopped.
    let bed = DaemonFleet::new(4).await;
    let [i1, i2, i3, i4] = [&bed.nodes[0], &bed.nodes[1], &bed.nodes[2], &bed.nodes[3]];
    bed.fleet.drain(i1).await;
    bed.fleet.start_task(i2, &bed.log_router, "daemon:log-router").await;
    let web_task = bed.fleet.start_task(i3, &bed.web, "service:web").await;
    let events = vec![
        bed.log_router_stopped(i1, 1),
        bed.log_router_stopped(i2, 2),
        bed.log_router_stopped(i3, 3),
        daemon_impaired_event(i4, "security-agent"),
        service_stopped_event(i3, &bed.web, &web_task),
    ];
    bed.pipeline.put_events(&events).await;

    // When the batch reaches the real binary (the emulator has no Managed Daemons APIs).
    let records = bed.pipeline.receive(4).await;
    let bodies: Vec<&str> = records.iter().map(|r| r["body"].as_str().unwrap()).collect();
    assert!(
        !bodies.iter().any(|b| b.contains("service:web")),
        "the rule keeps service tasks out"
    );
    let mut all = records.clone();
    bed.pipeline.send_raw(&events[4].to_string()).await;
    all.extend(bed.pipeline.receive(1).await);
    let function = Function::start(&bed.env()).await;
    let response = function.invoke(&sqs_event(&all)).await.expect("the batch is handled");

    // Then one alert names i3 with its stop code and exit code and i4 with its failure type.
    assert_eq!(response, json!({"batchItemFailures": []}));
    let published = bed.emulator.published().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    let alert = &published[0];
    assert_eq!(
        alert.subject,
        "ECS daemons lost on 2 instances in prod (123456789012, us-east-1)"
    );
    assert_eq!(alert.attributes["kind"], "daemon-lost");
    let email = alert.message["email"].as_str().unwrap();
    for needle in [
        &i3.ec2_instance_id,
        "EssentialContainerExited",
        "exit code 139",
        &i4.ec2_instance_id,
        "TASK_CREATION_FAILED",
        "could not be ruled out",
    ] {
        assert!(email.contains(needle), "email lacks {needle:?}:\n{email}");
    }
    for absent in [&i1.ec2_instance_id, &i2.ec2_instance_id, &web_task] {
        assert!(!email.contains(absent.as_str()), "email names {absent}:\n{email}");
    }
    let finding = finding(alert);
    let named: Vec<(&str, &str)> = finding["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["daemonName"].as_str().unwrap(), i["ec2InstanceId"].as_str().unwrap()))
        .collect();
    assert_eq!(
        named,
        vec![
            ("log-router", i3.ec2_instance_id.as_str()),
            ("security-agent", i4.ec2_instance_id.as_str())
        ]
    );

    assert_eq!(function.metric("DaemonLost", Some("prod")), 2.0);
    assert_eq!(function.metric("Recovered", Some("prod")), 1.0);
    assert_eq!(function.metric("Suppressed", Some("prod")), 1.0, "i1 is being repaired");
    assert_eq!(function.metric("EventsIgnored", None), 1.0, "the service task");
    assert_eq!(function.metric("DaemonApiUnavailable", Some("prod")), 1.0);
    let per_daemon: Vec<Value> = function
        .emf()
        .into_iter()
        .filter(|d| d["DaemonName"] == "log-router")
        .map(|d| d["DaemonLost"].clone())
        .collect();
    assert_eq!(per_daemon, vec![json!(1.0)], "{:#?}", function.emf());
}

fn daemon_summary() -> ListDaemonsOutput {
    let arn = "arn:aws:ecs:us-east-1:123456789012:daemon/prod/log-router";
    ListDaemonsOutput::builder()
        .daemon_summaries_list(DaemonSummary::builder().daemon_arn(arn).build())
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_daemon_deployment_is_in_progress_then_a_stop_is_deploying_not_an_alert() {
    let bed = DaemonFleet::new(1).await;
    bed.pipeline
        .put_events(&[bed.log_router_stopped(&bed.nodes[0], 1)])
        .await;
    let records = bed.pipeline.receive(1).await;
    let list = mock!(aws_sdk_ecs::Client::list_daemons)
        .match_requests(|r| r.cluster_arn().is_some_and(|c| c.ends_with(":cluster/prod")))
        .then_output(daemon_summary);
    let deployments = mock!(aws_sdk_ecs::Client::list_daemon_deployments)
        .match_requests(|r| {
            r.daemon_arn().is_some_and(|d| d.ends_with("daemon/prod/log-router"))
                && r.status().contains(&DaemonDeploymentStatus::InProgress)
        })
        .then_output(|| {
            let deployment = DaemonDeploymentSummary::builder()
                .status(DaemonDeploymentStatus::InProgress)
                .build();
            ListDaemonDeploymentsOutput::builder()
                .daemon_deployments(deployment)
                .build()
        });
    let monitor = bed.monitor_with(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list, &deployments]));

    let report = monitor.process(&in_process::messages(&records)).await;

    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(
        bed.emulator.published().await.is_empty(),
        "no alert during a deployment"
    );
    assert_eq!(report.tally.get(Some("prod"), Metric::Suppressed), 1);
    assert_eq!(report.tally.get(Some("prod"), Metric::DaemonLost), 0);
    assert_eq!((list.num_calls(), deployments.num_calls()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_daemon_apis_deny_access_then_verdicts_fall_back_to_tasks_and_the_batch_succeeds() {
    let bed = DaemonFleet::new(2).await;
    bed.fleet
        .start_task(&bed.nodes[1], &bed.log_router, "daemon:log-router")
        .await;
    bed.pipeline
        .put_events(&[
            bed.log_router_stopped(&bed.nodes[0], 1),
            bed.log_router_stopped(&bed.nodes[1], 2),
        ])
        .await;
    let records = bed.pipeline.receive(2).await;
    let denied = || {
        let body =
            r#"{"__type":"AccessDeniedException","message":"User is not authorized to perform: ecs:ListDaemons"}"#;
        Response::new(StatusCode::try_from(400).unwrap(), SdkBody::from(body))
    };
    let list = mock!(aws_sdk_ecs::Client::list_daemons).then_http_response(denied);
    let monitor = bed.monitor_with(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list]));

    let report = monitor.process(&in_process::messages(&records)).await;

    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        report.tally.get(Some("prod"), Metric::DaemonLost),
        1,
        "i1 has no log-router"
    );
    assert_eq!(report.tally.get(Some("prod"), Metric::Recovered), 1, "i2 has a new one");
    assert_eq!(report.tally.get(Some("prod"), Metric::DaemonApiUnavailable), 1);
    assert_eq!(list.num_calls(), 1, "asked once, not once per message");
    let published = bed.emulator.published().await;
    assert_eq!(published.len(), 1);
    assert!(
        published[0].message["email"]
            .as_str()
            .unwrap()
            .contains("could not be ruled out")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_agent_and_daemon_events_share_a_batch_then_instances_are_described_once() {
    // Given 50 disconnected agents and 50 lost daemons on 100 distinct instances of one cluster.
    let bed = DaemonFleet::new(100).await;
    let mut events = Vec::new();
    for node in &bed.nodes[..50] {
        bed.emulator
            .set_container_instance(&node.cluster_arn, &node.container_instance_arn, Some(false), None)
            .await;
        events.push(agent_event(node, 2, false));
    }
    for (n, node) in bed.nodes[50..].iter().enumerate() {
        events.push(bed.log_router_stopped(node, n));
    }
    bed.pipeline.put_events(&events).await;
    let records = bed.pipeline.receive(100).await;
    let function = Function::start(&bed.env()).await;
    bed.emulator.reset_calls().await;

    let response = function
        .invoke(&sqs_event(&records))
        .await
        .expect("the batch is handled");

    assert_eq!(response, json!({"batchItemFailures": []}));
    let calls = bed.emulator.calls().await;
    let count = |operation: &str| calls.get(operation).copied().unwrap_or(0);
    assert_eq!(count("ecs:DescribeContainerInstances"), 1, "{calls:?}");
    assert_eq!(count("ecs:ListTasks"), 1, "one per daemon: {calls:?}");
    let listed = bed.emulator.requests("ecs:ListTasks").await;
    assert_eq!(
        listed.iter().map(|r| r["daemonName"].clone()).collect::<Vec<_>>(),
        vec![json!("log-router")],
        "ListTasks asks by daemon name: {listed:?}"
    );
    assert!(count("ecs:DescribeTasks") <= 1, "{calls:?}");
    assert_eq!(count("ec2:DescribeInstances"), 1, "{calls:?}");
    assert_eq!(count("ecs:ListDaemons"), 1, "{calls:?}");
    assert_eq!(count("sns:Publish"), 2, "one per cluster and kind: {calls:?}");
    assert_eq!(function.metric("AgentDisconnected", Some("prod")), 50.0);
    assert_eq!(function.metric("DaemonLost", Some("prod")), 50.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_list_daemons_does_not_list_the_daemon_then_the_alert_says_a_deployment_was_not_ruled_out() {
    let bed = DaemonFleet::new(1).await;
    bed.pipeline
        .put_events(&[bed.log_router_stopped(&bed.nodes[0], 1)])
        .await;
    let records = bed.pipeline.receive(1).await;
    let list = mock!(aws_sdk_ecs::Client::list_daemons).then_output(|| ListDaemonsOutput::builder().build());
    let monitor = bed.monitor_with(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list]));

    let report = monitor.process(&in_process::messages(&records)).await;

    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.tally.get(Some("prod"), Metric::DaemonLost), 1);
    let published = bed.emulator.published().await;
    assert_eq!(published.len(), 1);
    let email = published[0].message["email"].as_str().unwrap();
    assert!(email.contains("could not be ruled out"), "{email}");
    assert!(email.contains("did not list the daemon"), "{email}");
    assert_eq!(list.num_calls(), 1);
}

/// log-router as the Managed Daemons APIs describe it: listed, one current revision of the given
/// criticality, no deployment in progress.
fn log_router_daemon(critical: bool) -> aws_sdk_ecs::Client {
    let revision = "arn:aws:ecs:us-east-1:123456789012:daemon-revision/prod/log-router/1";
    let list = mock!(aws_sdk_ecs::Client::list_daemons).then_output(daemon_summary);
    let describe = mock!(aws_sdk_ecs::Client::describe_daemon).then_output(move || {
        let detail = DaemonDetail::builder()
            .current_revisions(DaemonRevisionDetail::builder().arn(revision).build())
            .build();
        DescribeDaemonOutput::builder().daemon(detail).build()
    });
    let revisions = mock!(aws_sdk_ecs::Client::describe_daemon_revisions)
        .match_requests(move |r| r.daemon_revision_arns() == [revision.to_owned()])
        .then_output(move || {
            let revision = DaemonRevision::builder()
                .daemon_revision_arn(revision)
                .critical(critical)
                .build();
            DescribeDaemonRevisionsOutput::builder()
                .daemon_revisions(revision)
                .build()
        });
    let deployments = mock!(aws_sdk_ecs::Client::list_daemon_deployments)
        .then_output(|| ListDaemonDeploymentsOutput::builder().build());
    mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&list, &describe, &revisions, &deployments]
    )
}

/// log-router lost on the first of two ACTIVE instances, with drain remediation on and the
/// daemon of the given criticality: the monitor's report.
async fn lost_with_drain_on(critical: bool) -> (DaemonFleet, ecs_watchdog::BatchReport) {
    let bed = DaemonFleet::new(2).await;
    bed.pipeline
        .put_events(&[bed.log_router_stopped(&bed.nodes[0], 1)])
        .await;
    let records = bed.pipeline.receive(1).await;
    let mut env = bed.env();
    env.push(("REMEDIATION_ACTION".into(), "drain".into()));
    env.push(("MAX_REMEDIATION_PERCENT".into(), "50".into()));
    let monitor = in_process::monitor(&bed.emulator, in_process::config(&env), |io| {
        io.daemons = Box::new(EcsDaemons::new(log_router_daemon(critical)))
    });
    let report = monitor.process(&in_process::messages(&records)).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    (bed, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_non_critical_daemon_is_lost_then_it_alerts_and_remediation_leaves_the_instance_in_service() {
    let (bed, report) = lost_with_drain_on(false).await;

    let published = bed.emulator.published().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    let instance = &finding(&published[0])["instances"][0];
    assert_eq!(instance["critical"], false);
    assert_eq!(instance["remediationActions"][0]["outcome"], "skipped");
    let email = published[0].message["email"].as_str().unwrap();
    assert!(email.contains("non-critical daemon"), "{email}");
    assert_eq!(report.tally.get(Some("prod"), Metric::RemediationStarted), 0);
    let draining = bed
        .fleet
        .count(&bed.nodes[0].cluster_arn, ContainerInstanceStatus::Draining);
    assert_eq!(draining.await, 0, "nothing drained");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_critical_daemon_is_lost_on_an_active_instance_then_remediation_drains_it() {
    let (bed, report) = lost_with_drain_on(true).await;

    let published = bed.emulator.published().await;
    assert_eq!(published.len(), 1);
    assert_eq!(finding(&published[0])["instances"][0]["critical"], true);
    assert_eq!(report.tally.get(Some("prod"), Metric::RemediationStarted), 1);
    let draining = bed
        .fleet
        .count(&bed.nodes[0].cluster_arn, ContainerInstanceStatus::Draining);
    assert_eq!(draining.await, 1);
}

/// A lost daemon's criticality is read once per daemon, then cached across invocations: a storm
/// of daemon losses costs no `DescribeDaemon` per event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_criticality_is_read_twice_then_the_daemon_is_described_once() {
    use ecs_watchdog::ports::Daemons;
    let revision = "arn:aws:ecs:us-east-1:123456789012:daemon-revision/prod/log-router/1";
    let describe = mock!(aws_sdk_ecs::Client::describe_daemon).then_output(move || {
        let detail = DaemonDetail::builder()
            .current_revisions(DaemonRevisionDetail::builder().arn(revision).build())
            .build();
        DescribeDaemonOutput::builder().daemon(detail).build()
    });
    let revisions = mock!(aws_sdk_ecs::Client::describe_daemon_revisions).then_output(move || {
        let revision = DaemonRevision::builder()
            .daemon_revision_arn(revision)
            .critical(false)
            .build();
        DescribeDaemonRevisionsOutput::builder()
            .daemon_revisions(revision)
            .build()
    });
    let daemons = EcsDaemons::new(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&describe, &revisions]));
    let arn = "arn:aws:ecs:us-east-1:123456789012:daemon/prod/log-router";

    for _ in 0..2 {
        assert_eq!(daemons.describe_daemon(arn).await.unwrap().critical, Some(false));
    }
    assert_eq!((describe.num_calls(), revisions.num_calls()), (1, 1));
}
