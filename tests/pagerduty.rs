//! PagerDuty beside SNS, end to end: the routing key read from the emulator's Systems Manager
//! (a SecureString, or a Secrets Manager secret through Parameter Store's reference path), the
//! events posted to a local receiver that checks the Events API v2 schema strictly
//! (`tests/pagerduty_receiver.py`), 429 and 5xx retried, a receiver that keeps failing leaving
//! the message undecided, one PagerDuty alert per cluster and kind that a digest folds into and
//! the last resolved notice resolves.

use aws_sdk_ecs::operation::list_daemons::ListDaemonsOutput;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use ecs_watchdog::alert::{self, Alert, AlertKind, DaemonChecks, Facts, InstanceFinding, pagerduty};
use ecs_watchdog::aws;
use ecs_watchdog::aws::{EcsDaemons, EventsApi, PagerDutyThenSns, REJECTED_METRIC, Retry, Sent};
use ecs_watchdog::config::{PAGERDUTY_ROUTING_KEY_PARAMETER, PagerDutyConfig};
use ecs_watchdog::config::{Place, RoutingKey};
use ecs_watchdog::incident::GroupKey;
use ecs_watchdog::metrics::MetricDatum;
use ecs_watchdog::ports::{AwsError, MetricsSink, Notifier};
use ecs_watchdog::{Monitor, Sweep};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use watchdog_tests::clock::TestClock;
use watchdog_tests::emulator::{Emulator, Published};
use watchdog_tests::fleet::{Fleet, Node};
use watchdog_tests::in_process;
use watchdog_tests::pagerduty::{ROUTING_KEY, Receiver};
use watchdog_tests::pipeline::Pipeline;
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::agent_event;
use watchdog_tests::template::rendered;

const PARAMETER: &str = "/ecs-watchdog/pagerduty";
const KIND: &str = "agent-disconnected";

/// The emulator with the routing key in a SecureString, the template's pipeline with
/// PagerDuty on, and the monitor's environment pointed at `receiver`.
async fn bed(receiver: &Receiver, parameters: &[(&str, &str)]) -> (Emulator, Pipeline, Vec<(String, String)>) {
    let emulator = Emulator::start().await;
    aws_sdk_ssm::Client::new(&emulator.sdk)
        .put_parameter()
        .name(PARAMETER)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .value(ROUTING_KEY)
        .send()
        .await
        .expect("PutParameter");
    let mut all = vec![("GracePeriodSeconds", "0"), ("PagerDutyRoutingKeyParameter", PARAMETER)];
    all.extend_from_slice(parameters);
    let pipeline = Pipeline::from_template(&emulator.sdk, &all).await;
    let mut env = pipeline.function_env(&emulator);
    env.push(("PAGERDUTY_EVENTS_URL".into(), receiver.url()));
    (emulator, pipeline, env)
}

async fn disconnected(emulator: &Emulator, n: usize) -> Vec<Node> {
    let fleet = Fleet::new(&emulator.sdk).await;
    let cluster = fleet.cluster("prod", &[]).await;
    let nodes = fleet.nodes(&cluster, n).await;
    for node in &nodes {
        emulator
            .set_container_instance(&cluster, &node.container_instance_arn, Some(false), None)
            .await;
    }
    nodes
}

fn with_status<'a>(published: &'a [Published], status: &str) -> Vec<&'a Published> {
    published.iter().filter(|p| p.attributes["status"] == status).collect()
}

