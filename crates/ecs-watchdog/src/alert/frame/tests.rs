//! Promise 5 (fits) as a property: every kind of message, generated over many shapes and sizes,
//! fits SNS, and what it lists plus what it says it left out is everything.

use crate::finding::lines::{shorten, shorten_name};
use serde_json::Value;

use super::*;
use crate::alert::{AlertKind, DaemonChecks, InstanceFinding, SERVICES_LISTED, ServiceTasks, alert, digest, resolved};
use crate::config::Place;
use crate::event::ContainerExit;

/// SplitMix64: a seeded generator, so a failing case prints its seed and replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        crate::seeded::splitmix(&mut self.0)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16)]))
            .collect()
    }

    /// Words that cost more than they look: multi-byte characters, JSON escapes, control
    /// characters (escaped twice: the finding is JSON inside the JSON message).
    fn text(&mut self, max_words: usize) -> String {
        const WORDS: [&str; 12] = [
            "Essential",
            "container",
            "exited",
            "Überprüfung",
            "日本語のテキスト",
            "🚨🔥",
            "\"quoted\"",
            "back\\slash",
            "tab\there",
            "ctl\u{1}\u{1f}",
            "line\nbreak",
            "OutOfMemoryError:",
        ];
        let words = 1 + self.below(max_words);
        (0..words).map(|_| self.pick(&WORDS)).collect::<Vec<_>>().join(" ")
    }

    /// An ECS name of up to 255 characters (letters, digits, `-`, `_`).
    fn name(&mut self) -> String {
        let len = 1 + if self.below(3) == 0 {
            self.below(255)
        } else {
            self.below(30)
        };
        (0..len)
            .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789-_ABCDEFXYZ"[self.below(47)]))
            .collect()
    }
}

const REGIONS: [&str; 4] = ["eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-northwest-1"];

struct Case {
    place: Place,
    cluster_arn: String,
    instances: Vec<InstanceFinding>,
}

fn case(rng: &mut Rng, daemons: bool) -> Case {
    let place = Place::new(format!("{:012}", rng.next() % 1_000_000_000_000), rng.pick(&REGIONS));
    let cluster = rng.name();
    let cluster_arn = format!("arn:aws:ecs:{}:{}:cluster/{cluster}", place.region, place.account);
    let total = 1 + if rng.below(3) == 0 {
        rng.below(10)
    } else {
        rng.below(5_000)
    };
    let daemon_names: Vec<String> = (0..1 + rng.below(3)).map(|_| rng.name() + "-ü日本").collect();
    let instances = (0..total)
        .map(|_| InstanceFinding {
            container_instance_arn: format!(
                "arn:aws:ecs:{}:{}:container-instance/{cluster}/{}",
                place.region,
                place.account,
                rng.hex(32)
            ),
            ec2_instance_id: Some(format!("i-{}", rng.hex(17))),
            availability_zone: Some(format!("{}a", place.region)),
            since: Some("2026-12-04T20:15:00Z".into()),
            running_tasks_count: rng.below(100) as i32,
            agent_version: Some("1.90.0".into()),
            daemon_name: daemons.then(|| daemon_names[rng.below(daemon_names.len())].clone()),
            stop_code: daemons.then(|| "EssentialContainerExited".into()),
            stopped_reason: Some(rng.text(200)),
            containers: vec![ContainerExit {
                name: rng.name(),
                exit_code: Some(137),
                reason: Some(rng.text(40)),
            }],
            remediation: (rng.below(2) == 0).then(|| rng.text(20)),
            // The services an alert names (issue 25): up to the most listed, names up to 255.
            services: (rng.below(2) == 0).then(|| {
                (0..rng.below(SERVICES_LISTED + 1))
                    .map(|_| ServiceTasks {
                        name: rng.name(),
                        tasks: 1 + rng.below(50),
                    })
                    .collect()
            }),
            services_omitted: rng.below(3) * rng.below(30),
            deployment_arn: Some(format!(
                "arn:aws:ecs:{}:{}:daemon-deployment/{}",
                place.region,
                place.account,
                rng.hex(32)
            )),
            ..Default::default()
        })
        .collect();
    Case {
        place,
        cluster_arn,
        instances,
    }
}

/// One message of each kind the topic receives, for this case.
fn messages(rng: &mut Rng) -> Vec<(&'static str, usize, Alert)> {
    const KINDS: [AlertKind; 4] = [
        AlertKind::AgentDisconnected,
        AlertKind::DaemonLost,
        AlertKind::InstanceImpaired,
        AlertKind::DaemonDeploymentFailed,
    ];
    let kind = KINDS[rng.below(KINDS.len())];
    let Case {
        place,
        cluster_arn,
        instances,
    } = case(rng, kind != AlertKind::AgentDisconnected);
    let total = instances.len();
    let checks = DaemonChecks {
        deployments: rng.below(2) == 0,
    };
    let action = rng.text(30);
    let firing = alert(
        kind,
        &place,
        &cluster_arn,
        instances.clone(),
        checks,
        &action,
        crate::alert::Facts::at(0),
    );
    let closed = instances
        .iter()
        .map(|i| (i.clone(), rng.text(30), rng.next() % 1_000_000))
        .collect();
    vec![
        ("reminder", total, firing.clone().as_reminder()),
        ("alert", total, firing),
        (
            "digest",
            total,
            digest(
                kind,
                &place,
                &cluster_arn,
                instances,
                Some(total + 7),
                crate::alert::Facts::at(0),
            ),
        ),
        ("resolved", total, resolved(kind, &place, &cluster_arn, closed)),
    ]
}

