//! What the incident ledger costs in AWS calls, counted by the emulator (DESIGN §7: "a batch
//! that changes nothing writes nothing"; issue 21's budgets). Counts, never times: they do not
//! depend on the build profile or the machine, so `make test` holds them (tests/cost.rs) and
//! `make bench` writes them down (`BENCH_ONLY=calls`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ecs::operation::list_daemons::ListDaemonsOutput;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use ecs_watchdog::aws::EcsDaemons;
use ecs_watchdog::metrics::MetricDatum;
use ecs_watchdog::pipeline::Adapters;
use ecs_watchdog::ports::{AwsError, MetricsSink};
use ecs_watchdog::{Message, Monitor, Sweep};
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::clock::TestClock;
use crate::emulator::Emulator;
use crate::fleet::{Fleet, Node};
use crate::in_process;
use crate::pipeline::{Pipeline, sqs_event};
use crate::runtime::{Function, sweep_binary};
use crate::samples::agent_event;

/// Calls by `service:Operation`.
pub type Calls = BTreeMap<String, u64>;

pub fn total(calls: &Calls) -> u64 {
    calls.values().sum()
}

/// The calls to one service (`dynamodb`).
pub fn of(calls: &Calls, service: &str) -> u64 {
    calls
        .iter()
        .filter(|(operation, _)| operation.starts_with(&format!("{service}:")))
        .map(|(_, n)| n)
        .sum()
}

fn add(into: &mut Calls, calls: Calls) {
    for (operation, n) in calls {
        *into.entry(operation).or_default() += n;
    }
}

/// The calls since the last reset, and resets.
async fn take(emulator: &Emulator) -> Calls {
    let calls = emulator.calls().await.into_iter().collect();
    emulator.reset_calls().await;
    calls
}

/// A fleet with every agent disconnected, behind the template's pipeline (grace period 0, the
/// rest as deployed: grouping on).
pub struct Storm {
    pub emulator: Emulator,
    pub pipeline: Pipeline,
    pub nodes: Vec<Node>,
}

impl Storm {
    pub async fn new(instances: usize) -> Self {
        let storm = Self::connected(instances).await;
        storm.disconnect_all().await;
        storm
    }

    /// The fleet with every agent still connected.
    pub async fn connected(instances: usize) -> Self {
        let emulator = Emulator::start().await;
        let pipeline = Pipeline::from_template(&emulator.sdk, &[("GracePeriodSeconds", "0")]).await;
        let fleet = Fleet::new(&emulator.sdk).await;
        let cluster = fleet.cluster("storm", &[]).await;
        let nodes = fleet.nodes(&cluster, instances).await;
        Self {
            emulator,
            pipeline,
            nodes,
        }
    }

    pub async fn disconnect_all(&self) {
        for chunk in self.nodes.chunks(50) {
            join_all(chunk.iter().map(|n| {
                (self.emulator).set_container_instance(&n.cluster_arn, &n.container_instance_arn, Some(false), None)
            }))
            .await;
        }
    }

    /// One run of the real `sweep` binary: it records what it sees of the cluster.
    pub async fn sweep(&self) {
        let sweep = Function::start_binary(&sweep_binary(), &self.pipeline.sweep_env(&self.emulator)).await;
        sweep.invoke(&json!({})).await.expect("the sweep runs");
    }

    /// One agent event per instance, as the SQS records Lambda hands over.
    pub fn records(&self) -> Vec<Value> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(n, node)| {
                json!({
                    "messageId": format!("cost-{n:05}"), "body": agent_event(node, 2, false).to_string(),
                    "attributes": {"ApproximateReceiveCount": "1"},
                })
            })
            .collect()
    }
}

/// The real `monitor` binary (`binary`) given one batch of `instances` new problems in one
/// cluster, then the same batch again: the calls of each invocation.
pub async fn new_problems(binary: &std::path::Path, instances: usize) -> (Calls, Calls) {
    let storm = Storm::new(instances).await;
    let function = Function::start_binary(binary, &storm.pipeline.function_env(&storm.emulator)).await;
    let event = sqs_event(&storm.records());
    let first = counted(&storm.emulator, &function, &event).await;
    (first, counted(&storm.emulator, &function, &event).await)
}

/// The same, the sweep having run once before the agents disconnect (it recorded the cluster's
/// tags and size in the ledger): the calls of the batch.
pub async fn new_problems_after_a_sweep(binary: &std::path::Path, instances: usize) -> Calls {
    let storm = Storm::connected(instances).await;
    storm.sweep().await;
    storm.disconnect_all().await;
    let function = Function::start_binary(binary, &storm.pipeline.function_env(&storm.emulator)).await;
    counted(&storm.emulator, &function, &sqs_event(&storm.records())).await
}

