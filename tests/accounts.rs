//! Many accounts and regions (DESIGN §10), against moto with four accounts: the hub's own, two
//! members whose reader role it can assume, and one whose role denies it. moto keeps a backend
//! per account, and credentials from `AssumeRole` act in the role's account, so each member's
//! fleet lives apart and is seen only through its own role. moto enforces no IAM: the denial is
//! the test bed's (`/_watchdog/assume-role`), answered as STS answers it.

use ecs_watchdog::config::DEFAULT_ACCOUNT_ROLE_NAME;
use serde_json::{Value, json};
use watchdog_tests::emulator::{Emulator, Published, REGION};
use watchdog_tests::fleet::{Fleet, Node};
use watchdog_tests::pipeline::{Pipeline, sqs_event};
use watchdog_tests::runtime::{Function, sweep_binary};
use watchdog_tests::samples::agent_event;

const MEMBER_A: &str = "111111111111";
const MEMBER_B: &str = "222222222222";
const DENIED: &str = "333333333333";
const HUB: &[(&str, &str)] = &[("OrganizationId", "o-abc123def4"), ("GracePeriodSeconds", "0")];

fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/{DEFAULT_ACCOUNT_ROLE_NAME}")
}

/// A member account's cluster `prod` with two instances whose agents the events say dropped;
/// only `broken` of them really did.
struct Member {
    nodes: Vec<Node>,
}

impl Member {
    async fn seed(emulator: &Emulator, account: &str, broken: usize) -> Self {
        let fleet = Fleet::new(&emulator.member(account).await).await;
        let cluster = fleet.cluster("prod", &[]).await;
        let nodes = fleet.nodes(&cluster, 2).await;
        emulator
            .set_container_instance(&cluster, &nodes[broken].container_instance_arn, Some(false), None)
            .await;
        Self { nodes }
    }

    /// What the member's EventBridge sends on to the hub: its account stays the event's.
    fn events(&self, account: &str) -> Vec<Value> {
        self.nodes
            .iter()
            .map(|node| {
                let mut event = agent_event(node, 2, false);
                event["account"] = json!(account);
                event
            })
            .collect()
    }
}

fn finding(alert: &Published) -> Value {
    serde_json::from_str(alert.message["default"].as_str().unwrap()).unwrap()
}

