use super::*;
use crate::alert::{AlertKind, DaemonChecks, Facts, InstanceFinding, alert, digest, resolved};
use crate::config::Place;
use crate::incident::{IncidentKey, Lease};

/// SplitMix64, so a failing seed replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        (crate::seeded::splitmix(&mut self.0) % n.max(1) as u64) as usize
    }
}

const NOW: u64 = 1_764_930_060;

fn instances(rng: &mut Rng, kind: AlertKind, cluster: &str) -> Vec<InstanceFinding> {
    (0..1 + rng.below(40))
        .map(|i| InstanceFinding {
            container_instance_arn: format!("arn:aws:ecs:eu-west-1:123456789012:container-instance/{cluster}/{i:032x}"),
            ec2_instance_id: Some(format!("i-{i:017x}")),
            daemon_name: matches!(kind, AlertKind::DaemonLost | AlertKind::DaemonDeploymentFailed)
                .then(|| "log-router".to_owned()),
            critical: [None, Some(true), Some(false)][rng.below(3)],
            rollback_failed: rng.below(2) == 0,
            ..Default::default()
        })
        .collect()
}

/// Every message a case sends: alert, reminder, digest, resolved notice.
fn messages(rng: &mut Rng, kind: AlertKind) -> Vec<Alert> {
    let place = Place::new("123456789012", "eu-west-1");
    // Up to ECS's 255 characters of cluster name, in letters, digits, hyphens, underscores.
    let cluster: String = (0..1 + rng.below(255))
        .map(|_| b"abz09-_"[rng.below(7)] as char)
        .collect();
    let cluster_arn = format!("arn:aws:ecs:eu-west-1:123456789012:cluster/{cluster}");
    let found = instances(rng, kind, &cluster);
    let facts = Facts {
        now: NOW,
        critical_percent: 20,
        cluster_instances: Some(1 + rng.below(100)),
        dashboard: None,
    };
    let checks = DaemonChecks { deployments: true };
    let firing = alert(kind, &place, &cluster_arn, found.clone(), checks, "alerted only", facts);
    let closed = found.iter().map(|i| (i.clone(), "recovered".to_owned(), 60)).collect();
    vec![
        firing.clone().as_reminder(),
        firing,
        digest(kind, &place, &cluster_arn, found.clone(), None, facts),
        resolved(kind, &place, &cluster_arn, closed),
    ]
}

/// What the Events API v2 requires of an alert event, as the test receiver checks it.
fn valid(event: &Value) -> Result<(), String> {
    let action = event["event_action"].as_str().ok_or("no event_action")?;
    let key = event["dedup_key"].as_str().ok_or("no dedup_key")?;
    if key.is_empty() || key.chars().count() > DEDUP_KEY_MAX {
        return Err(format!("dedup_key of {} characters", key.chars().count()));
    }
    match action {
        "resolve" => Ok(()),
        "trigger" => {
            let payload = &event["payload"];
            let summary = payload["summary"].as_str().ok_or("no summary")?;
            if summary.is_empty() || summary.chars().count() > SUMMARY_MAX {
                return Err(format!("summary of {} characters", summary.chars().count()));
            }
            payload["source"]
                .as_str()
                .filter(|s| !s.is_empty())
                .ok_or("no source")?;
            let severity = payload["severity"].as_str().ok_or("no severity")?;
            if !["critical", "error", "warning", "info"].contains(&severity) {
                return Err(format!("severity {severity}"));
            }
            payload["custom_details"].as_object().ok_or("no custom_details")?;
            Ok(())
        }
        other => Err(format!("event_action {other}")),
    }
}

