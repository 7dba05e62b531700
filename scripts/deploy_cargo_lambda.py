"""Deploys ecs-watchdog without CloudFormation: cargo-lambda for the function, boto3 for the rest.

    make deploy-cargo-lambda NAME=ecs-watchdog [PARAMS="GracePeriodSeconds=120 ..."] [EMAIL=you@example.com]

What it creates is what template.yaml declares, read through SAM's translator for this account
and region (tests/render_template.py), so the two deploy paths cannot drift apart: the queues
with their attributes and policies, the alert topic, the incident table, the log groups, the functions' roles and
policies, the `monitor` function (settings and environment from the template), the EventBridge
rules with their targets, the queue policies (once the rules and roles they name exist), the
restart's Command document (restart-agent, restart-then-drain: `RestartAgentDocument`, which the
functions' RESTART_DOCUMENT_NAME names), the event source mapping, (unless SweepIntervalMinutes=0) the `sweep` function with its EventBridge
Scheduler schedule, and the alarms. The dashboard comes with the SAM stack only. Names are
<NAME>-<logical id>. Run it again to update: existing resources are updated in place, the
function's code replaced.

The functions' code: by default `cargo lambda deploy` uploads the arm64 bootstrap that
`cargo lambda build --release --arm64` made for each binary; --code-zip deploys a zip with
boto3 instead (used by the tests against the emulator, which cannot run an arm64 build).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import render_template  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
QUEUE_ATTRIBUTES = ("DelaySeconds", "VisibilityTimeout", "MessageRetentionPeriod", "KmsMasterKeyId")


def rendered_for(session, name, parameters):
    identity = session.client("sts").get_caller_identity()
    render_template.ACCOUNT = identity["Account"]
    render_template.REGION = session.region_name
    render_template.SUFFIX = ""
    return render_template.render(str(ROOT / "template.yaml"), name, parameters)


class Deployer:
    def __init__(self, session, rendered, name):
        self.session = session
        self.resources = rendered["Resources"]
        self.name = name
        # What the template predicted for a resource (its Ref or ARN) -> what AWS answered.
        self.actual = {}

    def of_type(self, kind):
        return [(logical, r["Properties"]) for logical, r in self.resources.items() if r["Type"] == kind]

    def real(self, value):
        text = json.dumps(value)
        for predicted, actual in self.actual.items():
            text = text.replace(predicted, actual)
        return json.loads(text)

    def physical(self, logical, props, key):
        return props.get(key) or f"{self.name}-{logical}"

    def queues(self):
        sqs = self.session.client("sqs")
        # Dead-letter queues first: the checks queue names one in its redrive policy.
        ordered = sorted(self.of_type("AWS::SQS::Queue"), key=lambda q: "RedrivePolicy" in q[1])
        urls = {}
        for logical, props in ordered:
            name = self.physical(logical, props, "QueueName")
            attributes = {k: str(props[k]) for k in QUEUE_ATTRIBUTES if k in props}
            if props.get("SqsManagedSseEnabled"):
                attributes["SqsManagedSseEnabled"] = "true"
            for key in ("RedrivePolicy", "RedriveAllowPolicy"):
                if key in props:
                    attributes[key] = json.dumps(self.real(props[key]))
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.actual[f"https://sqs.{render_template.REGION}.amazonaws.com/{render_template.ACCOUNT}/{name}"] = url
            self.actual[f"arn:aws:sqs:{render_template.REGION}:{render_template.ACCOUNT}:{name}"] = arn
            urls[logical] = url
        return urls

    def queue_policies(self):
        """After the rules and roles: each policy names them (who may send, who is denied)."""
        sqs = self.session.client("sqs")
        for _, props in self.of_type("AWS::SQS::QueuePolicy"):
            for queue in props["Queues"]:
                sqs.set_queue_attributes(
                    QueueUrl=self.real(queue), Attributes={"Policy": json.dumps(self.real(props["PolicyDocument"]))}
                )

    def alarms(self):
        """The template's alarms, named <NAME>-<logical id>, their dimensions the real names."""
        cloudwatch = self.session.client("cloudwatch")
        keys = (
            "AlarmDescription", "Namespace", "MetricName", "Dimensions", "Statistic", "Period", "EvaluationPeriods",
            "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData", "AlarmActions", "OKActions",
            "ActionsEnabled",
        )
        names = []
        for logical, props in self.of_type("AWS::CloudWatch::Alarm"):
            props = self.real(props)
            settings = {k: props[k] for k in keys if k in props}
            cloudwatch.put_metric_alarm(AlarmName=f"{self.name}-{logical}", **settings)
            names.append(f"{self.name}-{logical}")
        return names

    def topic(self, email):
        sns = self.session.client("sns")
        for logical, props in self.of_type("AWS::SNS::Topic"):
            attributes = {"DisplayName": props.get("DisplayName", self.name)}
            if props.get("KmsMasterKeyId"):
                attributes["KmsMasterKeyId"] = props["KmsMasterKeyId"]
            arn = sns.create_topic(Name=f"{self.name}-{logical}", Attributes=attributes)["TopicArn"]
            self.actual[f"arn:aws:sns:{render_template.REGION}:{render_template.ACCOUNT}:{self.name}-{logical}"] = arn
        for _, props in self.of_type("AWS::SNS::TopicPolicy"):
            for topic in props["Topics"]:
                sns.set_topic_attributes(
                    TopicArn=self.real(topic),
                    AttributeName="Policy",
                    AttributeValue=json.dumps(self.real(props["PolicyDocument"])),
                )
        if email:
            topic = self.real(self.resources["MonitorFunction"]["Properties"]["Environment"]["Variables"]["ALERT_TOPIC_ARN"])
            sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=email)
            # The health alarms' topic too, as OperatorEmail defaults to NotificationEmail.
            if "OperatorTopic" in self.resources:
                operator = f"arn:aws:sns:{render_template.REGION}:{render_template.ACCOUNT}:{self.name}-OperatorTopic"
                sns.subscribe(TopicArn=self.real(operator), Protocol="email", Endpoint=email)

    def tables(self):
        dynamodb = self.session.client("dynamodb")
        for logical, props in self.of_type("AWS::DynamoDB::Table"):
            name = f"{self.name}-{logical}"
            try:
                dynamodb.create_table(
                    TableName=name,
                    BillingMode=props["BillingMode"],
                    AttributeDefinitions=props["AttributeDefinitions"],
                    KeySchema=props["KeySchema"],
                    **({"GlobalSecondaryIndexes": props["GlobalSecondaryIndexes"]} if "GlobalSecondaryIndexes" in props else {}),
                    # CloudFormation says SSEEnabled where the API says Enabled.
                    SSESpecification={
                        ("Enabled" if k == "SSEEnabled" else k): v for k, v in props["SSESpecification"].items()
                    },
                )
                dynamodb.get_waiter("table_exists").wait(TableName=name)
            except dynamodb.exceptions.ResourceInUseException:
                pass
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
            ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
            arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
            self.actual[f"arn:aws:dynamodb:{render_template.REGION}:{render_template.ACCOUNT}:table/{name}"] = arn

    def documents(self):
        """The template's Command documents (RestartAgentDocument) under the names it gives them,
        which the functions' environment and the SendCommand grant name. A change is a new
        version, as the template's UpdateMethod: NewVersion makes it (the restart sends $LATEST)."""
        ssm = self.session.client("ssm")
        for _, props in self.of_type("AWS::SSM::Document"):
            content = json.dumps(props["Content"])
            try:
                ssm.create_document(
                    Name=props["Name"], Content=content,
                    DocumentType=props["DocumentType"], DocumentFormat=props["DocumentFormat"],
                )
            except ssm.exceptions.DocumentAlreadyExists:
                try:
                    ssm.update_document(
                        Name=props["Name"], Content=content,
                        DocumentVersion="$LATEST", DocumentFormat=props["DocumentFormat"],
                    )
                except ssm.exceptions.DuplicateDocumentContent:
                    pass

    def log_group(self):
        logs = self.session.client("logs")
        for _, props in self.of_type("AWS::Logs::LogGroup"):
            try:
                logs.create_log_group(logGroupName=props["LogGroupName"])
            except logs.exceptions.ResourceAlreadyExistsException:
                pass
            logs.put_retention_policy(logGroupName=props["LogGroupName"], retentionInDays=props["RetentionInDays"])

    def role(self, logical):
        iam = self.session.client("iam")
        props = self.resources[logical]["Properties"]
        name = f"{self.name}-{logical}"
        trust = json.dumps(props["AssumeRolePolicyDocument"])
        try:
            arn = iam.create_role(
                RoleName=name, AssumeRolePolicyDocument=trust, Description=props.get("Description", logical)
            )["Role"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        for policy in props["Policies"]:
            # SAM writes the schedule's policy without a Version; IAM's own default is the 2008
            # language, which policy variables need not: state the current one.
            document = {"Version": "2012-10-17", **self.real(policy["PolicyDocument"])}
            iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document))
        self.actual[f"arn:aws:iam::{render_template.ACCOUNT}:role/{self.name}-{logical}"] = arn
        return arn

    def function(self, logical, binary, role_arn, code_zip):
        props = self.real(self.resources[logical]["Properties"])
        name = f"{self.name}-{binary}"
        environment = {k: str(v) for k, v in props["Environment"]["Variables"].items()}
        if code_zip is None:
            command = [
                "cargo", "lambda", "deploy", name,
                "--binary-name", binary,
                "--runtime", props["Runtime"],
                "--role", role_arn,
                "--timeout", str(props["Timeout"]),
                "--memory", str(props["MemorySize"]),
                "--description", props["Description"],
            ]
            for key, value in environment.items():
                command += ["--env-var", f"{key}={value}"]
            subprocess.run(command, check=True, cwd=ROOT)
            arn = self.session.client("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]
        else:
            lam = self.session.client("lambda")
            settings = dict(
                FunctionName=name, Role=role_arn, Handler="bootstrap", Runtime=props["Runtime"],
                Timeout=props["Timeout"], MemorySize=props["MemorySize"], Description=props["Description"],
                Environment={"Variables": environment}, Architectures=props["Architectures"],
            )
            code = Path(code_zip).read_bytes()
            try:
                arn = lam.create_function(Code={"ZipFile": code}, **settings)["FunctionArn"]
            except lam.exceptions.ResourceConflictException:
                lam.update_function_configuration(**{k: v for k, v in settings.items() if k != "Architectures"})
                arn = lam.update_function_code(FunctionName=name, ZipFile=code)["FunctionArn"]
        # The template's logging settings (JSON logs, levels, the stack's log group).
        self.session.client("lambda").update_function_configuration(FunctionName=name, LoggingConfig=props["LoggingConfig"])
        self.actual[f"arn:aws:lambda:{render_template.REGION}:{render_template.ACCOUNT}:function:{self.name}-{logical}"] = arn
        # Its name, as the alarms' dimensions predicted it.
        self.actual[f"{self.name}-{logical}"] = name
        return name, arn

    def schedules(self):
        scheduler = self.session.client("scheduler")
        for logical, props in self.of_type("AWS::Scheduler::Schedule"):
            props = self.real(props)
            settings = dict(
                Name=props["Name"], ScheduleExpression=props["ScheduleExpression"],
                FlexibleTimeWindow=props["FlexibleTimeWindow"], Target=props["Target"],
                # EnableMonitoring=false disables it, as it disables the rules.
                State=props.get("State", "ENABLED"),
            )
            try:
                scheduler.create_schedule(**settings)
            except scheduler.exceptions.ConflictException:
                scheduler.update_schedule(**settings)

    def buses(self):
        """The hub's bus for member accounts (OrganizationId set) and its policy."""
        events = self.session.client("events")
        for logical, props in self.of_type("AWS::Events::EventBus"):
            try:
                arn = events.create_event_bus(Name=props["Name"])["EventBusArn"]
            except events.exceptions.ResourceAlreadyExistsException:
                arn = events.describe_event_bus(Name=props["Name"])["Arn"]
            self.actual[f"arn:aws:events:{render_template.REGION}:{render_template.ACCOUNT}:event-bus/{props['Name']}"] = arn
        for logical, props in self.of_type("AWS::Events::EventBusPolicy"):
            props = self.real(props)
            statement = dict(props["Statement"], Sid=props["StatementId"])
            policy = {"Version": "2012-10-17", "Statement": [statement]}
            events.put_permission(EventBusName=props["EventBusName"], Policy=json.dumps(policy))

    def rules(self):
        events = self.session.client("events")
        arns = []
        for logical, props in self.of_type("AWS::Events::Rule"):
            name = f"{self.name}-{logical}"
            bus = {"EventBusName": self.real(props["EventBusName"])} if "EventBusName" in props else {}
            arn = events.put_rule(
                Name=name, EventPattern=json.dumps(props["EventPattern"]), State=props["State"],
                Description=props["Description"], **bus,
            )["RuleArn"]
            self.actual[f"arn:aws:events:{render_template.REGION}:{render_template.ACCOUNT}:rule/{name}"] = arn
            targets = self.real(props["Targets"])
            events.put_targets(Rule=name, Targets=targets, **bus)
            arns.append(arn)
        return arns

    def event_source_mapping(self, function_name):
        lam = self.session.client("lambda")
        (_, props), = self.of_type("AWS::Lambda::EventSourceMapping")
        props = self.real(props)
        settings = {k: props[k] for k in ("BatchSize", "MaximumBatchingWindowInSeconds", "FunctionResponseTypes", "ScalingConfig") if k in props}
        existing = lam.list_event_source_mappings(EventSourceArn=props["EventSourceArn"], FunctionName=function_name)
        if existing["EventSourceMappings"]:
            uuid = existing["EventSourceMappings"][0]["UUID"]
            lam.update_event_source_mapping(UUID=uuid, FunctionName=function_name, **settings)
        else:
            uuid = lam.create_event_source_mapping(EventSourceArn=props["EventSourceArn"], FunctionName=function_name, **settings)["UUID"]
        return uuid


def deploy(session, name, parameters, email=None, code_zip=None):
    rendered = rendered_for(session, name, parameters)
    deployer = Deployer(session, rendered, name)
    queues = deployer.queues()
    deployer.topic(email)
    deployer.tables()
    deployer.log_group()
    deployer.documents()
    roles = {logical: deployer.role(logical) for logical, _ in deployer.of_type("AWS::IAM::Role")}
    # IAM is eventually consistent: a role used at once can fail Lambda's check.
    time.sleep(0 if code_zip else 10)
    deployer.buses()
    deployer.rules()
    deployer.queue_policies()
    function_name, function_arn = deployer.function("MonitorFunction", "monitor", roles["MonitorRole"], code_zip)
    mapping = deployer.event_source_mapping(function_name)
    made = {"function": function_arn, "role": roles["MonitorRole"], "queues": queues, "eventSourceMapping": mapping}
    if "SweepFunction" in deployer.resources:
        _, made["sweep"] = deployer.function("SweepFunction", "sweep", roles["SweepRole"], code_zip)
        # The schedule's role invokes the sweep: its policy names the function that now exists.
        deployer.role("SweepScheduleRole")
        deployer.schedules()
    made["redriveRole"] = roles["RedriveRole"]
    made["alarms"] = deployer.alarms()
    return made


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="ecs-watchdog")
    parser.add_argument("--param", action="append", default=[], help="a template parameter, KEY=VALUE")
    parser.add_argument("--email", help="subscribe this address to the alert topic and the operator topic")
    parser.add_argument("--code-zip", help="deploy this zip with boto3 instead of `cargo lambda deploy`")
    args = parser.parse_args()
    parameters = dict(p.split("=", 1) for p in args.param)
    # boto3 reads AWS_DEFAULT_REGION and the profile, not AWS_REGION: honour both.
    session = boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None)
    print(json.dumps(deploy(session, args.name, parameters, args.email, args.code_zip), indent=1))


if __name__ == "__main__":
    main()
