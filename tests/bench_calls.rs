//! `make bench`: what the incident ledger costs in AWS calls (issue 21's budgets), counted by
//! the emulator. Counts do not depend on the build profile: the monitor is the debug binary of
//! `make workspace` and the storm runs in this process, so `make bench BENCH_ONLY=calls` needs
//! no release build. `make test` holds the same counts (tests/cost.rs).

use std::fmt::Write;

use serde_json::{Value, json};
use watchdog_tests::cost::{self, Calls, of, total};
use watchdog_tests::runtime::monitor_binary;

fn row(calls: &Calls) -> Value {
    json!({"total": total(calls), "dynamodb": of(calls, "dynamodb"), "calls": calls})
}

pub async fn ledger_calls() -> Value {
    let binary = monitor_binary();
    eprintln!(
        "calls: 300 new problems in one batch, then again ({})",
        binary.display()
    );
    let (first, repeat) = cost::new_problems(&binary, 300).await;
    eprintln!("calls: 300 new problems in one batch after a sweep");
    let after_sweep = cost::new_problems_after_a_sweep(&binary, 300).await;
    eprintln!("calls: a sweep of 60 clusters, twice (the cluster records)");
    let (records, records_again) = cost::sweep_of_clusters(60).await;
    eprintln!("calls: a sweep of 10 clusters with an Auto Scaling capacity provider each, twice");
    let (groups, groups_again) = cost::sweep_of_groups(10).await;
    eprintln!("calls: a batch that changes nothing");
    let quiet = cost::quiet_batch(&binary).await;
    eprintln!("calls: 100 disconnects on instances running 3 services' tasks each (services named)");
    let services = cost::services_named(&binary, 100, 3).await;
    eprintln!("calls: 500 disconnects in 25 invocations of 20, the digest's sweep, an idle sweep");
    let storm = cost::storm_25_by_20().await;
    json!({
        "new_300": row(&first),
        "new_300_after_sweep": row(&after_sweep),
        "sweep_before_storm": row(&storm.sweep_before),
        "sweep_60": row(&records),
        "sweep_60_again": row(&records_again),
        "sweep_groups_10": row(&groups),
        "sweep_groups_10_again": row(&groups_again),
        "repeat_300": row(&repeat),
        "quiet": row(&quiet),
        "services_100": row(&services),
        "storm_25x20": row(&storm.invocations),
        "storm_messages": {"firing": storm.firing, "digests": storm.digests, "other": storm.other},
        "digest_sweep": row(&storm.digest_sweep),
        "idle_sweep": row(&storm.idle_sweep),
        "due_queries": [storm.due_queries.0, storm.due_queries.1],
    })
}

/// Calls by operation, as a table cell.
fn operations(calls: &Value) -> String {
    let ops = calls["calls"].as_object().into_iter().flatten();
    ops.map(|(op, n)| format!("{op} {n}")).collect::<Vec<_>>().join(", ")
}

pub fn ledger_rows(c: &Value) -> String {
    let mut rows = String::new();
    let measures = [
        (
            "new_300",
            "300 new problems in one batch (1 cluster), no sweep yet",
            "≤ 15 in all",
        ),
        (
            "new_300_after_sweep",
            "300 new problems in one batch (1 cluster), after a sweep",
            "≤ 15 in all",
        ),
        ("repeat_300", "… the same 300 again", "no write, no Publish"),
        (
            "quiet",
            "a batch that changes nothing (draining instances, a repeat)",
            "no DynamoDB call",
        ),
        (
            "services_100",
            "100 disconnects in one batch (1 cluster), each instance running 3 services' tasks",
            "+ 1 `ListTasks` per instance alerted, 1 `DescribeTasks` per 100 tasks",
        ),
        (
            "storm_25x20",
            "500 disconnects in 25 invocations of 20, grouping on",
            "≤ 150 in all",
        ),
        (
            "sweep_before_storm",
            "… the sweep before it (500 instances, records the cluster)",
            "",
        ),
        ("digest_sweep", "… the sweep after the interval (sends the digest)", ""),
        ("idle_sweep", "… the sweep after it (nothing due)", ""),
        (
            "sweep_60",
            "a sweep of 60 clusters (no instances): the cluster records",
            "1 `BatchWriteItem` per 25",
        ),
        (
            "sweep_60_again",
            "… the same warm sweep again, its tag cache fresh",
            "no record written",
        ),
        (
            "sweep_groups_10",
            "a sweep of 10 clusters, each with an Auto Scaling provider (3 instances, 1 never registered)",
            "per 10 clusters: 1 `DescribeClusters`, 1 `DescribeCapacityProviders`, 1 `DescribeAutoScalingGroups`, 1 `DescribeInstances`",
        ),
        (
            "sweep_groups_10_again",
            "… the same warm sweep again (the 10 instances alerted already)",
            "the same four look-ups, no Publish",
        ),
    ];
    for (key, title, target) in measures {
        let m = &c[key];
        let _ = writeln!(
            rows,
            "| calls: {title} | {} in all, {} DynamoDB: {} | {target} |",
            m["total"],
            m["dynamodb"],
            operations(m)
        );
    }
    let _ = writeln!(
        rows,
        "| … the storm's SNS messages / `Query` calls of the outbox index per sweep | {} firing, {} digest, {} other / {} and {} | 2 (page, digest) / 1 each |",
        c["storm_messages"]["firing"],
        c["storm_messages"]["digests"],
        c["storm_messages"]["other"],
        c["due_queries"][0],
        c["due_queries"][1]
    );
    rows
}
