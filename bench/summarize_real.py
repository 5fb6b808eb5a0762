#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Turns one bench/run_real_bench.sh run folder into a Markdown table."""
import json
import pathlib
import sys

out = pathlib.Path(sys.argv[1])


def load(name):
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


ROWS = [
    ("OCR direction classifier, 1x3x48x192", "raw_cls", ["cls_unbatched", "cls_batched"]),
    ("OCR recognizer, widths 160/240/320 mixed (raw ORT at 240)", "raw_rec", ["rec_unbatched", "rec_batched", "rec_by_width"]),
    ("Silero VAD, 512 samples + state", None, ["vad"]),
]
print("| model | what | inferences/s | vs raw ORT best | p50 us | p99 us | errors |")
print("|---|---|---:|---:|---:|---:|---:|")
for title, raw_name, runs in ROWS:
    raw = load(raw_name) if raw_name else None
    best = raw["best_inferences_per_s"] if raw else None
    if raw:
        print(f"| {title} | raw ORT, best batch ({raw['best_batch']}) | {best:,.1f} | 1.00 | "
              f"{raw['single_run_us']['p50']:,.1f} (batch-1 run) | {raw['single_run_us']['p99']:,.1f} | |")
    for name in runs:
        r = load(name)
        if r is None:
            continue
        rate = r["throughput_inferences_per_s"]
        ratio = f"{rate / best:.2f}" if best else "n/a"
        print(f"| {title} | ortserve {name.replace('_', ' ')} (c={r['concurrency']}) | {rate:,.1f} | {ratio} | "
              f"{r['latency_us']['p50']:,.1f} | {r['latency_us']['p99']:,.1f} | {r['requests_failed']} |")
