//! Every kind's alert, reminder, digest and resolved notice, rendered from generated findings,
//! checked against the findings they came from: routing attributes, `dedupKey`s, severity, no
//! placeholder left, subjects whole, lines true for the kind.

use serde_json::Value;

use super::*;
use crate::event::HealthCheck;
use crate::incident::{GroupKey, IncidentKey};

/// SplitMix64, so a failing seed replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        (crate::seeded::splitmix(&mut self.0) % n.max(1) as u64) as usize
    }

    fn name(&mut self, max: usize) -> String {
        let parts = 1 + self.below(8);
        let name: Vec<String> = (0..parts)
            .map(|_| "abcdefghij"[..1 + self.below(10)].repeat(1 + self.below(4)))
            .collect();
        name.join(["-", "_"][self.below(2)]).chars().take(max).collect()
    }
}

const REGIONS: [&str; 4] = ["eu-west-1", "ap-southeast-2", "us-gov-west-1", "ap-northeast-3"];
/// The stack's dashboard, as the template names it (`<stack>-<region>`).
const DASHBOARD: &str = "ecs-watchdog-eu-west-1";
/// 2025-12-05T10:21:00Z: 23 min after the findings' `since`.
const NOW: u64 = 1_764_930_060;

fn instances(rng: &mut Rng, kind: AlertKind, region: &str, cluster: &str) -> Vec<InstanceFinding> {
    let most = if rng.below(3) == 0 { 1 } else { 80 };
    let n = 1 + rng.below(most);
    let daemon = rng.name(60);
    (0..n)
        .map(|i| InstanceFinding {
            container_instance_arn: format!("arn:aws:ecs:{region}:123456789012:container-instance/{cluster}/{i:032x}"),
            ec2_instance_id: (rng.below(5) > 0).then(|| format!("i-{i:017x}")),
            since: Some("2025-12-05T09:58:00Z".into()),
            daemon_name: matches!(kind, AlertKind::DaemonLost | AlertKind::DaemonDeploymentFailed)
                .then(|| daemon.clone()),
            critical: [None, Some(true), Some(false)][rng.below(3)],
            task_arn: (rng.below(2) == 0).then(|| format!("arn:aws:ecs:{region}:123456789012:task/{cluster}/{i:x}")),
            draining: rng.below(3) == 0,
            rollback_failed: rng.below(2) == 0,
            deployment_arn: (kind == AlertKind::DaemonDeploymentFailed && rng.below(4) > 0)
                .then(|| format!("arn:aws:ecs:{region}:123456789012:daemon-deployment/{cluster}/{i:x}")),
            health_checks: vec![HealthCheck {
                check: ["CONTAINER_RUNTIME", "AGENT_CONNECTIVITY", "DAEMON"][rng.below(3)].into(),
                status: "IMPAIRED".into(),
                reason: None,
            }],
            reason: Some("ecs:ListClusters denied".into()),
            silenced_until: (rng.below(3) == 0).then(|| "2025-12-05T11:00:00Z".into()),
            silenced_on: Some(format!("cluster {cluster}")),
            silence_refused: (rng.below(3) == 0).then(|| {
                format!("the tag ecs-watchdog-silence-until on cluster {cluster} is not honoured: \"soon\" is no time")
            }),
            ..Default::default()
        })
        .collect()
}

/// A message of a case: its status, the instances it tells, the message.
type Told = (MessageStatus, Vec<InstanceFinding>, Alert);

/// The messages of one case.
fn messages(rng: &mut Rng, kind: AlertKind) -> (Place, String, Vec<Told>) {
    let region = REGIONS[rng.below(REGIONS.len())];
    let place = Place::new("123456789012", region);
    let cluster = rng.name(255);
    let cluster_arn = format!("arn:aws:ecs:{region}:123456789012:cluster/{cluster}");
    let found = instances(rng, kind, region, &cluster);
    let facts = Facts {
        now: NOW,
        critical_percent: 20,
        cluster_instances: Some(1 + rng.below(200)),
        dashboard: Some(DASHBOARD),
    };
    let checks = DaemonChecks { deployments: true };
    let firing = alert(kind, &place, &cluster_arn, found.clone(), checks, "alerted only", facts);
    let closed = found.iter().map(|i| (i.clone(), "recovered".to_owned(), 840)).collect();
    let messages = vec![
        (MessageStatus::Reminder, found.clone(), firing.clone().as_reminder()),
        (MessageStatus::Firing, found.clone(), firing),
        (
            MessageStatus::Digest,
            found.clone(),
            digest(kind, &place, &cluster_arn, found.clone(), Some(found.len()), facts),
        ),
        (
            MessageStatus::Resolved,
            found.clone(),
            resolved(kind, &place, &cluster_arn, closed),
        ),
    ];
    (place, cluster_arn, messages)
}