/// The bytes of the publish request `aws/sns.rs` builds for the message, as SNS counts them:
/// the message, the subject and every attribute, read back from the request itself.
fn handed_to_sns(message: &Alert, chat: ChatFormat) -> usize {
    let config = aws_sdk_sns::Config::builder()
        .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
        .region(aws_sdk_sns::config::Region::new("eu-west-1"))
        .build();
    let client = aws_sdk_sns::Client::from_conf(config);
    let topic = "arn:aws:sns:eu-west-1:123456789012:alerts";
    let request = crate::aws::sns::request(&client, topic, chat, message).expect("a request");
    assert_eq!(
        request.as_input().get_message().as_deref(),
        Some(message.message(chat).as_str())
    );
    crate::aws::sns::counted(&request)
}

/// How many instances the e-mail names (its list ends where the checks begin), and how many
/// more it says there are.
fn named_and_more(email: &str) -> (usize, usize) {
    let list = email
        .split_once("What the monitor checked:")
        .map_or(email, |(list, _)| list);
    let named = list.matches("\n  - ").count();
    let more = email
        .split_once("  ... and ")
        .and_then(|(_, rest)| rest.split_once(' '))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0);
    (named, more)
}

#[test]
fn when_messages_of_every_kind_and_size_are_rendered_then_each_fits_sns_and_counts_every_instance() {
    let cases: u64 = std::env::var("FIT_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    for seed in 0..cases {
        let mut rng = Rng(seed);
        for (what, total, message) in messages(&mut rng) {
            let at = format!("seed {seed}: {what} of {:?}, {total} instances", message.kind);
            for chat in [ChatFormat::Plain, ChatFormat::Chatbot] {
                let bytes = handed_to_sns(&message, chat);
                assert!(bytes <= SNS_MAX_BYTES, "{at}, {chat:?}: {bytes} bytes");
            }
            assert!(message.subject.chars().count() < 100, "{at}: {}", message.subject);
            assert!(
                !message.subject.chars().any(char::is_control),
                "{at}: {}",
                message.subject
            );
            let json: Value = serde_json::from_str(&message.default).expect("the finding is JSON");
            let listed = json["instances"].as_array().map_or(0, Vec::len);
            let omitted = json.get("omitted").and_then(Value::as_u64).unwrap_or(0) as usize;
            assert_eq!(listed + omitted, total, "{at}: listed {listed}, omitted {omitted}");
            let (named, more) = named_and_more(&message.email);
            assert_eq!(named, listed.min(crate::finding::EMAIL_LISTED), "{at}");
            assert_eq!(named + more, total, "{at}: named {named}, and {more} more");
        }
    }
}

#[test]
fn when_a_subject_is_cut_then_it_is_under_100_characters_and_cut_between_words() {
    let split = |text: &str| -> Vec<String> {
        text.replace('…', "")
            .split(|c: char| c.is_whitespace() || "-_./:(),".contains(c))
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    };
    for seed in 0..2_000 {
        let mut rng = Rng(seed);
        let words = 1 + rng.below(12);
        let prefix = format!("{} on {} instances in ", rng.text(words), rng.below(5_001));
        let name = rng.name();
        let suffix = format!(" ({:012}, {})", rng.next() % 1_000_000_000_000, rng.pick(&REGIONS));
        let cut = subject(&prefix, &name, &suffix);
        let uncut: String = format!("{prefix}{name}{suffix}")
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let whole = split(&uncut);
        assert!(cut.chars().count() < 100, "seed {seed}: {cut}");
        assert!(!cut.chars().any(char::is_control), "seed {seed}: {cut:?}");
        assert!(cut.ends_with(&suffix), "seed {seed}: the place is cut in {cut:?}");
        let reminder = prefixed("Still open: ", &cut);
        assert!(
            reminder.chars().count() < 100 && reminder.ends_with(&suffix),
            "seed {seed}: {reminder:?}"
        );
        for piece in split(&cut) {
            assert!(
                whole.contains(&piece),
                "seed {seed}: {piece:?} is cut out of a word in {cut:?}"
            );
        }
    }
}

#[test]
fn when_a_name_has_no_separator_then_it_is_left_out_rather_than_cut() {
    assert_eq!(shorten_name(&"c".repeat(255), 40), "…");
    assert_eq!(shorten_name("payments-eu-west-1-blue", 15), "payments-eu…");
    assert_eq!(shorten("Resolved: ECS agent disconnected", 20), "Resolved: ECS agent…");
}
