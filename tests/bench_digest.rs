//! `make bench`: how many SNS messages a storm sends, by its shape, with grouping on (the
//! default `GROUP_INTERVAL_MINUTES`) and off. The monitor and the sweep run in this process on a
//! moved clock (the interval must pass), against the emulator; each shape has clusters of its own.

use std::collections::BTreeMap;
use std::fmt::Write;

use ecs_watchdog::{Message, Monitor};
use futures_util::future::join_all;
use serde_json::{Value, json};
use watchdog_tests::clock::TestClock;
use watchdog_tests::cost::{Unpublished, no_daemons};
use watchdog_tests::emulator::Emulator;
use watchdog_tests::fleet::{Fleet, Node};
use watchdog_tests::in_process;
use watchdog_tests::pipeline::Pipeline;
use watchdog_tests::samples::{agent_event, daemon_stopped_event};

const START: u64 = 1_800_000_000;

/// A storm: its events, delivered `invocations` at a time, one invocation every `every` seconds.
struct Shape {
    name: &'static str,
    prefix: &'static str,
    clusters: usize,
    instances: usize,
    daemons: bool,
    invocations: usize,
    every: u64,
}

const SHAPES: [Shape; 3] = [
    Shape {
        name: "one batch of 500 (1 cluster)",
        prefix: "one",
        clusters: 1,
        instances: 500,
        daemons: false,
        invocations: 1,
        every: 0,
    },
    Shape {
        name: "25 invocations of 20 within 2 minutes (1 cluster)",
        prefix: "spread",
        clusters: 1,
        instances: 500,
        daemons: false,
        invocations: 25,
        every: 5,
    },
    Shape {
        name: "100 invocations of 100 (10 clusters, agent and daemon events)",
        prefix: "wide",
        clusters: 10,
        instances: 500,
        daemons: true,
        invocations: 100,
        every: 1,
    },
];

pub async fn storm_messages() -> Value {
    let (on, off) = (measure(true).await, measure(false).await);
    let rows: Vec<Value> = SHAPES
        .iter()
        .map(|shape| {
            let (on, off) = (on[shape.name], off[shape.name]);
            json!({
                "shape": shape.name, "events": shape.clusters * shape.instances * if shape.daemons { 2 } else { 1 },
                "invocations": shape.invocations,
                "grouped": {"firing": on.0, "other": on.1}, "ungrouped": {"firing": off.0, "other": off.1},
            })
        })
        .collect();
    json!(rows)
}

/// Every shape on a fresh emulator (a ledger, fleets and a topic of its own), one a day: the
/// messages that page (`status` firing or digest) and the others (resolved notices) each storm
/// sent, with grouping on or off.
async fn measure(grouped: bool) -> BTreeMap<&'static str, (usize, usize)> {
    let emulator = Emulator::start().await;
    let interval = if grouped { "5" } else { "0" };
    let parameters = [("GracePeriodSeconds", "0"), ("GroupIntervalMinutes", interval)];
    let pipeline = Pipeline::from_template(&emulator.sdk, &parameters).await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let clock = TestClock::at(START);
    let monitor = in_process::monitor(&emulator, in_process::config(&pipeline.function_env(&emulator)), |io| {
        io.clock = Box::new(clock.clone());
        io.metrics = Box::new(Unpublished);
    });
    let sweep = in_process::sweep(&emulator, in_process::config(&pipeline.sweep_env(&emulator)), |io| {
        io.clock = Box::new(clock.clone());
        io.daemons = no_daemons();
        io.metrics = Box::new(Unpublished);
    });
    let mut counts = BTreeMap::new();
    for (day, shape) in SHAPES.iter().enumerate() {
        let mode = if grouped { "on" } else { "off" };
        eprintln!("digest: {} with grouping {mode}", shape.name);
        let (mut nodes, mut messages) = (Vec::new(), Vec::new());
        for c in 0..shape.clusters {
            let cluster = fleet.cluster(&format!("{}-{c}", shape.prefix), &[]).await;
            let seeded = fleet.nodes(&cluster, shape.instances).await;
            messages.extend(shape_messages(&seeded, shape.daemons));
            nodes.extend(seeded);
        }
        // Interleaved across clusters, as a storm over a region arrives.
        messages.sort_by(|a, b| a.id.rsplit('/').next().cmp(&b.id.rsplit('/').next()));
        disconnect(&emulator, &nodes).await;
        let before = emulator.published().await.len();
        let at = START + day as u64 * 24 * 3600;
        run(&monitor, &clock, at, shape, &messages).await;
        // A sweep once the interval is over sends what waits.
        clock.set(at + 3600);
        sweep.run().await;
        let sent = emulator.published().await;
        let ours: Vec<_> = sent[before..]
            .iter()
            .filter(|p| p.attributes["cluster"].starts_with(shape.prefix))
            .collect();
        let firing = ours
            .iter()
            .filter(|p| matches!(p.attributes["status"].as_str(), "firing" | "digest"))
            .count();
        counts.insert(shape.name, (firing, ours.len() - firing));
    }
    counts
}

/// Disconnects the agents of `nodes`, 50 at a time.
pub async fn disconnect(emulator: &Emulator, nodes: &[Node]) {
    for chunk in nodes.chunks(50) {
        join_all(
            chunk
                .iter()
                .map(|n| emulator.set_container_instance(&n.cluster_arn, &n.container_instance_arn, Some(false), None)),
        )
        .await;
    }
}

async fn run(monitor: &Monitor, clock: &TestClock, at: u64, shape: &Shape, messages: &[Message]) {
    let size = messages.len().div_ceil(shape.invocations);
    for (n, batch) in messages.chunks(size).enumerate() {
        clock.set(at + shape.every * n as u64);
        let report = monitor.process(batch).await;
        if !report.failures.is_empty() {
            eprintln!(
                "digest: {} undecided in a batch of {}",
                report.failures.len(),
                batch.len()
            );
        }
    }
}

fn shape_messages(nodes: &[Node], daemons: bool) -> Vec<Message> {
    let mut messages = Vec::new();
    for node in nodes {
        messages.push(Message::new(
            format!("agent/{}", node.container_instance_arn),
            agent_event(node, 2, false).to_string(),
        ));
        if daemons {
            let task_definition = "arn:aws:ecs:us-east-1:123456789012:task-definition/log-router:1";
            let task = format!("{}/log-router", node.cluster_arn.replace(":cluster/", ":task/"));
            messages.push(Message::new(
                format!("daemon/{}", node.container_instance_arn),
                daemon_stopped_event(node, "log-router", task_definition, &task).to_string(),
            ));
        }
    }
    messages
}

pub fn storm_message_rows(rows: &Value) -> String {
    let mut out = String::new();
    for row in rows.as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "| SNS alerts of a storm: {} ({} events), grouping on / off | {} / {} (plus resolved and other notices: {} / {}) | on: ≤ 2 per cluster and kind |",
            row["shape"],
            row["events"],
            row["grouped"]["firing"],
            row["ungrouped"]["firing"],
            row["grouped"]["other"],
            row["ungrouped"]["other"],
        );
    }
    out
}
