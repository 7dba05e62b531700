//! `agent-flapping` end to end: an agent that disconnects and comes back inside the queue's
//! delay, again and again, as the real `monitor` binary sees it through the emulator's ECS,
//! DynamoDB and SNS; then the sweep ends it after a quiet hour.

use serde_json::json;
use watchdog_tests::bed::{Bed, NO_GRACE, finding, no_daemons, record};
use watchdog_tests::clock::TestClock;
use watchdog_tests::pipeline::sqs_event;
use watchdog_tests::runtime::Function;
use watchdog_tests::samples::agent_event;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_an_agent_comes_back_three_times_within_an_hour_then_one_agent_flapping_alert_and_a_quiet_hour_ends_it() {
    let bed = Bed::new(&NO_GRACE, 2).await;
    let (node, steady) = (&bed.nodes[0], &bed.nodes[1]);
    let function = Function::start(&bed.pipeline.function_env(&bed.emulator)).await;
    // Each cycle: the agent drops (ECS sends the event), and is back before the queue delivers
    // it, so the monitor's look finds it connected. The other instance's agent drops once.
    for cycle in 1..=4 {
        bed.set_agent(node, false).await;
        let event = record(&agent_event(node, 10 + cycle, false));
        bed.set_agent(node, true).await;
        let mut batch = vec![event];
        if cycle == 1 {
            bed.set_agent(steady, false).await;
            batch.push(record(&agent_event(steady, 10, false)));
            bed.set_agent(steady, true).await;
        }
        bed.emulator.reset_calls().await;
        let answer = function.invoke(&sqs_event(&batch)).await.expect("handled");
        assert_eq!(answer, json!({"batchItemFailures": []}), "cycle {cycle}");
        // The flap path's writes: a return is counted in one transaction for the batch (a
        // recovered look wrote nothing before); the alert adds its lease's settle; the fourth
        // return finds the flapping incident it did not read and is written again, knowing it.
        let writes: u64 = bed
            .emulator
            .calls()
            .await
            .into_iter()
            .filter(|(operation, _)| operation == "dynamodb:TransactWriteItems")
            .map(|(_, n)| n)
            .sum();
        assert_eq!(writes, if cycle >= 3 { 2 } else { 1 }, "cycle {cycle}");
        let flapping = bed.published("agent-flapping").await;
        // Nothing before the third return; one alert at it, and none again at the fourth.
        assert_eq!(flapping.len(), usize::from(cycle >= 3), "cycle {cycle}: {flapping:#?}");
    }
    assert!(
        bed.published("agent-disconnected").await.is_empty(),
        "never alerted as disconnected"
    );
    let alert = &bed.published("agent-flapping").await[0];
    assert_eq!(alert.attributes["status"], "firing");
    assert_eq!(alert.attributes["severity"], "warning");
    assert!(
        alert.subject.starts_with("ECS agent flapping on 1 instance in prod"),
        "{}",
        alert.subject
    );
    let told = finding(alert);
    assert_eq!(told["kind"], "agent-flapping");
    // A look that found the agent back carries no instance details to the ledger: the ARN only.
    assert_eq!(
        told["instances"][0]["containerInstanceArn"],
        node.container_instance_arn.as_str()
    );
    assert_eq!(told["instances"][0]["flaps"].as_array().map(Vec::len), Some(3));
    assert_eq!(function.metric("AgentFlapping", Some("prod")), 1.0);

    // The sweep, within the hour: still flapping; an hour after the last return: resolved.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let clock = TestClock::at(now + 30 * 60);
    let sweep = bed.sweep(&clock, no_daemons());
    sweep.run().await;
    let statuses = |published: Vec<watchdog_tests::emulator::Published>| -> Vec<String> {
        published.iter().map(|p| p.attributes["status"].clone()).collect()
    };
    assert_eq!(statuses(bed.published("agent-flapping").await), vec!["firing"]);
    clock.set(now + 61 * 60);
    sweep.run().await;
    let published = bed.published("agent-flapping").await;
    assert_eq!(statuses(published.clone()), vec!["firing", "resolved"]);
    let resolved = finding(&published[1]);
    assert_eq!(
        resolved["instances"][0]["resolution"],
        "quiet: no agent disconnect for an hour"
    );
}
