//! Routing by attributes, end to end on the emulator: the monitor's SNS adapter publishes
//! rendered alerts to a topic with two SQS subscriptions whose filter policies are docs/findings.md's
//! "Routing alerts" examples (a pager: critical alerts and every resolved notice; a team: its
//! daemons' critical and high messages); each queue receives exactly what its policy matches.
//! moto applies a subscription's `FilterPolicy` (`$or` included) to the message attributes
//! before delivery, as SNS does:
//! <https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html>.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use ecs_watchdog::alert::{self, AlertKind, DaemonChecks, Facts, InstanceFinding};
use ecs_watchdog::aws::{OnFirstUse, SnsNotifier};
use ecs_watchdog::config::{ChatFormat, Place};
use ecs_watchdog::ports::Notifier;
use serde_json::Value;
use watchdog_tests::emulator::Emulator;

const CLUSTER: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";
const PAGER: &str = r#"{"$or": [{"severity": ["critical"]}, {"status": ["resolved"]}]}"#;
const DAEMON_TEAM: &str = r#"{"kind": ["daemon-lost", "daemon-deployment-failed"], "severity": ["critical", "high"]}"#;

fn on(n: usize, daemon: Option<&str>) -> Vec<InstanceFinding> {
    (0..n)
        .map(|i| InstanceFinding {
            container_instance_arn: format!("arn:aws:ecs:us-east-1:123456789012:container-instance/prod/{i:032x}"),
            ec2_instance_id: Some(format!("i-{i:017x}")),
            daemon_name: daemon.map(str::to_owned),
            critical: daemon.map(|_| true),
            ..Default::default()
        })
        .collect()
}

/// A queue subscribed to `topic` with `policy`; its URL.
async fn subscribed(emulator: &Emulator, topic: &str, name: &str, policy: &str) -> String {
    let (sqs, sns) = (
        aws_sdk_sqs::Client::new(&emulator.sdk),
        aws_sdk_sns::Client::new(&emulator.sdk),
    );
    let url = sqs.create_queue().queue_name(name).send().await.expect("CreateQueue");
    let url = url.queue_url().expect("a queue URL").to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes");
    let arn = arn
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .expect("QueueArn");
    sns.subscribe()
        .topic_arn(topic)
        .protocol("sqs")
        .endpoint(arn)
        .attributes("FilterPolicy", policy)
        .send()
        .await
        .expect("Subscribe");
    url
}

/// The `MessageAttributes` of what reached the queue, `count` of them, within a deadline.
async fn received(emulator: &Emulator, url: &str, count: usize) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(&emulator.sdk);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < count && Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        for m in out.messages() {
            let body: Value = serde_json::from_str(m.body().unwrap_or_default()).expect("an SNS envelope");
            got.push(body["MessageAttributes"].clone());
        }
    }
    // Nothing more arrives than the policy matched: one more look after the count is reached.
    let more = sqs
        .receive_message()
        .queue_url(url)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("ReceiveMessage");
    assert!(more.messages().is_empty(), "more than {count} messages reached {url}");
    got
}

fn value<'a>(attributes: &'a Value, name: &str) -> &'a str {
    attributes[name]["Value"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn when_subscriptions_filter_by_the_readmes_policies_then_each_queue_gets_only_what_they_match() {
    let emulator = Emulator::start().await;
    let sns = aws_sdk_sns::Client::new(&emulator.sdk);
    let topic = sns.create_topic().name("alerts").send().await.expect("CreateTopic");
    let topic = topic.topic_arn().expect("a topic ARN").to_owned();
    let critical = subscribed(&emulator, &topic, "pager", PAGER).await;
    let daemons = subscribed(&emulator, &topic, "daemon-team", DAEMON_TEAM).await;

    let place = Place::new("123456789012", "us-east-1");
    let checks = DaemonChecks { deployments: true };
    let counted = |n| Facts {
        cluster_instances: Some(n),
        ..Facts::at(0)
    };
    let alerts = [
        // 3 of 10 agents: 30 % ≥ 20 %, critical.
        alert::alert(
            AlertKind::AgentDisconnected,
            &place,
            CLUSTER,
            on(3, None),
            checks,
            "alerted only",
            counted(10),
        ),
        // 1 of 100 agents: high.
        alert::alert(
            AlertKind::AgentDisconnected,
            &place,
            CLUSTER,
            on(1, None),
            checks,
            "alerted only",
            counted(100),
        ),
        // 1 critical daemon of 100 instances: high; its resolved notice too.
        alert::alert(
            AlertKind::DaemonLost,
            &place,
            CLUSTER,
            on(1, Some("log-router")),
            checks,
            "alerted only",
            counted(100),
        ),
        alert::resolved(
            AlertKind::DaemonLost,
            &place,
            CLUSTER,
            vec![(on(1, Some("log-router")).remove(0), "recovered".into(), 60)],
        ),
    ];
    let severities: Vec<&str> = alerts.iter().map(|a| a.severity.as_str()).collect();
    assert_eq!(severities, ["critical", "high", "high", "high"]);
    let notifier = SnsNotifier::new(
        OnFirstUse::new(&emulator.sdk, aws_sdk_sns::Client::new),
        &topic,
        ChatFormat::Plain,
    );
    for alert in &alerts {
        notifier.publish(alert).await.expect("Publish");
    }

    let paged = received(&emulator, &critical, 2).await;
    let mut paged: Vec<(&str, &str, &str)> = paged
        .iter()
        .map(|a| (value(a, "severity"), value(a, "status"), value(a, "incident")))
        .collect();
    paged.sort_unstable();
    assert_eq!(
        paged,
        [
            ("critical", "firing", alerts[0].incident.as_str()),
            ("high", "resolved", alerts[3].incident.as_str())
        ]
    );

    let told = received(&emulator, &daemons, 2).await;
    let mut statuses: Vec<&str> = told.iter().map(|a| value(a, "status")).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, ["firing", "resolved"]);
    // The alert and its resolved notice carry one incident id: a receiver pairs them.
    assert_eq!(value(&told[0], "incident"), value(&told[1], "incident"));
    for attributes in &told {
        assert_eq!(value(attributes, "kind"), "daemon-lost");
        assert_eq!(value(attributes, "cluster"), "prod");
        assert_eq!(value(attributes, "account"), "123456789012");
        assert_eq!(value(attributes, "region"), "us-east-1");
    }
}
