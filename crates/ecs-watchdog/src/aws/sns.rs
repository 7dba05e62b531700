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
        .data_type(crate::alert::ATTRIBUTE_TYPE)
        .string_value(value)
        .build()
        .map_err(|e| AwsError::new("sns:Publish", e))
}

#[async_trait::async_trait]
impl Notifier for SnsNotifier {
    async fn publish(&self, alert: &Alert) -> Result<(), AwsError> {
        // The alert was rendered to fit SNS's limit with these very attributes (alert::frame).
        let mut request = self
            .client
            .get()
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&alert.subject)
            .message_structure("json")
            .message(alert.message(self.chat));
        for (name, value) in alert.attributes() {
            request = request.message_attributes(name, attribute(value)?);
        }
        let _turn = self.turns.wait().await;
        request.send().await.map_err(|e| super::sdk_error("sns:Publish", e))?;
        Ok(())
    }
}
