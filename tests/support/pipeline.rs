//! The way events travel in AWS, built in the emulator: an EventBridge rule on the default bus,
//! the SQS checks queue, the dead-letter queue, and the alert topic.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::{Value, json};

use crate::emulator::{ACCOUNT, REGION};

/// The rule patterns (DESIGN §1).
pub const RULES: [(&str, &str); 3] = [
    (
        "ecs-watchdog-agent-disconnected",
        r#"{"source":["aws.ecs"],"detail-type":["ECS Container Instance State Change"],"detail":{"agentConnected":[false],"status":["ACTIVE"]}}"#,
    ),
    (
        "ecs-watchdog-daemon-task-stopped",
        r#"{"source":["aws.ecs"],"detail-type":["ECS Task State Change"],"detail":{"group":[{"prefix":"daemon:"}],"lastStatus":["STOPPED"]}}"#,
    ),
    (
        "ecs-watchdog-daemon-start-impaired",
        r#"{"source":["aws.ecs"],"detail-type":["ECS Daemon Service Action"],"detail":{"eventName":["DAEMON_TASK_START_IMPAIRED"]}}"#,
    ),
];

pub struct Pipeline {
    pub events: aws_sdk_eventbridge::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub dead_letter_queue_url: String,
    pub topic_arn: String,
}

/// A message kept in the dead-letter queue.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub body: String,
    pub reason: Option<String>,
}

impl Pipeline {
    /// Creates the pipeline; the checks queue holds each event for `grace_seconds` first.
    pub async fn create(sdk: &SdkConfig, grace_seconds: u32) -> Self {
        let events = aws_sdk_eventbridge::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let sns = aws_sdk_sns::Client::new(sdk);
        let queue_url = create_queue(&sqs, "ecs-watchdog-checks").await;
        sqs.set_queue_attributes()
            .queue_url(&queue_url)
            .attributes(QueueAttributeName::DelaySeconds, grace_seconds.to_string())
            .send()
            .await
            .expect("SetQueueAttributes");
        let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:ecs-watchdog-checks");
        let dead_letter_queue_url = create_queue(&sqs, "ecs-watchdog-dead-letters").await;
        let topic = sns
            .create_topic()
            .name("ecs-watchdog-alerts")
            .send()
            .await
            .expect("CreateTopic");
        for (name, pattern) in RULES {
            events
                .put_rule()
                .name(name)
                .event_pattern(pattern)
                .send()
                .await
                .expect("PutRule");
            events
                .put_targets()
                .rule(name)
                .targets(Target::builder().id("checks").arn(&queue_arn).build().expect("target"))
                .send()
                .await
                .expect("PutTargets");
        }
        Self {
            events,
            sqs,
            queue_url,
            queue_arn,
            dead_letter_queue_url,
            topic_arn: topic.topic_arn().expect("topic").to_owned(),
        }
    }

    /// What the monitor needs to know of this pipeline.
    pub fn monitor_env(&self) -> Vec<(String, String)> {
        vec![
            ("ALERT_TOPIC_ARN".into(), self.topic_arn.clone()),
            ("DEAD_LETTER_QUEUE_URL".into(), self.dead_letter_queue_url.clone()),
        ]
    }

    /// Puts events on the default bus, ten a call.
    pub async fn put_events(&self, events: &[Value]) {
        for chunk in events.chunks(10) {
            let entries = chunk.iter().map(|e| {
                PutEventsRequestEntry::builder()
                    .source(e["source"].as_str().unwrap_or_default())
                    .detail_type(e["detail-type"].as_str().unwrap_or_default())
                    .set_resources(
                        e["resources"]
                            .as_array()
                            .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()),
                    )
                    .detail(e["detail"].to_string())
                    .build()
            });
            let output = self
                .events
                .put_events()
                .set_entries(Some(entries.collect()))
                .send()
                .await
                .expect("PutEvents");
            assert_eq!(output.failed_entry_count(), 0, "PutEvents: {output:?}");
        }
    }

    /// Sends raw bodies straight to the checks queue (what no rule would let through).
    pub async fn send_raw(&self, body: &str) {
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .expect("SendMessage");
    }

    /// Receives exactly `count` messages from the checks queue as Lambda's SQS records.
    pub async fn receive(&self, count: usize) -> Vec<Value> {
        receive(&self.sqs, &self.queue_url, count)
            .await
            .into_iter()
            .map(|m| self.record(m))
            .collect()
    }

    fn record(&self, m: aws_sdk_sqs::types::Message) -> Value {
        let attributes: serde_json::Map<String, Value> = m
            .attributes()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
            .collect();
        json!({
            "messageId": m.message_id(),
            "receiptHandle": m.receipt_handle(),
            "body": m.body(),
            "attributes": attributes,
            "messageAttributes": {},
            "md5OfBody": m.md5_of_body(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        })
    }

    /// What the dead-letter queue holds, with the reason the monitor gave.
    pub async fn dead_letters(&self, count: usize) -> Vec<DeadLetter> {
        receive(&self.sqs, &self.dead_letter_queue_url, count)
            .await
            .into_iter()
            .map(|m| DeadLetter {
                body: m.body().unwrap_or_default().to_owned(),
                reason: m
                    .message_attributes()
                    .and_then(|a| a.get("watchdog-reject-reason"))
                    .and_then(|v| v.string_value())
                    .map(str::to_owned),
            })
            .collect()
    }

    /// How many messages a queue holds now, visible or not.
    pub async fn depth(&self, queue_url: &str) -> usize {
        let output = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .expect("GetQueueAttributes");
        output
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// The SQS event Lambda hands the function for these records.
pub fn sqs_event(records: &[Value]) -> Value {
    json!({ "Records": records })
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    let output = sqs.create_queue().queue_name(name).send().await.expect("CreateQueue");
    output.queue_url().expect("queue URL").to_owned()
}

async fn receive(sqs: &aws_sdk_sqs::Client, queue_url: &str, count: usize) -> Vec<aws_sdk_sqs::types::Message> {
    let mut messages = Vec::with_capacity(count);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while messages.len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {count} messages arrived",
            messages.len()
        );
        let output = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages((count - messages.len()).min(10) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .visibility_timeout(600)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        messages.extend(output.messages().iter().cloned());
    }
    messages
}
