"""Renders a SAM template the way CloudFormation would deploy it, for contract tests and linters.

    python tests/render_template.py TEMPLATE [--stack-name NAME] [--param KEY=VALUE ...]
                                             [--policies DIR]

1. SAM's own translator (samtranslator, the library behind `sam deploy`) expands the
   AWS::Serverless resources into plain CloudFormation.
2. Conditions are evaluated for the given parameters (defaults otherwise), `Fn::If` branches
   chosen, `AWS::NoValue` removed, and the intrinsic functions resolved to strings with the
   physical ids CloudFormation would give (placeholders built from the logical id, account
   123456789012 in us-east-1).

Prints the rendered template as JSON. With --policies, also writes every IAM policy document
of the template (roles' inline policies, queue and topic policies) to DIR/<Resource>-<policy name>.json (resource policies: -0),
which is what `make lint` gives parliament.
"""

import argparse
import json
import os
import sys
import uuid

from cfnlint.decode import decode
from samtranslator.translator.transform import transform

ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
# What a resource without an explicit name is called: CloudFormation's form, stack-logical-suffix.
SUFFIX = "-ABCDEF123456"
NO_VALUE = object()


class Stack:
    def __init__(self, template, name, overrides):
        self.template = template
        self.name = name
        # Like CloudFormation's, unique per stack: two stacks render with different ids.
        self.stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/{uuid.uuid5(uuid.NAMESPACE_URL, name)}"
        self.parameters = {}
        for key, spec in template.get("Parameters", {}).items():
            default = spec.get("Default", "")
            if spec.get("Type") == "CommaDelimitedList":
                default = [part.strip() for part in str(default).split(",")]
            self.parameters[key] = default
        for key, value in overrides.items():
            if key not in self.parameters:
                sys.exit(f"the template has no parameter {key}")
            spec = template["Parameters"][key]
            self.parameters[key] = value.split(",") if spec.get("Type") == "CommaDelimitedList" else value
        self.pseudo = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::StackName": name,
            "AWS::StackId": self.stack_id,
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.conditions = {}

    # ---------------------------------------------------------------- physical ids
    def ref(self, logical):
        if logical in self.pseudo:
            return self.pseudo[logical]
        if logical in self.parameters:
            return self.parameters[logical]
        resource = self.template["Resources"].get(logical)
        if resource is None:
            raise KeyError(f"Ref {logical}: no such parameter or resource")
        kind = resource["Type"]
        physical = self.physical_name(logical, resource)
        bus = self.rule_bus(resource)
        if bus:
            # A rule on a custom bus: Ref is "<bus>|<rule>" (CloudFormation returns the rule's id;
            # aws-cloudformation/cloudformation-coverage-roadmap#1131).
            return f"{bus}|{physical}"
        return {
            "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{physical}",
            "AWS::SQS::Queue": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical}",
            "AWS::KMS::Key": "0f6f9b30-key",
        }.get(kind, physical)

    def physical_name(self, logical, resource):
        props = resource.get("Properties", {})
        for key in ("QueueName", "FunctionName", "RoleName", "LogGroupName", "TableName", "Name", "DashboardName"):
            if isinstance(props.get(key), (str, dict, list)) and props.get(key):
                value = self.resolve(props[key])
                if isinstance(value, str):
                    return value
        return f"{self.name}-{logical}{SUFFIX}"

    def rule_bus(self, resource):
        """The custom bus a rule is on, by name; None for the default bus and other resources."""
        if resource["Type"] != "AWS::Events::Rule":
            return None
        bus = self.resolve(resource.get("Properties", {}).get("EventBusName", "default"))
        bus = bus.rsplit("/", 1)[-1] if isinstance(bus, str) else bus
        return None if bus in (None, "default", NO_VALUE) else bus

    def get_att(self, logical, attribute):
        resource = self.template["Resources"][logical]
        kind = resource["Type"]
        name = self.physical_name(logical, resource)
        bus = self.rule_bus(resource)
        if bus and attribute == "Arn":
            # The ARN of a rule on a custom bus names the bus: rule/<bus>/<rule>
            # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridge.html).
            return f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{bus}/{name}"
        arns = {
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}",
            "AWS::Events::EventBus": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
        }
        if attribute == "Arn":
            return arns.get(kind, f"arn:aws:unknown:{REGION}:{ACCOUNT}:{name}")
        if attribute in ("QueueName", "TopicName", "Name"):
            return name
        if attribute == "QueueUrl":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        return f"{name}.{attribute}"

    # ---------------------------------------------------------------- conditions
    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = self.evaluate(self.template["Conditions"][name])
        return self.conditions[name]

    def evaluate(self, expression):
        (function, argument), = expression.items()
        if function == "Fn::Equals":
            return self.resolve(argument[0]) == self.resolve(argument[1])
        if function == "Fn::Not":
            return not self.evaluate(argument[0])
        if function == "Fn::And":
            return all(self.evaluate(a) for a in argument)
        if function == "Fn::Or":
            return any(self.evaluate(a) for a in argument)
        if function == "Condition":
            return self.condition(argument)
        raise ValueError(f"cannot evaluate condition {expression}")

    # ---------------------------------------------------------------- values
    def resolve(self, value):
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), = value.items()
            if key == "Ref":
                return NO_VALUE if argument == "AWS::NoValue" else self.ref(argument)
            if key == "Fn::GetAtt":
                logical, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.get_att(logical, attribute)
            if key == "Fn::If":
                name, yes, no = argument
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Sub":
                return self.sub(argument)
            if key == "Fn::Join":
                delimiter, parts = argument
                return self.resolve(delimiter).join(str(p) for p in self.flat(self.resolve(parts)))
            if key == "Fn::Split":
                delimiter, text = argument
                return self.resolve(text).split(self.resolve(delimiter))
            if key == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Condition":
                return {key: argument}
        resolved = {}
        for key, inner in value.items():
            inner = self.resolve(inner)
            if inner is not NO_VALUE:
                resolved[key] = inner
        return resolved

    def flat(self, items):
        for item in items:
            if isinstance(item, list):
                yield from item
            else:
                yield item

    def sub(self, argument):
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {k: self.resolve(v) for k, v in variables.items()}
        out, i = [], 0
        while i < len(text):
            start = text.find("${", i)
            if start < 0:
                out.append(text[i:])
                break
            out.append(text[i:start])
            end = text.index("}", start)
            name = text[start + 2:end]
            if name.startswith("!"):
                out.append("${" + name[1:] + "}")
            elif name in variables:
                out.append(str(variables[name]))
            elif "." in name and name.split(".", 1)[0] in self.template["Resources"]:
                out.append(self.get_att(*name.split(".", 1)))
            else:
                resolved = self.ref(name)
                out.append(",".join(resolved) if isinstance(resolved, list) else str(resolved))
            i = end + 1
        return "".join(out)

    def render(self):
        resources = {}
        for logical, resource in self.template["Resources"].items():
            condition = resource.get("Condition")
            if condition and not self.condition(condition):
                continue
            rendered = dict(resource)
            if "Properties" in resource:
                rendered["Properties"] = self.resolve(resource["Properties"])
            resources[logical] = rendered
        return {
            "Parameters": self.parameters,
            "Conditions": {name: self.condition(name) for name in self.template.get("Conditions", {})},
            "Resources": resources,
        }


