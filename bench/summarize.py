#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Turns one run_bench.sh results folder into results.json (everything) and
results.md (tables with ratios, and each issue-4 target met or missed).

  bench/summarize.py bench/results/<model>-<time> --model bert_mini --rates 0.5,0.9
"""

import argparse
import glob
import json
import os


def load(folder):
    runs = {}
    for path in glob.glob(os.path.join(folder, "*.json")):
        name = os.path.basename(path)[:-5]
        if name == "results":
            continue
        with open(path) as f:
            runs[name] = json.load(f)
    return runs


def compute_infer_us(folder, name):
    """Mean compute_infer time (us) of the requests ortserve ran during run `name`, from
    its statistics read before and after the run; None when not available."""
    try:
        stats = []
        for suffix in ("stats-before", "stats-after"):
            with open(os.path.join(folder, f"{name}.{suffix}")) as f:
                stats.append(json.load(f)["model_stats"][0]["inference_stats"]["compute_infer"])
    except (OSError, ValueError, KeyError, IndexError):
        return None
    count = stats[1]["count"] - stats[0]["count"]
    return None if count <= 0 else (stats[1]["ns"] - stats[0]["ns"]) / count / 1000.0


def fmt(x, digits=1):
    return "n/a" if x is None else f"{x:,.{digits}f}"


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--model", required=True)
    parser.add_argument("--rates", default="0.5,0.9")
    args = parser.parse_args()
    runs = load(args.folder)
    machine = runs.pop("machine", {})
    floor = runs.pop("tcp_floor", {}).get("overhead_us")
    raw = runs.get("raw_ort", {})
    rates = args.rates.split(",")

    def tput(name):  # Inferences per second.
        r = runs.get(name)
        return None if r is None else r["throughput_inferences_per_s"]

    def lat(name, key):
        r = runs.get(name)
        return None if r is None else r["latency_us"][key]

    def errors(name):
        r = runs.get(name)
        return None if r is None else r["requests_failed"]

    raw_best = raw.get("best_inferences_per_s")
    # Single-run latency from the raw run taken just before the low-load runs, if any.
    raw_c1 = runs.pop("raw_ort_c1", raw)
    single = raw_c1.get("single_run_us", {})
    raw_p50 = single.get("p50")
    raw_p99 = single.get("p99")
    md = []
    md.append(f"# {args.model}: ortserve vs raw ONNX Runtime vs Node peer\n")
    md.append(f"Machine: {machine.get('nproc')} cores, {machine.get('cpu_model')}, load average at start "
              f"{machine.get('loadavg_at_start')}; server on cores {machine.get('server_cpus')}, load generator "
              f"on {machine.get('loadgen_cpus')}; {machine.get('intra_op_threads')} intra-op thread(s); "
              f"{machine.get('duration_s')} s measured after {machine.get('warmup_s')} s warm-up per run; "
              f"git {machine.get('git_rev')}; ONNX Runtime {raw.get('ort_version')}.\n")

    md.append(f"## Saturation throughput (closed loop, concurrency {machine.get('concurrency')})\n")
    md.append("| what | inferences/s | vs raw ORT best | p50 us | p99 us | errors |")
    md.append("|---|---:|---:|---:|---:|---:|")
    md.append(f"| raw ORT, best batch ({raw.get('best_batch')}) | {fmt(raw_best)} | 1.00 | | | |")
    for p in raw.get("throughput", []):
        per_cpu = p.get("inferences_per_cpu_s")
        md.append(f"| raw ORT, batch {p['batch']} ({fmt(per_cpu)} per CPU-second) | {fmt(p['inferences_per_s'])} | "
                  f"{fmt(ratio(p['inferences_per_s'], raw_best), 2)} | {fmt(p['run_p50_us'])} (run) | | |")
    best_cpu = max((p.get("inferences_per_cpu_s") or 0 for p in raw.get("throughput", [])), default=0) or None
    md.append(f"| raw ORT, best per CPU-second (no competing load) | {fmt(best_cpu)} | "
              f"{fmt(ratio(best_cpu, raw_best), 2)} | | | |")
    for name, label in (("off-http-binary-sat", "ortserve, batching off, HTTP binary"),
                        ("off-grpc-sat", "ortserve, batching off, gRPC"),
                        ("off-http-json-sat", "ortserve, batching off, HTTP JSON"),
                        ("on-http-binary-sat", "ortserve, batching on, HTTP binary"),
                        ("on-grpc-sat", "ortserve, batching on, gRPC"),
                        ("on-http-json-sat", "ortserve, batching on, HTTP JSON"),
                        ("node-http-json-sat", "Node peer (onnxruntime-node), HTTP JSON")):
        if name in runs:
            md.append(f"| {label} | {fmt(tput(name))} | {fmt(ratio(tput(name), raw_best), 2)} | "
                      f"{fmt(lat(name, 'p50'))} | {fmt(lat(name, 'p99'))} | {errors(name)} |")

    md.append("\n## Latency at low load (closed loop, one request at a time)\n")
    md.append("Two overheads: p50 minus raw ORT's single-run p50 (taken minutes apart, so machine noise enters), "
              "and mean latency minus the mean model run time (compute_infer) ortserve itself measured for the "
              "same requests (same run, robust to noise).\n")
    md.append("The transport floor is a bare loopback TCP round trip (`tcp_floor`, no ortserve) around a server "
              "that keeps its core busy for the model's mean single-run time, minus that time: what any "
              "network server pays on this machine (loopback, wake-ups, scheduling) before doing any work. "
              "The last column is what is left for ortserve itself.\n")
    md.append("| what | p50 us | p99 us | mean us | p50 - raw ORT p50, us | mean - same-run compute_infer, us "
              "| ... minus the transport floor's mean, us |")
    md.append("|---|---:|---:|---:|---:|---:|---:|")
    md.append(f"| raw ORT single run | {fmt(raw_p50)} | {fmt(raw_p99)} | {fmt(single.get('mean'))} "
              f"| 0 | | |")
    if floor:
        md.append(f"| transport floor (tcp_floor), overhead only | {fmt(floor['p50'])} | {fmt(floor['p99'])} | "
                  f"{fmt(floor['mean'])} | | | |")
    single_cpu = None
    for src in (raw_c1, raw):
        if src and src.get("single_run_cpu_us"):
            single_cpu = src["single_run_cpu_us"]
            break
    if single_cpu:
        md.append(f"| raw ORT single run, CPU time only | {fmt(single_cpu['p50'])} | | {fmt(single_cpu['mean'])} | | | |")
    overhead_same_run = {}
    for name, label in (("off-http-binary-c1", "ortserve HTTP binary"), ("off-http-json-c1", "ortserve HTTP JSON"),
                        ("off-grpc-c1", "ortserve gRPC"),
                        ("on-http-binary-c1", "ortserve HTTP binary, batching on"),
                        ("on-grpc-c1", "ortserve gRPC, batching on"), ("node-http-json-c1", "Node peer HTTP JSON")):
        if name in runs:
            over = None if raw_p50 is None else lat(name, "p50") - raw_p50
            infer = compute_infer_us(args.folder, name)
            same = None if infer is None else lat(name, "mean") - infer
            overhead_same_run[name] = same
            own = None if same is None or not floor or name.startswith("node") else same - floor["mean"]
            md.append(f"| {label} | {fmt(lat(name, 'p50'))} | {fmt(lat(name, 'p99'))} | {fmt(lat(name, 'mean'))} | "
                      f"{fmt(over)} | {fmt(same)} | {fmt(own)} |")

    md.append("\n## Open loop (Poisson arrivals, HTTP binary; Node peer HTTP JSON), rates as fractions of the "
              "unbatched HTTP capacity\n")
    md.append("| rate | server | achieved req/s | p50 us | p99 us | p99.9 us | errors |")
    md.append("|---|---|---:|---:|---:|---:|---:|")
    for f in rates:
        for prefix, label in (("off-http-binary", "ortserve, batching off"), ("on-http-binary", "ortserve, batching on"),
                              ("node-http-json", "Node peer")):
            name = f"{prefix}-open{f}"
            if name in runs:
                r = runs[name]
                md.append(f"| {f} x = {fmt(r['target_rate_rps'])}/s | {label} | {fmt(r['throughput_rps'])} | "
                          f"{fmt(lat(name, 'p50'))} | {fmt(lat(name, 'p99'))} | {fmt(lat(name, 'p99_9'))} | "
                          f"{r['requests_failed']} |")

    # Targets (issue 4).
    targets = []
    best_server = max((tput(n) or 0) for n in ("off-http-binary-sat", "on-http-binary-sat", "off-grpc-sat",
                                               "on-grpc-sat"))
    targets.append(("saturation throughput >= 0.95x raw ORT best", ratio(best_server, raw_best), 0.95, ">="))
    for name, label, bound in (("off-http-binary-c1", "HTTP", 150), ("off-grpc-c1", "gRPC", 100)):
        if raw_p50 is not None and name in runs:
            targets.append((f"low-load p50 overhead over raw ORT, {label} <= {bound} us",
                            lat(name, "p50") - raw_p50, bound, "<="))
        if overhead_same_run.get(name) is not None:
            targets.append((f"low-load mean overhead over same-run compute_infer, {label} <= {bound} us",
                            overhead_same_run[name], bound, "<="))
    on_max = max(tput("on-http-binary-sat") or 0, tput("on-grpc-sat") or 0)
    off_max = max(tput("off-http-binary-sat") or 0, tput("off-grpc-sat") or 0)
    targets.append(("dynamic batching max throughput >= 2.5x none", ratio(on_max, off_max), 2.5, ">="))
    near = rates[-1]
    p99_off, p99_on = lat(f"off-http-binary-open{near}", "p99"), lat(f"on-http-binary-open{near}", "p99")
    if p99_off and p99_on is not None:
        targets.append((f"dynamic batching p99 >= 60% lower at {near}x capacity", 1 - p99_on / p99_off, 0.60, ">="))
    if "node-http-json-sat" in runs:
        ours = max(tput("on-http-json-sat") or 0, tput("off-http-json-sat") or 0)
        targets.append(("throughput >= 3x the Node peer (both HTTP JSON, saturation)",
                        ratio(ours, tput("node-http-json-sat")), 3.0, ">="))
    md.append("\n## Targets\n")
    md.append("| target | measured | met |")
    md.append("|---|---:|---|")
    for label, value, bound, op in targets:
        met = value is not None and (value >= bound if op == ">=" else value <= bound)
        md.append(f"| {label} | {fmt(value, 2)} | {'yes' if met else 'NO'} |")

    with open(os.path.join(args.folder, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(args.folder, "results.json"), "w") as f:
        json.dump({"model": args.model, "machine": machine, "raw_ort": raw, "runs": runs,
                   "targets": [{"target": t[0], "measured": t[1], "bound": t[2], "op": t[3]} for t in targets]},
                  f, indent=2)
    print("\n".join(md))


if __name__ == "__main__":
    main()
