//! Where alerts and findings go, and how they are told: the topic, the dead-letter queue, the
//! findings bus, the hook, the chat format, the critical share and the dashboard.

use super::{ChatFormat, ConfigError, DEFAULT_CRITICAL_PERCENT, invalid, is_arn_of, required};

const TOPIC_ACCEPTED: &str = "an SNS topic ARN (arn:<partition>:sns:<region>:<account>:<name>)";
const QUEUE_ACCEPTED: &str = "an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)";

pub(super) fn alert_topic_arn(get: &impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let arn = required(get, "ALERT_TOPIC_ARN", TOPIC_ACCEPTED)?;
    if !is_arn_of(&arn, "sns") {
        return Err(invalid("ALERT_TOPIC_ARN", &arn, TOPIC_ACCEPTED));
    }
    Ok(arn)
}

pub(super) fn dead_letter_queue_url(get: &impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let url = required(get, "DEAD_LETTER_QUEUE_URL", QUEUE_ACCEPTED)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(invalid("DEAD_LETTER_QUEUE_URL", &url, QUEUE_ACCEPTED));
    }
    Ok(url)
}

pub(super) fn findings_event_bus(get: &impl Fn(&str) -> Option<String>) -> Result<Option<String>, ConfigError> {
    let bus = get("FINDINGS_EVENT_BUS");
    if let Some(bus) = &bus
        && (bus.len() > 1600 || bus.contains(char::is_whitespace))
    {
        return Err(invalid(
            "FINDINGS_EVENT_BUS",
            bus,
            "an EventBridge event bus name or ARN",
        ));
    }
    Ok(bus)
}

pub(super) fn hook_function_arn(get: &impl Fn(&str) -> Option<String>) -> Result<Option<String>, ConfigError> {
    let hook = get("HOOK_FUNCTION_ARN");
    if let Some(arn) = &hook
        && !(is_arn_of(arn, "lambda") && arn.contains(":function:"))
    {
        return Err(invalid(
            "HOOK_FUNCTION_ARN",
            arn,
            "a Lambda function ARN (arn:<partition>:lambda:<region>:<account>:function:<name>)",
        ));
    }
    Ok(hook)
}

pub(super) fn chat(get: &impl Fn(&str) -> Option<String>) -> Result<ChatFormat, ConfigError> {
    match get("CHAT_FORMAT").as_deref() {
        None | Some("plain") => Ok(ChatFormat::Plain),
        Some("chatbot") => Ok(ChatFormat::Chatbot),
        Some(other) => Err(invalid("CHAT_FORMAT", other, "plain, chatbot")),
    }
}

pub(super) fn critical_percent(get: &impl Fn(&str) -> Option<String>) -> Result<u8, ConfigError> {
    match get("CRITICAL_PERCENT") {
        None => Ok(DEFAULT_CRITICAL_PERCENT),
        Some(raw) => raw
            .parse::<u8>()
            .ok()
            .filter(|p| (1..=100).contains(p))
            .ok_or_else(|| invalid("CRITICAL_PERCENT", &raw, "a whole number from 1 to 100")),
    }
}

/// Read once per process, and kept for its life (every rendering names it).
pub(super) fn dashboard(get: &impl Fn(&str) -> Option<String>) -> Option<&'static str> {
    get("DASHBOARD_NAME").map(|name| &*Box::leak(name.into_boxed_str()))
}