class NoManagedPolicies:
    """The templates name no AWS managed policy; a look-up would need AWS credentials."""

    def load(self):
        return {}


def policy_documents(rendered):
    """Every IAM policy document of the rendered template, named by its resource."""
    for logical, resource in rendered["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield f"{logical}-{policy['PolicyName']}", policy["PolicyDocument"]
        elif "PolicyDocument" in props:
            yield f"{logical}-0", props["PolicyDocument"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("template")
    parser.add_argument("--stack-name", default="ecs-watchdog")
    parser.add_argument("--param", action="append", default=[])
    parser.add_argument("--policies")
    args = parser.parse_args()
    print(json.dumps(render(args.template, args.stack_name, dict(p.split("=", 1) for p in args.param), args.policies), indent=1))


def render(path, stack_name, overrides, policies=None):
    """The rendered template as a dict; with `policies`, its policy documents written there."""
    template, problems = decode(path)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        sys.exit(1)
    if "Transform" in template:
        # The translator asks boto for the region only to fill AWS::Region; it reads no account.
        os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
        # As `sam package` does: the code is uploaded and CodeUri names the object.
        for resource in template["Resources"].values():
            if resource.get("Type") == "AWS::Serverless::Function":
                resource["Properties"]["CodeUri"] = "s3://ecs-watchdog-artifacts/monitor.zip"
        template = transform(template, {}, NoManagedPolicies())
    rendered = Stack(template, stack_name, overrides).render()
    if policies:
        os.makedirs(policies, exist_ok=True)
        for name, document in policy_documents(rendered):
            with open(os.path.join(policies, f"{name}.json"), "w") as f:
                json.dump(document, f, indent=1)
    return rendered


if __name__ == "__main__":
    main()
