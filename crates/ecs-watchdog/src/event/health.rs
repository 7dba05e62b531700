//! `ECS Container Instance Health Change`: a container instance's health checks.

use serde_json::Value;

use super::{IgnoreReason, Parsed, RejectReason, Signal, text};

/// `ECS Container Instance Health Change` with `overallStatus: IMPAIRED`. The layout is the ECS
/// developer guide's, page "Amazon ECS container instance health change events"
/// (ecs_container_instance_health_events): `clusterArn`, `containerInstanceArn`,
/// `capacityProviderName` (null outside capacity providers), `ec2InstanceId`, `overallStatus`,
/// `healthChecks[]` of `type`, `status`, `lastStatusChange`, `lastUpdated`, `statusReason`.
/// It carries no `version`.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceImpaired {
    pub cluster_arn: String,
    pub container_instance_arn: String,
    pub ec2_instance_id: Option<String>,
    /// The checks that are not OK, as the event reports them.
    pub failing: Vec<HealthCheck>,
    pub since: Option<String>,
}

/// One health check of a container instance: `AGENT_CONNECTIVITY`, `CONTAINER_RUNTIME`,
/// `DAEMON`, `ACCELERATED_COMPUTE`, or a type added later.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    #[serde(rename = "type")]
    pub check: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

pub(super) fn parse(event: &Value, detail: &Value) -> Parsed {
    let Some(cluster_arn) = text(detail, "clusterArn") else {
        return Parsed::Rejected(RejectReason::MissingField("detail.clusterArn"));
    };
    let Some(container_instance_arn) = text(detail, "containerInstanceArn") else {
        return Parsed::Rejected(RejectReason::MissingField("detail.containerInstanceArn"));
    };
    let overall = text(detail, "overallStatus").unwrap_or("absent");
    if overall != "IMPAIRED" {
        return Parsed::Ignored(IgnoreReason::NotImpaired(overall.to_owned()));
    }
    let checks: Vec<&Value> = detail
        .get("healthChecks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| text(c, "status").is_some_and(|s| s != "OK"))
        .collect();
    Parsed::Signal(Signal::InstanceImpaired(Box::new(InstanceImpaired {
        cluster_arn: cluster_arn.to_owned(),
        container_instance_arn: container_instance_arn.to_owned(),
        ec2_instance_id: text(detail, "ec2InstanceId").map(str::to_owned),
        failing: checks
            .iter()
            .map(|c| HealthCheck {
                check: text(c, "type").unwrap_or("unknown").to_owned(),
                status: text(c, "status").unwrap_or("unknown").to_owned(),
                reason: text(c, "statusReason").map(str::to_owned),
            })
            .collect(),
        since: checks
            .iter()
            .find_map(|c| text(c, "lastStatusChange"))
            .or_else(|| text(event, "time"))
            .map(str::to_owned),
    })))
}
