//! Silences: planned work on a cluster or a container instance, said with a tag
//! `ecs-watchdog-silence-until=<ISO-8601 time>`. While it lasts, new incidents there open but
//! their alert waits for its end (then it goes out if the problem is still there); what ended
//! inside it closes without a word. Pure: tag values and now in, a hold out.

use std::collections::HashMap;

use aws_smithy_types::date_time::{DateTime, Format};
use tracing::warn;

use crate::inventory::{cluster_name, instance_key};
use crate::key::IncidentKey;

/// The tag on a cluster or a container instance.
pub const TAG_KEY: &str = "ecs-watchdog-silence-until";

/// How far ahead a silence may reach: a maintenance window, not a way to stop watching (that is
/// the monitoring tag's job). A value further ahead is most often a typo (`2027` for `2026`),
/// and a silence forgotten for a year is a cluster nobody is paged for: it is not honoured.
pub const MAX_AHEAD_SECONDS: u64 = 7 * 24 * 3600;

/// What one tag value says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// Silenced until this UNIX second.
    Until(u64),
    /// A time that has passed: no silence.
    Past,
    /// Not honoured (unreadable, or too far ahead): paging is the safe side.
    Refused(String),
}

/// Reads a tag value at `now` (UNIX seconds). ISO-8601 with an offset or `Z`
/// (`2026-12-05T18:00:00Z`, `2026-12-05T19:00:00+01:00`).
pub fn read(value: &str, now: u64) -> Reading {
    let Some(end) = parse(value.trim()) else {
        return Reading::Refused(format!(
            "{value:?} is not an ISO-8601 time with an offset or Z (e.g. 2026-12-05T18:00:00Z)"
        ));
    };
    match end {
        end if end <= now => Reading::Past,
        end if end - now > MAX_AHEAD_SECONDS => Reading::Refused(format!(
            "{value:?} is more than {} days ahead",
            MAX_AHEAD_SECONDS / 86_400
        )),
        end => Reading::Until(end),
    }
}

/// An RFC 3339 time with `Z` or a numeric offset, in UNIX seconds. The SDK's parser takes `Z`
/// only, so an offset is taken off first and applied after.
fn parse(text: &str) -> Option<u64> {
    let utc = |base: &str| secs(&format!("{base}Z"));
    if let Some(base) = text.strip_suffix(['Z', 'z']) {
        return utc(base);
    }
    let split = text.len().checked_sub(6)?;
    let (base, offset) = (text.get(..split)?, text.get(split..)?);
    let sign: i64 = match offset.as_bytes() {
        [b'+', _, _, b':', _, _] => 1,
        [b'-', _, _, b':', _, _] => -1,
        _ => return None,
    };
    let hours: i64 = offset.get(1..3)?.parse().ok()?;
    let minutes: i64 = offset.get(4..6)?.parse().ok()?;
    let at = utc(base)? as i64 - sign * (hours * 3600 + minutes * 60);
    u64::try_from(at).ok()
}

/// A UNIX second as the tag writes it: `2026-12-05T18:00:00Z`.
pub fn iso(secs: u64) -> String {
    DateTime::from_secs(secs as i64)
        .fmt(Format::DateTime)
        .unwrap_or_else(|_| secs.to_string())
}

/// The UNIX second an ISO time names, as [`iso`] wrote it.
pub fn secs(text: &str) -> Option<u64> {
    DateTime::from_str(text, Format::DateTime)
        .ok()
        .and_then(|t| u64::try_from(t.secs()).ok())
}

/// What a silence does to one incident now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    None,
    /// Its alerts wait until this UNIX second; `on` names what carries the tag.
    Until {
        end: u64,
        on: String,
    },
    /// A tag is there but not honoured: the alert goes out and says why.
    Refused(String),
}

/// The silence tags a run read: of clusters (by ARN) and of container instances (by cluster ARN
/// and instance id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Silences {
    clusters: HashMap<String, String>,
    instances: HashMap<(String, String), String>,
}

impl Silences {
    /// Notes a cluster's tag value.
    pub fn cluster(&mut self, cluster_arn: &str, value: &str) {
        self.clusters.insert(cluster_arn.to_owned(), value.to_owned());
    }

