"""Runs parliament on every IAM policy the template renders to, for each parameter set that
changes the policies. Exits non-zero on any finding that is not a known, explained exception.

    python tests/lint_policies.py template.yaml
    python tests/lint_policies.py spoke.yaml

The policies come from tests/render_template.py (SAM's translator, conditions resolved), so
parliament sees what CloudFormation would create, not the template's intrinsic functions.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import parliament
from parliament.cli import is_finding_filtered

# Parameter sets that change what the role is granted.
PARAMETER_SETS = [
    [],
    ["RemediationAction=drain", "RemediationDryRun=true"],
    ["RemediationAction=drain-and-replace", "RemediationClusterNames=prod,staging", "ReplaceOnlyTaggedGroups=true"],
    ["RemediationAction=restart-then-drain", "RemediationClusterNames=prod,staging"],
    [
        "RemediationAction=drain-and-replace",
        "KmsKeyArn=arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "FindingsEventBusName=findings",
        "HookFunctionArn=arn:aws:lambda:us-east-1:123456789012:function:hook",
        "AlertTopicArn=arn:aws:sns:us-east-1:123456789012:team-alerts",
        "OrganizationId=o-abc123def4",
        "PagerDutyRoutingKeySecret=ecs-watchdog/pagerduty",
        "PagerDutyKmsKeyArn=arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ],
    ["PagerDutyRoutingKeyParameter=/ecs-watchdog/pagerduty"],
]

# spoke.yaml, with a hub in another account (so it forwards) and each remediation setting.
HUB = [
    "HubEventBusArn=arn:aws:events:us-east-1:999999999999:event-bus/ecs-watchdog-hub",
    "HubFunctionRoleArns=arn:aws:iam::999999999999:role/monitor,arn:aws:iam::999999999999:role/sweep",
]
SPOKE_PARAMETER_SETS = [
    HUB,
    HUB + ["RemediationAction=drain", "RemediationDryRun=true"],
    HUB + ["RemediationAction=drain-and-replace"],
    HUB + ["RemediationAction=drain-and-replace", "RemediationClusterNames=prod,staging", "ReplaceOnlyTaggedGroups=true"],
    HUB + ["RemediationAction=restart-then-drain"],
]

# Where parliament's bundled IAM definitions (April 2025) lag the Service Authorization Reference,
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html
# (issue, policy file, what the finding names).
EXCEPTIONS = {
    # ecs:ListTasks has two rows there: `container-instance`, for a call that names one, and a row
    # with no resource type (conditions aws:ResourceTag, ecs:cluster) that a call filtered by
    # family or daemon name is authorized against: it needs "*". parliament knows the first only.
    # The statement sits alone in the role's `list-tasks` policy, so this excuses nothing else.
    ("RESOURCE_STAR", "MonitorRole-list-tasks.json", "['ecs:ListTasks']"),
    ("RESOURCE_STAR", "SweepRole-list-tasks.json", "['ecs:ListTasks']"),
    ("RESOURCE_STAR", "ReaderRole-list-tasks.json", "['ecs:ListTasks']"),
    # ECS Managed Daemons came after parliament's definitions.
    ("UNKNOWN_ACTION", "MonitorRole-monitor.json", "Unknown action ecs:ListDaemons"),
    ("UNKNOWN_ACTION", "MonitorRole-monitor.json", "Unknown action ecs:ListDaemonDeployments"),
    ("UNKNOWN_ACTION", "MonitorRole-monitor.json", "Unknown action ecs:DescribeDaemon"),
    ("UNKNOWN_ACTION", "MonitorRole-monitor.json", "Unknown action ecs:DescribeDaemonRevisions"),
    ("UNKNOWN_ACTION", "SweepRole-sweep.json", "Unknown action ecs:DescribeDaemonRevisions"),
    ("UNKNOWN_ACTION", "SweepRole-sweep.json", "Unknown action ecs:ListDaemons"),
    ("UNKNOWN_ACTION", "SweepRole-sweep.json", "Unknown action ecs:DescribeDaemon"),
    ("UNKNOWN_ACTION", "SweepRole-sweep.json", "Unknown action ecs:ListDaemonDeployments"),
    ("UNKNOWN_ACTION", "ReaderRole-read.json", "Unknown action ecs:DescribeDaemonRevisions"),
    ("UNKNOWN_ACTION", "ReaderRole-read.json", "Unknown action ecs:ListDaemons"),
    ("UNKNOWN_ACTION", "ReaderRole-read.json", "Unknown action ecs:DescribeDaemon"),
    ("UNKNOWN_ACTION", "ReaderRole-read.json", "Unknown action ecs:ListDaemonDeployments"),
}


def main():
    template = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    render = Path(__file__).with_name("render_template.py")
    problems = 0
    checked = 0
    sets = SPOKE_PARAMETER_SETS if Path(template).name == "spoke.yaml" else PARAMETER_SETS
    for parameters in sets:
        with tempfile.TemporaryDirectory() as directory:
            args = [sys.executable, str(render), template, "--policies", directory]
            for parameter in parameters:
                args += ["--param", parameter]
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
            for path in sorted(Path(directory).glob("*.json")):
                checked += 1
                policy = parliament.analyze_policy_string(
                    path.read_text(), str(path), include_community_auditors=True
                )
                for finding in policy.findings:
                    finding = parliament.enhance_finding(finding)
                    if is_finding_filtered(finding):
                        continue
                    if (finding.issue, path.name, str(finding.detail)) in EXCEPTIONS:
                        continue
                    problems += 1
                    print(f"{' '.join(parameters) or 'defaults'}: {path.name}: {finding.issue} {finding.detail}")
    print(f"parliament: {checked} policy documents over {len(sets)} parameter sets, {problems} findings")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
