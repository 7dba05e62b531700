"""Writes dist/: a release of ecs-watchdog that deploys without a compiler.

    make package        (builds both arm64 bootstraps with cargo-lambda, then runs this and checks dist/)
    python scripts/package.py --dist dist --monitor PATH/bootstrap --sweep PATH/bootstrap

dist/ holds:
  monitor.zip, sweep.zip  each with its `bootstrap` (mode 0755) and nothing else, stamped with a fixed
                          date, so the same binary always makes the same zip (and checksum);
  packaged.yaml           template.yaml with each function's CodeUri naming its zip (relative to dist/,
                          which `sam deploy --template dist/packaged.yaml` and `aws cloudformation
                          package` upload to S3 and replace by the S3 address), the functions' build
                          metadata dropped (there is nothing left to build), and the Serverless
                          Application Repository's metadata (AWS::ServerlessRepo::Application);
  spoke.yaml              the member accounts' template, unchanged (it has no code);
  LICENSE, README.md      which the SAR metadata names (`sam package` uploads them too);
  SHA256SUMS              `sha256sum -c SHA256SUMS` format, over everything above.

The template is read with cfn-lint's CloudFormation loader and written in long form
({"Ref": ...}, {"Fn::If": ...}): the same template, without its comments.
"""

import argparse
import hashlib
import json
import shutil
import sys
import tomllib
import zipfile
from pathlib import Path

import yaml
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parent.parent
# The SAR's required fields and their patterns:
# https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-sam-template-publishing-applications-metadata-properties.html
APPLICATION = {
    "Name": "ecs-watchdog",
    "Description": (
        "Watches Amazon ECS container instances: confirms disconnected ECS agents and lost ECS Managed "
        "Daemons after a grace period, alerts once per cluster through SNS, publishes CloudWatch metrics "
        "and alarms, and can drain and replace a broken instance."
    ),
    "Author": "ecs-watchdog",
    "SpdxLicenseId": "Apache-2.0",
    "LicenseUrl": "LICENSE",
    "ReadmeUrl": "README.md",
    "Labels": ["ecs", "monitoring", "ecs-agent", "daemon", "alerting", "remediation", "rust"],
}
# A zip's entries carry a date; a fixed one makes the zip a function of the binary alone.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
FUNCTIONS = ("monitor", "sweep")


def workspace_package():
    with open(ROOT / "Cargo.toml", "rb") as cargo:
        return tomllib.load(cargo)["workspace"]["package"]


def write_zip(bootstrap: Path, target: Path):
    entry = zipfile.ZipInfo("bootstrap", date_time=ZIP_DATE)
    entry.create_system = 3  # Unix, so that Lambda honours the mode below
    entry.external_attr = (0o100755 & 0xFFFF) << 16
    entry.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr(entry, bootstrap.read_bytes())


def packaged_template(version: str, source_code_url: str | None) -> dict:
    template, problems = decode(str(ROOT / "template.yaml"))
    if problems:
        sys.exit("template.yaml does not load:\n" + "\n".join(str(p) for p in problems))
    template = json.loads(json.dumps(template))  # plain dicts and lists, for yaml.safe_dump
    binaries = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        if binary not in FUNCTIONS:
            sys.exit(f"template.yaml: {logical_id} names no binary of {FUNCTIONS} in Metadata.BuildProperties")
        resource["Properties"]["CodeUri"] = f"{binary}.zip"
        del resource["Metadata"]
        binaries.append(binary)
    if sorted(binaries) != sorted(FUNCTIONS):
        sys.exit(f"template.yaml: functions for {binaries}, expected one each for {FUNCTIONS}")
    application = dict(APPLICATION, SemanticVersion=version)
    if source_code_url:
        application["SourceCodeUrl"] = source_code_url
        application["HomePageUrl"] = source_code_url
    template["Metadata"]["AWS::ServerlessRepo::Application"] = application
    return template


def checksums(dist: Path, names) -> str:
    lines = []
    for name in names:
        digest = hashlib.sha256((dist / name).read_bytes()).hexdigest()
        lines.append(f"{digest}  {name}\n")
    return "".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--monitor", type=Path, required=True, help="the monitor's arm64 bootstrap")
    parser.add_argument("--sweep", type=Path, required=True, help="the sweep's arm64 bootstrap")
    parser.add_argument("--source-code-url", help="default: repository in Cargo.toml's [workspace.package]")
    args = parser.parse_args()

    package = workspace_package()
    source_code_url = args.source_code_url or package.get("repository")
    if not source_code_url:
        print("package: no repository in Cargo.toml nor --source-code-url: SourceCodeUrl left out", file=sys.stderr)
    args.dist.mkdir(parents=True, exist_ok=True)
    for name, bootstrap in (("monitor", args.monitor), ("sweep", args.sweep)):
        if not bootstrap.is_file():
            sys.exit(f"package: no {name} bootstrap at {bootstrap}")
        write_zip(bootstrap, args.dist / f"{name}.zip")
    template = packaged_template(package["version"], source_code_url)
    with open(args.dist / "packaged.yaml", "w") as out:
        out.write("# Generated by `make package` from template.yaml: edit that, not this.\n")
        yaml.safe_dump(template, out, sort_keys=False, width=120, allow_unicode=True)
    for name in ("spoke.yaml", "LICENSE", "README.md"):
        shutil.copyfile(ROOT / name, args.dist / name)
    names = ["monitor.zip", "sweep.zip", "packaged.yaml", "spoke.yaml", "LICENSE", "README.md"]
    (args.dist / "SHA256SUMS").write_text(checksums(args.dist, names))
    print(f"package: wrote {args.dist}/ ({', '.join(names)}, SHA256SUMS), version {package['version']}")


if __name__ == "__main__":
    main()
