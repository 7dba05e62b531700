//! The alert as Amazon Q Developer in chat applications (AWS Chatbot) renders it in Slack and
//! Microsoft Teams: its custom notification format, in the `https` key of the SNS message,
//! the key an HTTPS subscription (which is how Chatbot subscribes to a topic) receives.
//! Format: <https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html>
//! (`version` "1.0", `source` "custom" and `content.description` are required).

use serde_json::{Value, json};

use super::finding::{Alert, Status};

/// The description stays short: a chat message is read at a glance, and the whole SNS message
/// (with this key) must stay within 256 KiB, where the alert leaves 16 KiB of room.
const DESCRIPTION_CHARS: usize = 3_000;
const NEXT_STEPS: usize = 5;

/// Where the e-mail's steps start; every alert's text has this line.
const STEPS_HEADING: &str = "What to do next:";

pub(super) fn notification(alert: &Alert) -> Value {
    let (summary, steps) = alert
        .email
        .split_once(STEPS_HEADING)
        .unwrap_or((alert.email.as_str(), ""));
    let mut description = super::shorten(summary.trim(), DESCRIPTION_CHARS);
    if description.contains("\n  - ") {
        // The instance list keeps its layout as a block.
        description = description.replacen("\n  - ", "\n```\n  - ", 1) + "\n```";
    }
    let next_steps: Vec<String> = steps
        .lines()
        .filter_map(|line| numbered(line.trim()))
        .take(NEXT_STEPS)
        .collect();
    let icon = match alert.status {
        Status::Firing => ":rotating_light:",
        Status::Resolved => ":white_check_mark:",
    };
    json!({
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": format!("{icon} {}", alert.subject),
            "description": description,
            "nextSteps": next_steps,
            "keywords": [alert.kind.as_str(), alert.status.as_str(), alert.cluster_name.as_str()],
        },
        "metadata": {
            // A resolved notice lands in the thread of the alert it closes.
            "threadId": alert.thread,
            "summary": alert.subject,
            "eventType": alert.kind.as_str(),
            "additionalContext": {"status": alert.status.as_str(), "cluster": alert.cluster_name},
        },
    })
}

/// `3. Restart it: ...` → `Restart it: ...`.
fn numbered(line: &str) -> Option<String> {
    let (number, rest) = line.split_once(". ")?;
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())).then(|| rest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertKind, DaemonChecks, InstanceFinding, alert};
    use crate::config::{ChatFormat, Place};

    fn firing() -> Alert {
        let instance = InstanceFinding {
            container_instance_arn: "arn:aws:ecs:eu-west-1:210987654321:container-instance/prod/abc".into(),
            ec2_instance_id: Some("i-0abc".into()),
            ..Default::default()
        };
        alert(
            AlertKind::AgentDisconnected,
            &Place::new("210987654321", "eu-west-1"),
            "arn:aws:ecs:eu-west-1:210987654321:cluster/prod",
            vec![instance],
            DaemonChecks { deployments: true },
            "alerted only: remediation is off",
            crate::alert::Facts::at(0),
        )
    }

    /// The fields the custom notification page marks required, with the values it documents.
    #[test]
    fn when_chat_is_chatbot_then_the_https_key_carries_the_documented_required_fields() {
        let message: Value = serde_json::from_str(&firing().message(ChatFormat::Chatbot)).unwrap();
        let https: Value = serde_json::from_str(message["https"].as_str().expect("an https key")).unwrap();
        assert_eq!(https["version"], "1.0");
        assert_eq!(https["source"], "custom");
        let description = https["content"]["description"].as_str().unwrap();
        assert!(!description.is_empty());
        assert!(description.contains("i-0abc"), "{description}");
        assert!(description.contains("210987654321, eu-west-1"), "{description}");
        assert_eq!(https["content"]["textType"], "client-markdown");
        let steps: Vec<&str> = https["content"]["nextSteps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert!(steps.len() >= 3, "{steps:?}");
        assert!(steps[0].starts_with("Open a shell on the instance"), "{steps:?}");
        assert_eq!(
            https["metadata"]["threadId"],
            "210987654321/eu-west-1/prod/agent-disconnected"
        );
        // The other protocols are what they were.
        assert!(
            message["default"]
                .as_str()
                .unwrap()
                .contains("\"kind\":\"agent-disconnected\"")
        );
        assert!(message["email"].as_str().unwrap().contains("What to do next:"));
    }

    #[test]
    fn when_chat_is_plain_then_there_is_no_https_key() {
        let message: Value = serde_json::from_str(&firing().message(ChatFormat::Plain)).unwrap();
        assert_eq!(
            message.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["default", "email"]
        );
    }

    #[test]
    fn when_an_incident_resolves_then_its_notice_threads_under_the_alert() {
        let notice = crate::alert::resolved(
            AlertKind::AgentDisconnected,
            &Place::new("210987654321", "eu-west-1"),
            "arn:aws:ecs:eu-west-1:210987654321:cluster/prod",
            vec![(InstanceFinding::default(), "recovered".into(), 60)],
        );
        let https = notification(&notice);
        assert_eq!(
            https["metadata"]["threadId"],
            notification(&firing())["metadata"]["threadId"]
        );
        assert_eq!(https["content"]["keywords"][1], "resolved");
    }
}
