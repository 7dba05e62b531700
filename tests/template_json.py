"""Prints template.yaml as JSON, intrinsic functions spelled out ({"Ref": ...}, {"Fn::GetAtt": ...}).

    python tests/template_json.py [template.yaml]

It uses cfn-lint's own CloudFormation YAML loader, so short forms (!Ref, !GetAtt, !If, !Sub)
read exactly as CloudFormation reads them.
"""

import json
import sys

from cfnlint.decode import decode


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    template, problems = decode(path)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        sys.exit(1)
    json.dump(template, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