/// Our severity as PagerDuty's (docs/findings.md, Routing alerts).
fn pagerduty_severity(ours: &str) -> &'static str {
    match ours {
        "critical" => "critical",
        "high" => "error",
        "warning" => "warning",
        other => panic!("severity {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_an_agent_disconnects_then_reconnects_then_pagerduty_gets_a_trigger_and_its_resolve_after_429_and_500() {
    let receiver = Receiver::start().await;
    let (emulator, pipeline, env) = bed(&receiver, &[]).await;
    let node = disconnected(&emulator, 1).await.remove(0);
    pipeline.put_events(&[agent_event(&node, 2, false)]).await;
    let function = Function::start(&env).await;

    // PagerDuty is busy, then fails, then takes it: the same event each time, then SNS.
    receiver.fail_next(&[429, 500]).await;
    let (_, answer) = pipeline.deliver(&function, 1).await;
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let requests = receiver.requests().await;
    let statuses: Vec<&Value> = requests.iter().map(|r| &r["status"]).collect();
    assert_eq!(statuses, [&json!(429), &json!(500), &json!(202)], "{requests:#?}");
    assert!(requests.iter().all(|r| r["errors"] == json!([])), "{requests:#?}");
    assert!(requests.iter().all(|r| r["event"] == requests[2]["event"]));
    let published = emulator.published().await;
    let firing = with_status(&published, "firing");
    assert_eq!(firing.len(), 1);

    let trigger = &requests[2]["event"];
    let group = GroupKey::new(&node.cluster_arn, AlertKind::AgentDisconnected).id();
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], group.as_str());
    assert_eq!(trigger["routing_key"], ROUTING_KEY);
    assert_eq!(trigger["payload"]["summary"], firing[0].subject.as_str());
    assert_eq!(trigger["payload"]["source"], node.cluster_arn.as_str());
    assert_eq!(
        trigger["payload"]["severity"],
        pagerduty_severity(&firing[0].attributes["severity"])
    );
    assert_eq!(
        trigger["payload"]["custom_details"]["incident"],
        firing[0].attributes["incident"]
    );

    // The agent reconnects: the resolved notice resolves the same key, PagerDuty first.
    emulator
        .set_container_instance(&node.cluster_arn, &node.container_instance_arn, Some(true), None)
        .await;
    pipeline.put_events(&[agent_event(&node, 2, false)]).await;
    let (_, answer) = pipeline.deliver(&function, 1).await;
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let accepted = receiver.accepted().await;
    let actions: Vec<(&Value, &Value)> = accepted.iter().map(|e| (&e["event_action"], &e["dedup_key"])).collect();
    assert_eq!(
        actions,
        [(&json!("trigger"), &json!(group)), (&json!("resolve"), &json!(group))]
    );
    assert_eq!(with_status(&emulator.published().await, "resolved").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_pagerduty_keeps_failing_then_the_message_stays_undecided_and_the_next_delivery_sends_once() {
    let receiver = Receiver::start().await;
    let (emulator, pipeline, env) = bed(&receiver, &[]).await;
    let node = disconnected(&emulator, 1).await.remove(0);
    pipeline.put_events(&[agent_event(&node, 2, false)]).await;
    let function = Function::start(&env).await;

    receiver.always(Some(503)).await;
    let (records, answer) = pipeline.deliver(&function, 1).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": records[0]["messageId"]}]}),
        "undecided: the queue delivers it again"
    );
    assert_eq!(receiver.requests().await.len(), 4, "tried four times, no more");
    assert!(emulator.published().await.is_empty(), "no SNS before PagerDuty took it");

    // PagerDuty is back; the queue hands the message out again: sent once, to both.
    receiver.always(None).await;
    pipeline.redeliver(&records).await;
    let (again, answer) = pipeline.deliver(&function, 1).await;
    assert_eq!(again[0]["messageId"], records[0]["messageId"]);
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(receiver.accepted().await.len(), 1);
    assert_eq!(with_status(&emulator.published().await, "firing").len(), 1);

    // The same event once more: settled, nothing more to either.
    pipeline.put_events(&[agent_event(&node, 2, false)]).await;
    pipeline.deliver(&function, 1).await;
    assert_eq!(receiver.requests().await.len(), 5);
    assert_eq!(emulator.published().await.len(), 1);
}

const START: u64 = 1_800_000_000;

