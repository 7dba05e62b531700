//! The `make bench` measurements on fleets of their own: the sweep over 50 clusters, and ECS
//! Anywhere hosts checked in Systems Manager.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::time::Instant;

use futures_util::future::join_all;
use serde_json::{Value, json};
use watchdog_tests::emulator::Emulator;
use watchdog_tests::fleet::Fleet;
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::agent_event;

use super::{ms, record, release_dir};

/// The sweep's fleet: many clusters, so the per-cluster cost shows.
const SWEEP_CLUSTERS: usize = 50;
const SWEEP_INSTANCES_PER_CLUSTER: usize = 200;
/// Of which this many per cluster have their agent disconnected, so the sweep has work.
const SWEEP_DISCONNECTED_PER_CLUSTER: usize = 4;

/// 120 ECS Anywhere hosts whose agents disconnected, in one batch: the Systems Manager calls.
pub async fn anywhere_cost(monitor: &Path) -> Value {
    const HOSTS: usize = 120;
    let emulator = Emulator::start().await;
    let pipeline = Pipeline::create(&emulator.sdk, 0).await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let cluster = fleet.cluster("edge", &[]).await;
    let mut nodes = fleet.nodes(&cluster, HOSTS).await;
    for (n, node) in nodes.iter_mut().enumerate() {
        node.ec2_instance_id = format!("mi-0{n:016x}");
        let status = if n % 2 == 0 { "Online" } else { "ConnectionLost" };
        emulator
            .set_anywhere(
                &cluster,
                &node.container_instance_arn,
                &node.ec2_instance_id,
                Some(status),
            )
            .await;
        emulator
            .set_container_instance(&cluster, &node.container_instance_arn, Some(false), None)
            .await;
    }
    let records: Vec<Value> = nodes
        .iter()
        .enumerate()
        .map(|(n, node)| record(n, &agent_event(node, 2, false)))
        .collect();
    let function = Function::start_binary(monitor, &pipeline.function_env(&emulator)).await;
    emulator.reset_calls().await;
    function.invoke(&sqs_event(&records)).await.expect("handled");
    let calls = emulator.calls().await;
    json!({"hosts": HOSTS, "ssm_calls": calls.get("ssm:DescribeInstanceInformation").copied().unwrap_or(0)})
}

/// The release `sweep` over a fresh fleet: two runs (the first records what it sees, the second
/// finds it again), each with its calls by operation, wall time and the process's peak RSS.
pub async fn sweep_cost() -> Value {
    let binary = release_dir().join("sweep");
    assert!(
        binary.exists(),
        "build it first: cargo build --release -p sweep (make bench does)"
    );
    let emulator = Emulator::start().await;
    let pipeline = Pipeline::create(&emulator.sdk, 0).await;
    // The default grace period: the first run records first sights, the second finds them again.
    let mut env = pipeline.sweep_env(&emulator);
    env.push(("GRACE_PERIOD_SECONDS".into(), "180".into()));
    eprintln!("sweep: seeding {SWEEP_CLUSTERS} clusters of {SWEEP_INSTANCES_PER_CLUSTER} instances");
    let fleet = Fleet::new(&emulator.sdk).await;
    for c in 0..SWEEP_CLUSTERS {
        let cluster = fleet.cluster(&format!("sweep-{c}"), &[]).await;
        let nodes = fleet.nodes(&cluster, SWEEP_INSTANCES_PER_CLUSTER).await;
        join_all(
            nodes[..SWEEP_DISCONNECTED_PER_CLUSTER]
                .iter()
                .map(|n| emulator.set_container_instance(&n.cluster_arn, &n.container_instance_arn, Some(false), None)),
        )
        .await;
    }
    let function = Function::start_binary(&binary, &env).await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        emulator.reset_calls().await;
        let started = Instant::now();
        let summary = function.invoke(&json!({})).await.expect("the sweep runs");
        let wall = started.elapsed();
        let calls: BTreeMap<String, u64> = emulator.calls().await.into_iter().collect();
        let ecs_instances: u64 = calls
            .iter()
            .filter(|(op, _)| op.contains("ListContainerInstances") || op.contains("DescribeContainerInstances"))
            .map(|(_, n)| n)
            .sum();
        runs.push(json!({
            "wall_ms": ms(wall),
            "calls": calls,
            "instance_calls": ecs_instances,
            "clusters_seen": summary["clusters"],
            "undecided": summary["undecided"],
            "impaired": summary["impaired"],
        }));
    }
    json!({
        "clusters": SWEEP_CLUSTERS,
        "instances": SWEEP_CLUSTERS * SWEEP_INSTANCES_PER_CLUSTER,
        "disconnected": SWEEP_CLUSTERS * SWEEP_DISCONNECTED_PER_CLUSTER,
        "budget_instance_calls": SWEEP_CLUSTERS * 2 + SWEEP_CLUSTERS * SWEEP_INSTANCES_PER_CLUSTER / 100,
        "runs": runs,
        "peak_rss_kib": function.peak_rss_kib(),
    })
}

