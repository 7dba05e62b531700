//! The alert as Amazon Q Developer in chat applications (AWS Chatbot) renders it in Slack and
//! Microsoft Teams: its custom notification format, in the `https` key of the SNS message,
//! the key an HTTPS subscription (which is how Chatbot subscribes to a topic) receives.
//! Format: <https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html>
//! (`version` "1.0", `source` "custom" and `content.description` are required).

use serde_json::{Value, json};

use crate::finding::steps::NextSteps;
use crate::finding::{Alert, Status};

/// The description stays short: a chat message is read at a glance, and the whole SNS message
/// (with this key) must stay within 256 KiB, where the alert leaves 16 KiB of room.
const DESCRIPTION_CHARS: usize = 3_000;
const NEXT_STEPS: usize = 5;

pub(super) fn notification(alert: &Alert) -> Value {
    // What happened is the e-mail before its steps; the steps are the kind's own, as data.
    let summary = alert.email.get(..alert.steps_at).unwrap_or(&alert.email);
    notification_with(alert, description(summary))
}

/// The description of what happened: the start of the e-mail before its steps.
pub(super) fn description(summary: &str) -> String {
    let description = super::shorten(summary.trim(), DESCRIPTION_CHARS);
    if description.contains("\n  - ") {
        // The instance list keeps its layout as a block.
        description.replacen("\n  - ", "\n```\n  - ", 1) + "\n```"
    } else {
        description
    }
}

/// The notification of `alert` with this description.
pub(super) fn notification_with(alert: &Alert, description: String) -> Value {
    let mut next_steps = alert.next_steps.as_ref().map(NextSteps::for_chat).unwrap_or_default();
    next_steps.truncate(NEXT_STEPS);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertKind, DaemonChecks, Facts, InstanceFinding, alert};
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

    /// The steps as the e-mail lays them out, read back from its text: a numbered or bulleted
    /// line starts a step, an indented line is its command, any other line stands alone.
    fn steps_in(email: &str) -> Vec<String> {
        let mut steps: Vec<String> = Vec::new();
        for line in email.lines().skip_while(|l| !l.starts_with("What to do next")).skip(1) {
            let marker = line
                .split_once(". ")
                .filter(|(n, _)| n.bytes().all(|b| b.is_ascii_digit()));
            match (line.strip_prefix("   "), marker, line.strip_prefix("- ")) {
                (Some(command), _, _) => {
                    let step = steps.last_mut().expect("a command follows its step");
                    *step = format!("{step} {command}");
                }
                (None, Some((_, text)), _) | (None, None, Some(text)) => steps.push(text.to_owned()),
                (None, None, None) => steps.push(line.to_owned()),
            }
        }
        steps
    }

    /// Every kind, an instance ECS drains and one it does not: the chat lists the very steps the
    /// e-mail says (both come from the kind's one list), all of them.
    #[test]
    fn when_any_kind_alerts_then_the_chat_steps_are_the_e_mail_steps() {
        for kind in crate::kinds::KINDS.map(|k| k.kind()) {
            for draining in [false, true] {
                let instance = InstanceFinding {
                    container_instance_arn: "arn:aws:ecs:eu-west-1:210987654321:container-instance/prod/abc".into(),
                    ec2_instance_id: Some("i-0abc".into()),
                    daemon_name: Some("log-router".into()),
                    task_arn: Some("arn:aws:ecs:eu-west-1:210987654321:task/prod/t1".into()),
                    deployment_arn: draining.then(|| "arn:aws:ecs:eu-west-1:210987654321:daemon-deployment/d".into()),
                    rollback_failed: draining,
                    draining,
                    ..Default::default()
                };
                let place = Place::new("210987654321", "eu-west-1");
                let checks = DaemonChecks { deployments: true };
                let cluster = "arn:aws:ecs:eu-west-1:210987654321:cluster/prod";
                let sent = alert(
                    kind,
                    &place,
                    cluster,
                    vec![instance],
                    checks,
                    "alerted only",
                    Facts::at(0),
                );
                let https = notification(&sent);
                let chat: Vec<&str> = https["content"]["nextSteps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap())
                    .collect();
                let email = steps_in(&sent.email);
                assert!(email.len() >= 2, "{kind:?}: {}", sent.email);
                assert_eq!(chat, email, "{kind:?}, draining {draining}");
                let summary = https["content"]["description"].as_str().unwrap();
                assert!(!summary.contains("What to do next"), "{kind:?}: {summary}");
            }
        }
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