/// The monitor and the sweep in this process on a clock the test moves, with PagerDuty wired as
/// the binaries wire it (the routing key read from the emulator); the sweep in a cluster without
/// Managed Daemons.
async fn in_process(
    emulator: &Emulator,
    pipeline: &Pipeline,
    receiver: &Receiver,
    clock: &TestClock,
) -> (Monitor, Sweep) {
    let url = ("PAGERDUTY_EVENTS_URL".to_owned(), receiver.url());
    let mut monitor_env = pipeline.function_env(emulator);
    let mut sweep_env = pipeline.sweep_env(emulator);
    monitor_env.push(url.clone());
    sweep_env.push(url);
    let (mut monitor, mut sweep) = (in_process::config(&monitor_env), in_process::config(&sweep_env));
    aws::load_routing_key(&mut monitor.pagerduty, &emulator.sdk)
        .await
        .expect("the key");
    aws::load_routing_key(&mut sweep.pagerduty, &emulator.sdk)
        .await
        .expect("the key");
    let monitor = in_process::monitor(emulator, monitor, |io| io.clock = Box::new(clock.clone()));
    let list = mock!(aws_sdk_ecs::Client::list_daemons).then_output(|| ListDaemonsOutput::builder().build());
    let daemons = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list]);
    let sweep = in_process::sweep(emulator, sweep, |io| {
        io.clock = Box::new(clock.clone());
        io.daemons = Box::new(EcsDaemons::new(daemons));
    });
    (monitor, sweep)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_storm_pages_then_its_digest_folds_into_the_same_alert_which_resolves_with_the_last_incident() {
    let receiver = Receiver::start().await;
    let (emulator, pipeline, _) = bed(&receiver, &[]).await;
    let nodes = disconnected(&emulator, 6).await;
    let clock = TestClock::at(START);
    let (monitor, sweep) = in_process(&emulator, &pipeline, &receiver, &clock).await;

    // Three invocations of two: the first pages, four wait for the digest.
    for (n, batch) in nodes.chunks(2).enumerate() {
        clock.set(START + 5 * n as u64);
        let messages = batch
            .iter()
            .map(|node| {
                ecs_watchdog::Message::new(
                    node.container_instance_arn.clone(),
                    agent_event(node, 2, false).to_string(),
                )
            })
            .collect::<Vec<_>>();
        assert!(monitor.process(&messages).await.failures.is_empty());
    }
    clock.set(START + 6 * 60);
    sweep.run().await;
    let ours = |events: Vec<Value>| -> Vec<Value> {
        events
            .into_iter()
            .filter(|e| e["payload"]["class"] == KIND || e["event_action"] == "resolve")
            .collect()
    };
    let events = ours(receiver.accepted().await);
    let statuses: Vec<&Value> = events
        .iter()
        .map(|e| &e["payload"]["custom_details"]["status"])
        .collect();
    assert_eq!(
        statuses,
        [&json!("firing"), &json!("digest")],
        "one event per message: the page, the digest"
    );
    assert_eq!(
        events[0]["dedup_key"], events[1]["dedup_key"],
        "the digest folds into the page's alert"
    );
    let digest = &events[1]["payload"]["custom_details"]["finding"];
    assert_eq!(digest["instances"].as_array().map(Vec::len), Some(4));

    // Two reconnect: their resolved notice goes to SNS, the PagerDuty alert stays (four open).
    let reconnect = |nodes: &[Node]| {
        let nodes = nodes.to_vec();
        let emulator = &emulator;
        async move {
            for node in nodes {
                emulator
                    .set_container_instance(&node.cluster_arn, &node.container_instance_arn, Some(true), None)
                    .await;
            }
        }
    };
    reconnect(&nodes[..2]).await;
    clock.set(START + 7 * 60);
    sweep.run().await;
    assert_eq!(with_status(&emulator.published().await, "resolved").len(), 1);
    assert_eq!(
        ours(receiver.accepted().await).len(),
        2,
        "no resolve while others are alerted"
    );

    // The rest reconnect: the last resolved notice resolves the alert, once.
    reconnect(&nodes[2..]).await;
    clock.set(START + 8 * 60);
    sweep.run().await;
    assert_eq!(with_status(&emulator.published().await, "resolved").len(), 2);
    let events = ours(receiver.accepted().await);
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(events[2]["event_action"], "resolve");
    assert_eq!(events[2]["dedup_key"], events[0]["dedup_key"]);
    assert!(receiver.requests().await.iter().all(|r| r["errors"] == json!([])));
}

