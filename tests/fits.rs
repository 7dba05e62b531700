//! Everything fits (DESIGN §7, promise 5), end to end on the emulator with the real binaries:
//! a recovery of a whole fleet is one resolved notice within SNS's limit, and large rejected
//! bodies all reach the dead-letter queue (batches within `SendMessageBatch`'s limit).

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;
use watchdog_tests::bed::{Bed, NO_GRACE, finding};
use watchdog_tests::emulator::{Emulator, Published};
use watchdog_tests::pipeline::Pipeline;
use watchdog_tests::runtime::{Function, sweep_binary};

/// What SNS counts against its 262,144 bytes: the message (`MessageStructure=json`, the whole
/// JSON object), the subject, and each attribute's name, data type and value.
fn sns_bytes(published: &Published) -> usize {
    let attributes: usize = published
        .attributes
        .iter()
        .map(|(name, value)| name.len() + "String".len() + value.len())
        .sum();
    published.subject.len() + published.message.to_string().len() + attributes
}

/// Every agent of the bed's cluster connects or disconnects, fifty at a time.
async fn set_agents(bed: &Bed, connected: bool) {
    for chunk in bed.nodes.chunks(50) {
        join_all(chunk.iter().map(|n| bed.set_agent(n, connected))).await;
    }
}

/// Sweeps with the binary until SNS holds an agent message of `status`, or the deadline passes
/// (the emulator lacks the Managed Daemons APIs, so the sweep also says it cannot call them).
async fn sweep_until(bed: &Bed, function: &Function, status: &str) -> Vec<Published> {
    let start = Instant::now();
    loop {
        function.invoke(&json!({})).await.expect("the sweep runs");
        let mut published = bed.published("agent-disconnected").await;
        published.retain(|p| p.attributes["status"] == status);
        if !published.is_empty() || start.elapsed() > Duration::from_secs(120) {
            return published;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Issue 21, case 3: on the old main SNS refused this notice (over 262,144 bytes), every
/// incident reopened, and the cluster never got a resolved notice again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_1500_instances_recover_at_once_then_one_resolved_notice_fits_and_says_how_many_more() {
    // Given 1,500 disconnected agents the sweep alerted.
    const FLEET: usize = 1_500;
    let bed = Bed::named("payments-production-blue", &NO_GRACE, FLEET).await;
    set_agents(&bed, false).await;
    let function = Function::start_binary(&sweep_binary(), &bed.pipeline.sweep_env(&bed.emulator)).await;
    let alerts = sweep_until(&bed, &function, "firing").await;
    let subjects: Vec<&str> = alerts.iter().map(|a| a.subject.as_str()).collect();
    assert_eq!(subjects.len(), 1, "one alert for the whole fleet: {subjects:?}");
    assert!(sns_bytes(&alerts[0]) <= 262_144, "{} bytes", sns_bytes(&alerts[0]));

    // When every agent reconnects.
    set_agents(&bed, true).await;
    let notices = sweep_until(&bed, &function, "resolved").await;

    // Then one resolved notice, within SNS's limit, that lists what fits and counts the rest.
    assert_eq!(notices.len(), 1, "one resolved notice");
    let notice = &notices[0];
    assert!(sns_bytes(notice) <= 262_144, "{} bytes", sns_bytes(notice));
    let json = finding(notice);
    let listed = json["instances"].as_array().map_or(0, Vec::len);
    let omitted = json["omitted"].as_u64().unwrap_or(0) as usize;
    assert_eq!(listed + omitted, FLEET, "listed {listed}, omitted {omitted}");
    assert!(omitted > 0, "1,500 real ARNs do not fit: some are counted, not listed");
    let email = notice.message["email"].as_str().expect("an email key");
    assert!(email.contains(&format!("... and {} more", FLEET - 50)), "{email}");
    assert!(
        notice
            .subject
            .starts_with("Resolved: ECS agent disconnected on 1500 instances")
    );
    // Resolved once: a later sweep sends nothing more.
    function.invoke(&json!({})).await.expect("the sweep runs");
    assert_eq!(bed.published("agent-disconnected").await.len(), 2);
}

/// On the old main the ten bodies went in one `SendMessageBatch` of over 1 MiB, which the
/// emulator refuses (as SQS refuses a batch over its limit), so all ten went back to the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_ten_large_bodies_are_rejected_then_the_dead_letter_queue_keeps_each_of_them() {
    let emulator = Emulator::start().await;
    let pipeline = Pipeline::create(&emulator.sdk, 0).await;
    let bodies: Vec<String> = (0..10)
        .map(|i| format!("not JSON {i} {}", "x".repeat(110_000)))
        .collect();
    for body in &bodies {
        pipeline.send_raw(body).await;
    }
    let function = Function::start(&pipeline.function_env(&emulator)).await;

    let (_, response) = pipeline.deliver(&function, bodies.len()).await;

    assert_eq!(response, json!({"batchItemFailures": []}));
    let mut kept: Vec<String> = pipeline
        .dead_letters(bodies.len())
        .await
        .into_iter()
        .map(|d| d.body)
        .collect();
    kept.sort();
    let mut sent = bodies.clone();
    sent.sort();
    assert_eq!(kept, sent);
}
