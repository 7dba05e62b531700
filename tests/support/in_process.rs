//! The monitor run in the test's own process, for what only the SDK layer can inject (an
//! outage, the Managed Daemons APIs): real adapters against the emulator, except the clients
//! the test hands in.

use ecs_watchdog::aws::{AwsInventory, DeadLetterQueue, Ec2Inventory, EcsInventory, EmfMetrics, SnsNotifier};
use ecs_watchdog::monitor::Adapters;
use ecs_watchdog::ports::Daemons;
use ecs_watchdog::{Config, Message, Monitor};
use serde_json::Value;

use crate::emulator::{Emulator, REGION};

/// Configuration from `(variable, value)` pairs, as the function would read them.
pub fn config(vars: &[(String, String)]) -> Config {
    Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        .expect("a valid configuration")
}

/// A monitor on the emulator whose inventory uses `ecs` and whose daemon APIs are `daemons`.
pub fn monitor(emulator: &Emulator, config: Config, ecs: aws_sdk_ecs::Client, daemons: Box<dyn Daemons>) -> Monitor {
    let io = Adapters {
        inventory: Box::new(AwsInventory {
            ecs: EcsInventory::new(ecs),
            ec2: Ec2Inventory::new(aws_sdk_ec2::Client::new(&emulator.sdk)),
        }),
        daemons,
        notifier: Box::new(SnsNotifier::new(
            aws_sdk_sns::Client::new(&emulator.sdk),
            &config.alert_topic_arn,
        )),
        quarantine: Box::new(DeadLetterQueue::new(
            aws_sdk_sqs::Client::new(&emulator.sdk),
            &config.dead_letter_queue_url,
        )),
        metrics: Box::new(EmfMetrics::new(&config.metric_namespace)),
    };
    Monitor::new(config, REGION, io)
}

/// SQS records as the monitor's messages.
pub fn messages(records: &[Value]) -> Vec<Message> {
    records
        .iter()
        .map(|r| Message {
            id: r["messageId"].as_str().unwrap_or_default().into(),
            body: r["body"].as_str().unwrap_or_default().into(),
        })
        .collect()
}
