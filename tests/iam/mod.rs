//! The functions' IAM roles against how AWS authorizes each call the code makes. moto enforces no
//! IAM, so nothing else would notice a grant on the wrong resource: this holds the table
//! (operation → resource and condition, from the Service Authorization Reference) and checks it
//! against the template as SAM's translator renders it (`tests/render_template.py`).

use std::collections::BTreeSet;

use serde_json::{Value, json};
use watchdog_tests::repo_root;
use watchdog_tests::template::rendered;

mod contract;
mod spoke;
mod table;

use table::{Grant, MONITOR, Needs, SWEEP, arn, table};

const EVERYTHING_ON: &[(&str, &str)] = &[
    ("RemediationAction", "drain-and-replace"),
    ("FindingsEventBusName", "findings"),
    ("OrganizationId", table::ORGANIZATION),
    ("HookFunctionArn", "arn:aws:lambda:us-east-1:123456789012:function:hook"),
    ("PagerDutyRoutingKeySecret", "ecs-watchdog/pagerduty"),
    (
        "KmsKeyArn",
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ),
];

/// A role's statements, flattened over its policies.
fn statements(template: &Value, role: &str) -> Vec<Value> {
    template["Resources"][role]["Properties"]["Policies"]
        .as_array()
        .expect("the role has inline policies")
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(action) => vec![action.clone()],
        Value::Array(actions) => actions.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        other => panic!("Action is {other}"),
    }
}

fn granting<'a>(statements: &'a [Value], action: &str) -> Vec<&'a Value> {
    statements
        .iter()
        .filter(|s| actions(s).iter().any(|a| a == action))
        .collect()
}

/// The IAM actions the adapters call: every SDK call is labelled `service:Operation` where its
/// error is mapped, so the labels in `crates/ecs-watchdog/src/aws` are the calls.
fn actions_the_code_calls() -> BTreeSet<String> {
    let mut dirs = vec![repo_root().join("crates/ecs-watchdog/src/aws")];
    let mut files = Vec::new();
    // An adapter may keep part of itself in a submodule (aws/dynamodb/places.rs).
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            match path.is_dir() {
                true => dirs.push(path),
                false => files.push(path),
            }
        }
    }
    let mut actions = BTreeSet::new();
    for file in files {
        let source = std::fs::read_to_string(file).unwrap();
        for literal in source.split('"').skip(1).step_by(2) {
            let Some((service, operation)) = literal.split_once(':') else {
                continue;
            };
            let is_action = !service.is_empty()
                && service.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && operation.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && operation.chars().all(|c| c.is_ascii_alphanumeric());
            // IAM has no TransactWriteItems action: each Put and Update in it is authorized as
            // PutItem and UpdateItem, which the ledger's code names as well.
            if is_action && literal != "dynamodb:TransactWriteItems" {
                // IAM authorizes SendMessageBatch as SendMessage.
                actions.insert(literal.replace("sqs:SendMessageBatch", "sqs:SendMessage"));
            }
        }
    }
    actions
}

/// Whether `role` should grant `grant` under parameters that give the monitor `needs`.
fn expected(grant: &Grant, role: &str, needs: &[Needs]) -> bool {
    match role {
        MONITOR => needs.contains(&grant.needs),
        _ => grant.sweep.is_some_and(|n| needs.contains(&n)),
    }
}

#[test]
fn when_the_code_calls_an_aws_action_then_the_roles_grant_it_as_the_reference_requires() {
    let called = actions_the_code_calls();
    assert!(called.contains("ecs:ListTasks") && called.len() >= 14, "{called:?}");
    let table = table();
    let listed: BTreeSet<String> = table.iter().map(|g| g.action.to_owned()).collect();
    assert_eq!(
        listed, called,
        "the table (left) must list exactly the calls of the code (right)"
    );

    let template = rendered("ecs-watchdog", EVERYTHING_ON);
    for role in [MONITOR, SWEEP] {
        let statements = statements(&template, role);
        for grant in table.iter().filter(|g| expected(g, role, &ALL_NEEDS)) {
            let found = granting(&statements, grant.action);
            assert_eq!(found.len(), 1, "{role}: {} is granted once: {found:?}", grant.action);
            let statement = found[0];
            assert_eq!(statement["Effect"], "Allow");
            assert_eq!(statement["Resource"], json!(grant.resource), "{role}: {}", grant.action);
            assert_eq!(
                statement.get("Condition"),
                grant.condition.as_ref(),
                "{role}: {}",
                grant.action
            );
        }
    }
}

