//! The table: how AWS authorizes each action the code calls, by role and by the parameters that
//! make the template grant it.

use serde_json::{Value, json};

const ACCOUNT_REGION: &str = "us-east-1:123456789012";
pub const ORGANIZATION: &str = "o-abc123def4";

/// When the template grants an action to the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// The monitor never calls it (the sweep may).
    Never,
    Always,
    /// Remediation on, dry run or not (the guard reads the cluster).
    Remediation,
    /// Remediation on, neither restart action, not a dry run: the monitor's drain.
    RemediationWrite,
    /// restart-agent or restart-then-drain, not a dry run: the agent restart.
    RestartWrite,
    /// restart-then-drain, not a dry run: the sweep drains what a restart did not bring back.
    RestartDrainWrite,
    Replace,
    ReplaceWrite,
    FindingsBus,
    Hook,
    /// The stack serves an organization's accounts (`OrganizationId`).
    Members,
    /// PagerDuty's routing key is kept in Secrets Manager (`PagerDutyRoutingKeySecret`).
    PagerDutySecret,
}

/// One row: how IAM authorizes an action the way the code calls it.
pub struct Grant {
    pub action: &'static str,
    pub resource: Value,
    pub condition: Option<Value>,
    pub needs: Needs,
    /// When the sweep calls it (when the sweep is on); `None`: never.
    pub sweep: Option<Needs>,
}

/// The two roles, by logical id.
pub const MONITOR: &str = "MonitorRole";
pub const SWEEP: &str = "SweepRole";

pub fn arn(service: &str, rest: &str) -> String {
    format!("arn:aws:{service}:{ACCOUNT_REGION}:{rest}")
}

