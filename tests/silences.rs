//! Silences and folding end to end (issue 24, item 6): the tag `ecs-watchdog-silence-until` on
//! a cluster or a container instance, set with the real `TagResource` on the emulator, holds an
//! incident's alert until the silence ends, then the sweep sends it once; an instance-impaired
//! on AGENT_CONNECTIVITY alone folds into the agent-disconnected incident.

use aws_sdk_ecs::types::Tag;
use ecs_watchdog::aws::EcsDaemons;
use ecs_watchdog::metrics::Metric;
use ecs_watchdog::ports::Clock;
use ecs_watchdog::silence::{TAG_KEY, iso};
use serde_json::json;
use watchdog_tests::bed::{Bed, NO_GRACE, finding, no_daemons, record};
use watchdog_tests::clock::TestClock;
use watchdog_tests::emulator::Published;
use watchdog_tests::in_process::{self, config, messages};
use watchdog_tests::pipeline::sqs_event;
use watchdog_tests::runtime::{Function, sweep_binary};
use watchdog_tests::samples::health_impaired_event;

const START: u64 = 1_800_000_000;

/// Tags a cluster or a container instance with `ecs-watchdog-silence-until=value`, as an
/// engineer would (`aws ecs tag-resource`).
async fn silence(bed: &Bed, arn: &str, value: &str) {
    bed.fleet
        .ecs
        .tag_resource()
        .resource_arn(arn)
        .tags(Tag::builder().key(TAG_KEY).value(value).build())
        .send()
        .await
        .expect("TagResource");
}

/// The sweep binary's environment, reading tags at every run (TAG_CACHE_TTL_SECONDS=0), so
/// a silence lifted shows at the next sweep rather than after the cache's five minutes.
fn sweep_env(bed: &Bed) -> Vec<(String, String)> {
    let mut env = bed.pipeline.sweep_env(&bed.emulator);
    env.push(("TAG_CACHE_TTL_SECONDS".into(), "0".into()));
    env
}

fn email(alert: &Published) -> &str {
    alert.message["email"].as_str().unwrap()
}