/// Calls by operation, as a table cell: `ecs:ListClusters 1, ...`.
fn calls_text(calls: &Value) -> String {
    calls
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(op, n)| format!("{op} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

pub fn sweep_rows(s: &Value) -> String {
    let mut rows = String::new();
    for (i, title) in ["first run (records first sights)", "second run"].iter().enumerate() {
        let r = &s["runs"][i];
        let calls = calls_text(&r["calls"]);
        let _ = writeln!(rows, "| sweep, {title}: calls | {calls} | |");
        let _ = writeln!(
            rows,
            "| … ListContainerInstances + DescribeContainerInstances (moto answers 200 a page, AWS 100) | {} | ≤ 2 per cluster + 1 per 100 instances = {} |",
            r["instance_calls"], s["budget_instance_calls"]
        );
        let _ = writeln!(
            rows,
            "| … wall / clusters seen / undecided | {} ms / {} / {} | |",
            r["wall_ms"], r["clusters_seen"], r["undecided"]
        );
    }
    let _ = writeln!(
        rows,
        "| sweep: peak RSS of the process ({} clusters, {} instances, {} disconnected) | {:.1} MiB | |",
        s["clusters"],
        s["instances"],
        s["disconnected"],
        s["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0,
    );
    rows
}

/// Three accounts (the hub's own and two members), 100 disconnected agents each, in batches
/// that hold all three: the calls of each invocation of one warm process. A member's role is
/// assumed on its first batch only.
pub async fn accounts_cost(monitor: &Path) -> Value {
    const PER_ACCOUNT: usize = 100;
    const BATCHES: usize = 3;
    let emulator = Emulator::start().await;
    let pipeline = Pipeline::from_template(
        &emulator.sdk,
        &[("OrganizationId", "o-abc123def4"), ("GracePeriodSeconds", "0")],
    )
    .await;
    let mut events = Vec::new();
    for account in ["123456789012", "111111111111", "222222222222"] {
        let sdk = if account == "123456789012" {
            emulator.sdk.clone()
        } else {
            emulator.member(account).await
        };
        let fleet = Fleet::new(&sdk).await;
        let cluster = fleet.cluster("prod", &[]).await;
        for node in fleet.nodes(&cluster, PER_ACCOUNT).await {
            emulator
                .set_container_instance(&cluster, &node.container_instance_arn, Some(false), None)
                .await;
            let mut event = agent_event(&node, 2, false);
            event["account"] = json!(account);
            events.push(event);
        }
    }
    let function = Function::start_binary(monitor, &pipeline.function_env(&emulator)).await;
    let mut invocations = Vec::new();
    for batch in 0..BATCHES {
        let records: Vec<Value> = events
            .iter()
            .enumerate()
            .map(|(n, e)| record(batch * events.len() + n, e))
            .collect();
        emulator.reset_calls().await;
        let answer = function.invoke(&sqs_event(&records)).await.expect("handled");
        let calls: BTreeMap<String, u64> = emulator.calls().await.into_iter().collect();
        invocations.push(json!({
            "calls": calls,
            "total": calls.values().sum::<u64>(),
            "undecided": answer["batchItemFailures"].as_array().map_or(0, Vec::len),
        }));
    }
    json!({"accounts": 3, "events_per_batch": events.len(), "invocations": invocations})
}

pub fn accounts_rows(a: &Value) -> String {
    let mut rows = String::new();
    for (i, invocation) in a["invocations"].as_array().into_iter().flatten().enumerate() {
        let calls = calls_text(&invocation["calls"]);
        let _ = writeln!(
            rows,
            "| {} accounts, a batch of {} (100 each), invocation {}: calls ({} in all, {} undecided) | {calls} | sts:AssumeRole 2 on the first, 0 after |",
            a["accounts"],
            a["events_per_batch"],
            i + 1,
            invocation["total"],
            invocation["undecided"],
        );
    }
    rows
}
