//! Findings out for custom remediation: an EventBridge event per finding, and a hook function
//! invoked asynchronously with the same JSON.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use super::sdk_error;
use crate::alert::Alert;
use crate::ports::{AwsError, FindingSink};

pub const FINDING_SOURCE: &str = "ecs-watchdog";
pub const FINDING_DETAIL_TYPE: &str = "ECS Watchdog Finding";
/// `PutEvents` takes at most ten entries a call.
const PUT_EVENTS_LIMIT: usize = 10;

pub struct EventBridgeFindings {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeFindings {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }
}

#[async_trait::async_trait]
impl FindingSink for EventBridgeFindings {
    async fn send(&self, alerts: &[Alert]) -> Result<(), AwsError> {
        for chunk in alerts.chunks(PUT_EVENTS_LIMIT) {
            let entries = chunk
                .iter()
                .map(|alert| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(FINDING_SOURCE)
                        .detail_type(FINDING_DETAIL_TYPE)
                        .detail(&alert.default)
                        .build()
                })
                .collect();
            let output = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| sdk_error("events:PutEvents", e))?;
            if output.failed_entry_count() > 0 {
                let codes: Vec<&str> = output.entries().iter().filter_map(|e| e.error_code()).collect();
                return Err(AwsError::new(
                    "events:PutEvents",
                    format!("{} entries failed: {codes:?}", output.failed_entry_count()),
                ));
            }
        }
        Ok(())
    }
}

pub struct LambdaHook {
    client: aws_sdk_lambda::Client,
    function_arn: String,
}

impl LambdaHook {
    pub fn new(client: aws_sdk_lambda::Client, function_arn: impl Into<String>) -> Self {
        Self {
            client,
            function_arn: function_arn.into(),
        }
    }
}

#[async_trait::async_trait]
impl FindingSink for LambdaHook {
    async fn send(&self, alerts: &[Alert]) -> Result<(), AwsError> {
        for alert in alerts {
            self.client
                .invoke()
                .function_name(&self.function_arn)
                .invocation_type(InvocationType::Event)
                .payload(Blob::new(alert.default.as_bytes()))
                .send()
                .await
                .map_err(|e| sdk_error("lambda:InvokeFunction", e))?;
        }
        Ok(())
    }
}
