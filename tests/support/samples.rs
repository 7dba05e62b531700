//! The sample events in `events/`, re-aimed at seeded resources.

use serde_json::{Value, json};

use crate::fleet::Node;
use crate::repo_root;

/// Reads `events/<name>`.
pub fn load(name: &str) -> Value {
    let path = repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The sample container instance event, about `node`, at `version`.
pub fn agent_event(node: &Node, version: i64, agent_connected: bool) -> Value {
    let mut event = load("container-instance-agent-disconnected.json");
    event["id"] = json!(format!(
        "{}-{version}-{agent_connected}",
        node.container_instance_arn.rsplit('/').next().unwrap_or("x")
    ));
    event["region"] = json!(crate::emulator::REGION);
    event["resources"] = json!([node.container_instance_arn]);
    let detail = &mut event["detail"];
    detail["clusterArn"] = json!(node.cluster_arn);
    detail["containerInstanceArn"] = json!(node.container_instance_arn);
    detail["ec2InstanceId"] = json!(node.ec2_instance_id);
    detail["version"] = json!(version);
    detail["agentConnected"] = json!(agent_connected);
    event
}

/// A body that is not an event at all, as a queue may hold.
pub const MALFORMED_BODY: &str =
    r#"{"detail-type": "ECS Container Instance State Change", "source": "aws.ecs", "detail": {"agentConnected": fals"#;

/// The sample daemon-task-stopped event, about `daemon`'s task `task_arn` on `node`.
pub fn daemon_stopped_event(node: &Node, daemon: &str, task_definition_arn: &str, task_arn: &str) -> Value {
    task_event(
        "task-daemon-stopped.json",
        node,
        &format!("daemon:{daemon}"),
        task_definition_arn,
        task_arn,
    )
}

/// The sample service-task-stopped event (which the monitor ignores).
pub fn service_stopped_event(node: &Node, task_definition_arn: &str, task_arn: &str) -> Value {
    task_event(
        "task-service-stopped.json",
        node,
        "service:web",
        task_definition_arn,
        task_arn,
    )
}

fn task_event(sample: &str, node: &Node, group: &str, task_definition_arn: &str, task_arn: &str) -> Value {
    let mut event = load(sample);
    event["id"] = json!(format!("{}-stopped", task_arn.rsplit('/').next().unwrap_or("x")));
    event["region"] = json!(crate::emulator::REGION);
    event["resources"] = json!([task_arn]);
    let detail = &mut event["detail"];
    detail["clusterArn"] = json!(node.cluster_arn);
    detail["containerInstanceArn"] = json!(node.container_instance_arn);
    detail["group"] = json!(group);
    detail["taskArn"] = json!(task_arn);
    detail["taskDefinitionArn"] = json!(task_definition_arn);
    event
}

/// The sample `DAEMON_TASK_START_IMPAIRED` event (`TASK_CREATION_FAILED`) for `daemon` on `node`.
pub fn daemon_impaired_event(node: &Node, daemon: &str) -> Value {
    let mut event = load("daemon-start-impaired-creation-failed.json");
    let cluster = node.cluster_arn.rsplit('/').next().unwrap_or_default();
    let arn_prefix = node
        .cluster_arn
        .rsplit_once(":cluster/")
        .map_or("", |(prefix, _)| prefix);
    event["id"] = json!(format!(
        "{}-{daemon}-impaired",
        node.container_instance_arn.rsplit('/').next().unwrap_or("x")
    ));
    event["region"] = json!(crate::emulator::REGION);
    let detail = &mut event["detail"];
    detail["clusterArn"] = json!(node.cluster_arn);
    detail["containerInstanceArn"] = json!(node.container_instance_arn);
    detail["daemonArn"] = json!(format!("{arn_prefix}:daemon/{cluster}/{daemon}"));
    event
}

/// `container-instance-health-impaired-daemon.json` for `node`: its DAEMON check IMPAIRED.
pub fn health_impaired_event(node: &Node) -> Value {
    let mut event = load("container-instance-health-impaired-daemon.json");
    event["id"] = json!(format!(
        "{}-health",
        node.container_instance_arn.rsplit('/').next().unwrap_or("x")
    ));
    event["region"] = json!(crate::emulator::REGION);
    let detail = &mut event["detail"];
    detail["clusterArn"] = json!(node.cluster_arn);
    detail["containerInstanceArn"] = json!(node.container_instance_arn);
    detail["ec2InstanceId"] = json!(node.ec2_instance_id);
    event
}

/// A daemon deployment event of `daemon` in `cluster_arn`, from the sample `file`
/// (`daemon-deployment-rollback-in-progress.json`, `…-rollback-failed.json`, `…-successful.json`).
pub fn deployment_event(file: &str, cluster_arn: &str, daemon: &str) -> Value {
    let mut event = load(file);
    let (prefix, cluster) = cluster_arn.rsplit_once(":cluster/").unwrap_or(("", ""));
    let daemon_arn = format!("{prefix}:daemon/{cluster}/{daemon}");
    event["id"] = json!(format!("{}-{daemon}", event["id"].as_str().unwrap_or("deployment")));
    event["region"] = json!(crate::emulator::REGION);
    event["resources"] = json!([daemon_arn]);
    let detail = &mut event["detail"];
    detail["clusterArn"] = json!(cluster_arn);
    detail["daemonArn"] = json!(daemon_arn);
    event
}
