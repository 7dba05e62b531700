//! Grouping across invocations (DESIGN §7, `GroupIntervalMinutes`): a storm spread over many
//! invocations pages once, then one digest names everything that joined it. The monitor and the
//! sweep run in this process on a clock the test moves (minutes must pass), against the emulator.

use std::collections::BTreeSet;

use aws_sdk_ecs::operation::list_daemons::ListDaemonsOutput;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use ecs_watchdog::aws::EcsDaemons;
use ecs_watchdog::{Message, Monitor, Sweep};
use serde_json::Value;
use watchdog_tests::clock::TestClock;
use watchdog_tests::emulator::{Emulator, Published, instance_ids};
use watchdog_tests::fleet::{Fleet, Node};
use watchdog_tests::in_process;
use watchdog_tests::pipeline::Pipeline;
use watchdog_tests::samples::agent_event;

const START: u64 = 1_800_000_000;
const KIND: &str = "agent-disconnected";

struct Bed {
    emulator: Emulator,
    pipeline: Pipeline,
    nodes: Vec<Node>,
    clock: TestClock,
}

impl Bed {
    /// `instances` in one cluster, every agent disconnected; the stack's defaults but no grace
    /// period, and `parameters`.
    async fn new(instances: usize, parameters: &[(&str, &str)]) -> Self {
        let emulator = Emulator::start().await;
        let fleet = Fleet::new(&emulator.sdk).await;
        let mut all = vec![("GracePeriodSeconds", "0")];
        all.extend_from_slice(parameters);
        let pipeline = Pipeline::from_template(&emulator.sdk, &all).await;
        let cluster = fleet.cluster("prod", &[]).await;
        let nodes = fleet.nodes(&cluster, instances).await;
        for node in &nodes {
            emulator
                .set_container_instance(&cluster, &node.container_instance_arn, Some(false), None)
                .await;
        }
        Self {
            emulator,
            pipeline,
            nodes,
            clock: TestClock::at(START),
        }
    }

    fn monitor(&self) -> Monitor {
        let config = in_process::config(&self.pipeline.function_env(&self.emulator));
        in_process::monitor(&self.emulator, config, |io| io.clock = Box::new(self.clock.clone()))
    }

    /// The sweep, on the same clock, in a cluster without Managed Daemons.
    fn sweep(&self) -> Sweep {
        let config = in_process::config(&self.pipeline.sweep_env(&self.emulator));
        let list = mock!(aws_sdk_ecs::Client::list_daemons).then_output(|| ListDaemonsOutput::builder().build());
        let daemons = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list]);
        in_process::sweep(&self.emulator, config, |io| {
            io.clock = Box::new(self.clock.clone());
            io.daemons = Box::new(EcsDaemons::new(daemons));
        })
    }

    /// The agent events of `nodes`, as the queue delivers them.
    fn messages(&self, nodes: &[Node]) -> Vec<Message> {
        nodes
            .iter()
            .map(|node| {
                Message::new(
                    node.container_instance_arn.clone(),
                    agent_event(node, 2, false).to_string(),
                )
            })
            .collect()
    }

    /// `invocations` invocations of `size` events each, 5 seconds apart.
    async fn storm(&self, monitor: &Monitor, invocations: usize, size: usize) {
        for (n, batch) in self.nodes[..invocations * size].chunks(size).enumerate() {
            self.clock.set(START + 5 * n as u64);
            let report = monitor.process(&self.messages(batch)).await;
            assert!(report.failures.is_empty(), "{:?}", report.failures);
        }
    }

    async fn published(&self, status: &str) -> Vec<Published> {
        let all = self.emulator.published().await;
        all.into_iter()
            // A page and its digest both fire; the digest says so in its status.
            .filter(|p| {
                let told = p.attributes["status"].as_str();
                p.attributes["kind"] == KIND && (told == status || (status == "firing" && told == "digest"))
            })
            .collect()
    }
}

fn finding(alert: &Published) -> Value {
    serde_json::from_str(alert.message["default"].as_str().unwrap()).unwrap()
}