fn now() -> u64 {
    ecs_watchdog::ports::SystemClock.now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_silenced_clusters_agent_disconnects_then_nothing_alerts_until_the_silence_ends_and_then_the_sweep_alerts_once()
 {
    let bed = Bed::new(&NO_GRACE, 2).await;
    let until = iso(now() + 3600);
    silence(&bed, &bed.cluster, &until).await;
    let lost = bed.disconnect(&bed.nodes[0]).await;

    // The event: the incident opens, its alert held, counted.
    let monitor = Function::start(&bed.pipeline.function_env(&bed.emulator)).await;
    let answer = monitor
        .invoke(&sqs_event(std::slice::from_ref(&lost)))
        .await
        .expect("handled");
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(monitor.metric("Silenced", Some("prod")), 1.0);
    assert_eq!(monitor.metric("IncidentsOpened", Some("prod")), 1.0);
    // The sweep sees the disconnect too, and holds it as well.
    let sweep = Function::start_binary(&sweep_binary(), &sweep_env(&bed)).await;
    sweep.invoke(&json!({})).await.expect("the sweep runs");
    // (The binary's own monitor-impaired alert says the emulator lacks the Managed Daemons APIs.)
    assert!(
        bed.published("agent-disconnected").await.is_empty(),
        "nothing while silenced"
    );

    // The maintenance ends early: the tag moves to a time past. The next sweep alerts, once.
    silence(&bed, &bed.cluster, &iso(now() - 1)).await;
    for _ in 0..3 {
        sweep.invoke(&json!({})).await.expect("the sweep runs");
    }
    let alerts = bed.published("agent-disconnected").await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].attributes["status"], "firing");
    let instance = &finding(&alerts[0])["instances"][0];
    assert_eq!(instance["ec2InstanceId"], bed.nodes[0].ec2_instance_id.as_str());
    assert_eq!(instance["silencedUntil"], until.as_str(), "it says why it comes late");
    assert!(
        email(&alerts[0]).contains(&format!("silenced until {until}")),
        "{}",
        email(&alerts[0])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_silence_ends_with_the_problem_there_then_the_sweep_sends_it_at_its_due_time_and_one_that_ended_inside_sends_nothing()
 {
    let bed = Bed::new(&NO_GRACE, 2).await;
    let clock = TestClock::at(START);
    let env = bed.pipeline.function_env(&bed.emulator);
    let set = clock.clone();
    let monitor = in_process::monitor(&bed.emulator, config(&env), move |io| io.clock = Box::new(set));
    let set = clock.clone();
    let sweep = in_process::sweep(&bed.emulator, config(&sweep_env(&bed)), move |io| {
        io.clock = Box::new(set);
        io.daemons = Box::new(EcsDaemons::new(no_daemons()));
    });
    silence(&bed, &bed.cluster, &iso(START + 3600)).await;
    let lasting = bed.disconnect(&bed.nodes[0]).await;
    let brief = bed.disconnect(&bed.nodes[1]).await;

    let report = monitor.process(&messages(&[lasting, brief])).await;
    assert!(report.failures.is_empty() && report.alerts.is_empty(), "{report:?}");
    assert_eq!(report.tally.get(Some("prod"), Metric::Silenced), 2);

    // One reconnects within the silence: a sweep closes it, telling nobody.
    bed.emulator
        .set_container_instance(&bed.cluster, &bed.nodes[1].container_instance_arn, Some(true), None)
        .await;
    clock.advance_minutes(30);
    let run = sweep.run().await;
    assert!(run.report.alerts.is_empty(), "{:?}", run.report.alerts);
    assert_eq!(run.report.tally.get(Some("prod"), Metric::IncidentsResolved), 1);

    // The silence ends (the tag stays, its time passed): the sweep alerts the one still there.
    clock.set(START + 3600);
    let run = sweep.run().await;
    assert_eq!(run.report.alerts.len(), 1, "{:?}", run.report.alerts);
    clock.advance_minutes(5);
    assert!(sweep.run().await.report.alerts.is_empty(), "once");
    let alerts = bed.published("agent-disconnected").await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let instances = &finding(&alerts[0])["instances"];
    assert_eq!(instances.as_array().map(Vec::len), Some(1));
    assert_eq!(instances[0]["ec2InstanceId"], bed.nodes[0].ec2_instance_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_one_container_instance_is_silenced_then_only_its_alert_waits_and_it_is_not_drained() {
    let bed = Bed::new(&NO_GRACE, 2).await;
    let (quiet, loud) = (&bed.nodes[0], &bed.nodes[1]);
    silence(&bed, &quiet.container_instance_arn, &iso(now() + 3600)).await;
    let events = [bed.disconnect(quiet).await, bed.disconnect(loud).await];
    let mut env = bed.pipeline.function_env(&bed.emulator);
    env.push(("REMEDIATION_ACTION".into(), "drain".into()));
    env.push(("MAX_REMEDIATION_PERCENT".into(), "100".into()));

    let monitor = Function::start(&env).await;
    let answer = monitor.invoke(&sqs_event(&events)).await.expect("handled");
    assert_eq!(answer, json!({"batchItemFailures": []}));

    let alerts = bed.published("agent-disconnected").await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let named = finding(&alerts[0])["instances"].clone();
    assert_eq!(named.as_array().map(Vec::len), Some(1));
    assert_eq!(named[0]["ec2InstanceId"], loud.ec2_instance_id.as_str());
    assert_eq!(monitor.metric("Silenced", Some("prod")), 1.0);
    // Someone works on the silenced one: drained is only the other.
    assert_eq!(bed.fleet.container_instance(quiet).await.0, "ACTIVE");
    assert_eq!(bed.fleet.container_instance(loud).await.0, "DRAINING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_an_instance_is_impaired_only_on_agent_connectivity_while_its_agent_incident_is_open_then_one_alert() {
    let bed = Bed::new(&NO_GRACE, 1).await;
    let node = &bed.nodes[0];
    let disconnected = bed.disconnect(node).await;
    bed.emulator
        .set_health(
            &node.cluster_arn,
            &node.container_instance_arn,
            "IMPAIRED",
            &[("AGENT_CONNECTIVITY", "IMPAIRED", "the agent is not connected")],
        )
        .await;
    let impaired = record(&health_impaired_event(node));
    let monitor = Function::start(&bed.pipeline.function_env(&bed.emulator)).await;

    // Together in one batch, and the impaired one again later: the agent's alert only.
    for batch in [vec![disconnected, impaired.clone()], vec![impaired]] {
        bed.emulator.reset_calls().await;
        let answer = monitor.invoke(&sqs_event(&batch)).await.expect("handled");
        assert_eq!(answer, json!({"batchItemFailures": []}));
        // The agent incident is read in the same BatchGetItem as the impaired one.
        let calls = bed.emulator.calls().await;
        assert_eq!(calls.get("dynamodb:BatchGetItem"), Some(&1), "{calls:?}");
    }

    let all = bed.emulator.published().await;
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].attributes["kind"], "agent-disconnected");
    assert_eq!(monitor.metric("Folded", Some("prod")), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_silence_tag_cannot_be_read_then_the_alert_goes_out_saying_so_and_a_warning_names_tag_and_cluster() {
    let bed = Bed::new(&NO_GRACE, 1).await;
    silence(&bed, &bed.cluster, "after the upgrade").await;
    let lost = bed.disconnect(&bed.nodes[0]).await;
    let monitor = Function::start(&bed.pipeline.function_env(&bed.emulator)).await;

    monitor.invoke(&sqs_event(&[lost])).await.expect("handled");

    let alerts = bed.published("agent-disconnected").await;
    assert_eq!(alerts.len(), 1, "paging is the safe side: {alerts:#?}");
    let refused = finding(&alerts[0])["instances"][0]["silenceRefused"].clone();
    let refused = refused.as_str().unwrap_or_default();
    assert!(
        refused.contains(TAG_KEY) && refused.contains("cluster prod"),
        "{refused}"
    );
    assert!(
        email(&alerts[0]).contains("not silenced: the tag"),
        "{}",
        email(&alerts[0])
    );
    assert!(
        monitor.output().iter().any(|line| line.contains("silence not honoured")
            && line.contains(TAG_KEY)
            && line.contains("cluster prod")),
        "a warning names the tag and the resource"
    );
}

/// The sweep records the cluster's silence in the ledger: a storm after it is held by the record,
/// the monitor asking ECS for no cluster's tags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_cluster_is_silenced_and_swept_then_a_storm_is_held_by_the_sweeps_record_without_describe_clusters() {
    let bed = Bed::new(&NO_GRACE, 3).await;
    silence(&bed, &bed.cluster, &iso(now() + 3600)).await;
    let sweep = Function::start_binary(&sweep_binary(), &sweep_env(&bed)).await;
    sweep.invoke(&json!({})).await.expect("the sweep runs");
    let mut storm = Vec::new();
    for node in &bed.nodes {
        storm.push(bed.disconnect(node).await);
    }
    let monitor = Function::start(&bed.pipeline.function_env(&bed.emulator)).await;
    bed.emulator.reset_calls().await;

    let answer = monitor.invoke(&sqs_event(&storm)).await.expect("handled");

    assert_eq!(answer, json!({"batchItemFailures": []}));
    let calls = bed.emulator.calls().await;
    assert_eq!(calls.get("ecs:DescribeClusters"), None, "{calls:?}");
    assert_eq!(monitor.metric("Silenced", Some("prod")), 3.0);
    assert!(bed.published("agent-disconnected").await.is_empty());
}

/// A record older than `TAG_CACHE_TTL_SECONDS` is not taken: the monitor asks ECS, and a silence
/// lifted since the sweep holds nothing. Within the TTL the record's word stands, as the warm
/// cache's does (the staleness docs/operations.md states).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_sweeps_record_is_older_than_the_ttl_then_the_monitor_asks_ecs_and_a_silence_lifted_since_is_honoured()
{
    let bed = Bed::new(&NO_GRACE, 2).await;
    let clock = TestClock::at(START);
    let set = clock.clone();
    let sweep = in_process::sweep(&bed.emulator, config(&sweep_env(&bed)), move |io| {
        io.clock = Box::new(set);
        io.daemons = Box::new(EcsDaemons::new(no_daemons()));
    });
    let env = bed.pipeline.function_env(&bed.emulator);
    let monitor = || {
        let set = clock.clone();
        in_process::monitor(&bed.emulator, config(&env), move |io| io.clock = Box::new(set))
    };
    silence(&bed, &bed.cluster, &iso(START + 3600)).await;
    sweep.run().await;
    // The maintenance ends early: the tag moves to a time past.
    silence(&bed, &bed.cluster, &iso(START - 1)).await;

    clock.set(START + 200);
    let held = bed.disconnect(&bed.nodes[0]).await;
    bed.emulator.reset_calls().await;
    let report = monitor().process(&messages(&[held])).await;
    assert!(report.failures.is_empty() && report.alerts.is_empty(), "{report:?}");
    assert_eq!(report.tally.get(Some("prod"), Metric::Silenced), 1);
    let calls = bed.emulator.calls().await;
    assert_eq!(calls.get("ecs:DescribeClusters"), None, "{calls:?}");

    clock.set(START + 301);
    let lost = bed.disconnect(&bed.nodes[1]).await;
    bed.emulator.reset_calls().await;
    let report = monitor().process(&messages(&[lost])).await;
    assert!(report.failures.is_empty(), "{report:?}");
    let calls = bed.emulator.calls().await;
    assert_eq!(calls.get("ecs:DescribeClusters"), Some(&1), "{calls:?}");
    assert_eq!(report.alerts.len(), 1, "{report:?}");
    let alerts = bed.published("agent-disconnected").await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let instance = &finding(&alerts[0])["instances"][0];
    assert_eq!(instance["ec2InstanceId"], bed.nodes[1].ec2_instance_id.as_str());
    assert!(
        instance.get("silencedUntil").is_none_or(serde_json::Value::is_null),
        "{instance}"
    );
}
