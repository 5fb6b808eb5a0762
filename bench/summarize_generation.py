#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Tables of one bench/run_generation_bench.sh run folder (markdown on stdout)."""
import json
import os
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def fmt(x, digits=1):
    return "n/a" if x is None else f"{x:,.{digits}f}"


def tokens_per_cpu_s(p, label, batch, suffix=""):
    """Tokens generated per CPU-second of the server over one load generator run, or None."""
    try:
        a = load(p(f"stats_{label}_c{batch}{suffix}_after.json"))
        b = load(p(f"stats_{label}_c{batch}{suffix}_before.json"))
        cpu = (float(open(p(f"cpu_{label}_c{batch}{suffix}_after.txt")).read())
               - float(open(p(f"cpu_{label}_c{batch}{suffix}_before.txt")).read()))
        return (a["tokens"] - b["tokens"]) / cpu
    except (OSError, ValueError, ZeroDivisionError, KeyError):
        return None


def loop_figures(p, label, batch, suffix="", files=None):
    """What the decode loop did over one run (generation_stats deltas); {} when the build lacks the counters."""
    try:
        after, before = files or (f"stats_{label}_c{batch}{suffix}_after.json",
                                  f"stats_{label}_c{batch}{suffix}_before.json")
        a, b = load(p(after)), load(p(before))
        d = {k: a[k] - b[k] for k in ("prefill_steps", "prefill_sequences", "decode_steps", "decode_sequences",
                                      "admit_wait_us", "prefill_run_us", "decode_run_us")}
    except (OSError, ValueError, KeyError):
        return {}
    div = lambda x, y: x / y if y else None
    # Decode runs per step and the padding share (builds since 2026-12-08).
    runs = {k: a[k] - b[k] for k in ("decode_rounds", "decode_past_tokens", "decode_padded_tokens") if k in a and k in b}
    return {
        "runs_per_step": div(d["decode_steps"], runs.get("decode_rounds")),
        "padding": (1 - runs["decode_past_tokens"] / runs["decode_padded_tokens"])
        if runs.get("decode_padded_tokens") else None,
        "decode_batch": div(d["decode_sequences"], d["decode_steps"]),
        "prefill_per_decode": div(d["prefill_steps"], d["decode_steps"]),
        "per_prefill": div(d["prefill_sequences"], d["prefill_steps"]),
        "admit_wait_ms": div(d["admit_wait_us"] / 1e3, d["prefill_sequences"]),
        "prefill_ms": div(d["prefill_run_us"] / 1e3, d["prefill_steps"]),
        "decode_ms": div(d["decode_run_us"] / 1e3, d["decode_steps"]),
        "prefill_share": div(d["prefill_run_us"], d["prefill_run_us"] + d["decode_run_us"]),
    }


