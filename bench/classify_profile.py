#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Sorts a `perf record -g` profile of ortserve into components.

    bench/classify_profile.py PERF_DATA US_PER_INFERENCE

Each sample goes to the first rule its call chain (leaf first) matches: the
model (ONNX Runtime), the kernel by system call (sendmsg, recv, epoll, futex,
scheduling), then ortserve's own parts (HTTP parsing, JSON request parsing,
response encoding, scheduler, router, metrics, connection, Asio, malloc).
Prints each component's share of the samples and, given the server's CPU
time per inference (saturation_profile.sh prints it), its microseconds per
inference. Frame-pointer chains of -O2 code are partial: a user-space sample
is placed by the functions its chain does show (the leaf at least).
"""
import collections
import re
import subprocess
import sys

KERNEL_CALLS = [
    ("sendmsg", "kernel: sendmsg (write the answer)"),
    ("sys_write", "kernel: write"),
    ("recvfrom", "kernel: recv (read the request)"),
    ("recvmsg", "kernel: recv (read the request)"),
    ("epoll_ctl", "kernel: epoll_ctl"),
    ("epoll_wait", "kernel: epoll_wait"),
    ("futex", "kernel: futex"),
]
USER_RULES = [
    ("JSON request parsing", r"ParseJsonRequest|rest_internal|simdjson|DecodeInferRequest|FillFixed"),
    ("response encoding", r"EncodeInferResponse|WriteJsonFloat|JsonWriter|EscapeJson|dragonbox|FormatJsonFloat"),
    ("HTTP parsing (Beast)", r"beast::"),
    ("batch assembly", r"BatchInputBuilder"),
    ("scheduler", r"DynamicBatcher|scheduler::"),
    ("router, service, validation", r"Router::|InferenceService|ModelExecutor|ValidateTensor|ModelManager"),
    ("metrics, records", r"prometheus|RequestRecord|VersionMetrics|ModelStats"),
    ("connection", r"Connection::|MatchRoute"),
    ("Asio", r"boost::asio"),
    ("malloc, free", r"tcmalloc|operator new|operator delete|malloc|tc_"),
    ("locks", r"lll_lock|pthread_mutex|absl::.*Mutex|CondVar"),
]


def samples(path):
    out = subprocess.run(["perf", "script", "-i", path, "-F", "ip,sym,dso"], capture_output=True, text=True).stdout
    chain = []
    for line in out.splitlines():
        if line.strip():
            chain.append(line.strip().split(None, 1)[-1])
        elif chain:
            yield chain
            chain = []
    if chain:
        yield chain


def classify(chain):
    joined = "\n".join(chain)
    if "libonnxruntime" in chain[0]:
        return "model (ONNX Runtime)"
    if "libonnxruntime" in joined:
        return "model (ONNX Runtime: kernel, memset, allocation)"
    if "kernel.kallsyms" in chain[0]:
        for key, name in KERNEL_CALLS:
            if key in joined:
                return name
        if "schedule" in joined or "finish_task_switch" in joined:
            return "kernel: scheduling (other)"
        return "kernel: other"
    for name, rx in USER_RULES:
        if any(re.search(rx, f) for f in chain):
            return name
    if re.search(r"memmove|memcpy|memset", chain[0]):
        return "memcpy, memset (unattributed)"
    return "other user space"


def main():
    path, us = sys.argv[1], float(sys.argv[2])
    counts = collections.Counter(classify(c) for c in samples(path))
    n = sum(counts.values())
    print(f"{n} samples, {us:.1f} us of server CPU per inference")
    for name, count in counts.most_common():
        print(f"  {name:50s} {100 * count / n:6.2f}%  {us * count / n:7.2f} us")


if __name__ == "__main__":
    main()
