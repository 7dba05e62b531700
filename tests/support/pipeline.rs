//! The way events travel in AWS, built in the emulator from `template.yaml`: the EventBridge
//! rules on the default bus, the SQS checks queue and dead-letter queues, and the alert topic.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, RuleState, Target};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::{Value, json};

use crate::emulator::{ACCOUNT, REGION};
use crate::runtime::Function;
use crate::template::{self, Stack};

pub struct Pipeline {
    pub events: aws_sdk_eventbridge::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub dead_letter_queue_url: String,
    pub topic_arn: String,
    stack: Stack,
}

/// A message kept in the dead-letter queue.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub body: String,
    pub reason: Option<String>,
}

/// The hub's bus in the test bed (the stack's is `<stack name>-hub`).
pub const HUB_BUS: &str = "ecs-watchdog-hub";

impl Pipeline {
    /// The pipeline with the template's defaults; the checks queue holds each event for
    /// `grace_seconds` first.
    pub async fn create(sdk: &SdkConfig, grace_seconds: u32) -> Self {
        Self::from_template(sdk, &[("GracePeriodSeconds", &grace_seconds.to_string())]).await
    }

    /// Creates what `template.yaml` declares for events, queues and alerts, with these stack
    /// parameters: every queue with its attributes, the topic, every rule with its pattern,
    /// state and targets.
    pub async fn from_template(sdk: &SdkConfig, parameters: &[(&str, &str)]) -> Self {
        let events = aws_sdk_eventbridge::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let sns = aws_sdk_sns::Client::new(sdk);
        let mut stack = Stack::new(parameters);

        // Dead-letter queues first: the others name them in their redrive policy.
        let mut queues = template::resources_of_type("AWS::SQS::Queue");
        queues.sort_by_key(|id| template::properties(id).get("RedrivePolicy").is_some());
        for id in queues {
            let properties = template::properties(id);
            let mut request = sqs.create_queue().queue_name(id);
            for (property, attribute) in [
                ("DelaySeconds", QueueAttributeName::DelaySeconds),
                ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
                ("MessageRetentionPeriod", QueueAttributeName::MessageRetentionPeriod),
            ] {
                if let Some(value) = properties.get(property) {
                    request = request.attributes(attribute, stack.resolve(value));
                }
            }
            if let Some(redrive) = properties.get("RedrivePolicy") {
                let policy = json!({
                    "deadLetterTargetArn": stack.resolve(&redrive["deadLetterTargetArn"]),
                    "maxReceiveCount": stack.resolve(&redrive["maxReceiveCount"]),
                });
                request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
            }
            let url = request
                .send()
                .await
                .expect("CreateQueue")
                .queue_url()
                .expect("queue URL")
                .to_owned();
            stack
                .attributes
                .insert(format!("{id}.Arn"), format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{id}"));
            stack.attributes.insert(format!("{id}.QueueName"), id.to_owned());
            stack.refs.insert(id.to_owned(), url);
        }
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        for id in template::resources_of_type("AWS::DynamoDB::Table") {
            create_table(&dynamodb, id, template::properties(id)).await;
            stack.refs.insert(id.to_owned(), id.to_owned());
            stack.attributes.insert(
                format!("{id}.Arn"),
                format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{id}"),
            );
        }
        // The Command documents the functions send (restart-agent): as the stack creates them.
        let ssm = aws_sdk_ssm::Client::new(sdk);
        for id in template::created_of_type(&stack, "AWS::SSM::Document") {
            let properties = template::properties(id);
            let name = stack.resolve(&properties["Name"]);
            create_command_document(&ssm, id, &name).await;
            stack.refs.insert(id.to_owned(), name);
        }
        // The topics the stack creates: with AlertTopicArn, alerts go to that existing topic.
        for id in template::created_of_type(&stack, "AWS::SNS::Topic") {
            let topic = sns.create_topic().name(id).send().await.expect("CreateTopic");
            stack
                .refs
                .insert(id.to_owned(), topic.topic_arn().expect("topic ARN").to_owned());
        }
        for id in template::created_of_type(&stack, "AWS::Events::Rule") {
            let properties = template::properties(id);
            // A rule of the hub's own bus (DESIGN §10) goes on a bus of that name.
            let bus = properties.get("EventBusName").map(|_| HUB_BUS.to_owned());
            if let Some(bus) = &bus {
                let _ = events.create_event_bus().name(bus).send().await;
            }
            let state = match stack.resolve(&properties["State"]).as_str() {
                "DISABLED" => RuleState::Disabled,
                _ => RuleState::Enabled,
            };
            let pattern = properties["EventPattern"].to_string();
            events
                .put_rule()
                .name(id)
                .set_event_bus_name(bus.clone())
                .event_pattern(pattern)
                .state(state)
                .send()
                .await
                .expect("PutRule");
            for target in properties["Targets"].as_array().expect("Targets") {
                let target = Target::builder()
                    .id(stack.resolve(&target["Id"]))
                    .arn(stack.resolve(&target["Arn"]))
                    .build()
                    .expect("target");
                events
                    .put_targets()
                    .rule(id)
                    .set_event_bus_name(bus.clone())
                    .targets(target)
                    .send()
                    .await
                    .expect("PutTargets");
            }
        }

        let queue_url = stack.refs["ChecksQueue"].clone();
        let queue_arn = stack.attributes["ChecksQueue.Arn"].clone();
        let dead_letter_queue_url = stack.refs["DeadLetterQueue"].clone();
        let topic_arn =
            stack.resolve(&template::properties("MonitorFunction")["Environment"]["Variables"]["ALERT_TOPIC_ARN"]);
        Self {
            events,
            sqs,
            queue_url,
            queue_arn,
            dead_letter_queue_url,
            topic_arn,
            stack,
        }
    }

    /// The URL of one of the template's queues, by logical id.
    pub fn queue(&self, logical_id: &str) -> &str {
        &self.stack.refs[logical_id]
    }

    /// The function's whole environment as deployed against `emulator`: its endpoint and
    /// credentials, then the variables the template sets.
    pub fn function_env(&self, emulator: &crate::emulator::Emulator) -> Vec<(String, String)> {
        let mut env = emulator.env();
        env.extend(self.monitor_env());
        env
    }

    /// The sweep's whole environment as deployed against `emulator`.
    pub fn sweep_env(&self, emulator: &crate::emulator::Emulator) -> Vec<(String, String)> {
        let mut env = emulator.env();
        env.extend(self.stack.environment_of("SweepFunction"));
        env
    }

    /// The monitor's environment as the template sets it, resolved for this pipeline.
    pub fn monitor_env(&self) -> Vec<(String, String)> {
        self.stack.function_environment()
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

    /// Receives `count` messages from the checks queue and hands them to `function` in one
    /// invocation, as Lambda's event source mapping does: the records and the answer.
    pub async fn deliver(&self, function: &Function, count: usize) -> (Vec<Value>, Value) {
        let records = self.receive(count).await;
        let answer = function
            .invoke(&sqs_event(&records))
            .await
            .expect("the batch is handled");
        (records, answer)
    }

    /// Makes received messages visible again at once, as SQS does when their visibility
    /// timeout ends without a delete: the next receive hands them out again.
    pub async fn redeliver(&self, records: &[Value]) {
        for record in records {
            self.sqs
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(record["receiptHandle"].as_str().expect("a receipt handle"))
                .visibility_timeout(0)
                .send()
                .await
                .expect("ChangeMessageVisibility");
        }
    }

    /// The checks queue's visibility timeout, in seconds: how long a message handed out waits
    /// before it is handed out again.
    pub async fn visibility_timeout(&self) -> u64 {
        let output = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .expect("GetQueueAttributes");
        output
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
            .and_then(|n| n.parse().ok())
            .expect("a visibility timeout")
    }

    /// The incident table's name as the functions get it (`INCIDENT_TABLE_NAME`).
    pub fn incident_table(&self) -> String {
        self.monitor_env()
            .into_iter()
            .find(|(name, _)| name == "INCIDENT_TABLE_NAME")
            .map(|(_, table)| table)
            .expect("the template sets INCIDENT_TABLE_NAME")
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

    /// Empties the checks queue.
    pub async fn purge(&self) {
        self.sqs
            .purge_queue()
            .queue_url(&self.queue_url)
            .send()
            .await
            .expect("PurgeQueue");
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
/// Creates the template's Command document `logical_id` (an `AWS::SSM::Document`) under `name`,
/// with its content, as the stack does.
pub async fn create_command_document(ssm: &aws_sdk_ssm::Client, logical_id: &str, name: &str) {
    ssm.create_document()
        .name(name)
        .content(template::properties(logical_id)["Content"].to_string())
        .document_type(aws_sdk_ssm::types::DocumentType::Command)
        .document_format(aws_sdk_ssm::types::DocumentFormat::Json)
        .send()
        .await
        .expect("CreateDocument");
}

pub fn sqs_event(records: &[Value]) -> Value {
    json!({ "Records": records })
}
async fn receive(sqs: &aws_sdk_sqs::Client, queue_url: &str, count: usize) -> Vec<aws_sdk_sqs::types::Message> {
    let mut messages = Vec::with_capacity(count);
    // A deadline only for a test that fails: a loaded machine (two cores under a parallel run)
    // took over 60 s for 500 messages at 10 a call, so it is generous.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
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

/// Creates a table as the template declares its keys (on demand).
async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str, properties: &Value) {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for attribute in properties["AttributeDefinitions"]
        .as_array()
        .expect("AttributeDefinitions")
    {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute["AttributeName"].as_str().unwrap())
                .attribute_type(ScalarAttributeType::from(attribute["AttributeType"].as_str().unwrap()))
                .build()
                .unwrap(),
        );
    }
    for key in properties["KeySchema"].as_array().expect("KeySchema") {
        request = request.key_schema(
            KeySchemaElement::builder()
                .attribute_name(key["AttributeName"].as_str().unwrap())
                .key_type(KeyType::from(key["KeyType"].as_str().unwrap()))
                .build()
                .unwrap(),
        );
    }
    for index in properties["GlobalSecondaryIndexes"].as_array().into_iter().flatten() {
        request = request.global_secondary_indexes(global_index(index));
    }
    request.send().await.expect("CreateTable");
}

fn global_index(index: &Value) -> aws_sdk_dynamodb::types::GlobalSecondaryIndex {
    use aws_sdk_dynamodb::types::{GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType};
    let keys = index["KeySchema"].as_array().expect("KeySchema").iter().map(|key| {
        KeySchemaElement::builder()
            .attribute_name(key["AttributeName"].as_str().unwrap())
            .key_type(KeyType::from(key["KeyType"].as_str().unwrap()))
            .build()
            .unwrap()
    });
    let projection = &index["Projection"];
    let attributes = projection["NonKeyAttributes"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect());
    GlobalSecondaryIndex::builder()
        .index_name(index["IndexName"].as_str().unwrap())
        .set_key_schema(Some(keys.collect()))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::from(projection["ProjectionType"].as_str().unwrap()))
                .set_non_key_attributes(attributes)
                .build(),
        )
        .build()
        .unwrap()
}
