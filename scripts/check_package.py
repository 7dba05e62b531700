"""Checks a release directory that `make package` wrote, before anyone deploys or publishes it.

    python scripts/check_package.py [dist] [--version X.Y.Z]

Refuses, naming the file and the reason, a release where
  - packaged.yaml does not load, or a function's CodeUri names a zip that is not there;
  - a zip has no `bootstrap`, or its bootstrap is not an executable 64-bit little-endian ELF for
    aarch64 (e_machine 183), which Lambda's arm64 architecture runs;
  - SHA256SUMS is missing, leaves out a zip or a template, or a file does not match it;
  - the Serverless Application Repository metadata lacks a required field or breaks its pattern.
Exit 0 and one line per zip when all hold; exit 1 and one line per problem otherwise.
(`make package` runs cfn-lint and `sam validate --lint` on packaged.yaml besides.)
"""

import argparse
import hashlib
import re
import struct
import sys
import zipfile
from pathlib import Path

from cfnlint.decode import decode

# ELF header (System V ABI): e_ident[EI_CLASS] at 4, e_ident[EI_DATA] at 5, e_machine a 16-bit
# field at 18. https://refspecs.linuxfoundation.org/elf/gabi4+/ch4.eheader.html
ELF_MAGIC = b"\x7fELF"
ELFCLASS64, ELFDATA2LSB = 2, 1
MACHINES = {183: "aarch64", 62: "x86-64", 40: "arm", 3: "x86"}
EM_AARCH64 = 183
# https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-sam-template-publishing-applications-metadata-properties.html
SAR_REQUIRED = {
    "Name": (re.compile(r"^[a-zA-Z0-9\-]+$"), 140),
    "Description": (None, 256),
    "Author": (re.compile(r"^[a-z0-9](([a-z0-9]|-(?!-))*[a-z0-9])?$"), 127),
}
SAR_LABEL = re.compile(r"^[a-zA-Z0-9+\-_:/@]+$")


def bootstrap_problem(archive_path: Path) -> str | None:
    """Why this zip's bootstrap will not run on Lambda arm64, or None."""
    try:
        archive = zipfile.ZipFile(archive_path)
    except zipfile.BadZipFile:
        return "is not a zip file"
    with archive:
        try:
            entry = archive.getinfo("bootstrap")
        except KeyError:
            return f"holds no bootstrap (it holds {archive.namelist()})"
        header = archive.read(entry)[:20]
    if len(header) < 20 or header[:4] != ELF_MAGIC:
        return "bootstrap is not an ELF executable"
    if header[4] != ELFCLASS64 or header[5] != ELFDATA2LSB:
        return "bootstrap is not a 64-bit little-endian ELF"
    (machine,) = struct.unpack_from("<H", header, 18)
    if machine != EM_AARCH64:
        name = MACHINES.get(machine, "unknown")
        return f"bootstrap is built for {name} (ELF e_machine {machine}); Lambda arm64 needs aarch64 (e_machine 183)"
    if entry.create_system == 3 and not (entry.external_attr >> 16) & 0o111:
        return "bootstrap is not executable (mode without x)"
    return None


def code_problems(dist: Path, template: dict) -> list[str]:
    problems = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        code = resource.get("Properties", {}).get("CodeUri")
        if not isinstance(code, str) or not code.endswith(".zip"):
            problems.append(f"packaged.yaml: {logical_id}'s CodeUri {code!r} names no zip")
            continue
        if resource["Properties"].get("Architectures") != ["arm64"]:
            problems.append(f"packaged.yaml: {logical_id} is not arm64")
        path = dist / code
        if not path.is_file():
            problems.append(f"{code}: missing (named by {logical_id}'s CodeUri)")
        elif why := bootstrap_problem(path):
            problems.append(f"{code}: {why}")
    return problems


def checksum_problems(dist: Path, must_cover: list[str]) -> list[str]:
    sums = dist / "SHA256SUMS"
    if not sums.is_file():
        return ["SHA256SUMS: missing"]
    problems, listed = [], set()
    for number, line in enumerate(sums.read_text().splitlines(), 1):
        digest, _, name = line.partition("  ")
        if not re.fullmatch(r"[0-9a-f]{64}", digest) or not name:
            problems.append(f"SHA256SUMS line {number}: not '<sha256>  <file>'")
            continue
        listed.add(name)
        path = dist / name
        if not path.is_file():
            problems.append(f"{name}: missing (listed in SHA256SUMS)")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{name}: checksum does not match SHA256SUMS")
    problems += [f"{name}: not in SHA256SUMS" for name in must_cover if name not in listed]
    return problems


def application_problems(dist: Path, template: dict, version: str | None) -> list[str]:
    application = template.get("Metadata", {}).get("AWS::ServerlessRepo::Application")
    if not isinstance(application, dict):
        return ["packaged.yaml: no Metadata AWS::ServerlessRepo::Application"]
    problems = []
    for field, (pattern, longest) in SAR_REQUIRED.items():
        value = application.get(field)
        if not isinstance(value, str) or not 0 < len(value) <= longest or (pattern and not pattern.match(value)):
            problems.append(f"packaged.yaml: AWS::ServerlessRepo::Application {field} {value!r} is not valid")
    labels = application.get("Labels", [])
    if len(labels) > 10 or not all(isinstance(l, str) and SAR_LABEL.match(l) for l in labels):
        problems.append(f"packaged.yaml: AWS::ServerlessRepo::Application Labels {labels!r} are not valid")
    for field in ("LicenseUrl", "ReadmeUrl"):
        url = application.get(field)
        if url and not url.startswith("s3://") and not (dist / url).is_file():
            problems.append(f"{url}: missing (named by AWS::ServerlessRepo::Application {field})")
    if version and application.get("SemanticVersion") != version:
        problems.append(f"packaged.yaml: SemanticVersion {application.get('SemanticVersion')!r} is not {version}")
    return problems


def check(dist: Path, version: str | None) -> list[str]:
    if not (dist / "packaged.yaml").is_file():
        return ["packaged.yaml: missing"]
    template, load_problems = decode(str(dist / "packaged.yaml"))
    if load_problems:
        return [f"packaged.yaml: {p}" for p in load_problems]
    zips = sorted({r["Properties"]["CodeUri"] for r in template["Resources"].values()
                   if r.get("Type") == "AWS::Serverless::Function" and isinstance(r["Properties"].get("CodeUri"), str)})
    return (code_problems(dist, template)
            + checksum_problems(dist, zips + ["packaged.yaml", "spoke.yaml"])
            + application_problems(dist, template, version))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dist", type=Path, nargs="?", default=Path("dist"))
    parser.add_argument("--version", help="the SemanticVersion the release must carry")
    args = parser.parse_args()
    problems = check(args.dist, args.version)
    for problem in problems:
        print(f"check_package: {args.dist}/{problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    for name in sorted(p.name for p in args.dist.glob("*.zip")):
        size = (args.dist / name).stat().st_size
        print(f"check_package: {args.dist}/{name}: aarch64 bootstrap, {size:,} bytes, checksum matches")
    print(f"check_package: {args.dist}/ is a complete release")


if __name__ == "__main__":
    main()
