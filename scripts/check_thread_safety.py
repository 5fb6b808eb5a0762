#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Clang's -Wthread-safety over every source file under src/ that takes a
lock, with the include paths and definitions of the real build
(compile_commands.json), as errors: a GUARDED_BY member read without its
mutex, a lock not released on every path, a REQUIRES function called without
the lock. Syntax only (no code generation), so it costs a fraction of a build.

First it checks itself: a snippet with a known violation must be refused, so
the check cannot pass by checking nothing.

Usage: check_thread_safety.py --build build [--clang clang++-14] [--jobs N]
"""
import argparse
import concurrent.futures
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

LOCKING = re.compile(r"absl::Mutex|ABSL_GUARDED_BY|ABSL_EXCLUSIVE_LOCKS_REQUIRED|ABSL_LOCKS_EXCLUDED")
FLAGS = ["-fsyntax-only", "-Wthread-safety", "-Werror=thread-safety", "-Wno-unknown-warning-option"]
# Keep only what clang needs to see the same code: definitions, include paths, the standard.
KEEP = re.compile(r"^(-D|-I|-isystem|-std=|-pthread$)")

SELF_TEST = """
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
class Counter {
 public:
  void Add() { ++value_; }  // Violation: value_ is guarded by mu_.
 private:
  absl::Mutex mu_;
  int value_ ABSL_GUARDED_BY(mu_) = 0;
};
int main() { Counter c; c.Add(); }
"""


def find_clang(requested):
    for name in [requested] if requested else ["clang++", "clang++-14", "clang++-15", "clang++-16"]:
        path = shutil.which(name)
        if path:
            return path
    sys.exit("check_thread_safety: no clang++ found (scripts/setup.sh installs Debian's clang)")


def flags_of(entry):
    args = entry.get("arguments") or shlex.split(entry["command"])
    kept, i = [], 1
    while i < len(args):
        a = args[i]
        if a in ("-I", "-isystem", "-D") and i + 1 < len(args):
            kept += [a, args[i + 1]]
            i += 2
            continue
        if KEEP.match(a):
            kept.append(a)
        i += 1
    return kept


def uses_locks(path):
    texts = []
    for p in (path, os.path.splitext(path)[0] + ".h"):
        if os.path.exists(p):
            with open(p, encoding="utf-8", errors="replace") as f:
                texts.append(f.read())
    return any(LOCKING.search(t) for t in texts)


def check(clang, entry):
    command = [clang] + flags_of(entry) + FLAGS + [entry["file"]]
    r = subprocess.run(command, cwd=entry["directory"], capture_output=True, text=True)
    return entry["file"], r.returncode, r.stderr


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", required=True)
    parser.add_argument("--clang")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    clang = find_clang(args.clang)
    with open(os.path.join(args.build, "compile_commands.json")) as f:
        entries = json.load(f)
    source_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = os.path.join(source_root, "src") + os.sep
    files = sorted({e["file"]: e for e in entries
                    if os.path.abspath(e["file"]).startswith(src) and e["file"].endswith(".cc")}.values(),
                   key=lambda e: e["file"])
    if not files:
        sys.exit("check_thread_safety: no src/ files in compile_commands.json")

    # The check must be able to fail.
    with tempfile.TemporaryDirectory() as tmp:
        probe = os.path.join(tmp, "violation.cc")
        with open(probe, "w") as f:
            f.write(SELF_TEST)
        _, code, err = check(clang, dict(files[0], file=probe))
        if code == 0 or "thread-safety" not in err:
            sys.exit("check_thread_safety: clang accepted a known violation; the check is not working:\n" + err)

    locking = [e for e in files if uses_locks(e["file"])]
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for path, code, err in pool.map(lambda e: check(clang, e), locking):
            if code != 0:
                failed += 1
                print(f"--- {os.path.relpath(path, source_root)}\n{err}")
    print(f"thread-safety analysis: {len(locking)} of {len(files)} src/ files take locks; {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