/// The EC2 ids an alert's JSON names.
fn named(alert: &Published) -> Vec<String> {
    let finding = finding(alert);
    assert_eq!(finding.get("omitted"), None, "every instance listed");
    instance_ids(&finding)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_500_instances_disconnect_over_25_invocations_then_one_page_and_one_digest_name_each_once() {
    let bed = Bed::new(500, &[]).await;
    let monitor = bed.monitor();

    // 25 invocations of 20 within two minutes: the first pages, the rest wait.
    bed.storm(&monitor, 25, 20).await;
    let pages = bed.published("firing").await;
    assert_eq!(pages.len(), 1);
    assert_eq!(named(&pages[0]).len(), 20);

    // The sweep after the interval sends the digest; another sweep sends nothing more.
    bed.clock.set(START + 6 * 60);
    let sweep = bed.sweep();
    sweep.run().await;
    sweep.run().await;
    let sent = bed.published("firing").await;
    assert_eq!(
        sent.len(),
        2,
        "{:?}",
        sent.iter().map(|p| &p.subject).collect::<Vec<_>>()
    );
    assert_eq!(
        sent[1].subject,
        "ECS agent disconnected on 480 more instances in prod (123456789012, us-east-1)"
    );
    assert_eq!(
        finding(&sent[1])["digest"],
        serde_json::json!({"joined": 480, "resolved": 0, "stillOpen": 500})
    );
    let names: Vec<String> = sent.iter().flat_map(named).collect();
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(names.len(), 500, "each instance named exactly once");
    assert_eq!(unique.len(), 500);
    let all: BTreeSet<&String> = bed.nodes.iter().map(|n| &n.ec2_instance_id).collect();
    assert_eq!(unique, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_grouping_is_off_then_each_invocation_alerts_what_it_found() {
    let bed = Bed::new(500, &[("GroupIntervalMinutes", "0")]).await;
    let monitor = bed.monitor();
    bed.storm(&monitor, 25, 20).await;
    bed.clock.set(START + 6 * 60);
    bed.sweep().run().await;
    let sent = bed.published("firing").await;
    assert_eq!(sent.len(), 25, "one message per invocation, as without grouping");
    assert!(sent.iter().all(|p| named(p).len() == 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_digest_fails_to_publish_then_the_next_run_sends_it_and_racing_runs_send_one() {
    let bed = Bed::new(60, &[]).await;
    let monitor = bed.monitor();
    bed.storm(&monitor, 3, 20).await;
    assert_eq!(bed.published("firing").await.len(), 1, "the page; 40 held");

    // SNS refuses: the topic is gone when the digest is due.
    let sns = aws_sdk_sns::Client::new(&bed.emulator.sdk);
    sns.delete_topic()
        .topic_arn(&bed.pipeline.topic_arn)
        .send()
        .await
        .unwrap();
    bed.clock.set(START + 6 * 60);
    let report = bed.sweep().run().await;
    assert!(report.report.alerts.iter().all(|a| a.kind.as_str() != KIND));

    // The topic is back (same name, same ARN): two runs race to send the digest; one does.
    let name = bed.pipeline.topic_arn.rsplit(':').next().unwrap();
    let topic = sns.create_topic().name(name).send().await.unwrap();
    assert_eq!(topic.topic_arn(), Some(bed.pipeline.topic_arn.as_str()));
    bed.clock.set(START + 7 * 60);
    let (a, b) = (bed.sweep(), bed.monitor());
    let late = bed.messages(&bed.nodes[..1]);
    let (_, _) = tokio::join!(a.run(), b.process(&late));
    let sent = bed.published("firing").await;
    assert_eq!(
        sent.len(),
        1,
        "{:?}",
        sent.iter().map(|p| &p.subject).collect::<Vec<_>>()
    );
    let names: BTreeSet<String> = named(&sent[0]).into_iter().collect();
    let held: BTreeSet<String> = bed.nodes[20..60].iter().map(|n| n.ec2_instance_id.clone()).collect();
    assert_eq!(names, held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_incidents_resolve_during_a_storm_then_the_digest_says_so_and_each_look_resolves_what_it_saw() {
    let bed = Bed::new(40, &[]).await;
    let monitor = bed.monitor();
    bed.storm(&monitor, 2, 20).await;

    // Five of the held ones reconnect before their digest: it names them opened and resolved.
    for node in &bed.nodes[20..25] {
        bed.emulator
            .set_container_instance(&node.cluster_arn, &node.container_instance_arn, Some(true), None)
            .await;
    }
    let sweep = bed.sweep();
    bed.clock.set(START + 6 * 60);
    sweep.run().await;
    let sent = bed.published("firing").await;
    assert_eq!(sent.len(), 2);
    let digest = finding(&sent[1]);
    assert_eq!(digest["digest"]["joined"], 20);
    assert_eq!(digest["digest"]["resolved"], 5);
    let resolved: Vec<&str> = digest["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["resolved"].as_str())
        .collect();
    assert_eq!(resolved.len(), 5);
    assert!(
        resolved[0].starts_with("recovered: the agent reconnected"),
        "{resolved:?}"
    );
    assert!(
        bed.published("resolved").await.is_empty(),
        "told in the digest, not twice"
    );

    // Of the paged ones, five reconnect: a resolved notice at once; five more a minute later:
    // the next sweep's notice (resolved notices are one per cluster and kind per run).
    for (minute, nodes) in [(7, &bed.nodes[0..5]), (8, &bed.nodes[5..10])] {
        for node in nodes {
            bed.emulator
                .set_container_instance(&node.cluster_arn, &node.container_instance_arn, Some(true), None)
                .await;
        }
        bed.clock.set(START + minute * 60);
        sweep.run().await;
    }
    let notices = bed.published("resolved").await;
    assert_eq!(notices.len(), 2);
    assert_eq!(named(&notices[0]).len(), 5);
    assert_eq!(named(&notices[1]).len(), 5);
}

/// Remediation is not held: an instance that joins a group is drained at once, and the digest
/// that tells it carries what was done, so no later look alerts it again as unreported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_held_incidents_were_drained_then_the_digest_says_so_once() {
    let bed = Bed::new(30, &[("RemediationAction", "drain"), ("MaxRemediationPercent", "100")]).await;
    let monitor = bed.monitor();
    bed.storm(&monitor, 3, 10).await;
    assert_eq!(bed.published("firing").await.len(), 1);
    bed.clock.set(START + 6 * 60);
    bed.sweep().run().await;
    let sent = bed.published("firing").await;
    assert_eq!(sent.len(), 2);
    let digest = finding(&sent[1]);
    let remediations: Vec<&str> = digest["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["remediation"].as_str())
        .collect();
    assert_eq!(remediations.len(), 20, "{digest}");
    assert!(remediations.iter().all(|r| r.contains("DRAINING")), "{remediations:?}");

    // The same events again (a retry, a duplicate), and a later sweep: nothing more to tell.
    bed.clock.set(START + 7 * 60);
    let report = monitor.process(&bed.messages(&bed.nodes)).await;
    assert!(report.failures.is_empty());
    bed.clock.set(START + 20 * 60);
    bed.sweep().run().await;
    assert_eq!(bed.published("firing").await.len(), 2);
}