fn attribute<'a>(message: &'a Alert, name: &str) -> Option<&'a str> {
    message
        .attributes()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// `<arn>`, `<task-arn>`: a word in angle brackets where a value belongs.
fn placeholder(text: &str) -> Option<&str> {
    text.match_indices('<').find_map(|(at, _)| {
        let rest = &text[at + 1..];
        let end = rest.find('>')?;
        let word = &rest[..end];
        (!word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
            .then_some(&text[at..=at + end + 1])
    })
}

#[test]
fn when_every_kind_is_rendered_then_each_message_is_routable_true_and_actionable() {
    for seed in 0..150 {
        let mut rng = Rng(seed);
        for kind in crate::kinds::KINDS.map(|k| k.kind()) {
            let (place, cluster_arn, messages) = messages(&mut rng, kind);
            for (status, found, message) in messages {
                let at = format!("seed {seed}, {} {}", kind.as_str(), status.as_str());
                routable(&at, kind, status, &place, &cluster_arn, &found, &message);
                true_for_its_kind(&at, kind, status, &found, &message);
            }
        }
    }
}

fn routable(
    at: &str,
    kind: AlertKind,
    status: MessageStatus,
    place: &Place,
    cluster_arn: &str,
    found: &[InstanceFinding],
    message: &Alert,
) {
    let ids: Vec<String> = found
        .iter()
        .map(|i| IncidentKey::new(cluster_arn, kind, &i.container_instance_arn, i.daemon_name.as_deref()).id())
        .collect();
    let incident = match (status, ids.as_slice()) {
        (MessageStatus::Digest, _) | (_, [_, _, ..]) => GroupKey::new(cluster_arn, kind).id(),
        (_, [one]) => one.clone(),
        (_, []) => unreachable!("a case has an instance"),
    };
    let expected = [
        ("account", place.account.as_str()),
        ("cluster", crate::inventory::cluster_name(cluster_arn)),
        ("incident", incident.as_str()),
        ("kind", kind.as_str()),
        ("region", place.region.as_str()),
        ("status", status.as_str()),
    ];
    for (name, value) in expected {
        assert_eq!(attribute(message, name), Some(value), "{at}: attribute {name}");
    }
    let rated = match status {
        MessageStatus::Resolved => severity(kind, found, Facts::at(0)),
        _ => message.severity,
    };
    assert_eq!(attribute(message, "severity"), Some(rated.as_str()), "{at}");
    let json: Value = serde_json::from_str(&message.default).expect("JSON");
    for listed in json["instances"].as_array().expect("instances") {
        let key = listed["dedupKey"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: no dedupKey in {listed}"));
        assert!(
            ids.iter().any(|id| id == key),
            "{at}: {key} is no incident of the finding"
        );
    }
    if status != MessageStatus::Resolved {
        assert_eq!(json["severity"], message.severity.as_str(), "{at}");
    }
}

fn true_for_its_kind(at: &str, kind: AlertKind, status: MessageStatus, found: &[InstanceFinding], message: &Alert) {
    assert!(message.subject.chars().count() < 100, "{at}: {}", message.subject);
    let place = format!("(123456789012, {})", attribute(message, "region").unwrap_or_default());
    assert!(
        message.subject.ends_with(&place),
        "{at}: the place is cut in {:?}",
        message.subject
    );
    let chat = message.message(ChatFormat::Chatbot);
    for text in [&message.email, &chat] {
        assert_eq!(placeholder(text), None, "{at}: a placeholder is left:\n{text}");
    }
    let firing = matches!(status, MessageStatus::Firing | MessageStatus::Reminder);
    if firing && kind != AlertKind::MonitorImpaired {
        assert!(
            message.email.contains(&format!("#dashboards:name={DASHBOARD}")),
            "{at}: no dashboard link:\n{}",
            message.email
        );
    }
    if kind == AlertKind::DaemonDeploymentFailed {
        assert!(!message.subject.contains(" instance"), "{at}: {}", message.subject);
        assert!(!message.email.contains("1 instance"), "{at}: {}", message.email);
    }
    silence_told(at, kind, status, found, message);
    if status == MessageStatus::Resolved {
        return;
    }
    let json: Value = serde_json::from_str(&message.default).expect("JSON");
    let checked: Vec<&str> = json["checked"]
        .as_array()
        .expect("checked")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let listed = json["instances"].as_array().expect("instances").len();
    let shown = &found_sorted(found)[..listed];
    let (draining, active) = (shown.iter().any(|i| i.draining), shown.iter().any(|i| !i.draining));
    if matches!(kind, AlertKind::AgentDisconnected | AlertKind::DaemonLost) {
        assert_eq!(
            checked.iter().any(|c| c.contains("DRAINING")),
            draining,
            "{at}: {checked:?}"
        );
        assert_eq!(
            checked.iter().any(|c| c.contains("still ACTIVE")),
            active,
            "{at}: {checked:?}"
        );
        let first = &shown[0];
        let steps = message.email.split_once("What to do next").map_or("", |(_, s)| s);
        assert_eq!(
            steps.contains("--status DRAINING"),
            !first.draining,
            "{at}: drain advice:\n{steps}"
        );
        let named = steps.contains(&first.container_instance_arn)
            || first.task_arn.as_ref().is_some_and(|task| steps.contains(task));
        assert!(named, "{at}: the commands name neither its ARN nor its task:\n{steps}");
    }
    if kind != AlertKind::MonitorImpaired {
        assert!(message.email.contains("/ecs/v2/clusters/"), "{at}: no console link");
        assert!(message.email.contains("(23 min ago)"), "{at}: no duration");
    }
    if let (AlertKind::AgentDisconnected, Some(id)) = (kind, &shown[0].ec2_instance_id) {
        assert!(
            message.email.contains(&format!("session-manager/{id}")),
            "{at}: no Session Manager link"
        );
    }
}

/// A silence that held the first instance's alert (or one not honoured) is said in its text.
fn silence_told(at: &str, kind: AlertKind, status: MessageStatus, found: &[InstanceFinding], message: &Alert) {
    let first = &found_sorted(found)[0];
    if kind == AlertKind::MonitorImpaired {
        return;
    }
    if let Some(until) = &first.silenced_until {
        let told = format!("silenced until {until}");
        assert!(
            message.email.contains(&told),
            "{at}: {told:?} not said:\n{}",
            message.email
        );
    } else if let (Some(why), true) = (&first.silence_refused, status != MessageStatus::Resolved) {
        let told = format!("not silenced: {why}");
        assert!(
            message.email.contains(&told),
            "{at}: {told:?} not said:\n{}",
            message.email
        );
    }
}

fn found_sorted(found: &[InstanceFinding]) -> Vec<InstanceFinding> {
    let mut sorted = found.to_vec();
    sorted
        .sort_by(|a, b| (&a.daemon_name, &a.container_instance_arn).cmp(&(&b.daemon_name, &b.container_instance_arn)));
    sorted
}

#[test]
fn when_a_placeholder_is_left_then_the_check_finds_it() {
    assert_eq!(placeholder("--container-instances <arn> now"), Some("<arn>"));
    assert_eq!(placeholder("--tasks <task-arn>"), Some("<task-arn>"));
    assert_eq!(placeholder("a < b and c > d, exit code 139"), None);
}

/// Every field path of a JSON document: `instances[].dedupKey`, `digest.joined`.
fn paths(value: &Value, prefix: &str, into: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                into.insert(path.clone());
                paths(field, &path, into);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| paths(item, &format!("{prefix}[]"), into)),
        _ => {}
    }
}