/// The table. Pages of the Service Authorization Reference, under
/// https://docs.aws.amazon.com/service-authorization/latest/reference/:
/// list_amazonelasticcontainerservice.html, list_amazonec2.html, list_amazonsns.html,
/// list_amazonsqs.html, list_amazondynamodb.html, list_amazoncloudwatch.html, list_amazoneventbridge.html,
/// list_awslambda.html, list_amazonec2autoscaling.html, list_awssystemsmanager.html,
/// list_awssecuritytokenservice.html.
pub fn table() -> Vec<Grant> {
    let in_account = json!({"ArnLike": {"ecs:cluster": arn("ecs", "cluster/*")}});
    vec![
        // ECS: DescribeClusters takes `cluster*`; DescribeContainerInstances `container-instance*`
        // (condition ecs:cluster); DescribeTasks `task*`.
        Grant {
            action: "ecs:DescribeClusters",
            resource: arn("ecs", "cluster/*").into(),
            condition: None,
            needs: Needs::Always,
            sweep: Some(Needs::Always),
        },
        Grant {
            action: "ecs:DescribeContainerInstances",
            resource: arn("ecs", "container-instance/*").into(),
            condition: None,
            needs: Needs::Always,
            sweep: Some(Needs::Always),
        },
        Grant {
            action: "ecs:DescribeTasks",
            resource: arn("ecs", "task/*").into(),
            condition: None,
            needs: Needs::Always,
            sweep: Some(Needs::Always),
        },
        // ListTasks has two rows: `container-instance`, when the call names one, and a row with
        // no resource type (conditions aws:ResourceTag, ecs:cluster). The code lists a daemon's
        // tasks by family across the cluster, naming no container instance: that is authorized
        // against "*", and a grant on container-instance/* is an AccessDenied on AWS. It also
        // lists an alerted instance's tasks by `containerInstance` (the services an alert names),
        // authorized on that container instance
        // (`arn:${Partition}:ecs:${Region}:${Account}:container-instance/${ClusterName}/${ContainerInstanceId}`),
        // which "*" covers, ecs:cluster still keeping it to the account's clusters: one
        // statement serves both calls.
        Grant {
            action: "ecs:ListTasks",
            resource: "*".into(),
            condition: Some(in_account),
            needs: Needs::Always,
            sweep: Some(Needs::Always),
        },
        // Managed Daemons list calls: granted on "*" (read-only); the stored copy of the reference
        // here predates them, so no narrower resource could be checked.
        Grant {
            action: "ecs:ListDaemons",
            resource: "*".into(),
            condition: None,
            needs: Needs::Always,
            sweep: Some(Needs::Always),
        },
        // The monitor reads a lost daemon's criticality; the sweep its placement too.
        Grant {
            action: "ecs:DescribeDaemon",
            resource: "*".into(),
            condition: None,
            needs: Needs::Always,
            sweep: Some(Needs::Always),
        },
        Grant {
            action: "ecs:DescribeDaemonRevisions",
            resource: "*".into(),
            condition: None,
            needs: Needs::Always,
            sweep: Some(Needs::Always),
        },
        Grant {
            action: "ecs:ListDaemonDeployments",
            resource: "*".into(),
            condition: None,
            needs: Needs::Always,
            sweep: Some(Needs::Always),
        },
        // EC2 Describe* and Auto Scaling Describe* have no resource type.
        Grant {
            action: "ec2:DescribeInstances",
            resource: "*".into(),
            condition: None,
            needs: Needs::Always,
            sweep: Some(Needs::Always),
        },
        // Systems Manager's DescribeInstanceInformation has no resource type either
        // (list_awssystemsmanager.html): the ECS Anywhere hosts behind disconnected agents.
        Grant {
            action: "ssm:DescribeInstanceInformation",
            resource: "*".into(),
            condition: None,
            needs: Needs::Always,
            sweep: Some(Needs::Always),
        },
        // STS: AssumeRole takes the `role` resource (list_awssecuritytokenservice.html); the
        // member accounts are not known in advance, so any account's role of that name, kept to
        // the organization's accounts by aws:ResourceOrgID (a global condition key:
        // https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html).
        // The reader role's trust policy (spoke.yaml) admits only these functions' roles.
        Grant {
            action: "sts:AssumeRole",
            resource: "arn:aws:iam::*:role/ecs-watchdog-reader".into(),
            condition: Some(json!({"StringEquals": {"aws:ResourceOrgID": ORGANIZATION}})),
            needs: Needs::Members,
            sweep: Some(Needs::Members),
        },
        // PagerDuty's routing key, read at init through Parameter Store: GetParameter takes
        // `parameter*` (list_awssystemsmanager.html), here the reference path of a Secrets
        // Manager secret, which needs GetSecretValue on the secret (`Secret*`,
        // list_awssecretsmanager.html; the systems-manager user guide's
        // integration-ps-secretsmanager.html). The ARN of a secret ends in six random characters.
        Grant {
            action: "ssm:GetParameter",
            resource: arn("ssm", "parameter/aws/reference/secretsmanager/ecs-watchdog/pagerduty").into(),
            condition: None,
            needs: Needs::PagerDutySecret,
            sweep: Some(Needs::PagerDutySecret),
        },
        Grant {
            action: "secretsmanager:GetSecretValue",
            resource: arn("secretsmanager", "secret:ecs-watchdog/pagerduty-??????").into(),
            condition: None,
            needs: Needs::PagerDutySecret,
            sweep: Some(Needs::PagerDutySecret),
        },
        Grant {
            action: "sns:Publish",
            resource: arn("sns", "ecs-watchdog-AlertTopic-ABCDEF123456").into(),
            condition: None,
            needs: Needs::Always,
            sweep: Some(Needs::Always),
        },
        Grant {
            action: "sqs:SendMessage",
            resource: arn("sqs", "ecs-watchdog-DeadLetterQueue-ABCDEF123456").into(),
            condition: None,
            needs: Needs::Always,
            sweep: None,
        },
        // The code can call PutMetricData (METRICS_SINK=api, outside Lambda); the template sets
        // METRICS_SINK=emf, so no role is granted it (docs/security.md).
        Grant {
            action: "cloudwatch:PutMetricData",
            resource: "*".into(),
            condition: None,
            needs: Needs::Never,
            sweep: None,
        },
        // DynamoDB item calls take `table*`: the stack's incident table only. TransactWriteItems
        // has no action of its own: each Put and Update in it is authorized as PutItem and
        // UpdateItem (DynamoDB developer guide, "Using IAM with DynamoDB transactions").
        Grant {
            action: "dynamodb:BatchGetItem",
            resource: arn("dynamodb", "table/ecs-watchdog-IncidentTable-ABCDEF123456").into(),
            condition: None,
            needs: Needs::Always,
            sweep: Some(Needs::Always),
        },
        Grant {
            action: "dynamodb:PutItem",
            resource: arn("dynamodb", "table/ecs-watchdog-IncidentTable-ABCDEF123456").into(),
            condition: None,
            needs: Needs::Always,
            sweep: Some(Needs::Always),
        },
        Grant {
            action: "dynamodb:UpdateItem",
            resource: arn("dynamodb", "table/ecs-watchdog-IncidentTable-ABCDEF123456").into(),
            condition: None,
            needs: Needs::Always,
            sweep: Some(Needs::Always),
        },
        // The sweep's record of each cluster (its tags and size), 25 items a call: the monitor
        // only reads them.
        Grant {
            action: "dynamodb:BatchWriteItem",
            resource: arn("dynamodb", "table/ecs-watchdog-IncidentTable-ABCDEF123456").into(),
            condition: None,
            needs: Needs::Never,
            sweep: Some(Needs::Always),
        },
        // ListContainerInstances takes `cluster*` (the sweep lists every cluster's instances; the
        // remediation guard counts them); ListClusters has no resource type.
        Grant {
            action: "ecs:ListContainerInstances",
            resource: arn("ecs", "cluster/*").into(),
            condition: None,
            needs: Needs::Remediation,
            sweep: Some(Needs::Always),
        },
        Grant {
            action: "ecs:ListClusters",
            resource: "*".into(),
            condition: None,
            needs: Needs::Never,
            sweep: Some(Needs::Always),
        },
        // Query on an index is authorized against `index*` (table/<name>/index/<index>): a
        // cluster's open incidents, the incidents a group holds for its digest, and what is
        // owed in the whole table (the outbox).
        Grant {
            action: "dynamodb:Query",
            resource: json!([
                arn(
                    "dynamodb",
                    "table/ecs-watchdog-IncidentTable-ABCDEF123456/index/by-cluster"
                ),
                arn(
                    "dynamodb",
                    "table/ecs-watchdog-IncidentTable-ABCDEF123456/index/by-held-group"
                ),
                arn("dynamodb", "table/ecs-watchdog-IncidentTable-ABCDEF123456/index/by-due"),
            ]),
            condition: None,
            needs: Needs::Always,
            sweep: Some(Needs::Always),
        },
        // Scan on an index is authorized against `index*`: the sweep's one read of every open
        // incident, whatever its place (the places to sweep, the clusters gone).
        Grant {
            action: "dynamodb:Scan",
            resource: arn(
                "dynamodb",
                "table/ecs-watchdog-IncidentTable-ABCDEF123456/index/by-cluster",
            )
            .into(),
            condition: None,
            needs: Needs::Never,
            sweep: Some(Needs::Always),
        },
        // `capacity-provider*`: whether a target is an ECS Managed Instance, never drained; the
        // sweep's instance-not-registered: each cluster's providers' Auto Scaling groups.
        Grant {
            action: "ecs:DescribeCapacityProviders",
            resource: arn("ecs", "capacity-provider/*").into(),
            condition: None,
            needs: Needs::Remediation,
            sweep: Some(Needs::Always),
        },
        // `container-instance*`, condition ecs:cluster: only the clusters remediation may act on.
        Grant {
            action: "ecs:UpdateContainerInstancesState",
            resource: arn("ecs", "container-instance/*").into(),
            condition: Some(json!({"ArnLike": {"ecs:cluster": ["arn:*:ecs:*:*:cluster/*"]}})),
            needs: Needs::RemediationWrite,
            sweep: Some(Needs::RestartDrainWrite),
        },
        // SendCommand: `document*` and `instance*` / `managed-instance*` (list_awssystemsmanager.html);
        // the document is the stack's own (it runs `systemctl restart ecs`, no parameter), never
        // an AWS-owned one that runs whatever it is given.
        Grant {
            action: "ssm:SendCommand",
            resource: json!([
                arn("ssm", "document/ecs-watchdog-reader-restart-agent"),
                arn("ec2", "instance/*"),
                arn("ssm", "managed-instance/*"),
            ]),
            condition: None,
            needs: Needs::RestartWrite,
            sweep: None,
        },
        // A restart not sent gives its claim back: DeleteItem takes `table*`, and
        // dynamodb:LeadingKeys keeps it to the claims' items (their ids start `restart-claim|`).
        Grant {
            action: "dynamodb:DeleteItem",
            resource: arn("dynamodb", "table/ecs-watchdog-IncidentTable-ABCDEF123456").into(),
            condition: Some(json!({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["restart-claim|*"]}})),
            needs: Needs::RestartWrite,
            sweep: None,
        },
        Grant {
            action: "autoscaling:DescribeAutoScalingInstances",
            resource: "*".into(),
            condition: None,
            needs: Needs::Replace,
            sweep: Some(Needs::Replace),
        },
        // A group's tags (REPLACE_ONLY_TAGGED_GROUPS), and the sweep's instance-not-registered:
        // the InService instances of the clusters' groups. No resource type either.
        Grant {
            action: "autoscaling:DescribeAutoScalingGroups",
            resource: "*".into(),
            condition: None,
            needs: Needs::Replace,
            sweep: Some(Needs::Always),
        },
        // `autoScalingGroup*`, condition autoscaling:ResourceTag (opt-in, see below).
        Grant {
            action: "autoscaling:SetInstanceHealth",
            resource: arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/*").into(),
            condition: None,
            needs: Needs::ReplaceWrite,
            sweep: Some(Needs::ReplaceWrite),
        },
        Grant {
            action: "events:PutEvents",
            resource: arn("events", "event-bus/findings").into(),
            // events:source is a condition key of PutEvents (list_amazoneventbridge.html): a
            // rule matching source ecs-watchdog cannot be fed anything else through this role.
            condition: Some(json!({"StringEquals": {"events:source": "ecs-watchdog"}})),
            needs: Needs::FindingsBus,
            sweep: None,
        },
        Grant {
            action: "lambda:InvokeFunction",
            resource: arn("lambda", "function:hook").into(),
            condition: None,
            needs: Needs::Hook,
            sweep: None,
        },
    ]
}
