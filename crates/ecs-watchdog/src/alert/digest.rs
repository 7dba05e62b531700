//! The digest (DESIGN §7, grouping): one message for the incidents that joined a cluster and
//! kind already alerted while its window was open, those that resolved since included.

use super::{Alert, AlertKind, DaemonChecks, Facts, InstanceFinding, finding, fit};
use crate::config::Place;
use crate::finding::Counts;

/// The digest of one group: `ECS agent disconnected on 480 more instances in prod (…)`.
pub fn digest(
    kind: AlertKind,
    place: &Place,
    cluster_arn: &str,
    joined: Vec<InstanceFinding>,
    still_open: Option<usize>,
    facts: Facts,
) -> Alert {
    let counts = Counts {
        joined: joined.len(),
        resolved: joined.iter().filter(|i| i.resolved.is_some()).count(),
        still_open,
    };
    let action = "told together: they joined a problem of this cluster already alerted (GROUP_INTERVAL_MINUTES); \
                  each instance's remediation says what was done to it";
    let mut finding = finding(
        kind,
        place,
        cluster_arn,
        joined,
        DaemonChecks { deployments: true },
        action,
        facts,
    );
    finding.digest = Some(counts);
    fit(finding, facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_incidents_joined_a_group_then_the_digest_counts_them_and_marks_those_resolved() {
        let instance = |n: usize, resolved: bool| InstanceFinding {
            container_instance_arn: format!("arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/{n:032}"),
            ec2_instance_id: Some(format!("i-{n:017}")),
            resolved: resolved.then(|| "recovered: the agent reconnected, after 2 min".to_owned()),
            ..Default::default()
        };
        let alert = digest(
            AlertKind::AgentDisconnected,
            &Place::new("123456789012", "eu-west-1"),
            "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
            vec![instance(1, false), instance(2, true), instance(3, false)],
            Some(23),
            Facts::at(0),
        );
        assert_eq!(
            alert.subject,
            "ECS agent disconnected on 3 more instances in prod (123456789012, eu-west-1)"
        );
        assert!(
            alert.email.starts_with("Digest: 3 more instances joined"),
            "{}",
            alert.email
        );
        assert!(alert.email.contains("1 of them already resolved"), "{}", alert.email);
        assert!(alert.email.contains("Open now, all told: 23."), "{}", alert.email);
        assert!(
            alert
                .email
                .contains("already resolved: recovered: the agent reconnected, after 2 min")
        );
        let json: serde_json::Value = serde_json::from_str(&alert.default).unwrap();
        assert_eq!(
            json["digest"],
            serde_json::json!({"joined": 3, "resolved": 1, "stillOpen": 23})
        );
        assert_eq!(json["instances"].as_array().unwrap().len(), 3);
    }
}