async fn batch(pipeline: &Pipeline, events: &[Value]) -> Vec<Value> {
    for event in events {
        pipeline.send_raw(&event.to_string()).await;
    }
    pipeline.receive(events.len()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_batch_comes_from_three_member_accounts_then_each_is_checked_in_its_own() {
    // Given two members whose clusters share the name `prod` and differ in which instance is
    // really disconnected, and a third member whose role denies the hub.
    let emulator = Emulator::start().await;
    let pipeline = Pipeline::from_template(&emulator.sdk, HUB).await;
    let a = Member::seed(&emulator, MEMBER_A, 0).await;
    let b = Member::seed(&emulator, MEMBER_B, 1).await;
    let denied = Member::seed(&emulator, DENIED, 0).await;
    emulator.deny_assume_role(&role(DENIED), true).await;

    // When one batch holds the events of all three.
    let mut events = a.events(MEMBER_A);
    events.extend(b.events(MEMBER_B));
    let denied_events = denied.events(DENIED);
    events.extend(denied_events.iter().cloned());
    let records = batch(&pipeline, &events).await;
    let function = Function::start(&pipeline.function_env(&emulator)).await;
    emulator.reset_calls().await;
    let answer = function
        .invoke(&sqs_event(&records))
        .await
        .expect("the batch is handled");

    // Then only the denied account's messages come back.
    let mut denied_ids: Vec<&str> = records
        .iter()
        .filter(|r| r["body"].as_str().unwrap().contains(DENIED))
        .map(|r| r["messageId"].as_str().unwrap())
        .collect();
    let mut failed: Vec<&str> = answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    denied_ids.sort_unstable();
    failed.sort_unstable();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed, denied_ids);

    // One alert per member account, naming it and the instance its own state confirms.
    let published = emulator.published().await;
    let firing: Vec<&Published> = published
        .iter()
        .filter(|p| p.attributes.get("kind").map(String::as_str) == Some("agent-disconnected"))
        .collect();
    assert_eq!(
        firing.len(),
        2,
        "{:?}",
        published.iter().map(|p| &p.subject).collect::<Vec<_>>()
    );
    for (account, member, broken) in [(MEMBER_A, &a, 0), (MEMBER_B, &b, 1)] {
        let alert = firing
            .iter()
            .find(|p| finding(p)["account"] == account)
            .unwrap_or_else(|| panic!("an alert for {account}"));
        assert_eq!(
            alert.subject,
            format!("ECS agent disconnected on 1 instance in prod ({account}, {REGION})")
        );
        let finding = finding(alert);
        assert_eq!(finding["region"], REGION);
        let named: Vec<&str> = finding["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["ec2InstanceId"].as_str().unwrap())
            .collect();
        assert_eq!(named, [member.nodes[broken].ec2_instance_id.as_str()]);
    }
    // And one monitor-impaired alert for the account the hub cannot reach.
    let impaired: Vec<&Published> = published
        .iter()
        .filter(|p| p.attributes.get("kind").map(String::as_str) == Some("monitor-impaired"))
        .collect();
    assert_eq!(impaired.len(), 1);
    assert_eq!(
        impaired[0].subject,
        format!("ECS Watchdog cannot call sts:AssumeRole ({DENIED}, {REGION})")
    );
    assert_eq!(published.len(), 3);
    let calls = emulator.calls().await;
    assert_eq!(calls.get("sts:AssumeRole"), Some(&3), "{calls:?}");

    // A member's metrics carry its account and region.
    let member_a = function
        .emf()
        .into_iter()
        .find(|d| d["Account"] == MEMBER_A && d["ClusterName"] == "prod" && d.get("AgentDisconnected").is_some());
    let member_a = member_a.expect("AgentDisconnected of member A's prod");
    assert_eq!(member_a["Region"], REGION);

    // When a second batch comes from the same accounts to the warm function.
    emulator.reset_calls().await;
    let mut again = a.events(MEMBER_A);
    again.extend(denied_events);
    let records = batch(&pipeline, &again).await;
    let answer = function
        .invoke(&sqs_event(&records))
        .await
        .expect("the batch is handled");

    // Then the credentials of the account it reached are reused; the denied one is asked again
    // (nothing is cached for it) and alerts no second time the same day.
    assert_eq!(answer["batchItemFailures"].as_array().unwrap().len(), 2);
    let calls = emulator.calls().await;
    assert_eq!(calls.get("sts:AssumeRole"), Some(&1), "{calls:?}");
    assert_eq!(emulator.published().await.len(), 3, "the open incidents alert no more");
}

/// The sweep covers the places it is given: a member it can reach is swept as the hub's own
/// account is, with its gauges named by account and region; one it cannot reach is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_sweep_covers_member_accounts_then_each_is_swept_or_reported_unreachable() {
    let emulator = Emulator::start().await;
    let pipeline = Pipeline::from_template(&emulator.sdk, HUB).await;
    Member::seed(&emulator, MEMBER_A, 0).await;
    Member::seed(&emulator, DENIED, 0).await;
    emulator.deny_assume_role(&role(DENIED), true).await;
    let mut env = pipeline.sweep_env(&emulator);
    env.push(("SWEEP_ACCOUNTS".into(), format!("{MEMBER_A},{DENIED}")));
    let sweep = Function::start_binary(&sweep_binary(), &env).await;

    let summary = sweep.invoke(&json!({})).await.expect("the sweep runs");

    assert_eq!(summary["clusters"], 1, "member A's prod: {summary}");
    assert_eq!(
        summary["unseen"],
        json!([format!("{DENIED}, {REGION} (not reachable)")])
    );
    // Each place's own faults, each alerted as that place's: moto has no Managed Daemons APIs.
    assert_eq!(summary["impaired"], json!(["ecs:ListDaemons", "sts:AssumeRole"]));
    let mut alerts: Vec<&str> = summary["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    alerts.sort_unstable();
    assert_eq!(
        alerts,
        [
            format!("ECS Watchdog cannot call ecs:ListDaemons ({MEMBER_A}, {REGION})"),
            format!("ECS Watchdog cannot call sts:AssumeRole ({DENIED}, {REGION})"),
            // No grace period in this stack: first sight alerts.
            format!("ECS agent disconnected on 1 instance in prod ({MEMBER_A}, {REGION})"),
        ]
    );
    let gauge = |name: &str| {
        sweep
            .emf()
            .into_iter()
            .find(|d| d["Account"] == MEMBER_A && d.get("ClusterName").is_none() && d.get(name).is_some())
            .map(|d| (d[name].clone(), d["Region"].clone()))
    };
    assert_eq!(gauge("MonitoredInstances"), Some((json!(2.0), json!(REGION))));
    assert_eq!(gauge("DisconnectedAgents"), Some((json!(1.0), json!(REGION))));
}

/// What Lambda's poller does with a batch's answer: deletes what succeeded, and lets SQS hand
/// out again what failed (here at once, where SQS waits out the visibility timeout).
async fn settle(pipeline: &Pipeline, records: &[Value], answer: &Value) {
    let failed: Vec<&str> = answer["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    for record in records {
        let handle = record["receiptHandle"].as_str().unwrap();
        if failed.contains(&record["messageId"].as_str().unwrap()) {
            let again = pipeline.sqs.change_message_visibility().queue_url(&pipeline.queue_url);
            again.receipt_handle(handle).visibility_timeout(0).send().await.unwrap();
        } else {
            let done = pipeline.sqs.delete_message().queue_url(&pipeline.queue_url);
            done.receipt_handle(handle).send().await.unwrap();
        }
    }
}

/// Fair to every account: a storm from a member whose role cannot be assumed and the hub's own
/// disconnect in the same window. The hub's alert goes in the batch that holds it; the storm is
/// tried once more and then parked in the dead-letter queue, reason `place-unreachable`, so it
/// holds the pollers for no more than one further batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_an_unreachable_member_storms_then_the_hubs_own_alert_is_not_held_back_and_the_storm_is_parked() {
    let emulator = Emulator::start().await;
    let pipeline = Pipeline::from_template(&emulator.sdk, HUB).await;
    let denied = Member::seed(&emulator, DENIED, 0).await;
    emulator.deny_assume_role(&role(DENIED), true).await;
    let home = Fleet::new(&emulator.sdk).await;
    let cluster = home.cluster("payments", &[]).await;
    let node = home.nodes(&cluster, 1).await.remove(0);
    emulator
        .set_container_instance(&cluster, &node.container_instance_arn, Some(false), None)
        .await;
    let storm: Vec<Value> = (0..50).flat_map(|_| denied.events(DENIED)).collect();
    for event in &storm {
        pipeline.send_raw(&event.to_string()).await;
    }
    pipeline.send_raw(&agent_event(&node, 2, false).to_string()).await;
    let function = Function::start(&pipeline.function_env(&emulator)).await;

    // The first batch: the storm and the hub's own event.
    let records = pipeline.receive(storm.len() + 1).await;
    let first = function.invoke(&sqs_event(&records)).await.expect("handled");
    assert_eq!(first["batchItemFailures"].as_array().unwrap().len(), storm.len());
    let published = emulator.published().await;
    let own = published
        .iter()
        .filter(|p| p.attributes.get("kind").map(String::as_str) == Some("agent-disconnected"))
        .map(|p| p.subject.clone())
        .collect::<Vec<_>>();
    assert_eq!(own.len(), 1, "{own:?}");
    assert!(
        own[0].starts_with("ECS agent disconnected on 1 instance in payments"),
        "the hub's own alert, in the batch that held it: {own:?}"
    );
    settle(&pipeline, &records, &first).await;

    // The second: the storm's second try parks it.
    emulator.reset_calls().await;
    let records = pipeline.receive(storm.len()).await;
    assert!(
        records
            .iter()
            .all(|r| r["attributes"]["ApproximateReceiveCount"] == "2")
    );
    let second = function.invoke(&sqs_event(&records)).await.expect("handled");
    assert_eq!(second, json!({"batchItemFailures": []}));
    settle(&pipeline, &records, &second).await;
    assert_eq!(pipeline.depth(&pipeline.queue_url).await, 0, "nothing left to retry");
    let parked = pipeline.dead_letters(storm.len()).await;
    assert!(parked.iter().all(|d| d.reason.as_deref() == Some("place-unreachable")));
    assert!(parked.iter().all(|d| d.body.contains(DENIED)));
    let calls = emulator.calls().await;
    assert_eq!(
        calls.get("sts:AssumeRole"),
        Some(&1),
        "once a batch, not once a message"
    );
    let impaired = emulator
        .published()
        .await
        .into_iter()
        .filter(|p| p.attributes.get("kind").map(String::as_str) == Some("monitor-impaired"))
        .count();
    assert_eq!(impaired, 1, "the unreachable account is alerted once");
}

/// Issue 21: a storm in a member account not listed in `SWEEP_ACCOUNTS`. The monitor notes the
/// place; the sweep covers it without configuration (its cluster is counted, its gauges carry its
/// account), and the first sweep after the group interval sends the digest of what was held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_member_not_in_sweep_accounts_storms_then_the_next_sweep_after_the_interval_sends_its_digest() {
    // Given a member whose six instances all lost their agent, and a hub that groups for 1 min.
    let emulator = Emulator::start().await;
    let mut parameters = HUB.to_vec();
    parameters.push(("GroupIntervalMinutes", "1"));
    // Per-cluster gauges show which place and cluster the sweep counted.
    parameters.push(("ClusterGauges", "true"));
    let pipeline = Pipeline::from_template(&emulator.sdk, &parameters).await;
    let fleet = Fleet::new(&emulator.member(MEMBER_A).await).await;
    let cluster = fleet.cluster("prod", &[]).await;
    let nodes = fleet.nodes(&cluster, 6).await;
    for node in &nodes {
        emulator
            .set_container_instance(&cluster, &node.container_instance_arn, Some(false), None)
            .await;
    }
    let events: Vec<Value> = nodes
        .iter()
        .map(|node| {
            let mut event = agent_event(node, 2, false);
            event["account"] = json!(MEMBER_A);
            event
        })
        .collect();

    // When the monitor sees the first, then the other five (held for the digest).
    let monitor = Function::start(&pipeline.function_env(&emulator)).await;
    for part in [&events[..1], &events[1..]] {
        let records = batch(&pipeline, part).await;
        let answer = monitor
            .invoke(&sqs_event(&records))
            .await
            .expect("the batch is handled");
        settle(&pipeline, &records, &answer).await;
    }
    let agent_alerts = || async {
        let published = emulator.published().await;
        published
            .into_iter()
            .filter(|p| p.attributes["kind"] == "agent-disconnected")
            .collect::<Vec<Published>>()
    };
    assert_eq!(agent_alerts().await.len(), 1, "the first pages, the rest are held");

    // Then the sweep, not configured for the member, covers it at once ...
    let sweep = Function::start_binary(&sweep_binary(), &pipeline.sweep_env(&emulator)).await;
    let first = sweep.invoke(&json!({})).await.expect("the sweep runs");
    assert_eq!(first["clusters"], 1, "the member's prod: {first}");
    assert!(
        sweep
            .emf()
            .iter()
            .any(|d| d["Account"] == MEMBER_A && d["ClusterName"] == "prod" && d["DisconnectedAgents"] == 6.0),
        "the member's gauges"
    );
    // ... and the first sweep after the interval sends the digest, naming the five held.
    let start = std::time::Instant::now();
    let digest = loop {
        let sent = agent_alerts().await;
        if let Some(digest) = sent.iter().find(|p| finding(p)["digest"].is_object()) {
            break digest.clone();
        }
        assert!(
            start.elapsed().as_secs() < 180,
            "no digest: {:?}",
            sent.iter().map(|p| &p.subject).collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        sweep.invoke(&json!({})).await.expect("the sweep runs");
    };
    let told = finding(&digest);
    assert_eq!(told["account"], MEMBER_A);
    assert_eq!(told["digest"]["joined"], 5, "{told}");
    sweep.invoke(&json!({})).await.expect("the sweep runs");
    assert_eq!(agent_alerts().await.len(), 2, "one page, one digest, nothing more");
}