def main(out):
    p = lambda name: os.path.join(out, name)
    print(f"Run folder: `{os.path.basename(out)}`\n")
    with open(p("machine.txt")) as f:
        print("```\n" + f.read().strip() + "\n```\n")
    raws = [load(p(f"raw_{w}.json")) for w in ("before", "after") if os.path.exists(p(f"raw_{w}.json"))]
    raw_by_batch = {}
    for r in raws:
        for row in r["results"]:
            raw_by_batch.setdefault(row["batch"], []).append(row)
    labels = [l for l in ("ortserve", "baseline") if os.path.exists(p(f"rss_idle_{l}.txt"))]
    print("## Decode throughput (closed loop, streamed, tokens/s)\n")
    head = "| streams | raw ORT before | raw ORT after |" + "".join(f" {l} | {l} / raw |" for l in labels)
    head += "".join(f" {l} tokens/CPU-s | / raw |" for l in labels)
    head += " raw tokens/CPU-s | mean batch (ortserve) | raw decode step ms |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for batch in sorted(raw_by_batch):
        rows = raw_by_batch[batch]
        raw_tps = [r["tokens_per_s"] for r in rows]
        mean_raw = sum(raw_tps) / len(raw_tps)
        line = f"| {batch} | " + " | ".join(fmt(t) for t in raw_tps) + (" | n/a" if len(raw_tps) == 1 else "")
        mean_batch = None
        cpu_cells = ""
        raw_cpu = [r.get("tokens_per_cpu_s") for r in rows if r.get("tokens_per_cpu_s")]
        mean_raw_cpu = sum(raw_cpu) / len(raw_cpu) if raw_cpu else None
        for l in labels:
            try:
                a, b = load(p(f"stats_{l}_c{batch}_after.json")), load(p(f"stats_{l}_c{batch}_before.json"))
                cpu = float(open(p(f"cpu_{l}_c{batch}_after.txt")).read()) - float(open(p(f"cpu_{l}_c{batch}_before.txt")).read())
                per_cpu = (a["tokens"] - b["tokens"]) / cpu
                cpu_cells += f" | {fmt(per_cpu)} | " + (f"{per_cpu / mean_raw_cpu:.2f}x" if mean_raw_cpu else "n/a")
            except (OSError, ValueError, ZeroDivisionError, KeyError):
                cpu_cells += " | n/a | n/a"
        for l in labels:
            f = p(f"closed_{l}_c{batch}.json")
            if not os.path.exists(f):
                line += " | n/a | n/a"
                continue
            tps = load(f)["tokens_per_s"]
            line += f" | {fmt(tps)} | {tps / mean_raw:.2f}x"
            if l == "ortserve":
                a, b = load(p(f"stats_{l}_c{batch}_after.json")), load(p(f"stats_{l}_c{batch}_before.json"))
                steps = a["steps"] - b["steps"]
                mean_batch = (a["step_sequences"] - b["step_sequences"]) / steps if steps else None
        line += cpu_cells + f" | {fmt(mean_raw_cpu)}"
        line += f" | {fmt(mean_batch, 2)} | {fmt(sum(r['decode_step_ms'] for r in rows) / len(rows), 3)} |"
        print(line)
    print("\nRatios: ortserve over the mean of raw ORT before and after. Wall: tokens/s at the client (requests "
          "sent in the window). CPU: tokens generated (generation_stats) per CPU-second of the whole server "
          "process (every thread, /proc/<pid>/stat) over the load generator's run, against raw ORT's tokens per "
          "CPU-second of its process. Mean batch: step_sequences / steps over the run (prefill steps included).\n")

    print("## Decode throughput streamed and unstreamed, and what the decode loop did\n")
    print("| streams | build | mode | tokens/s (wall) | tokens/CPU-s | / raw (CPU) | mean decode batch | "
          "prefill runs per decode step | sequences per prefill run | wait before prefill ms | prefill run ms | "
          "decode run ms | decode runs per step | padding share | prefill share of run time | load generator CPU | "
          "next send after an end p50 / p99 ms |")
    print("|" + "---|" * 17)
    for batch in sorted(raw_by_batch):
        rows = raw_by_batch[batch]
        raw_cpu = [r.get("tokens_per_cpu_s") for r in rows if r.get("tokens_per_cpu_s")]
        mean_raw_cpu = sum(raw_cpu) / len(raw_cpu) if raw_cpu else None
        for l in labels:
            for mode, suffix in (("streamed", ""), ("unstreamed", "_nostream")):
                f = p(f"closed_{l}_c{batch}{suffix}.json")
                if not os.path.exists(f):
                    continue
                lg = load(f)
                pc = tokens_per_cpu_s(p, l, batch, suffix)
                lf = loop_figures(p, l, batch, suffix)
                gap = lg.get("next_send_gap_ms") or {}
                share = lg.get("loadgen_cpu_share")
                ratio = f"{pc / mean_raw_cpu:.2f}x" if pc and mean_raw_cpu else "n/a"
                pshare = lf.get("prefill_share")
                pad_cell = "n/a" if lf.get("padding") is None else f"{100 * lf['padding']:.0f}%"
                print(f"| {batch} | {l} | {mode} | {fmt(lg['tokens_per_s'])} | {fmt(pc)} | {ratio} | "
                      f"{fmt(lf.get('decode_batch'), 2)} | {fmt(lf.get('prefill_per_decode'), 3)} | "
                      f"{fmt(lf.get('per_prefill'), 2)} | {fmt(lf.get('admit_wait_ms'), 2)} | "
                      f"{fmt(lf.get('prefill_ms'), 3)} | {fmt(lf.get('decode_ms'), 3)} | "
                      f"{fmt(lf.get('runs_per_step'), 2)} | "
                      f"{pad_cell} | "
                      f"{'n/a' if pshare is None else f'{100 * pshare:.0f}%'} | "
                      f"{'n/a' if share is None else f'{100 * share:.0f}%'} | "
                      f"{fmt(gap.get('p50'), 2)} / {fmt(gap.get('p99'), 2)} |")
    print("\nUnstreamed: the same closed loop with \"stream\": false (one JSON body per request), right after the "
          "streamed run on the same server: the engine without per-token delivery. Decode-loop figures from "
          "generation_stats deltas (n/a for a build without those counters): mean decode batch = decode sequences / "
          "decode runs; decode runs per step and the padding share of their past (decode_rounds, decode_past_tokens, "
          "decode_padded_tokens); wait before prefill = Submit to joining the batch, per request; run times are the model "
          "runs' wall time on the decode loop. Load generator CPU: its user + system time over its wall time "
          "(near 100%: the client sets the pace). Next send: a request's end to its stream's next send.\n")

    print("## Memory\n")
    print("| build | RSS idle (MiB) | " + " | ".join(f"peak at {b} streams (MiB)" for b in sorted(raw_by_batch)) + " |")
    print("|---|---|" + "---|" * len(raw_by_batch))
    for l in labels:
        idle = int(open(p(f"rss_idle_{l}.txt")).read().strip() or 0)
        cells = []
        for b in sorted(raw_by_batch):
            f = p(f"rss_peak_{l}_c{b}.txt")
            cells.append(fmt(int(open(f).read().strip() or 0) / 1024) if os.path.exists(f) else "n/a")
        print(f"| {l} | {fmt(idle / 1024)} | " + " | ".join(cells) + " |")
    print()

    if os.path.exists(p("capacity.json")):
        cap = load(p("capacity.json"))
        print("## Mixed output lengths\n")
        print(f"Capacity (closed loop, 32 streams, max_tokens {cap['max_tokens']}): continuous "
              f"{fmt(cap['requests_per_s'], 2)} requests/s, {fmt(cap['tokens_per_s'])} tokens/s, TTFT p99 "
              f"{fmt(cap['ttft_ms']['p99'], 2)} ms", end="")
        if os.path.exists(p("capacity_static.json")):
            st = load(p("capacity_static.json"))
            print(f"; static {fmt(st['requests_per_s'], 2)} requests/s, {fmt(st['tokens_per_s'])} tokens/s, "
                  f"TTFT p99 {fmt(st['ttft_ms']['p99'], 2)} ms (continuous / static throughput "
                  f"{cap['tokens_per_s'] / st['tokens_per_s']:.2f}x)", end="")
        print(".\n")
        for name, tag in (("continuous", "capacity"), ("static", "capacity_static")):
            lf = loop_figures(p, None, None, files=(f"stats_{tag}_after.json", f"stats_{tag}_before.json"))
            if lf:
                pad = lf.get("padding")
                print(f"- {name} at capacity: mean decode run {fmt(lf.get('decode_batch'), 1)} sequences, "
                      f"{fmt(lf.get('runs_per_step'), 2)} decode runs per step, decode run "
                      f"{fmt(lf.get('decode_ms'), 3)} ms, padding {'n/a' if pad is None else f'{100 * pad:.0f}%'} "
                      f"of the decode runs' past, prefill {fmt(100 * (lf.get('prefill_share') or 0), 0)}% of run time")
        print()
        print("| run | rate (req/s) | ok / sent | statuses | tokens/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms | ITL per request p50 / p99 ms | e2e p99 ms |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        runs = [("continuous", "open_tiny_decoder.json"), ("static", "open_tiny_decoder_static.json"),
                ("continuous at 50%", "latency_50.json"), ("continuous at 90%", "latency_90.json")]
        for name, f in runs:
            if not os.path.exists(p(f)):
                continue
            r = load(p(f))
            print(f"| {name} | {fmt(r['rate'], 2)} | {r['ok']} / {r['requests']} | {json.dumps(r['by_status'])} | "
                  f"{fmt(r['tokens_per_s'])} | {fmt(r['ttft_ms']['p50'], 2)} | {fmt(r['ttft_ms']['p99'], 2)} | "
                  f"{fmt(r['itl_ms']['p50'], 2)} | {fmt(r['itl_ms']['p99'], 2)} | "
                  f"{fmt((r.get('itl_request_mean_ms') or {}).get('p50'), 2)} / "
                  f"{fmt((r.get('itl_request_mean_ms') or {}).get('p99'), 2)} | {fmt(r['e2e_ms']['p99'], 1)} |")
        print("\nTTFT from each request's due time (Poisson schedule), so a late send counts against the server. "
              "ITL is per streamed event "
              "(an event may carry more than one token, and a client that reads several events at once sees gaps "
              "of 0); ITL per request is each request's (last event - first event) / (tokens - 1).")


if __name__ == "__main__":
    main(sys.argv[1])
