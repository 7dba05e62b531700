//! What a security review checks, over both templates as CloudFormation would deploy them (SAM's
//! translator, conditions resolved: `tests/render_template.py`), for four parameter sets each:
//! every rule delivers or is alarmed, only the stack writes to its queues, no write without
//! remediation on and not a dry run, the spoke's writes kept to the hub's scope, findings only as
//! `ecs-watchdog`. Each check enumerates what the rendered template holds, so a rule, a queue or
//! a role added later is checked without a change here.

use serde_json::{Value, json};
use watchdog_tests::template::{rendered, rendered_file, template};

use super::{actions, granting, statements};

const ORGANIZATION: &str = super::table::ORGANIZATION;
const HUB_BUS: &str = "arn:aws:events:eu-west-1:999999999999:event-bus/ecs-watchdog-hub";
const HUB_ROLES: &str = "arn:aws:iam::999999999999:role/monitor,arn:aws:iam::999999999999:role/sweep";
const WRITES: [&str; 2] = ["ecs:UpdateContainerInstancesState", "autoscaling:SetInstanceHealth"];

type Parameters = &'static [(&'static str, &'static str)];

/// The remediation settings both templates take: off, a dry run, scoped drain-and-replace, a
/// dry run of restart-then-drain.
const REMEDIATION_SETS: [Parameters; 4] = [
    &[],
    &[("RemediationAction", "drain"), ("RemediationDryRun", "true")],
    &[
        ("RemediationAction", "drain-and-replace"),
        ("RemediationClusterNames", "prod,payments"),
        ("ReplaceOnlyTaggedGroups", "true"),
    ],
    &[
        ("RemediationAction", "restart-then-drain"),
        ("RemediationDryRun", "true"),
    ],
];

/// The hub's fourth: everything on.
const HUB_EVERYTHING: Parameters = &[
    ("RemediationAction", "drain-and-replace"),
    ("OrganizationId", ORGANIZATION),
    ("FindingsEventBusName", "findings"),
    (
        "KmsKeyArn",
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ),
];

/// The spoke's fourth: every cluster, alarms to a topic.
const SPOKE_EVERYTHING: Parameters = &[
    ("RemediationAction", "drain-and-replace"),
    ("AlarmTopicArn", "arn:aws:sns:us-east-1:123456789012:ops"),
];

fn spoke(parameters: Parameters) -> Value {
    let mut all = vec![("HubEventBusArn", HUB_BUS), ("HubFunctionRoleArns", HUB_ROLES)];
    all.extend_from_slice(parameters);
    rendered_file("spoke.yaml", "ecs-watchdog-spoke", &all)
}

/// Both templates, each rendered with each of its parameter sets.
fn every_rendering() -> Vec<(String, Value)> {
    let hub = REMEDIATION_SETS.iter().chain([&HUB_EVERYTHING]);
    let hub = hub.map(|p| (format!("template.yaml {p:?}"), rendered("ecs-watchdog", p)));
    let spoke = REMEDIATION_SETS.iter().chain([&SPOKE_EVERYTHING]);
    let spoke = spoke.map(|p| (format!("spoke.yaml {p:?}"), self::spoke(p)));
    hub.chain(spoke).collect()
}

fn of_type<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, r)| (id.as_str(), &r["Properties"]))
        .collect()
}

/// A value or a list of values, as a list.
fn list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// The queue policy statements of the queue with this ARN.
fn queue_statements(template: &Value, queue_arn: &str) -> Vec<Value> {
    of_type(template, "AWS::SQS::QueuePolicy")
        .into_iter()
        .filter(|(_, p)| {
            let statements = p["PolicyDocument"]["Statement"].as_array().unwrap();
            statements.iter().any(|s| s["Resource"] == queue_arn)
        })
        .flat_map(|(_, p)| p["PolicyDocument"]["Statement"].as_array().unwrap().clone())
        .collect()
}