/// The real `monitor` binary given one batch of `instances` disconnects in one cluster, each
/// instance running one task of each of `services` services (issue 25, services named): the
/// calls of the batch. What it adds to the same batch on idle instances is the services'
/// look-up: one `ListTasks` per instance alerted, one `DescribeTasks` per 100 of their tasks.
pub async fn services_named(binary: &std::path::Path, instances: usize, services: usize) -> Calls {
    let storm = Storm::connected(instances).await;
    let fleet = Fleet::new(&storm.emulator.sdk).await;
    for s in 0..services {
        let definition = fleet.task_definition(&format!("svc-{s}")).await;
        let group = format!("service:svc-{s}");
        for chunk in storm.nodes.chunks(25) {
            join_all(chunk.iter().map(|node| fleet.start_task(node, &definition, &group))).await;
        }
    }
    storm.disconnect_all().await;
    let function = Function::start_binary(binary, &storm.pipeline.function_env(&storm.emulator)).await;
    counted(&storm.emulator, &function, &sqs_event(&storm.records())).await
}

/// The real `monitor` binary given a batch that confirms nothing and finds nothing over: agents
/// disconnected on instances an operator is draining, and a repeat of one. `make test` holds it
/// in tests/incidents.rs (`when_a_batch_confirms_nothing_…`).
pub async fn quiet_batch(binary: &std::path::Path) -> Calls {
    let storm = Storm::new(3).await;
    let fleet = Fleet::new(&storm.emulator.sdk).await;
    for node in &storm.nodes {
        fleet.drain(node).await;
    }
    let mut records = storm.records();
    records.push(records[0].clone());
    let function = Function::start_binary(binary, &storm.pipeline.function_env(&storm.emulator)).await;
    counted(&storm.emulator, &function, &sqs_event(&records)).await
}

/// The calls of one invocation, which must decide every message.
async fn counted(emulator: &Emulator, function: &Function, event: &Value) -> Calls {
    emulator.reset_calls().await;
    let answer = function.invoke(event).await.expect("the batch is handled");
    assert_eq!(answer, json!({"batchItemFailures": []}));
    take(emulator).await
}

/// What the storm of issue 21 cost: 500 disconnects in one cluster, 25 invocations of 20, one
/// every 5 s, grouping on; then the sweep once the group's interval is over (it sends the
/// digest), and the sweep after it (nothing due).
#[derive(Debug)]
pub struct StormCost {
    /// The sweep before the storm (all agents connected): it writes the cluster's record.
    pub sweep_before: Calls,
    pub invocations: Calls,
    pub digest_sweep: Calls,
    pub idle_sweep: Calls,
    /// `Query` calls of the outbox index, by the two sweeps.
    pub due_queries: (u64, u64),
    /// SNS messages by their `status` attribute: pages (`firing`), digests, and the rest.
    pub firing: usize,
    pub digests: usize,
    pub other: usize,
}

