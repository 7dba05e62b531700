//! The bed most end-to-end tests stand on: moto, the stack's pipeline from the template, and one
//! cluster with its container instances; with what those tests do to it and read from it.

use aws_sdk_ecs::operation::list_daemons::ListDaemonsOutput;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use ecs_watchdog::Sweep;
use ecs_watchdog::aws::EcsDaemons;
use serde_json::{Value, json};

use crate::clock::TestClock;
use crate::emulator::{Emulator, Published};
use crate::fleet::{Fleet, Node};
use crate::in_process;
use crate::pipeline::Pipeline;
use crate::samples::agent_event;

/// One incident's life, each notification on its own: no grace period, no grouping (grouping
/// has tests/digest.rs).
pub const NO_GRACE: [(&str, &str); 2] = [("GracePeriodSeconds", "0"), ("GroupIntervalMinutes", "0")];

pub struct Bed {
    pub emulator: Emulator,
    pub fleet: Fleet,
    pub pipeline: Pipeline,
    /// The cluster's ARN.
    pub cluster: String,
    pub nodes: Vec<Node>,
}

impl Bed {
    /// The stack deployed with `parameters`, and a cluster `prod` of `instances` container
    /// instances.
    pub async fn new(parameters: &[(&str, &str)], instances: usize) -> Self {
        Self::named("prod", parameters, instances).await
    }

    /// The same, with the cluster named `cluster`.
    pub async fn named(cluster: &str, parameters: &[(&str, &str)], instances: usize) -> Self {
        let emulator = Emulator::start().await;
        let fleet = Fleet::new(&emulator.sdk).await;
        let pipeline = Pipeline::from_template(&emulator.sdk, parameters).await;
        let cluster = fleet.cluster(cluster, &[]).await;
        let nodes = fleet.nodes(&cluster, instances).await;
        Self {
            emulator,
            fleet,
            pipeline,
            cluster,
            nodes,
        }
    }

    /// The agent of `node` connects or disconnects, as ECS would show it.
    pub async fn set_agent(&self, node: &Node, connected: bool) {
        self.emulator
            .set_container_instance(&node.cluster_arn, &node.container_instance_arn, Some(connected), None)
            .await;
    }

    /// The agent of `node` disconnects; returns the SQS record of its event (version 2).
    pub async fn disconnect(&self, node: &Node) -> Value {
        self.set_agent(node, false).await;
        record(&agent_event(node, 2, false))
    }

    /// What SNS published of one kind.
    pub async fn published(&self, kind: &str) -> Vec<Published> {
        let all = self.emulator.published().await;
        all.into_iter().filter(|p| p.attributes["kind"] == kind).collect()
    }

    /// The sweep in this process on a clock the test moves, its Managed Daemons APIs answered
    /// by `daemons`.
    pub fn sweep(&self, clock: &TestClock, daemons: aws_sdk_ecs::Client) -> Sweep {
        let config = in_process::config(&self.pipeline.sweep_env(&self.emulator));
        in_process::sweep(&self.emulator, config, |io| {
            io.clock = Box::new(clock.clone());
            io.daemons = Box::new(EcsDaemons::new(daemons));
        })
    }
}

/// An event as the SQS record the monitor receives, its message id from the event's.
pub fn record(event: &Value) -> Value {
    json!({"messageId": format!("m-{}", event["id"].as_str().unwrap()), "body": event.to_string()})
}

/// The finding an alert carries (its `default` JSON).
pub fn finding(alert: &Published) -> Value {
    serde_json::from_str(alert.message["default"].as_str().expect("a default key")).expect("JSON")
}

/// A region without Managed Daemons, as `ListDaemons` answers there (the emulator has none of
/// their APIs).
pub fn no_daemons() -> aws_sdk_ecs::Client {
    let list = mock!(aws_sdk_ecs::Client::list_daemons).then_output(|| ListDaemonsOutput::builder().build());
    mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list])
}
