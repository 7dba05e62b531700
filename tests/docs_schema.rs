//! docs/findings.md's finding schema against what the code serialises: the alert, digest and
//! resolved notice of every kind, a finding with every top-level field set, and every field an
//! instance (and its nested records) can carry, as serde names them.

use std::collections::BTreeSet;

use ecs_watchdog::alert::{DaemonChecks, Facts, alert, digest, resolved};
use ecs_watchdog::config::Place;
use ecs_watchdog::event::{ContainerExit, HealthCheck};
use ecs_watchdog::finding::{Counts, Finding, InstanceFinding, Severity};
use ecs_watchdog::kinds::KINDS;
use ecs_watchdog::remediation::ActionTaken;
use serde::de::{self, DeserializeOwned, Visitor};
use serde_json::Value;
use watchdog_tests::markdown::{page, table, ticked};

const CLUSTER: &str = "arn:aws:ecs:eu-west-1:123456789012:cluster/prod";

/// The schema table's paths: a name with a dot is a full path and gives the names after it in
/// its cell their parent; a trailing `[]` (an array) is dropped.
fn documented() -> BTreeSet<String> {
    let rows = table(&page("docs/findings.md"), &["field", "type", "meaning"]);
    let mut paths = BTreeSet::new();
    for row in rows {
        let mut parent = String::new();
        for name in ticked(&row[0]) {
            let path = match name.rfind('.') {
                Some(dot) => {
                    parent = name[..=dot].to_owned();
                    name.clone()
                }
                None => format!("{parent}{name}"),
            };
            paths.insert(path.trim_end_matches("[]").to_owned());
        }
    }
    paths
}

/// Every key of a JSON value by its path: `instances[].healthChecks[].type`.
fn paths(prefix: &str, value: &Value, out: &mut BTreeSet<String>) {
    let Some(object) = value.as_object() else { return };
    for (key, inner) in object {
        let path = format!("{prefix}{key}");
        match inner {
            Value::Object(_) => paths(&format!("{path}."), inner, out),
            Value::Array(items) => items.iter().for_each(|item| paths(&format!("{path}[]."), item, out)),
            _ => {}
        }
        out.insert(path);
    }
}

/// A deserializer that only records the field names serde asks a struct for, as renamed.
struct FieldNames<'a>(&'a mut Vec<&'static str>);

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("field names only"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.extend(fields);
        Err(de::Error::custom("field names only"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

fn fields<T: DeserializeOwned>(parent: &str) -> Vec<String> {
    let mut names = Vec::new();
    let _ = T::deserialize(FieldNames(&mut names));
    assert!(!names.is_empty(), "no fields recorded under {parent}");
    names.into_iter().map(|n| format!("{parent}{n}")).collect()
}

/// An instance with the fields that change a message's shape set.
fn instance() -> InstanceFinding {
    InstanceFinding {
        container_instance_arn: "arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/0b4a".into(),
        ec2_instance_id: Some("i-0a1b2c3d4e5f60718".into()),
        daemon_name: Some("log-router".into()),
        silenced_until: Some("2026-12-05T18:00:00Z".into()),
        silenced_on: Some("cluster prod".into()),
        ..InstanceFinding::default()
    }
}

/// What the code can serialise in a finding, by path.
fn serialised() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let place = Place::new("123456789012", "eu-west-1");
    let checks = DaemonChecks { deployments: true };
    for kind in KINDS.iter().map(|k| k.kind()) {
        let messages = [
            alert(
                kind,
                &place,
                CLUSTER,
                vec![instance()],
                checks,
                "none",
                Facts::at(1_000),
            ),
            digest(kind, &place, CLUSTER, vec![instance()], Some(3), Facts::at(1_000)),
            resolved(kind, &place, CLUSTER, vec![(instance(), "recovered".into(), 60)]),
        ];
        for message in messages {
            let json: Value = serde_json::from_str(&message.default).expect("the default key is JSON");
            paths("", &json, &mut out);
        }
    }
    // Every top-level field (a field added to `Finding` fails to compile here until it is set).
    let whole = Finding {
        schema_version: "1",
        kind: KINDS[0].kind(),
        severity: Severity::High,
        account: "123456789012".into(),
        region: "eu-west-1".into(),
        cluster_name: "prod".into(),
        cluster_arn: CLUSTER.into(),
        instances: vec![instance()],
        omitted_instances: 1,
        checked: vec!["DescribeContainerInstances"],
        action: "none".into(),
        digest: Some(Counts {
            joined: 1,
            resolved: 0,
            still_open: Some(1),
        }),
    };
    paths(
        "",
        &serde_json::to_value(&whole).expect("a finding serialises"),
        &mut out,
    );
    out.extend(fields::<InstanceFinding>("instances[]."));
    out.extend(fields::<ActionTaken>("instances[].remediationActions[]."));
    out.extend(fields::<HealthCheck>("instances[].healthChecks[]."));
    out.extend(fields::<ContainerExit>("instances[].containers[]."));
    out
}

#[test]
fn when_the_finding_schema_is_read_then_it_is_every_field_the_code_serialises() {
    let (documented, serialised) = (documented(), serialised());
    let missing: Vec<_> = serialised.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&serialised).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/findings.md's schema: not documented {missing:?}; documented but never serialised {extra:?}"
    );
}