    /// Notes a container instance's tag value.
    pub fn instance(&mut self, cluster_arn: &str, container_instance_arn: &str, value: &str) {
        let key = (cluster_arn.to_owned(), instance_key(container_instance_arn).to_owned());
        self.instances.insert(key, value.to_owned());
    }

    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty() && self.instances.is_empty()
    }

    /// Logs each tag that is there but not honoured, once a run: the alerts it does not hold say
    /// so too.
    pub fn warn_refused(&self, now: u64) {
        let clusters = self
            .clusters
            .iter()
            .map(|(arn, v)| (v, format!("cluster {}", cluster_name(arn))));
        let instances = self
            .instances
            .iter()
            .map(|((_, id), v)| (v, format!("container instance {id}")));
        for (value, on) in clusters.chain(instances) {
            if let Reading::Refused(why) = read(value, now) {
                warn!(tag = TAG_KEY, resource = %on, "silence not honoured: {why}");
            }
        }
    }

    /// What holds the incident now: the later of the cluster's and the instance's silences; a
    /// refused tag only when no other silences it.
    pub fn of(&self, key: &IncidentKey, now: u64) -> Hold {
        let cluster = self
            .clusters
            .get(&key.cluster_arn)
            .map(|v| (v, format!("cluster {}", cluster_name(&key.cluster_arn))));
        let instance = self
            .instances
            .get(&(key.cluster_arn.clone(), key.instance.clone()))
            .map(|v| (v, format!("container instance {}", key.instance)));
        let mut hold = Hold::None;
        for (value, on) in cluster.into_iter().chain(instance) {
            match (read(value, now), &hold) {
                (Reading::Until(end), Hold::Until { end: held, .. }) if end <= *held => {}
                (Reading::Until(end), _) => hold = Hold::Until { end, on },
                (Reading::Refused(why), Hold::None) => {
                    hold = Hold::Refused(format!("the tag {TAG_KEY} on {on} is not honoured: {why}"));
                }
                (Reading::Refused(_) | Reading::Past, _) => {}
            }
        }
        hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertKind;

    const NOW: u64 = 1_796_464_800; // 2026-12-05T10:00:00Z

    #[test]
    fn when_a_tag_value_is_read_then_a_future_time_within_a_week_silences_and_nothing_else_does() {
        let cases = [
            ("2026-12-05T18:00:00Z", Reading::Until(NOW + 8 * 3600)),
            ("2026-12-05T19:00:00+01:00", Reading::Until(NOW + 8 * 3600)),
            ("2026-12-05T13:30:00-04:30", Reading::Until(NOW + 8 * 3600)),
            ("2026-12-05T18:00:00.500Z", Reading::Until(NOW + 8 * 3600)),
            (" 2026-12-05T18:00:00Z ", Reading::Until(NOW + 8 * 3600)),
            ("2026-12-05T09:00:00Z", Reading::Past),
            ("2026-12-05T10:00:00Z", Reading::Past),
        ];
        for (value, reading) in cases {
            assert_eq!(read(value, NOW), reading, "{value}");
        }
        for refused in [
            "tomorrow",
            "2026-12-05",
            "2026-12-05T18:00:00",
            "2026-12-05T18:00:00+0100",
            "2026-12-05T18:00:00ZZ",
            "",
            "2027-12-05T18:00:00Z",
        ] {
            assert!(matches!(read(refused, NOW), Reading::Refused(_)), "{refused}");
        }
        assert_eq!(iso(NOW + 8 * 3600), "2026-12-05T18:00:00Z");
        assert_eq!(secs("2026-12-05T18:00:00Z"), Some(NOW + 8 * 3600));
    }

    #[test]
    fn when_a_cluster_and_an_instance_are_silenced_then_the_later_end_holds_and_a_refused_tag_only_warns() {
        let arn = "arn:aws:ecs:eu-west-1:1:cluster/prod";
        let key = IncidentKey::new(
            arn,
            AlertKind::AgentDisconnected,
            "arn:aws:ecs:eu-west-1:1:container-instance/prod/ci1",
            None,
        );
        let other = IncidentKey {
            instance: "ci2".into(),
            ..key.clone()
        };
        let mut silences = Silences::default();
        assert_eq!(silences.of(&key, NOW), Hold::None);
        silences.instance(
            arn,
            "arn:aws:ecs:eu-west-1:1:container-instance/prod/ci1",
            "2026-12-05T12:00:00Z",
        );
        assert_eq!(
            silences.of(&key, NOW),
            Hold::Until {
                end: NOW + 7200,
                on: "container instance ci1".into()
            }
        );
        assert_eq!(silences.of(&other, NOW), Hold::None, "only the tagged instance");
        silences.cluster(arn, "2026-12-05T11:00:00Z");
        assert_eq!(
            silences.of(&key, NOW),
            Hold::Until {
                end: NOW + 7200,
                on: "container instance ci1".into()
            },
            "the later end"
        );
        assert_eq!(
            silences.of(&other, NOW),
            Hold::Until {
                end: NOW + 3600,
                on: "cluster prod".into()
            }
        );
        assert_eq!(silences.of(&other, NOW + 3600), Hold::None, "over at its end");
        silences.cluster(arn, "soon");
        assert!(
            matches!(silences.of(&other, NOW), Hold::Refused(why) if why.contains(TAG_KEY) && why.contains("cluster prod"))
        );
        assert!(
            matches!(silences.of(&key, NOW), Hold::Until { .. }),
            "the instance's own silence holds"
        );
    }
}
