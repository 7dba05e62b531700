//! SNS: alerts.

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

use super::shared::{OnFirstUse, Turns};
use crate::alert::Alert;
use crate::config::ChatFormat;
use crate::ports::{AwsError, Notifier};

pub struct SnsNotifier {
    client: OnFirstUse<Client>,
    topic_arn: String,
    chat: ChatFormat,
    turns: Turns,
}

impl SnsNotifier {
    pub fn new(client: OnFirstUse<Client>, topic_arn: impl Into<String>, chat: ChatFormat) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
            chat,
            turns: Turns::new(),
        }
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue, AwsError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| AwsError::new("sns:Publish", e))
}

#[async_trait::async_trait]
impl Notifier for SnsNotifier {
    async fn publish(&self, alert: &Alert) -> Result<(), AwsError> {
        let _turn = self.turns.wait().await;
        self.client
            .get()
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&alert.subject)
            .message_structure("json")
            .message(alert.message(self.chat))
            .message_attributes("cluster", attribute(&alert.cluster_name)?)
            .message_attributes("kind", attribute(alert.kind.as_str())?)
            .message_attributes("severity", attribute(alert.severity.as_str())?)
            .message_attributes("status", attribute(alert.status.as_str())?)
            .send()
            .await
            .map_err(|e| super::sdk_error("sns:Publish", e))?;
        Ok(())
    }
}