/// A Secrets Manager secret, created over moto's JSON protocol (the project has no Secrets
/// Manager SDK crate: the function reads it through Parameter Store).
async fn create_secret(emulator: &Emulator, name: &str, value: &str) {
    let address = emulator.endpoint.trim_start_matches("http://").to_owned();
    let body = json!({"Name": name, "SecretString": value}).to_string();
    let request = format!(
        "POST / HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: secretsmanager.CreateSecret\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, \
         SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_key_is_in_secrets_manager_or_missing_then_init_reads_it_or_stops_naming_the_variable() {
    let emulator = Emulator::start().await;
    create_secret(&emulator, "ecs-watchdog/pagerduty", ROUTING_KEY).await;
    let config = |parameter: &str| {
        Some(PagerDutyConfig {
            parameter: parameter.to_owned(),
            events_url: "https://events.pagerduty.com/v2/enqueue".to_owned(),
            routing_key: None,
        })
    };
    let mut from_secret = config("/aws/reference/secretsmanager/ecs-watchdog/pagerduty");
    aws::load_routing_key(&mut from_secret, &emulator.sdk)
        .await
        .expect("read through Parameter Store");
    let key = from_secret.and_then(|p| p.routing_key).expect("a key");
    assert_eq!(key.expose(), ROUTING_KEY);

    for missing in ["/ecs-watchdog/none", "/aws/reference/secretsmanager/none"] {
        let error = aws::load_routing_key(&mut config(missing), &emulator.sdk)
            .await
            .expect_err(missing);
        assert_eq!(error.variable, PAGERDUTY_ROUTING_KEY_PARAMETER, "{missing}");
        assert!(error.problem.contains(missing), "{}", error.problem);
    }
    let mut off = None;
    aws::load_routing_key(&mut off, &emulator.sdk)
        .await
        .expect("PagerDuty off: nothing read");
}

/// The roles' statements, over their policies.
fn statements(template: &Value, role: &str) -> Vec<Value> {
    template["Resources"][role]["Properties"]["Policies"]
        .as_array()
        .expect("policies")
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn granting<'a>(statements: &'a [Value], action: &str) -> Vec<&'a Value> {
    statements
        .iter()
        .filter(|s| s["Action"] == action || s["Action"].as_array().is_some_and(|a| a.contains(&json!(action))))
        .collect()
}

#[test]
fn when_the_key_is_a_parameter_then_both_roles_read_exactly_it_and_decrypt_only_with_the_named_key() {
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let template = rendered(
        "ecs-watchdog",
        &[("PagerDutyRoutingKeyParameter", PARAMETER), ("PagerDutyKmsKeyArn", key)],
    );
    for (role, function) in [("MonitorRole", "MonitorFunction"), ("SweepRole", "SweepFunction")] {
        let statements = statements(&template, role);
        let read = granting(&statements, "ssm:GetParameter");
        assert_eq!(read.len(), 1, "{role}");
        assert_eq!(
            read[0]["Resource"], "arn:aws:ssm:us-east-1:123456789012:parameter/ecs-watchdog/pagerduty",
            "{role}"
        );
        assert!(
            granting(&statements, "secretsmanager:GetSecretValue").is_empty(),
            "{role}"
        );
        let decrypt: Vec<&Value> = granting(&statements, "kms:Decrypt")
            .into_iter()
            .filter(|s| s["Resource"] == key)
            .collect();
        assert_eq!(decrypt.len(), 1, "{role}");
        assert_eq!(
            decrypt[0]["Condition"]["StringEquals"]["kms:ViaService"],
            json!(["ssm.us-east-1.amazonaws.com", "secretsmanager.us-east-1.amazonaws.com"])
        );
        let env = &template["Resources"][function]["Properties"]["Environment"]["Variables"];
        assert_eq!(env[PAGERDUTY_ROUTING_KEY_PARAMETER], PARAMETER, "{function}");
    }
    let off = rendered("ecs-watchdog", &[]);
    for role in ["MonitorRole", "SweepRole"] {
        assert!(
            granting(&statements(&off, role), "ssm:GetParameter").is_empty(),
            "{role}"
        );
    }
}

