//! ECS Anywhere hosts end to end: a disconnected agent on an `mi-…` node is checked in Systems
//! Manager (`DescribeInstanceInformation`, which the test bed answers), as the AWS sample does.

use aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationOutput;
use aws_sdk_ssm::types::{InstanceInformation, PingStatus};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use ecs_watchdog::aws::{OnFirstUse, SsmHosts};
use serde_json::{Value, json};
use watchdog_tests::emulator::Emulator;
use watchdog_tests::fleet::{Fleet, Node};
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::agent_event;

struct Bed {
    emulator: Emulator,
    pipeline: Pipeline,
    _fleet: Fleet,
    cluster: String,
}

impl Bed {
    async fn new() -> Self {
        let emulator = Emulator::start().await;
        let fleet = Fleet::new(&emulator.sdk).await;
        let pipeline = Pipeline::from_template(&emulator.sdk, &[("GracePeriodSeconds", "0")]).await;
        let cluster = fleet.cluster("edge", &[]).await;
        Self {
            _fleet: fleet,
            emulator,
            pipeline,
            cluster,
        }
    }

    /// `count` registered nodes; those given a ping status become ECS Anywhere hosts `mi-…`.
    async fn nodes(&self, statuses: &[Option<Option<&str>>]) -> Vec<Node> {
        let fleet = Fleet::new(&self.emulator.sdk).await;
        let mut nodes = fleet.nodes(&self.cluster, statuses.len()).await;
        for (n, (node, status)) in nodes.iter_mut().zip(statuses).enumerate() {
            if let Some(ping) = status {
                node.ec2_instance_id = format!("mi-0{n:016x}");
                self.emulator
                    .set_anywhere(
                        &self.cluster,
                        &node.container_instance_arn,
                        &node.ec2_instance_id,
                        *ping,
                    )
                    .await;
            }
            self.emulator
                .set_container_instance(&self.cluster, &node.container_instance_arn, Some(false), None)
                .await;
        }
        nodes
    }

    /// The agent events of `nodes`, through the rules and the queue, to a fresh `monitor`.
    async fn check(&self, nodes: &[Node]) -> (Function, Value) {
        let events: Vec<Value> = nodes.iter().map(|n| agent_event(n, 2, false)).collect();
        self.pipeline.put_events(&events).await;
        let records = self.pipeline.receive(nodes.len()).await;
        let function = Function::start(&self.pipeline.function_env(&self.emulator)).await;
        self.emulator.reset_calls().await;
        let answer = function.invoke(&sqs_event(&records)).await.expect("handled");
        (function, answer)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_an_anywhere_host_is_offline_then_it_is_counted_not_alerted_and_an_online_one_is() {
    let bed = Bed::new().await;
    let nodes = bed
        .nodes(&[None, Some(Some("Online")), Some(Some("ConnectionLost")), Some(None)])
        .await;
    let [ec2, online, offline, unknown] = [&nodes[0], &nodes[1], &nodes[2], &nodes[3]];

    let (function, answer) = bed.check(&nodes).await;

    assert_eq!(answer, json!({"batchItemFailures": []}));
    let published = bed.emulator.published().await;
    assert_eq!(published.len(), 1, "{published:#?}");
    let finding: Value = serde_json::from_str(published[0].message["default"].as_str().unwrap()).unwrap();
    let named: Vec<(&str, Option<&str>)> = finding["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["ec2InstanceId"].as_str().unwrap(), i["hostCheck"].as_str()))
        .collect();
    let mut expected = vec![
        (ec2.ec2_instance_id.as_str(), None),
        (online.ec2_instance_id.as_str(), Some("Systems Manager: Online")),
        (
            unknown.ec2_instance_id.as_str(),
            Some("not registered with Systems Manager: the host could not be checked"),
        ),
    ];
    let mut named_sorted = named.clone();
    named_sorted.sort();
    expected.sort();
    assert_eq!(named_sorted, expected);
    assert!(!named.iter().any(|(id, _)| *id == offline.ec2_instance_id));
    assert_eq!(function.metric("Suppressed", Some("edge")), 1.0, "the offline host");
    let calls = bed.emulator.calls().await;
    assert_eq!(calls.get("ssm:DescribeInstanceInformation"), Some(&1));
    assert_eq!(calls.get("ec2:DescribeInstances"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_120_anywhere_hosts_disconnect_then_systems_manager_is_asked_3_times() {
    let bed = Bed::new().await;
    let nodes = bed.nodes(&vec![Some(Some("ConnectionLost")); 120]).await;

    let (function, answer) = bed.check(&nodes).await;

    assert_eq!(answer, json!({"batchItemFailures": []}));
    let calls = bed.emulator.calls().await;
    assert_eq!(calls.get("ssm:DescribeInstanceInformation"), Some(&3), "{calls:?}");
    assert_eq!(calls.get("ec2:DescribeInstances"), None, "no EC2 id to look up");
    assert_eq!(function.metric("Suppressed", Some("edge")), 120.0);
    assert!(bed.emulator.published().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_systems_manager_fails_then_only_the_anywhere_messages_come_back() {
    let bed = Bed::new().await;
    let nodes = bed
        .nodes(&[None, Some(Some("Online")), Some(Some("ConnectionLost"))])
        .await;
    bed.emulator.set_ssm_failing(true).await;

    let (_, answer) = bed.check(&nodes).await;

    let failures: Vec<&str> = answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(failures.len(), 2, "the two mi- nodes: {answer}");
    let published = bed.emulator.published().await;
    assert_eq!(published.len(), 1, "the EC2 instance is decided and alerted");
    let email = published[0].message["email"].as_str().unwrap();
    assert!(email.contains(&nodes[0].ec2_instance_id));
}

/// The adapter at the SDK layer: it asks by the `InstanceIds` filter, 50 a page, follows the
/// pages, and reads each node's `PingStatus`.
#[tokio::test]
async fn when_systems_manager_answers_in_pages_then_every_node_is_read() {
    let node = |id: &str, status: PingStatus| {
        InstanceInformation::builder()
            .instance_id(id)
            .ping_status(status)
            .build()
    };
    let first = mock!(aws_sdk_ssm::Client::describe_instance_information)
        .match_requests(|r| {
            r.next_token().is_none()
                && r.max_results() == Some(50)
                && r.filters()
                    .first()
                    .is_some_and(|f| f.key() == "InstanceIds" && f.values().len() == 3)
        })
        .then_output(move || {
            DescribeInstanceInformationOutput::builder()
                .instance_information_list(node("mi-01", PingStatus::Online))
                .instance_information_list(node("mi-02", PingStatus::ConnectionLost))
                .next_token("page-2")
                .build()
        });
    let second = mock!(aws_sdk_ssm::Client::describe_instance_information)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(move || {
            DescribeInstanceInformationOutput::builder()
                .instance_information_list(node("mi-03", PingStatus::Inactive))
                .build()
        });
    let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&first, &second]);
    let hosts = SsmHosts::new(OnFirstUse::ready(client));

    let ids = ["mi-01", "mi-02", "mi-03"].map(str::to_owned);
    let states = hosts.ping_status(&ids).await.expect("answered");

    use ecs_watchdog::inventory::PingStatus as Ping;
    let mut found: Vec<(String, Ping)> = states.into_iter().collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        found,
        vec![
            ("mi-01".to_owned(), Ping::Online),
            ("mi-02".to_owned(), Ping::ConnectionLost),
            ("mi-03".to_owned(), Ping::Inactive),
        ]
    );
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}
