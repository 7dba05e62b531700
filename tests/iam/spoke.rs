//! `spoke.yaml` against `template.yaml` (DESIGN §10): the spoke forwards what the hub's rules
//! match, and its reader role trusts only the hub's function roles and grants, in the member
//! account, what those functions are granted in their own.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use watchdog_tests::template::{rendered, rendered_file, spoke, template};

use super::{actions, statements};

/// A hub in another account, so the spoke forwards (it does not in the hub's own place).
const HUB_BUS: &str = "arn:aws:events:eu-west-1:999999999999:event-bus/ecs-watchdog-hub";
const HUB_ROLES: &str =
    "arn:aws:iam::999999999999:role/ecs-watchdog-MonitorRole-A,arn:aws:iam::999999999999:role/ecs-watchdog-SweepRole-B";

fn rendered_spoke(parameters: &[(&str, &str)]) -> Value {
    let mut all = vec![("HubEventBusArn", HUB_BUS), ("HubFunctionRoleArns", HUB_ROLES)];
    all.extend_from_slice(parameters);
    rendered_file("spoke.yaml", "ecs-watchdog-spoke", &all)
}

fn rules(template: &Value) -> Vec<(&String, &Value)> {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Events::Rule")
        .collect()
}

#[test]
fn when_a_spoke_forwards_events_then_its_rules_match_exactly_what_the_hubs_rules_match() {
    let hub: Vec<(&String, &Value)> = rules(template())
        .into_iter()
        .filter(|(_, r)| r["Properties"].get("EventBusName").is_none())
        .collect();
    let spoke = rules(spoke());
    assert_eq!(spoke.len(), hub.len(), "a spoke rule for each of the hub's");
    for (id, rule) in &hub {
        let forwarded = spoke
            .iter()
            .find(|(spoke_id, _)| spoke_id == id)
            .unwrap_or_else(|| panic!("spoke.yaml has no {id}"));
        let properties = &forwarded.1["Properties"];
        assert_eq!(properties["EventPattern"], rule["Properties"]["EventPattern"], "{id}");
        assert_eq!(
            properties["Targets"][0]["Arn"],
            json!({"Ref": "HubEventBusArn"}),
            "{id}"
        );
        // A bus in another account is a target only with a role that may put events there.
        assert_eq!(
            properties["Targets"][0]["RoleArn"],
            json!({"Fn::GetAtt": ["ForwarderRole", "Arn"]}),
            "{id}"
        );
    }
    // The hub's bus takes every ECS event: the spokes already chose.
    let member = &template()["Resources"]["MemberEventsRule"]["Properties"];
    assert_eq!(member["EventPattern"], json!({"source": ["aws.ecs"]}));
    let forwarder = statements(&rendered_spoke(&[]), "ForwarderRole");
    assert_eq!(forwarder.len(), 1);
    assert_eq!(forwarder[0]["Action"], "events:PutEvents");
    assert_eq!(forwarder[0]["Resource"], HUB_BUS);
}

#[test]
fn when_the_reader_role_is_created_then_only_the_hubs_function_roles_may_assume_it() {
    let spoke = rendered_spoke(&[]);
    let trust = &spoke["Resources"]["ReaderRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"];
    let expected: Vec<&str> = HUB_ROLES.split(',').collect();
    assert_eq!(
        trust,
        &json!([{"Effect": "Allow", "Principal": {"AWS": expected}, "Action": "sts:AssumeRole"}])
    );
    // What the spoke is told is what the hub stack outputs: both of its functions' roles.
    let output = &template()["Outputs"]["FunctionRoleArns"]["Value"]["Fn::If"];
    assert_eq!(output[0], "SweepOn");
    assert_eq!(
        output[1],
        json!({"Fn::Join": [",", [{"Fn::GetAtt": ["MonitorRole", "Arn"]}, {"Fn::GetAtt": ["SweepRole", "Arn"]}]]})
    );
    assert_eq!(output[2], json!({"Fn::GetAtt": ["MonitorRole", "Arn"]}));
    // IAM is global: one region's stack creates the role, the others forward only.
    let elsewhere = rendered_spoke(&[("RoleRegion", "eu-west-1")]);
    assert!(elsewhere["Resources"].get("ReaderRole").is_none());
    assert!(elsewhere["Resources"].get("AgentDisconnectedRule").is_some());
}

/// The actions of a role's statements for the services that act in a member account.
fn member_actions(template: &Value, roles: &[&str]) -> BTreeSet<String> {
    roles
        .iter()
        .flat_map(|role| statements(template, role))
        .flat_map(|s| actions(&s))
        .filter(|a| {
            ["ecs:", "ec2:", "ssm:", "autoscaling:"]
                .iter()
                .any(|p| a.starts_with(p))
        })
        .collect()
}

#[test]
fn when_the_hub_remediates_or_not_then_the_reader_role_grants_what_the_hubs_functions_call() {
    for parameters in [
        vec![],
        vec![("RemediationAction", "drain"), ("RemediationDryRun", "true")],
        vec![("RemediationAction", "drain")],
        vec![("RemediationAction", "drain-and-replace")],
        vec![("RemediationAction", "restart-agent")],
        vec![("RemediationAction", "restart-then-drain")],
    ] {
        let hub = rendered("ecs-watchdog", &parameters);
        let reader = member_actions(&rendered_spoke(&parameters), &["ReaderRole"]);
        assert_eq!(
            reader,
            member_actions(&hub, &["MonitorRole", "SweepRole"]),
            "{parameters:?}"
        );
        let writes = ["ecs:UpdateContainerInstancesState", "autoscaling:SetInstanceHealth"];
        let dry = parameters.is_empty() || parameters.contains(&("RemediationDryRun", "true"));
        if dry {
            assert!(
                writes.iter().all(|w| !reader.contains(*w)),
                "{parameters:?}: {reader:?}"
            );
        }
    }
}
