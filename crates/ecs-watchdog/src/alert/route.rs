//! What a receiver routes and folds on (DESIGN §7): the severity by rule, the message's status,
//! the `incident` attribute and each instance's `dedupKey`. Pure, over the finding.

use crate::finding::{AlertKind, InstanceFinding, MessageStatus, Severity};
use crate::key::{GroupKey, IncidentKey};
use crate::kinds;

/// What rendering knows besides the finding: the time (for durations), and what the severity
/// rule needs of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// UNIX seconds; 0 when unknown (no durations are told then).
    pub now: u64,
    /// `CRITICAL_PERCENT`: an outage on at least this share of a cluster's instances is critical.
    pub critical_percent: u8,
    /// The cluster's registered (ACTIVE and DRAINING) instances, when the run counted them.
    pub cluster_instances: Option<usize>,
    /// The stack's CloudWatch dashboard, to link (`DASHBOARD_NAME`).
    pub dashboard: Option<&'static str>,
}

pub use crate::config::DEFAULT_CRITICAL_PERCENT;

impl Facts {
    /// Facts with the time only: the cluster uncounted, the default percent.
    pub fn at(now: u64) -> Self {
        Self {
            now,
            critical_percent: DEFAULT_CRITICAL_PERCENT,
            cluster_instances: None,
            dashboard: None,
        }
    }
}

/// The severity rule:
/// - `critical`: an agent-disconnected or critical-daemon problem on at least `CRITICAL_PERCENT`
///   of the cluster's instances (when the run counted them); a daemon rollback that failed.
/// - `high`: one instance's agent or a critical daemon (or one whose criticality is unknown); a
///   daemon deployment that failed and rolls back; an instance impaired on AGENT_CONNECTIVITY.
/// - `warning`: a non-critical daemon; an instance impaired on other checks; the monitor's own
///   problems (kind `monitor-impaired`).
pub fn severity(kind: AlertKind, instances: &[InstanceFinding], facts: Facts) -> Severity {
    let widespread = |n: usize| {
        facts
            .cluster_instances
            .is_some_and(|total| total > 0 && n * 100 >= usize::from(facts.critical_percent) * total)
    };
    kinds::of(kind).severity(instances, &widespread)
}

/// The incident id of one instance of a finding: the ledger's key of its incident.
pub fn dedup_key(kind: AlertKind, cluster_arn: &str, instance: &InstanceFinding) -> String {
    IncidentKey::new(
        cluster_arn,
        kind,
        &instance.container_instance_arn,
        instance.daemon_name.as_deref(),
    )
    .id()
}

