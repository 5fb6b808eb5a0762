#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The table of a bench/run_ab.sh folder: per build and round, saturation
throughput and low-load latency over the model time of the same run, then the
ratio of the two builds' medians (new / old; above 1 is faster for req/s,
below 1 is faster for latency).

Usage: summarize_ab.py bench/results/ab-<model>-<time>
"""
import json
import os
import statistics
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def model_time_us(folder, name):
    """Mean compute time per request of the run, from the server's statistics."""
    try:
        before, after = load(f"{folder}/{name}.stats-before"), load(f"{folder}/{name}.stats-after")
    except (OSError, ValueError):
        return None

    def totals(stats):
        s = stats["model_stats"][0]["inference_stats"]
        return s["success"]["count"], s["compute_infer"]["ns"]

    (c0, ns0), (c1, ns1) = totals(before), totals(after)
    return (ns1 - ns0) / (c1 - c0) / 1000.0 if c1 > c0 else None


def main(folder):
    machine = load(f"{folder}/machine.json")
    rows = []  # (round, build, measure, value)
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json") or name == "machine.json":
            continue
        run = name[:-5]
        round_tag, build, *rest = run.split("-")
        measure = "-".join(rest)
        result = load(f"{folder}/{name}")
        if measure.endswith("c1"):
            compute = model_time_us(folder, run)
            mean = result["latency_us"]["mean"]
            value = mean - compute if compute is not None else float("nan")
            rows.append((round_tag, build, f"{measure} mean over model time (µs)", value))
        else:
            rows.append((round_tag, build, f"{measure} (req/s)", result["throughput_rps"]))
    measures = sorted({m for _, _, m, _ in rows})
    rounds = sorted({r for r, _, _, _ in rows})
    print(f"model `{machine['model']}`, {machine['rounds']} rounds of {machine['duration_s']} s runs, "
          f"concurrency {machine['concurrency']}, load average at start {machine['loadavg_at_start']}")
    print(f"old: {machine['old_version']}; new: {machine['new_version']}\n")
    print("| measure | " + " | ".join(f"old {r}" for r in rounds) + " | " +
          " | ".join(f"new {r}" for r in rounds) + " | new / old (medians) |")
    print("| --- |" + " ---: |" * (2 * len(rounds) + 1))
    for m in measures:
        old = [v for r in rounds for (rr, b, mm, v) in rows if rr == r and b == "old" and mm == m]
        new = [v for r in rounds for (rr, b, mm, v) in rows if rr == r and b == "new" and mm == m]
        ratio = statistics.median(new) / statistics.median(old) if old and new else float("nan")
        cells = [f"{v:,.0f}" for v in old] + [f"{v:,.0f}" for v in new]
        print(f"| {m} | " + " | ".join(cells) + f" | {ratio:.3f} |")


if __name__ == "__main__":
    main(sys.argv[1])
