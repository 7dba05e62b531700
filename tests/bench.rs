//! `make bench`: start-up, first and warm invocations, AWS calls and memory per event, and
//! size, for the release `monitor` binary against the local emulator. Writes
//! `target/bench/results.json` and `BENCHMARKS.md`. Numbers are written down, never asserted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use watchdog_tests::emulator::Emulator;
use watchdog_tests::fleet::{Fleet, Node};
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::repo_root;
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::{agent_event, daemon_stopped_event};

#[path = "bench_calls.rs"]
mod calls;
#[path = "bench_digest.rs"]
mod digest;
#[path = "bench_fleets.rs"]
mod fleets;
use calls::{ledger_calls, ledger_rows};
use digest::{disconnect, storm_message_rows, storm_messages};
use fleets::{accounts_cost, accounts_rows, anywhere_cost, sweep_cost, sweep_rows};

const STARTUP_RUNS: usize = 50;
/// The most a Lambda invocation's payload may hold, which caps an SQS batch before its size does.
const LAMBDA_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;
const CLUSTERS: usize = 10;
const INSTANCES_PER_CLUSTER: usize = 500;

fn release_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("release")
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// An SQS record around an event, as Lambda hands it over.
fn record(n: usize, event: &Value) -> Value {
    json!({
        "messageId": format!("bench-{n:06}"), "receiptHandle": format!("rh-{n}"), "body": event.to_string(),
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ChecksQueue", "awsRegion": "us-east-1",
    })
}