/// `(bus, rule name)` of a rule's ARN: `rule/<name>` on the default bus, `rule/<bus>/<name>`
/// on another.
fn rule_name(arn: &str) -> (Option<&str>, &str) {
    let path = arn.split_once(":rule/").expect("a rule ARN").1;
    match path.split_once('/') {
        Some((bus, name)) => (Some(bus), name),
        None => (None, path),
    }
}

#[test]
fn when_a_template_has_a_rule_then_its_dead_letter_queue_admits_it_and_two_alarms_watch_it() {
    for (name, template) in every_rendering() {
        let rules = of_type(&template, "AWS::Events::Rule");
        assert!(rules.len() >= 5, "{name}: {} rules", rules.len());
        let alarms = of_type(&template, "AWS::CloudWatch::Alarm");
        for (id, rule) in rules {
            let arn = rendered_rule_arn(&template, id);
            for target in rule["Targets"].as_array().unwrap() {
                let dlq = target["DeadLetterConfig"]["Arn"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: {id} has no dead-letter queue"));
                let statements = queue_statements(&template, dlq);
                let admits = statements.iter().any(|s| {
                    s["Effect"] == "Allow"
                        && s["Principal"] == json!({"Service": "events.amazonaws.com"})
                        && list(&s["Condition"]["ArnEquals"]["aws:SourceArn"]).contains(&json!(arn))
                });
                assert!(admits, "{name}: {id}'s dead-letter queue does not admit {arn}");
                let not_denied = statements
                    .iter()
                    .filter(|s| s["Effect"] == "Deny" && s["Action"] == "sqs:SendMessage")
                    .all(|s| list(&s["Condition"]["ArnNotEquals"]["aws:SourceArn"]).contains(&json!(arn)));
                assert!(not_denied, "{name}: {id}'s dead-letter queue denies it");
            }
            let (bus, rule) = rule_name(&arn);
            for metric in ["FailedInvocations", "InvocationsFailedToBeSentToDlq"] {
                let watched = alarms.iter().any(|(_, a)| {
                    let dimensions = a["Dimensions"].as_array().cloned().unwrap_or_default();
                    let dimension = |n: &str| dimensions.iter().find(|d| d["Name"] == n).map(|d| d["Value"].clone());
                    a["Namespace"] == "AWS/Events"
                        && a["MetricName"] == metric
                        && dimension("RuleName") == Some(json!(rule))
                        && dimension("EventBusName") == bus.map(|b| json!(b))
                });
                assert!(watched, "{name}: no {metric} alarm watches {id} ({arn})");
            }
        }
    }
}

/// The ARN render_template.py gives a rule, checked against the form AWS gives it: a rule on a
/// custom bus is `rule/<bus>/<name>`
/// (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridge.html).
fn rendered_rule_arn(template: &Value, id: &str) -> String {
    let policies = of_type(template, "AWS::SQS::QueuePolicy");
    let arns: Vec<String> = policies
        .iter()
        .flat_map(|(_, p)| p["PolicyDocument"]["Statement"].as_array().unwrap().clone())
        .flat_map(|s| list(&s["Condition"]["ArnEquals"]["aws:SourceArn"]))
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    let arn = arns
        .into_iter()
        .find(|a| rule_name(a).1.contains(&format!("-{id}-")))
        .unwrap_or_else(|| panic!("no queue policy names the rule {id}"));
    if id == "MemberEventsRule" {
        assert_eq!(
            arn,
            "arn:aws:events:us-east-1:123456789012:rule/ecs-watchdog-hub/ecs-watchdog-MemberEventsRule-ABCDEF123456"
        );
    }
    arn
}

#[test]
fn when_a_queue_takes_messages_then_only_the_stack_may_send() {
    for (name, template) in every_rendering() {
        for (id, policy) in of_type(&template, "AWS::SQS::QueuePolicy") {
            let statements = policy["PolicyDocument"]["Statement"].as_array().unwrap();
            let deny = statements
                .iter()
                .find(|s| s["Effect"] == "Deny" && s["Action"] == "sqs:SendMessage")
                .unwrap_or_else(|| panic!("{name}: {id} denies no sender"));
            assert_eq!(deny["Principal"], "*", "{name}: {id}");
            let admitted = deny["Condition"]["ArnNotEquals"].as_object().unwrap();
            assert!(
                admitted.keys().all(|k| k == "aws:SourceArn" || k == "aws:PrincipalArn"),
                "{name}: {id} excepts only named rules and roles: {admitted:?}"
            );
            let wildcard = admitted
                .values()
                .flat_map(list)
                .any(|v| v.as_str().is_none_or(|a| a.contains('*')));
            assert!(!wildcard, "{name}: {id} excepts a pattern");
        }
    }
    // The checks queue admits the redrive role besides the rules, and the role may do what
    // scripts/redrive.py does: read both dead-letter queues, send to the checks queue.
    let hub = rendered("ecs-watchdog", &[]);
    let redrive = "arn:aws:iam::123456789012:role/ecs-watchdog-RedriveRole-ABCDEF123456";
    let checks = hub["Resources"]["ChecksQueue"]["Properties"]["QueueName"]
        .as_str()
        .unwrap();
    let checks_arn = format!("arn:aws:sqs:us-east-1:123456789012:{checks}");
    let deny = queue_statements(&hub, &checks_arn)
        .into_iter()
        .find(|s| s["Effect"] == "Deny" && s["Action"] == "sqs:SendMessage")
        .unwrap();
    assert_eq!(deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"], redrive);
    let role = statements(&hub, "RedriveRole");
    assert_eq!(granting(&role, "sqs:SendMessage")[0]["Resource"], checks_arn);
    let dead = |logical: &str| format!("arn:aws:sqs:us-east-1:123456789012:ecs-watchdog-{logical}-ABCDEF123456");
    assert_eq!(
        granting(&role, "sqs:ReceiveMessage")[0]["Resource"],
        json!([dead("DeadLetterQueue"), dead("RulesDeadLetterQueue")])
    );
    let granted: Vec<String> = role.iter().flat_map(actions).collect();
    assert_eq!(granted, ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SendMessage"]);
    assert_eq!(
        template()["Outputs"]["RedriveRoleArn"]["Value"],
        json!({"Fn::GetAtt": ["RedriveRole", "Arn"]}),
        "make redrive finds the role in the stack's outputs"
    );
}

/// The actions of every role the rendered template creates.
fn granted_anywhere(template: &Value) -> Vec<(String, Value)> {
    of_type(template, "AWS::IAM::Role")
        .into_iter()
        .flat_map(|(id, _)| statements(template, id).into_iter().map(move |s| (id.to_owned(), s)))
        .collect()
}

#[test]
fn when_remediation_is_off_or_a_dry_run_then_no_role_may_write() {
    for (name, template) in every_rendering() {
        let writes_wanted = template["Conditions"]["RemediationWrites"] == true;
        for (role, statement) in granted_anywhere(&template) {
            for action in actions(&statement) {
                if WRITES.contains(&action.as_str()) || action == "ssm:SendCommand" {
                    assert!(writes_wanted, "{name}: {role} may {action}");
                }
            }
        }
        let remediation = template["Parameters"]["RemediationAction"].as_str().unwrap();
        let dry = template["Parameters"]["RemediationDryRun"] == "true";
        assert_eq!(writes_wanted, remediation != "none" && !dry, "{name}");
    }
}

#[test]
fn when_the_spoke_remediates_then_its_writes_are_limited_to_the_hubs_scope() {
    let scoped = spoke(REMEDIATION_SETS[2]);
    let reader = statements(&scoped, "ReaderRole");
    assert_eq!(
        granting(&reader, "ecs:UpdateContainerInstancesState")[0]["Condition"],
        json!({"ArnLike": {"ecs:cluster": ["arn:*:ecs:*:*:cluster/prod", "arn:*:ecs:*:*:cluster/payments"]}})
    );
    assert_eq!(
        granting(&reader, "autoscaling:SetInstanceHealth")[0]["Condition"],
        json!({"StringEquals": {"autoscaling:ResourceTag/ecs-watchdog-replace": "true"}})
    );
    // The hub grants itself the same, for the same parameters.
    let hub = rendered("ecs-watchdog", REMEDIATION_SETS[2]);
    let monitor = statements(&hub, "MonitorRole");
    for write in WRITES {
        assert_eq!(
            granting(&monitor, write)[0]["Condition"],
            granting(&reader, write)[0]["Condition"],
            "{write}"
        );
    }
    // Every cluster by default, as the hub.
    let every = statements(&spoke(SPOKE_EVERYTHING), "ReaderRole");
    assert_eq!(
        granting(&every, "ecs:UpdateContainerInstancesState")[0]["Condition"],
        json!({"ArnLike": {"ecs:cluster": ["arn:*:ecs:*:*:cluster/*"]}})
    );
}

#[test]
fn when_findings_and_member_events_are_put_then_only_their_source_is_admitted() {
    let hub = rendered("ecs-watchdog", HUB_EVERYTHING);
    let put = granting(&statements(&hub, "MonitorRole"), "events:PutEvents")[0].clone();
    assert_eq!(
        put["Condition"],
        json!({"StringEquals": {"events:source": "ecs-watchdog"}})
    );
    // The hub's bus: the spokes' forwarder roles, in the organization, ECS events only.
    let bus = &hub["Resources"]["HubEventBusPolicy"]["Properties"]["Statement"];
    assert_eq!(
        bus["Condition"],
        json!({
            "StringEquals": {"aws:PrincipalOrgID": ORGANIZATION, "events:source": "aws.ecs"},
            "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/ecs-watchdog-forwarder-*"}
        })
    );
    // A spoke's forwarder role is of that name, and forwards ECS events only.
    let member = spoke(&[]);
    let forwarder = &member["Resources"]["ForwarderRole"]["Properties"];
    assert_eq!(forwarder["RoleName"], "ecs-watchdog-forwarder-us-east-1");
    let forward = statements(&member, "ForwarderRole");
    assert_eq!(
        forward[0]["Condition"],
        json!({"StringEquals": {"events:source": "aws.ecs"}})
    );
}

#[test]
fn when_the_hub_is_reviewed_then_the_smaller_items_hold() {
    let hub = rendered("ecs-watchdog", &[]);
    let resources = &hub["Resources"];
    // No role is granted PutMetricData: the functions write EMF lines.
    for (role, statement) in granted_anywhere(&hub) {
        assert!(
            !actions(&statement).iter().any(|a| a.starts_with("cloudwatch:")),
            "{role}"
        );
    }
    // The scheduler's role is this stack's own, kept to this account's schedules.
    let schedule = &resources["SweepFunctionSchedule"]["Properties"]["Target"]["RoleArn"];
    assert_eq!(
        schedule,
        "arn:aws:iam::123456789012:role/ecs-watchdog-SweepScheduleRole-ABCDEF123456"
    );
    let trust = &resources["SweepScheduleRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0];
    assert_eq!(trust["Principal"], json!({"Service": "scheduler.amazonaws.com"}));
    assert_eq!(
        trust["Condition"],
        json!({"StringEquals": {"aws:SourceAccount": "123456789012"}})
    );
    // The topic refuses plain HTTP for every action a topic policy can name.
    let topic = resources["AlertTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"][0].clone();
    assert_eq!(topic["Effect"], "Deny");
    for action in [
        "sns:Publish",
        "sns:Subscribe",
        "sns:SetTopicAttributes",
        "sns:DeleteTopic",
    ] {
        assert!(actions(&topic).iter().any(|a| a == action), "{action}");
    }
    // The ledger outlives the stack.
    assert_eq!(resources["IncidentTable"]["DeletionPolicy"], "Retain");
    assert_eq!(resources["IncidentTable"]["UpdateReplacePolicy"], "Retain");
}