pub async fn storm_25_by_20() -> StormCost {
    const START: u64 = 1_800_000_000;
    let storm = Storm::connected(500).await;
    let clock = TestClock::at(START);
    let (monitor, sweep) = in_process_pair(&storm, &clock);
    // The sweep of five minutes before, as deployed: it records the cluster's tags and size.
    clock.set(START - 60);
    storm.emulator.reset_calls().await;
    sweep.run().await;
    let sweep_before = take(&storm.emulator).await;
    storm.disconnect_all().await;
    let messages: Vec<Message> = storm
        .records()
        .iter()
        .map(|r| {
            Message::new(
                r["messageId"].as_str().unwrap_or_default(),
                r["body"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    storm.emulator.reset_calls().await;
    let mut invocations = Calls::new();
    for (n, batch) in messages.chunks(20).enumerate() {
        clock.set(START + 5 * n as u64);
        let report = monitor.process(batch).await;
        assert!(report.failures.is_empty(), "{} undecided", report.failures.len());
        add(&mut invocations, take(&storm.emulator).await);
    }
    let mut sweeps = Vec::new();
    for at in [START + 3600, START + 3900] {
        clock.set(at);
        sweep.run().await;
        let due = due_queries(&storm.emulator).await;
        sweeps.push((take(&storm.emulator).await, due));
    }
    let published = storm.emulator.published().await;
    let status = |s: &str| published.iter().filter(|p| p.attributes["status"] == s).count();
    let (firing, digests) = (status("firing"), status("digest"));
    let (idle, idle_due) = sweeps.pop().unwrap_or_default();
    let (digest, digest_due) = sweeps.pop().unwrap_or_default();
    StormCost {
        sweep_before,
        invocations,
        digest_sweep: digest,
        idle_sweep: idle,
        due_queries: (digest_due, idle_due),
        firing,
        digests,
        other: published.len() - firing - digests,
    }
}

/// The real `sweep` binary over `clusters` clusters without instances, run twice by one warm
/// process: what the cluster records cost it (one `BatchWriteItem` per 25 clusters when it read
/// the tags; none while its tag cache is fresh, the records written then being fresh as well).
pub async fn sweep_of_clusters(clusters: usize) -> (Calls, Calls) {
    let emulator = Emulator::start().await;
    let pipeline = Pipeline::from_template(&emulator.sdk, &[]).await;
    let fleet = Fleet::new(&emulator.sdk).await;
    let names: Vec<String> = (0..clusters).map(|n| format!("c{n:03}")).collect();
    for chunk in names.chunks(20) {
        join_all(chunk.iter().map(|name| fleet.cluster(name, &[]))).await;
    }
    let sweep = Function::start_binary(&sweep_binary(), &pipeline.sweep_env(&emulator)).await;
    emulator.reset_calls().await;
    sweep.invoke(&json!({})).await.expect("the sweep runs");
    let first = take(&emulator).await;
    sweep.invoke(&json!({})).await.expect("the sweep runs");
    (first, take(&emulator).await)
}

/// How many `Query` calls since the last reset asked the outbox index.
async fn due_queries(emulator: &Emulator) -> u64 {
    let index = ecs_watchdog::aws::OUTBOX_INDEX;
    let queries = emulator.requests("dynamodb:Query").await;
    queries.iter().filter(|q| q["IndexName"] == index).count() as u64
}

/// The monitor and the sweep as the binaries build them on the emulator, on `clock`, metrics
/// left out (they are EMF log lines, no call) and the Managed Daemons APIs answering an empty
/// list (the emulator lacks them; the sweep would otherwise alert that it cannot call them).
fn in_process_pair(storm: &Storm, clock: &TestClock) -> (Monitor, Sweep) {
    let on = |io: &mut Adapters| {
        io.clock = Box::new(clock.clone());
        io.metrics = Box::new(Unpublished);
    };
    let env = storm.pipeline.function_env(&storm.emulator);
    let monitor = in_process::monitor(&storm.emulator, in_process::config(&env), on);
    let env = storm.pipeline.sweep_env(&storm.emulator);
    let sweep = in_process::sweep(&storm.emulator, in_process::config(&env), |io| {
        on(io);
        io.daemons = no_daemons();
    });
    (monitor, sweep)
}

/// Managed Daemons answering that the cluster has none.
pub fn no_daemons() -> Box<EcsDaemons> {
    let list = mock!(aws_sdk_ecs::Client::list_daemons).then_output(|| ListDaemonsOutput::builder().build());
    Box::new(EcsDaemons::new(mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&list])))
}

/// Metrics are not what is measured, and EMF would print them among the results.
pub struct Unpublished;

#[async_trait]
impl MetricsSink for Unpublished {
    async fn publish(&self, _: &[MetricDatum]) -> Result<(), AwsError> {
        Ok(())
    }
}

/// `clusters` clusters, each with an Auto Scaling capacity provider of its own whose group holds
/// 3 instances, 2 registered and 1 launched 15 minutes ago and never registered; the real
/// `sweep` binary sweeps them cold, then warm (the scope's tag cache fresh). Returns the calls of
/// each sweep: what `instance-not-registered` adds is `DescribeCapacityProviders`,
/// `DescribeAutoScalingGroups`, `DescribeInstances` and its own `DescribeClusters`.
pub async fn sweep_of_groups(clusters: usize) -> (Calls, Calls) {
    let emulator = Emulator::start().await;
    let pipeline = Pipeline::from_template(&emulator.sdk, &[]).await;
    let fleet = Fleet::new(&emulator.sdk).await;
    for n in 0..clusters {
        let cluster = fleet.cluster(&format!("c{n:03}"), &[]).await;
        let (group, ids) = fleet.launch_group(&emulator.sdk, &format!("g{n:03}"), 3).await;
        fleet.capacity_provider(&cluster, &format!("cp{n:03}"), &group).await;
        for id in &ids[..2] {
            fleet.register(&cluster, id).await;
        }
        emulator.launched_ago(&ids[2], 15 * 60).await;
    }
    let sweep = Function::start_binary(&sweep_binary(), &pipeline.sweep_env(&emulator)).await;
    emulator.reset_calls().await;
    sweep.invoke(&json!({})).await.expect("the sweep runs");
    let cold = take(&emulator).await;
    sweep.invoke(&json!({})).await.expect("the sweep runs");
    (cold, take(&emulator).await)
}