#[test]
fn when_every_kind_and_status_is_sent_then_each_event_is_valid_and_trigger_and_resolve_share_one_key() {
    for seed in 0..100 {
        let mut rng = Rng(seed);
        for kind in AlertKind::ALL {
            let messages = messages(&mut rng, kind);
            let keys: Vec<String> = messages.iter().map(|m| event(m, NOW).dedup_key).collect();
            for (message, key) in messages.iter().zip(&keys) {
                let at = format!("seed {seed}, {} {}", kind.as_str(), message.message_status.as_str());
                let sent = event(message, NOW);
                let json = serde_json::to_value(&sent).expect("serializes");
                assert_eq!(valid(&json), Ok(()), "{at}: {json:#}");
                assert_eq!(sent.event_action, action(message.message_status), "{at}");
                assert_eq!(
                    sent.event_action == Action::Resolve,
                    message.message_status == MessageStatus::Resolved,
                    "{at}"
                );
                if let Some(payload) = &sent.payload {
                    assert_eq!(payload.severity, severity(message.severity), "{at}");
                    assert_eq!(payload.summary, message.subject, "{at}: the subject fits whole");
                }
                assert_eq!(key, &keys[0], "{at}: one key for the cluster and kind");
            }
        }
    }
}

#[test]
fn when_the_severity_is_ours_then_pagerduty_gets_its_own_word() {
    assert_eq!(severity(Severity::Critical), "critical");
    assert_eq!(severity(Severity::High), "error");
    assert_eq!(severity(Severity::Warning), "warning");
}

#[test]
fn when_the_group_id_is_longer_than_255_then_the_key_is_cut_with_a_hash_of_the_whole() {
    let arn = |name: &str| format!("arn:aws:ecs:eu-west-1:123456789012:cluster/{name}");
    let (a, b) = ("a".repeat(254) + "x", "a".repeat(254) + "y");
    let (ka, kb) = (
        dedup_key(&arn(&a), AlertKind::DaemonLost),
        dedup_key(&arn(&b), AlertKind::DaemonLost),
    );
    assert_eq!(ka.len(), DEDUP_KEY_MAX);
    assert_ne!(ka, kb, "clusters that differ only past the cut keep their own key");
    assert_eq!(ka, dedup_key(&arn(&a), AlertKind::DaemonLost), "stable");
    let short = arn("prod");
    assert_eq!(
        dedup_key(&short, AlertKind::AgentDisconnected),
        GroupKey::new(&short, AlertKind::AgentDisconnected).id(),
        "the group's id itself, the SNS `incident` attribute of its digest"
    );
}

#[test]
fn when_a_summary_is_longer_than_1024_bytes_then_it_is_cut_on_a_character() {
    let long = "é".repeat(700);
    let cut = cut(&long, SUMMARY_MAX);
    assert_eq!(cut.len(), 1024);
    assert!(cut.chars().all(|c| c == 'é'));
}

#[test]
fn when_seconds_are_formatted_then_they_read_as_utc() {
    assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
    assert_eq!(iso8601(NOW), "2025-12-05T10:21:00Z");
    assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
}

fn incident(state: State, lease: Option<Notice>, ended_at: u64) -> Incident {
    let key = IncidentKey::new(
        "arn:aws:ecs:eu-west-1:1:cluster/prod",
        AlertKind::AgentDisconnected,
        "a",
        None,
    );
    let mut i = Incident::new(key, state, InstanceFinding::default(), 0);
    i.lease = lease.map(|n| {
        (
            Lease {
                token: "t".into(),
                until: NOW + 60,
            },
            n,
        )
    });
    i.ended_at = ended_at;
    i
}

#[test]
fn when_incidents_of_the_group_remain_then_only_an_alerted_one_not_closing_holds_the_page() {
    let cases = [
        ("alerted", incident(State::Notified, None, 0), true),
        (
            "sending its alert",
            incident(State::Sending, Some(Notice::Alert), 0),
            true,
        ),
        (
            "sending a reminder",
            incident(State::Sending, Some(Notice::Reminder), 0),
            true,
        ),
        (
            "sending its resolved notice",
            incident(State::Sending, Some(Notice::Resolved), 0),
            false,
        ),
        ("seen over, notice owed", incident(State::Notified, None, NOW), false),
        ("resolved notice owed", incident(State::ResolveDue, None, NOW), false),
        ("alert owed", incident(State::Due, None, 0), false),
        ("pending", incident(State::Pending, None, 0), false),
        ("closed", incident(State::Closed, None, 0), false),
    ];
    for (case, i, holds) in cases {
        assert_eq!(holds_page(std::slice::from_ref(&i), NOW), holds, "{case}");
    }
    assert!(!holds_page(&[], NOW), "none left: the page resolves");
}