/// docs/findings.md's finding schema names every field a finding of any kind and status carries
/// (over many generated messages; `tests/docs_schema.rs` holds the table to the types both ways):
/// a field added to the finding without a row is a field subscribers cannot rely on.
#[test]
fn when_any_finding_is_serialised_then_the_documented_schema_names_each_of_its_fields() {
    let findings = include_str!("../../../../docs/findings.md");
    let start = findings
        .find("### Schema")
        .expect("docs/findings.md has a finding schema");
    let section = &findings[start..];
    let section = &section[..section.find("\n#").unwrap_or(section.len())];
    let documented: std::collections::HashSet<&str> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|token| token.split(['.', '[', ']']))
        .filter(|name| !name.is_empty())
        .collect();
    let mut fields = std::collections::BTreeSet::new();
    for seed in 0..40 {
        let mut rng = Rng(seed);
        for kind in crate::kinds::KINDS.map(|k| k.kind()) {
            for (_, _, message) in messages(&mut rng, kind).2 {
                paths(&serde_json::from_str(&message.default).expect("JSON"), "", &mut fields);
            }
        }
    }
    let missing: Vec<&String> = fields
        .iter()
        .filter(|path| {
            path.split(['.', '[', ']'])
                .filter(|name| !name.is_empty())
                .any(|name| !documented.contains(name))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "fields without a row in docs/findings.md's finding schema: {missing:?}"
    );
}
