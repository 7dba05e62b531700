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