/// What the notifier behind PagerDuty published, and the metrics it counted.
#[derive(Clone, Default)]
struct Recorded(std::sync::Arc<std::sync::Mutex<(Vec<String>, Vec<&'static str>)>>);

#[async_trait::async_trait]
impl Notifier for Recorded {
    async fn publish(&self, alert: &Alert) -> Result<(), AwsError> {
        self.0.lock().unwrap().0.push(alert.subject.clone());
        Ok(())
    }
}

#[async_trait::async_trait]
impl MetricsSink for Recorded {
    async fn publish(&self, data: &[MetricDatum]) -> Result<(), AwsError> {
        self.0.lock().unwrap().1.extend(data.iter().map(|d| d.name));
        Ok(())
    }
}

fn quick() -> Retry {
    Retry {
        first_backoff: std::time::Duration::from_millis(10),
        ..Retry::default()
    }
}

fn page() -> Alert {
    let place = Place::new("123456789012", "us-east-1");
    let instance = InstanceFinding {
        container_instance_arn: "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/0abc".into(),
        ec2_instance_id: Some("i-0abc".into()),
        ..Default::default()
    };
    alert::alert(
        AlertKind::AgentDisconnected,
        &place,
        "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
        vec![instance],
        DaemonChecks { deployments: true },
        "alerted only",
        Facts::at(START),
    )
}

#[tokio::test]
async fn when_pagerduty_answers_429_and_5xx_then_the_event_is_sent_again_with_backoff_until_taken() {
    let receiver = Receiver::start().await;
    let key = RoutingKey::parse(ROUTING_KEY).unwrap();
    let api = EventsApi::new(receiver.url(), key, quick());
    receiver.fail_next(&[429, 502, 503]).await;
    let sent = api.send(&pagerduty::event(&page(), START)).await.expect("taken");
    assert!(matches!(sent, Sent::Accepted), "{sent:?}");
    let statuses: Vec<Value> = receiver.requests().await.iter().map(|r| r["status"].clone()).collect();
    assert_eq!(statuses, [json!(429), json!(502), json!(503), json!(202)]);
}

#[tokio::test]
async fn when_pagerduty_does_not_answer_within_the_attempt_timeout_then_the_event_is_sent_again() {
    let receiver = Receiver::start().await;
    let retry = Retry {
        attempt_timeout: std::time::Duration::from_millis(500),
        ..quick()
    };
    let api = EventsApi::new(receiver.url(), RoutingKey::parse(ROUTING_KEY).unwrap(), retry);
    receiver.hang_next(1).await;
    let sent = api.send(&pagerduty::event(&page(), START)).await.expect("taken");
    assert!(matches!(sent, Sent::Accepted), "{sent:?}");
    // The first is answered 5 s late: without the timeout the client would have waited for it.
    let requests = receiver.requests().await;
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(requests[0]["event"], requests[1]["event"]);
}

#[tokio::test]
async fn when_pagerduty_rejects_an_event_then_it_is_not_retried_it_is_counted_and_sns_still_tells_it() {
    let receiver = Receiver::start().await;
    let recorded = Recorded::default();
    let notifier = PagerDutyThenSns {
        events: EventsApi::new(receiver.url(), RoutingKey::parse(ROUTING_KEY).unwrap(), quick()),
        sns: Box::new(recorded.clone()),
        ledger: None,
        metrics: Box::new(recorded.clone()),
        clock: Box::new(TestClock::at(START)),
    };
    // The receiver checks the routing key: one PagerDuty does not know is a 400.
    let stranger = EventsApi::new(receiver.url(), RoutingKey::parse("Rsomeoneelse").unwrap(), quick());
    let answer = stranger
        .send(&pagerduty::event(&page(), START))
        .await
        .expect("an answer");
    let Sent::Rejected(rejected) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(rejected.status, 400);
    assert!(rejected.body.contains("routing_key"), "{}", rejected.body);
    assert_eq!(receiver.requests().await.len(), 1, "a 400 is not retried");

    receiver.fail_next(&[400]).await;
    notifier.publish(&page()).await.expect("SNS still tells it");
    let (published, metrics) = recorded.0.lock().unwrap().clone();
    assert_eq!(published, [page().subject]);
    assert_eq!(metrics, [REJECTED_METRIC]);
    assert_eq!(receiver.requests().await.len(), 2);
}