/// The `incident` attribute: the incident's id for a message about one incident, the group's
/// key for one about several or a digest.
pub fn incident(kind: AlertKind, cluster_arn: &str, one: Option<&InstanceFinding>, status: MessageStatus) -> String {
    match one {
        Some(instance) if status != MessageStatus::Digest => dedup_key(kind, cluster_arn, instance),
        _ => GroupKey::new(cluster_arn, kind).id(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::HealthCheck;

    fn on(n: usize, critical: Option<bool>) -> Vec<InstanceFinding> {
        (0..n)
            .map(|i| InstanceFinding {
                container_instance_arn: format!("arn:aws:ecs:eu-west-1:1:container-instance/prod/{i}"),
                daemon_name: Some("log-router".into()),
                critical,
                ..Default::default()
            })
            .collect()
    }

    fn counted(cluster_instances: usize) -> Facts {
        Facts {
            cluster_instances: Some(cluster_instances),
            ..Facts::at(0)
        }
    }

    fn impaired(check: &str) -> Vec<InstanceFinding> {
        vec![InstanceFinding {
            health_checks: vec![HealthCheck {
                check: check.into(),
                status: "IMPAIRED".into(),
                reason: None,
            }],
            ..Default::default()
        }]
    }

    #[test]
    fn when_each_rule_applies_then_the_severity_is_the_documented_one() {
        let rollback_failed = vec![InstanceFinding {
            rollback_failed: true,
            ..Default::default()
        }];
        let cases: Vec<(&str, AlertKind, Vec<InstanceFinding>, Facts, Severity)> = vec![
            (
                "1 of 100 agents",
                AlertKind::AgentDisconnected,
                on(1, None),
                counted(100),
                Severity::High,
            ),
            (
                "19 of 100 agents",
                AlertKind::AgentDisconnected,
                on(19, None),
                counted(100),
                Severity::High,
            ),
            (
                "20 of 100 agents",
                AlertKind::AgentDisconnected,
                on(20, None),
                counted(100),
                Severity::Critical,
            ),
            (
                "1 of 5 agents",
                AlertKind::AgentDisconnected,
                on(1, None),
                counted(5),
                Severity::Critical,
            ),
            (
                "agents, cluster uncounted",
                AlertKind::AgentDisconnected,
                on(50, None),
                Facts::at(0),
                Severity::High,
            ),
            (
                "1 critical daemon",
                AlertKind::DaemonLost,
                on(1, Some(true)),
                counted(100),
                Severity::High,
            ),
            (
                "unknown daemon",
                AlertKind::DaemonLost,
                on(1, None),
                counted(100),
                Severity::High,
            ),
            (
                "30 critical daemons",
                AlertKind::DaemonLost,
                on(30, Some(true)),
                counted(100),
                Severity::Critical,
            ),
            (
                "30 non-critical daemons",
                AlertKind::DaemonLost,
                on(30, Some(false)),
                counted(100),
                Severity::Warning,
            ),
            (
                "rolling back",
                AlertKind::DaemonDeploymentFailed,
                on(1, None),
                Facts::at(0),
                Severity::High,
            ),
            (
                "rollback failed",
                AlertKind::DaemonDeploymentFailed,
                rollback_failed,
                Facts::at(0),
                Severity::Critical,
            ),
            (
                "impaired runtime",
                AlertKind::InstanceImpaired,
                impaired("CONTAINER_RUNTIME"),
                counted(1),
                Severity::Warning,
            ),
            (
                "impaired agent",
                AlertKind::InstanceImpaired,
                impaired("AGENT_CONNECTIVITY"),
                Facts::at(0),
                Severity::High,
            ),
            (
                "monitor",
                AlertKind::MonitorImpaired,
                on(1, None),
                counted(1),
                Severity::Warning,
            ),
        ];
        for (case, kind, instances, facts, expected) in cases {
            assert_eq!(severity(kind, &instances, facts), expected, "{case}");
        }
    }

    #[test]
    fn when_the_percent_is_set_then_critical_starts_there() {
        let facts = Facts {
            critical_percent: 50,
            ..counted(10)
        };
        assert_eq!(
            severity(AlertKind::AgentDisconnected, &on(4, None), facts),
            Severity::High
        );
        assert_eq!(
            severity(AlertKind::AgentDisconnected, &on(5, None), facts),
            Severity::Critical
        );
    }

    #[test]
    fn when_one_instance_loses_two_daemons_then_it_counts_once() {
        let mut two = on(1, Some(true));
        two.push(InstanceFinding {
            daemon_name: Some("metrics".into()),
            ..two[0].clone()
        });
        assert_eq!(severity(AlertKind::DaemonLost, &two, counted(10)), Severity::High);
    }

    #[test]
    fn when_a_message_tells_one_incident_then_the_attribute_is_its_ledger_id() {
        let one = &on(1, None)[0];
        let cluster = "arn:aws:ecs:eu-west-1:1:cluster/prod";
        let id = IncidentKey::new(
            cluster,
            AlertKind::DaemonLost,
            &one.container_instance_arn,
            Some("log-router"),
        )
        .id();
        assert_eq!(
            incident(AlertKind::DaemonLost, cluster, Some(one), MessageStatus::Firing),
            id
        );
        assert_eq!(
            incident(AlertKind::DaemonLost, cluster, Some(one), MessageStatus::Resolved),
            id
        );
        let group = GroupKey::new(cluster, AlertKind::DaemonLost).id();
        assert_eq!(
            incident(AlertKind::DaemonLost, cluster, None, MessageStatus::Firing),
            group
        );
        assert_eq!(
            incident(AlertKind::DaemonLost, cluster, Some(one), MessageStatus::Digest),
            group
        );
    }
}
