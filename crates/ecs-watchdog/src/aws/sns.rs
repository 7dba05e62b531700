//! SNS: alerts.

use aws_sdk_sns::Client;
use aws_sdk_sns::operation::publish::builders::PublishFluentBuilder;
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

/// The publish of `alert`: the message the frame measured and serialised, as is (with or without
/// its chat key), its subject, and these very attributes.
pub(crate) fn request(
    client: &Client,
    topic_arn: &str,
    chat: ChatFormat,
    alert: &Alert,
) -> Result<PublishFluentBuilder, AwsError> {
    let mut request = client
        .publish()
        .topic_arn(topic_arn)
        .subject(&alert.subject)
        .message_structure("json")
        .message(alert.message(chat));
    for (name, value) in alert.attributes() {
        request = request.message_attributes(name, attribute(value)?);
    }
    Ok(request)
}

/// What SNS counts of a publish against its 262,144 bytes: the message, and each attribute's
/// name, data type and value; the subject too, to be safe.
/// <https://docs.aws.amazon.com/sns/latest/api/API_Publish.html>
#[cfg(test)]
pub(crate) fn counted(request: &PublishFluentBuilder) -> usize {
    let input = request.as_input();
    let attributes: usize = input
        .get_message_attributes()
        .iter()
        .flatten()
        .map(|(name, value)| name.len() + value.data_type().len() + value.string_value().map_or(0, str::len))
        .sum();
    input.get_message().as_ref().map_or(0, String::len)
        + input.get_subject().as_ref().map_or(0, String::len)
        + attributes
}

#[async_trait::async_trait]
impl Notifier for SnsNotifier {
    async fn publish(&self, alert: &Alert) -> Result<(), AwsError> {
        // The alert was rendered to fit SNS's limit with these very attributes (alert::frame).
        let request = request(self.client.get(), &self.topic_arn, self.chat, alert)?;
        let _turn = self.turns.wait().await;
        request.send().await.map_err(|e| super::sdk_error("sns:Publish", e))?;
        Ok(())
    }
}