/// Runs batches through one fresh process: wall time per batch, calls by operation, peak RSS.
async fn storm(emulator: &Emulator, binary: &Path, env: &[(String, String)], records: &[Value], batch: usize) -> Value {
    let function = Function::start_binary(binary, env).await;
    let mut walls = Vec::new();
    let mut calls: BTreeMap<String, u64> = BTreeMap::new();
    let mut undecided = 0;
    for chunk in records.chunks(batch) {
        emulator.reset_calls().await;
        let started = Instant::now();
        let response = function.invoke(&sqs_event(chunk)).await.expect("the batch is handled");
        walls.push(started.elapsed());
        // A measurement, not a test: messages left undecided are counted, and the log says why.
        undecided += response["batchItemFailures"].as_array().map_or(0, Vec::len);
        for (operation, n) in emulator.calls().await {
            *calls.entry(operation).or_default() += n;
        }
    }
    let per_100: BTreeMap<String, f64> = calls
        .iter()
        .map(|(op, n)| (op.clone(), *n as f64 * 100.0 / records.len() as f64))
        .collect();
    let invocations = walls.len();
    let payload = records.chunks(batch).map(|c| sqs_event(c).to_string().len()).max();
    json!({
        "batch_size": batch,
        "largest_payload_bytes": payload,
        "undecided_messages": undecided,
        "log_errors": function.output().iter().filter(|l| l.contains("\"ERROR\"")).take(3).cloned().collect::<Vec<_>>(),
        "invocations": invocations,
        "calls_total": calls,
        "calls_per_100_events": per_100,
        "calls_per_invocation": calls.values().sum::<u64>() as f64 / invocations as f64,
        "wall_ms_median": ms(median(walls.clone())),
        "wall_ms_max": ms(walls.iter().copied().max().unwrap_or_default()),
        "peak_rss_kib": function.peak_rss_kib(),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // One measure alone, while working on it: `BENCH_ONLY=storm-messages`, `BENCH_ONLY=calls`
    // (neither needs the release build) or `BENCH_ONLY=startup`.
    match std::env::var("BENCH_ONLY").as_deref() {
        Ok("storm-messages") => {
            println!("{}", serde_json::to_string_pretty(&storm_messages().await).unwrap());
            return;
        }
        Ok("calls") => {
            let calls = ledger_calls().await;
            println!(
                "{}\n{}",
                serde_json::to_string_pretty(&calls).unwrap(),
                ledger_rows(&calls)
            );
            return;
        }
        _ => {}
    }
    let (monitor, bare) = (release_dir().join("monitor"), release_dir().join("bare"));
    assert!(
        monitor.exists() && bare.exists(),
        "build them first: cargo build --release -p monitor (make bench does)"
    );
    let emulator = Emulator::start().await;
    let pipeline = Pipeline::create(&emulator.sdk, 0).await;
    let env = pipeline.function_env(&emulator);

    eprintln!("start-up: {STARTUP_RUNS} runs of each binary, interleaved");
    let (mut monitor_startups, mut bare_startups) = (Vec::new(), Vec::new());
    for _ in 0..STARTUP_RUNS {
        monitor_startups.push(Function::start_binary(&monitor, &env).await.startup().await);
        bare_startups.push(Function::start_binary(&bare, &env).await.startup().await);
    }
    let (monitor_startup, bare_startup) = (median(monitor_startups), median(bare_startups));
    if std::env::var("BENCH_ONLY").as_deref() == Ok("startup") {
        println!("monitor {} ms, bare {} ms", ms(monitor_startup), ms(bare_startup));
        return;
    }

    eprintln!("seeding {CLUSTERS} clusters of {INSTANCES_PER_CLUSTER} instances");
    let fleet = Fleet::new(&emulator.sdk).await;
    let mut nodes: Vec<Node> = Vec::new();
    for c in 0..CLUSTERS {
        let cluster = fleet.cluster(&format!("bench-{c}"), &[]).await;
        nodes.extend(fleet.nodes(&cluster, INSTANCES_PER_CLUSTER).await);
    }
    disconnect(&emulator, &nodes).await;
    // Two events per instance: its agent disconnected, and its log-router daemon stopped.
    let mut records = Vec::new();
    for node in &nodes {
        let task_definition = "arn:aws:ecs:us-east-1:123456789012:task-definition/log-router:1";
        let task = format!("{}/log-router", node.cluster_arn.replace(":cluster/", ":task/"));
        records.push(record(records.len(), &agent_event(node, 2, false)));
        records.push(record(
            records.len(),
            &daemon_stopped_event(node, "log-router", task_definition, &task),
        ));
    }

    eprintln!("first and warm invocations");
    let function = Function::start_binary(&monitor, &env).await;
    function.startup().await;
    let started = Instant::now();
    function.invoke(&sqs_event(&records[..10])).await.expect("first batch");
    let first = started.elapsed();
    let started = Instant::now();
    function.invoke(&sqs_event(&records[10..20])).await.expect("warm batch");
    let warm = started.elapsed();
    drop(function);

    // The records are agent, daemon, agent, daemon, ...: every other one is an agent event.
    let agents: Vec<Value> = records.iter().step_by(2).cloned().collect();
    let mut fits = 0;
    let mut payload = sqs_event(&[]).to_string().len();
    for record in &records {
        payload += record.to_string().len() + 1;
        if payload > LAMBDA_PAYLOAD_LIMIT {
            break;
        }
        fits += 1;
    }
    eprintln!(
        "storm: {} agent events in batches of 100; {} events in batches of 100, in the largest batch a Lambda payload holds ({fits}), and in one batch",
        agents.len(),
        records.len()
    );
    let agent_batches_of_100 = storm(&emulator, &monitor, &env, &agents, 100).await;
    let batches_of_100 = storm(&emulator, &monitor, &env, &records, 100).await;
    let largest_lambda_batch = storm(&emulator, &monitor, &env, &records[..fits], fits).await;
    let one_batch = storm(&emulator, &monitor, &env, &records, records.len()).await;

    drop(emulator);
    let sweep = sweep_cost().await;
    let anywhere = anywhere_cost(&monitor).await;
    let accounts = accounts_cost(&monitor).await;
    let digests = storm_messages().await;
    let ledger = ledger_calls().await;

    let bootstrap = repo_root().join(".aws-sam/build/MonitorFunction/bootstrap");
    let size = bootstrap.exists().then(|| {
        let zip = std::env::temp_dir().join("ecs-watchdog-bootstrap.zip");
        let _ = std::fs::remove_file(&zip);
        let zipped = std::process::Command::new("zip")
            .arg("-q")
            .arg("-9")
            .arg("-j")
            .arg(&zip)
            .arg(&bootstrap)
            .status()
            .is_ok_and(|s| s.success());
        json!({
            "bootstrap_bytes": std::fs::metadata(&bootstrap).map(|m| m.len()).ok(),
            "zip_bytes": zipped.then(|| std::fs::metadata(&zip).map(|m| m.len()).ok()).flatten(),
        })
    });

    let results = json!({
        "machine": machine(),
        "startup": {
            "runs": STARTUP_RUNS,
            "monitor_median_ms": ms(monitor_startup),
            "bare_median_ms": ms(bare_startup),
            "ratio": (monitor_startup.as_secs_f64() / bare_startup.as_secs_f64() * 100.0).round() / 100.0,
        },
        "first_invocation": {"first_batch_of_10_ms": ms(first), "warm_batch_of_10_ms": ms(warm)},
        "storm": {
            "events": records.len(), "clusters": CLUSTERS, "instances": nodes.len(),
            "agent_batches_of_100": agent_batches_of_100, "batches_of_100": batches_of_100,
            "largest_lambda_batch": largest_lambda_batch, "one_batch": one_batch,
        },
        "sweep": sweep,
        "anywhere": anywhere,
        "accounts": accounts,
        "storm_messages": digests,
        "ledger_calls": ledger,
        "size_arm64": size,
    });
    let out = repo_root().join("target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .expect("results.json");
    // The generated table replaces everything above the hand-written "## Tuning" section.
    let path = repo_root().join("BENCHMARKS.md");
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    let tuning = existing.find("\n## Tuning").map_or("", |at| &existing[at..]);
    std::fs::write(&path, report(&results) + tuning).expect("BENCHMARKS.md");
    println!("{}", serde_json::to_string_pretty(&results).unwrap());
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map(|m| m.trim().to_owned());
    json!({"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "model": model, "memory": memory, "arch": std::env::consts::ARCH})
}

fn report(r: &Value) -> String {
    let s = &r["storm"];
    let storm = |title: &str, b: &Value, calls_target: &str, rss_target: &str| {
        let calls = b["calls_per_100_events"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(op, n)| format!("{op} {:.2}", n.as_f64().unwrap_or(0.0)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        format!(
            "| {title}: calls per 100 events | {calls} | |\n\
             | … calls per invocation | {cpi:.1} | {calls_target} |\n\
             | … wall per batch, median / max | {w} / {wmax} ms | |\n\
             | … largest payload / peak RSS of the process | {payload:.1} MB / {rss:.1} MiB | {rss_target} |\n\
             | … messages left undecided (batch item failures) | {u} | 0 |\n",
            cpi = b["calls_per_invocation"].as_f64().unwrap_or(0.0),
            w = b["wall_ms_median"],
            wmax = b["wall_ms_max"],
            payload = b["largest_payload_bytes"].as_f64().unwrap_or(0.0) / 1e6,
            rss = b["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0,
            u = b["undecided_messages"],
        )
    };
    let (events, clusters, instances) = (&s["events"], &s["clusters"], &s["instances"]);
    let largest = &s["largest_lambda_batch"]["batch_size"];
    format!(
        "# Benchmarks\n\n\
         Written by `make bench` (`tests/bench.rs`) from `target/bench/results.json`; numbers are measured, never asserted.\n\n\
         Machine: {cpus} × {model} ({arch}), {memory}. The emulator (moto) runs on the same two cores, so wall times\n\
         include its work; call counts do not depend on it. The storm: {clusters} clusters of {per} instances, one\n\
         agent-disconnected and one daemon-task-stopped event for each instance ({events} events).\n\n\
         | measure | result | target |\n|---|---|---|\n\
         | start-up to first `/next`, release `monitor`, median of {runs} | {m} ms | < 20 ms |\n\
         | same for a bare `lambda_runtime` function, same profile | {b} ms | |\n\
         | ratio | {ratio} | ≤ 1.5 |\n\
         | first batch of 10 after start (connections set up) | {first} ms | |\n\
         | warm batch of 10 | {warm} ms | |\n\
         {agents}{mixed}{largest_rows}{one}\
         {sweep}\
         | ECS Anywhere: {hosts} hosts disconnected in one batch, `DescribeInstanceInformation` calls | {ssm} | ≤ 3 |\n\
         {accounts}\
         {digests}\
         {ledger}\
         | arm64 `bootstrap`, stripped / zip | {boot} / {zip} bytes | zip < 6 MB |\n\n\
         Commands: `make bench` (builds `cargo build --release -p monitor -p sweep`, the `bare` baseline in the same package and profile,\n\
         then runs the `bench` binary of `make workspace`); sizes come from `make build`'s `.aws-sam/build/MonitorFunction/bootstrap`.\n",
        cpus = r["machine"]["cpus"],
        model = r["machine"]["model"].as_str().unwrap_or("unknown"),
        arch = r["machine"]["arch"].as_str().unwrap_or(""),
        memory = r["machine"]["memory"].as_str().unwrap_or(""),
        per = instances.as_u64().unwrap_or(0) / clusters.as_u64().unwrap_or(1).max(1),
        runs = r["startup"]["runs"],
        m = r["startup"]["monitor_median_ms"],
        b = r["startup"]["bare_median_ms"],
        ratio = r["startup"]["ratio"],
        first = r["first_invocation"]["first_batch_of_10_ms"],
        warm = r["first_invocation"]["warm_batch_of_10_ms"],
        agents = storm(
            "agent events only (100 instances a batch), batches of 100",
            &s["agent_batches_of_100"],
            "≤ 3 + 2 per 100 instances = 5, plus the ledger: 1 BatchGetItem per 100, 1 PutItem per incident opened, 1 UpdateItem per cluster",
            ""
        ),
        mixed = storm(
            "agent and daemon events (50 instances a batch), batches of 100",
            &s["batches_of_100"],
            "agent ≤ 3 + 2, daemon look-ups per daemon",
            ""
        ),
        largest_rows = storm(
            &format!("the largest batch a 6 MB Lambda payload holds ({largest} events)"),
            &s["largest_lambda_batch"],
            "",
            ""
        ),
        one = storm(
            &format!("one batch of all {events} (a {clusters}-cluster storm)"),
            &s["one_batch"],
            "",
            "< 40 MB"
        ),
        sweep = sweep_rows(&r["sweep"]),
        hosts = r["anywhere"]["hosts"],
        ssm = r["anywhere"]["ssm_calls"],
        accounts = accounts_rows(&r["accounts"]),
        digests = storm_message_rows(&r["storm_messages"]),
        ledger = ledger_rows(&r["ledger_calls"]),
        boot = r["size_arm64"]["bootstrap_bytes"],
        zip = r["size_arm64"]["zip_bytes"],
    )
}
