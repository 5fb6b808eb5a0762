#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The module dependency rule, checked by the compiler (tests/module_rules).

Each argument is `<target>:FORBIDDEN` or `<target>:ALLOWED`, a probe target
of tests/module_rules/CMakeLists.txt: one source file that includes headers
of other modules, compiled as part of one module. A FORBIDDEN probe must fail
to compile, and for the right reason: the compiler names its header as not
found (a probe that fails for any other reason, or names a header that does
not exist under src/, proves nothing and fails the check). An ALLOWED probe
must compile.

Usage: check_module_rules.py --build build module_probe_x:FORBIDDEN ...
"""
import argparse
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^#include "([^"]+)"', re.M)
SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def check(build, target, kind):
    name = target.removeprefix("module_probe_")
    probe = os.path.join(SOURCE_DIR, "tests", "module_rules", "probes", name + ".cc")
    headers = INCLUDE.findall(open(probe).read())
    for header in headers:
        if not os.path.isfile(os.path.join(SOURCE_DIR, "src", header)):
            return f"{name}: includes {header}, which is not a header under src/"
    run = subprocess.run(["cmake", "--build", build, "--target", target],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if kind == "ALLOWED":
        if run.returncode != 0:
            return f"{name}: must compile, but failed:\n{run.stdout[-3000:]}"
        return None
    if run.returncode == 0:
        return f"{name}: includes {headers[0]} across the module rule, and it compiled"
    missing = f"{headers[0]}: No such file or directory"
    if missing not in run.stdout:
        return f"{name}: failed, but not with \"{missing}\":\n{run.stdout[-3000:]}"
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", required=True)
    parser.add_argument("probes", nargs="+")
    args = parser.parse_args()
    failures = []
    for spec in args.probes:
        target, kind = spec.split(":")
        failure = check(args.build, target, kind)
        print(f"{'FAIL' if failure else 'ok  '} {kind:9} {target}")
        if failure:
            failures.append(failure)
    for failure in failures:
        print(failure, file=sys.stderr)
    if not any(spec.endswith(":FORBIDDEN") for spec in args.probes) or \
       not any(spec.endswith(":ALLOWED") for spec in args.probes):
        print("need at least one FORBIDDEN and one ALLOWED probe", file=sys.stderr)
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