/// The restart's grants, which the everything-on rendering (drain-and-replace) has not: each
/// granted once, on the resources the reference names, in both roles as they need it.
#[test]
fn when_agents_are_restarted_then_the_grants_are_the_documents_and_the_nodes_and_the_sweeps_drain() {
    let template = rendered("ecs-watchdog", &[("RemediationAction", "restart-then-drain")]);
    let needs = [Needs::RestartWrite, Needs::RestartDrainWrite];
    let mut checked = 0;
    for role in [MONITOR, SWEEP] {
        let statements = statements(&template, role);
        for grant in table().iter().filter(|g| expected(g, role, &needs)) {
            let found = granting(&statements, grant.action);
            assert_eq!(found.len(), 1, "{role}: {} is granted once: {found:?}", grant.action);
            assert_eq!(found[0]["Resource"], json!(grant.resource), "{role}: {}", grant.action);
            assert_eq!(
                found[0].get("Condition"),
                grant.condition.as_ref(),
                "{role}: {}",
                grant.action
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked, 3,
        "the monitor's SendCommand and claim given back, and the sweep's drain"
    );
}

#[test]
fn when_a_role_grants_an_action_then_its_function_or_lambda_needs_it() {
    let template = rendered("ecs-watchdog", EVERYTHING_ON);
    let table = table();
    // What Lambda does with the role on the function's behalf: poll the queue (the monitor only),
    // write logs, and (with a customer key) have SQS, SNS and DynamoDB use the key.
    let lambda: BTreeSet<&str> = [
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    ]
    .into();
    let poller: BTreeSet<&str> = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
    ]
    .into();
    for role in [MONITOR, SWEEP] {
        for statement in statements(&template, role) {
            for action in actions(&statement) {
                let called = table
                    .iter()
                    .any(|g| g.action == action && expected(g, role, &ALL_NEEDS));
                let for_lambda =
                    lambda.contains(action.as_str()) || (role == MONITOR && poller.contains(action.as_str()));
                assert!(
                    called || for_lambda,
                    "{role} grants {action} but its function never calls it"
                );
                assert!(!action.contains('*'), "no wildcard actions: {action}");
            }
        }
    }
    let monitor = statements(&template, MONITOR);
    let queue = &template["Resources"]["ChecksQueue"]["Properties"]["QueueName"];
    let poll = granting(&monitor, "sqs:ReceiveMessage")[0].clone();
    assert_eq!(
        poll["Resource"],
        json!(arn("sqs", queue.as_str().unwrap())),
        "the function polls its own queue only (SAM's implicit poller policy would grant every queue)"
    );
    for (function, role) in [("MonitorFunction", MONITOR), ("SweepFunction", SWEEP)] {
        assert_eq!(
            template["Resources"][function]["Properties"]["Role"],
            json!(format!(
                "arn:aws:iam::123456789012:role/ecs-watchdog-{role}-ABCDEF123456"
            )),
            "{function} runs with its own explicit role, not one SAM makes"
        );
    }
    let kms = granting(&monitor, "kms:Decrypt")[0].clone();
    assert_eq!(
        kms["Condition"]["StringEquals"]["kms:ViaService"],
        json!([
            "sqs.us-east-1.amazonaws.com",
            "sns.us-east-1.amazonaws.com",
            "dynamodb.us-east-1.amazonaws.com"
        ]),
        "the key is used only through SQS, SNS and DynamoDB"
    );
    let sweep_kms = granting(&statements(&template, SWEEP), "kms:Decrypt")[0].clone();
    assert_eq!(
        sweep_kms["Condition"]["StringEquals"]["kms:ViaService"],
        json!(["sns.us-east-1.amazonaws.com", "dynamodb.us-east-1.amazonaws.com"]),
        "the sweep uses no queue"
    );
}

const ALL_NEEDS: [Needs; 9] = [
    Needs::Always,
    Needs::Remediation,
    Needs::RemediationWrite,
    Needs::Replace,
    Needs::ReplaceWrite,
    Needs::FindingsBus,
    Needs::Hook,
    Needs::Members,
    Needs::PagerDutySecret,
];

#[test]
fn when_a_grant_is_conditional_then_it_exists_exactly_when_the_parameters_need_it() {
    type Case = (&'static [(&'static str, &'static str)], &'static [Needs]);
    let cases: Vec<Case> = vec![
        (&[], &[Needs::Always]),
        (
            &[("RemediationAction", "drain"), ("RemediationDryRun", "true")],
            &[Needs::Always, Needs::Remediation],
        ),
        (
            &[("RemediationAction", "drain"), ("RemediationDryRun", "false")],
            &[Needs::Always, Needs::Remediation, Needs::RemediationWrite],
        ),
        (
            &[
                ("RemediationAction", "drain-and-replace"),
                ("RemediationDryRun", "true"),
            ],
            &[Needs::Always, Needs::Remediation, Needs::Replace],
        ),
        (
            &[("RemediationAction", "drain-and-replace")],
            &[
                Needs::Always,
                Needs::Remediation,
                Needs::RemediationWrite,
                Needs::Replace,
                Needs::ReplaceWrite,
            ],
        ),
        (
            &[("RemediationAction", "restart-agent")],
            &[Needs::Always, Needs::Remediation, Needs::RestartWrite],
        ),
        (
            // The monitor only restarts: the drain after a restart that did not help is the sweep's.
            &[("RemediationAction", "restart-then-drain")],
            &[
                Needs::Always,
                Needs::Remediation,
                Needs::RestartWrite,
                Needs::RestartDrainWrite,
            ],
        ),
        (
            &[
                ("RemediationAction", "restart-then-drain"),
                ("RemediationDryRun", "true"),
            ],
            &[Needs::Always, Needs::Remediation],
        ),
        (
            &[("OrganizationId", table::ORGANIZATION)],
            &[Needs::Always, Needs::Members],
        ),
        (EVERYTHING_ON, &ALL_NEEDS),
    ];
    for (parameters, needs) in cases {
        let template = rendered("ecs-watchdog", parameters);
        for role in [MONITOR, SWEEP] {
            let statements = statements(&template, role);
            for grant in table() {
                assert_eq!(
                    !granting(&statements, grant.action).is_empty(),
                    expected(&grant, role, needs),
                    "{role}: {} with {parameters:?}",
                    grant.action
                );
            }
        }
    }
    let off = rendered("ecs-watchdog", &[("SweepIntervalMinutes", "0")]);
    assert!(off["Resources"].get(SWEEP).is_none(), "no sweep, no sweep role");
    assert!(off["Resources"].get("SweepFunction").is_none());
}

#[test]
fn when_remediation_is_limited_then_iam_enforces_the_clusters_and_the_group_tag() {
    let template = rendered(
        "ecs-watchdog",
        &[
            ("RemediationAction", "drain-and-replace"),
            ("RemediationClusterNames", "prod,payments"),
            ("ReplaceOnlyTaggedGroups", "true"),
        ],
    );
    let statements = statements(&template, MONITOR);
    let drain = granting(&statements, "ecs:UpdateContainerInstancesState")[0];
    assert_eq!(
        drain["Condition"],
        json!({"ArnLike": {"ecs:cluster": ["arn:*:ecs:*:*:cluster/prod", "arn:*:ecs:*:*:cluster/payments"]}})
    );
    for role in [MONITOR, SWEEP] {
        let statements = self::statements(&template, role);
        let replace = granting(&statements, "autoscaling:SetInstanceHealth")[0];
        assert_eq!(
            replace["Condition"],
            json!({"StringEquals": {"autoscaling:ResourceTag/ecs-watchdog-replace": "true"}}),
            "{role}"
        );
    }
}

/// Every name a resource is given explicitly: two stacks in one account and region must not
/// collide on any.
fn explicit_names(template: &Value) -> BTreeSet<String> {
    let names = [
        "QueueName",
        "DashboardName",
        "LogGroupName",
        "FunctionName",
        "RoleName",
        "TopicName",
        "AlarmName",
        "TableName",
        "Name",
    ];
    template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|r| names.iter().filter_map(move |n| r["Properties"][*n].as_str()))
        .map(str::to_owned)
        .collect()
}

#[test]
fn when_two_stacks_share_a_region_then_no_names_collide() {
    let tagged = |value| [("MonitorAllClusters", "false"), ("MonitoringTagValue", value)];
    let a = explicit_names(&rendered("ecs-watchdog-payments", &tagged("payments")));
    let b = explicit_names(&rendered("ecs-watchdog-search", &tagged("search")));
    assert!(a.len() >= 3, "{a:?}");
    assert_eq!(a.len(), b.len());
    assert!(
        a.is_disjoint(&b),
        "shared names: {:?}",
        a.intersection(&b).collect::<Vec<_>>()
    );
}
