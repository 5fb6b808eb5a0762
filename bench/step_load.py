#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The step-load benchmark's helper (bench/run_step_load.sh), plain Python.

  step_load.py sample --url URL --model M --interval-ms 250 --out F.jsonl
      Samples ortserve's /metrics until killed: per line the time and, for
      model M, ortserve_batch_size_limit, ortserve_queue_delay_limit_seconds
      and the ortserve_batch_size histogram's sum and count (so the mean batch
      size of each interval can be computed).

  step_load.py report RUN_DIR
      Reads the run folder and writes results.md, results.json and
      step_load.svg (p99, throughput and the adaptive batcher's choice over
      time; the SVG is written here, no plotting library needed).
"""
import argparse
import json
import math
import os
import re
import time
import urllib.request


# ---------------------------------------------------------------------------
# Sampling.

def parse_metrics(text, model):
    """The adaptive batcher's gauges and the batch size histogram of MODEL."""
    want = {"ortserve_batch_size_limit": "batch_limit",
            "ortserve_queue_delay_limit_seconds": "delay_limit_s",
            "ortserve_batch_size_sum": "batch_sum",
            "ortserve_batch_size_count": "batch_count"}
    out = {}
    label = f'model="{model}"'
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not m or m.group(1) not in want:
            continue
        if m.group(2) and label not in m.group(2):
            continue
        key = want[m.group(1)]
        out[key] = out.get(key, 0.0) + float(m.group(3))  # Summed over versions/instances.
    return out


def sample(args):
    period = args.interval_ms / 1000.0
    with open(args.out, "a") as f:
        next_t = time.time()
        while True:
            t = time.time()
            try:
                with urllib.request.urlopen(args.url, timeout=2) as r:
                    row = parse_metrics(r.read().decode("utf-8", "replace"), args.model)
                row["t"] = round(t, 4)
                f.write(json.dumps(row) + "\n")
                f.flush()
            except OSError as e:
                f.write(json.dumps({"t": round(t, 4), "error": str(e)}) + "\n")
            next_t += period
            time.sleep(max(0.0, next_t - time.time()))


# ---------------------------------------------------------------------------
# Report.

def load_json(path):
    with open(path) as f:
        return json.load(f)


def load_jsonl(path):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    rows.append(json.loads(line))
    return rows


def step_result(run, setting, step):
    r = load_json(os.path.join(run, f"{setting}-step{step}.json"))
    lat = r["latency_us"]
    errors = r.get("errors", {})
    refused = sum(v for k, v in errors.items() if re.search(r"503|429|unavailable|refus", k, re.I))
    return {"throughput_rps": r["throughput_rps"], "offered_rps": r.get("target_rate_rps"),
            "p50_ms": lat["p50"] / 1000, "p99_ms": lat["p99"] / 1000, "ok": r["requests_ok"],
            "failed": r["requests_failed"], "refused": refused, "errors": errors}


def choice_during(samples, t0, t1):
    """The adaptive batcher's limits and the mean executed batch over [t0, t1]."""
    inside = [s for s in samples if t0 <= s["t"] <= t1 and "batch_limit" in s]
    if not inside:
        return None
    limits = [s["batch_limit"] for s in inside]
    delays = [s.get("delay_limit_s", 0) * 1000 for s in inside]
    first, last = inside[0], inside[-1]
    batches = last.get("batch_count", 0) - first.get("batch_count", 0)
    rows = last.get("batch_sum", 0) - first.get("batch_sum", 0)
    return {"batch_limit_mean": sum(limits) / len(limits), "batch_limit_min": min(limits),
            "batch_limit_max": max(limits), "delay_limit_ms_mean": sum(delays) / len(delays),
            "delay_limit_ms_min": min(delays), "delay_limit_ms_max": max(delays),
            "mean_batch": rows / batches if batches > 0 else None, "samples": len(inside)}


def report(args):
    run = args.run
    machine = load_json(os.path.join(run, "machine.json"))
    used = load_json(os.path.join(run, "capacity_used.json"))
    capacity = used["capacity_rps"]
    machine["target_us"] = used["target_us"]
    raw = load_json(os.path.join(run, "raw_ort.json")) if os.path.exists(os.path.join(run, "raw_ort.json")) else None
    steps = load_jsonl(os.path.join(run, "steps.jsonl"))
    target_ms = machine["target_us"] / 1000
    settings = []
    for s in steps:
        if s["setting"] not in settings:
            settings.append(s["setting"])
    adaptive = [s for s in settings if s.startswith("adaptive")]
    static = [s for s in settings if s.startswith("static")]
    fractions = machine["steps"]
    table = {}  # setting -> [step results]
    timing = {}
    for s in steps:
        name = s["setting"]
        res = step_result(run, name, s["step"])
        res.update(fraction=s["fraction"], t_start=s["t_start"], t_end=s["t_end"])
        table.setdefault(name, []).append(res)
    for name in adaptive:
        samples = load_jsonl(os.path.join(run, f"{name}-metrics.jsonl"))
        timing[name] = samples
        for res in table[name]:
            res["choice"] = choice_during(samples, res["t_start"], res["t_end"])
    n_steps = min(len(v) for v in table.values())

    summary = {"machine": machine, "capacity_rps": capacity, "target_ms": target_ms, "steps": []}
    lines = ["# Step load: SLO-adaptive batching against static settings", ""]
    lines.append(
        f"{machine['cpu_model']}, {machine['nproc']} cores; server on core(s) {machine['server_cpus']} with "
        f"{machine['threads']} ORT thread(s), load generator on {machine['loadgen_cpus']}; every process at nice "
        f"{machine['nice']}; {machine['protocol']}; git {machine['git_rev']}; {machine['started_utc']} to "
        f"{machine.get('ended_utc', '?')}; load average {machine['loadavg_at_start']} at start, "
        f"{machine.get('loadavg_at_end', '?')} at end.")
    lines.append("")
    if os.path.exists(os.path.join(run, "capacity.json")):
        cap_line = f"Capacity {capacity:,.0f} req/s (ortserve closed loop, static {machine['cap_setting']} " \
                   f"(max_batch_size:max_queue_delay_us), concurrency {machine['cap_concurrency']})"
    else:
        cap_line = f"Capacity {capacity:,.0f} req/s (given: CAPACITY)"
    if raw:
        cap_line += f"; raw ORT best {raw['best_inferences_per_s']:,.0f} inferences/s at batch {raw['best_batch']}"
        b1 = [b for b in raw.get("throughput", raw.get("sweep", [])) if b.get("batch") == 1]
        if b1:
            cap_line += f", batch 1 {b1[0].get('inferences_per_s', 0):,.0f}/s"
    lines += [cap_line + ".", ""]
    lines.append(
        f"Open loop, Poisson arrivals, {machine['step_s']} s per step (one `ortserve-loadgen` per step, at most "
        f"{machine['max_outstanding']} requests in flight, up to {machine['drain_s']} s drain between steps); "
        f"adaptive: `latency_target_microseconds: {machine['target_us']}` within max_batch_size "
        f"{machine['adaptive_max_batch']} and max_queue_delay {machine['adaptive_max_delay_us']} µs. p99 is the "
        f"client's (from each request's due time, network and codec included); the target covers queue and run "
        f"only, so p99 ≤ target is the stricter test.")
    lines.append("")

    def best(names, step, p99_ok):
        cands = [(table[n][step]["throughput_rps"], -table[n][step]["p99_ms"], n) for n in names
                 if step < len(table[n]) and (not p99_ok or table[n][step]["p99_ms"] <= target_ms)]
        return max(cands)[2] if cands else None

    lines += ["## Per step", "",
              "| step | offered req/s | setting | req/s | p50 ms | p99 ms | failed | batch limit (mean, min–max) "
              "| delay limit ms (mean) | executed batch (mean) |",
              "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
    verdict_rows = []
    for i in range(n_steps):
        frac = fractions[i]
        offered = table[settings[0]][i]["offered_rps"]
        b_any = best(static, i, False)
        b_ok = best(static, i, True)
        step_sum = {"step": i, "fraction": frac, "offered_rps": offered, "best_static": b_any,
                    "best_static_meeting_target": b_ok, "adaptive": {}}
        shown = list(adaptive) + [n for n in (b_any, b_ok) if n]
        seen = set()
        for n in shown:
            if n in seen:
                continue
            seen.add(n)
            r = table[n][i]
            c = r.get("choice")
            tag = n + (" (best static)" if n == b_any else "") + (" (best static ≤ target)" if n == b_ok else "")
            ch = (f"{c['batch_limit_mean']:.1f}, {c['batch_limit_min']:.0f}–{c['batch_limit_max']:.0f}",
                  f"{c['delay_limit_ms_mean']:.2f}", f"{c['mean_batch']:.1f}" if c and c["mean_batch"] else "")\
                if c else ("", "", "")
            lines.append(f"| {i} ({frac:g}×) | {offered:,.0f} | {tag} | {r['throughput_rps']:,.0f} | "
                         f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['failed']} | {ch[0]} | {ch[1]} | {ch[2]} |")
        for a in adaptive:
            r = table[a][i]
            ra = r["throughput_rps"] / table[b_any][i]["throughput_rps"] if b_any else None
            rk = r["throughput_rps"] / table[b_ok][i]["throughput_rps"] if b_ok else None
            feasible = b_ok is not None or r["p99_ms"] <= target_ms
            step_sum["adaptive"][a] = {"throughput_rps": r["throughput_rps"], "p99_ms": r["p99_ms"],
                                       "vs_best_static": ra, "vs_best_static_meeting_target": rk,
                                       "target_feasible": feasible, "p99_met": r["p99_ms"] <= target_ms,
                                       "throughput_met": ra is not None and ra >= 0.9, "choice": r.get("choice")}
            verdict_rows.append((i, frac, a, r, b_any, b_ok, ra, rk, feasible))
        summary["steps"].append(step_sum)
    lines.append("")

    lines += ["## Verdict per step", "",
              f"Targets (issue #20.3): p99 ≤ {target_ms:g} ms wherever the target is feasible (here: some static "
              "setting met it at that step), and ≥ 0.9× the throughput of the best static setting.", "",
              "| step | adaptive run | req/s vs best static | vs best static ≤ target | p99 ms (target "
              f"{target_ms:g}) | target feasible | p99 met | ≥ 0.9× |",
              "| --- | --- | ---: | ---: | ---: | --- | --- | --- |"]
    for i, frac, a, r, b_any, b_ok, ra, rk, feasible in verdict_rows:
        yes = lambda v: "yes" if v else "**no**"
        lines.append(f"| {i} ({frac:g}×) | {a} | {ra:.2f}× ({b_any}) | "
                     + (f"{rk:.2f}× ({b_ok})" if rk else "none met it") + f" | {r['p99_ms']:.2f} | "
                     f"{'yes' if feasible else 'no'} | {yes(r['p99_ms'] <= target_ms) if feasible else 'n/a'} | "
                     f"{yes(ra is not None and ra >= 0.9)} |")
    lines.append("")

    lines += ["## Every setting", "", "req/s and p99 ms per step.", "",
              "| setting | " + " | ".join(f"{f:g}×" for f in fractions[:n_steps]) + " |",
              "| --- |" + " ---: |" * n_steps]
    for n in settings:
        cells = [f"{table[n][i]['throughput_rps']:,.0f} / {table[n][i]['p99_ms']:.1f}"
                 + (f" ({table[n][i]['failed']} failed)" if table[n][i]["failed"] else "") for i in range(n_steps)]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines.append("")

    # The static setting drawn next to the adaptive run: highest total throughput, then lowest p99 sum.
    plot_static = max(static, key=lambda n: (round(sum(r["throughput_rps"] for r in table[n][:n_steps]), -1),
                                            -sum(r["p99_ms"] for r in table[n][:n_steps]))) if static else None
    svg = os.path.join(run, "step_load.svg")
    write_svg(svg, table, adaptive, plot_static, timing, target_ms, n_steps)
    lines += ["![p99, throughput and the adaptive batcher's choice over time](step_load.svg)", "",
              f"The plot: {', '.join(adaptive)} and {plot_static} (the static setting with the most requests served "
              "over all steps); p99 and throughput per step (one value per step), the batch size limit, the mean "
              f"executed batch and the queue delay limit every {machine['sample_ms']} ms. Time runs from each "
              "setting's first step; the gaps are the drains between steps.", ""]
    summary["table"] = table
    summary["plot_static"] = plot_static
    with open(os.path.join(run, "results.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(run, "results.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("\n".join(lines))


# ---------------------------------------------------------------------------
# SVG.

COLORS = {"adaptive": "#1f77b4", "adaptive2": "#6baed6", "static": "#d62728", "offered": "#7f7f7f",
          "target": "#2ca02c", "delay": "#9467bd", "executed": "#ff7f0e"}


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Panel:
    def __init__(self, x, y, w, h, xmax, ymin, ymax, log=False, title="", ylabel=""):
        self.x, self.y, self.w, self.h = x, y, w, h
        self.xmax, self.ymin, self.ymax, self.log = xmax, ymin, ymax, log
        self.title, self.ylabel = title, ylabel
        self.parts = []

    def px(self, t):
        return self.x + self.w * min(max(t, 0), self.xmax) / self.xmax

    def py(self, v):
        if self.log:
            v = max(v, self.ymin)
            f = (math.log10(v) - math.log10(self.ymin)) / (math.log10(self.ymax) - math.log10(self.ymin))
        else:
            f = (v - self.ymin) / (self.ymax - self.ymin) if self.ymax > self.ymin else 0
        return self.y + self.h * (1 - min(max(f, 0), 1))

    def frame(self):
        p = [f'<rect x="{self.x}" y="{self.y}" width="{self.w}" height="{self.h}" fill="none" stroke="#999"/>',
             f'<text x="{self.x}" y="{self.y - 6}" font-size="13" font-weight="bold">{esc(self.title)}</text>',
             f'<text x="{self.x - 48}" y="{self.y + self.h / 2}" font-size="11" transform="rotate(-90 '
             f'{self.x - 48} {self.y + self.h / 2})" text-anchor="middle">{esc(self.ylabel)}</text>']
        if self.log:
            ticks = [10 ** k for k in range(math.floor(math.log10(self.ymin)), math.ceil(math.log10(self.ymax)) + 1)
                     if self.ymin <= 10 ** k <= self.ymax]
        else:
            step = nice_step((self.ymax - self.ymin) / 4)
            ticks = [self.ymin + k * step for k in range(0, 6) if self.ymin + k * step <= self.ymax + 1e-9]
        for v in ticks:
            yy = self.py(v)
            p.append(f'<line x1="{self.x}" y1="{yy:.1f}" x2="{self.x + self.w}" y2="{yy:.1f}" stroke="#eee"/>')
            p.append(f'<text x="{self.x - 4}" y="{yy + 4:.1f}" font-size="10" text-anchor="end">{fmt(v)}</text>')
        return p

    def steps(self, segs, color, width=2, dash=""):
        """Horizontal segments (t0, t1, value)."""
        d = f' stroke-dasharray="{dash}"' if dash else ""
        for t0, t1, v in segs:
            if v is None:
                continue
            self.parts.append(f'<line x1="{self.px(t0):.1f}" y1="{self.py(v):.1f}" x2="{self.px(t1):.1f}" '
                              f'y2="{self.py(v):.1f}" stroke="{color}" stroke-width="{width}"{d}/>')

    def line(self, pts, color, width=1.5, dash=""):
        pts = [(t, v) for t, v in pts if v is not None]
        if len(pts) < 2:
            return
        d = f' stroke-dasharray="{dash}"' if dash else ""
        path = " ".join(f"{self.px(t):.1f},{self.py(v):.1f}" for t, v in pts)
        self.parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="{width}"{d}/>')

    def hline(self, v, color, label):
        yy = self.py(v)
        self.parts.append(f'<line x1="{self.x}" y1="{yy:.1f}" x2="{self.x + self.w}" y2="{yy:.1f}" stroke="{color}" '
                          f'stroke-dasharray="6,3"/>')
        self.parts.append(f'<text x="{self.x + self.w - 4}" y="{yy - 4:.1f}" font-size="10" fill="{color}" '
                          f'text-anchor="end">{esc(label)}</text>')

    def legend(self, items):
        xx = self.x + 8
        for label, color in items:
            self.parts.append(f'<rect x="{xx}" y="{self.y + 6}" width="12" height="4" fill="{color}"/>')
            self.parts.append(f'<text x="{xx + 16}" y="{self.y + 12}" font-size="10">{esc(label)}</text>')
            xx += 24 + 6 * len(label)

    def render(self):
        return self.frame() + self.parts


def nice_step(raw):
    if raw <= 0:
        return 1
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def fmt(v):
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:g}"
    return f"{v:.2g}"


def write_svg(path, table, adaptive, static, timing, target_ms, n_steps):
    shown = list(adaptive) + ([static] if static else [])
    origin = {n: table[n][0]["t_start"] for n in shown}
    xmax = max(table[n][n_steps - 1]["t_end"] - origin[n] for n in shown)

    def segs(n, key):
        return [(r["t_start"] - origin[n], r["t_end"] - origin[n], r[key]) for r in table[n][:n_steps]]

    def color(n):
        return COLORS.get(n, COLORS["static"] if n.startswith("static") else COLORS["adaptive"])

    W, left, pw, ph, gap = 900, 70, 800, 150, 45
    p99s = [r["p99_ms"] for n in shown for r in table[n][:n_steps]] + [target_ms]
    thr = [r["throughput_rps"] for n in shown for r in table[n][:n_steps]] + \
          [r["offered_rps"] for r in table[shown[0]][:n_steps]]
    p1 = Panel(left, 40, pw, ph, xmax, 10 ** math.floor(math.log10(min(p99s))), 10 ** math.ceil(math.log10(max(p99s))),
               log=True, title="p99 latency per step (log scale)", ylabel="ms")
    p2 = Panel(left, 40 + ph + gap, pw, ph, xmax, 0, max(thr) * 1.1, title="throughput per step", ylabel="req/s")
    limits = [s.get("batch_limit", 0) for n in adaptive for s in timing.get(n, [])] + [1]
    p3 = Panel(left, 40 + 2 * (ph + gap), pw, ph, xmax, 0, max(limits) * 1.15,
               title="adaptive batcher: batch size limit and executed batch", ylabel="rows")
    delays = [s.get("delay_limit_s", 0) * 1000 for n in adaptive for s in timing.get(n, [])] + [0.1]
    p4 = Panel(left, 40 + 3 * (ph + gap), pw, ph * 0.6, xmax, 0, max(delays) * 1.15,
               title="adaptive batcher: queue delay limit", ylabel="ms")
    for n in shown:
        p1.steps(segs(n, "p99_ms"), color(n))
        p2.steps(segs(n, "throughput_rps"), color(n))
    p1.hline(target_ms, COLORS["target"], f"target {target_ms:g} ms")
    p2.steps(segs(shown[0], "offered_rps"), COLORS["offered"], width=1, dash="4,3")
    for n in adaptive:
        samples = [s for s in timing.get(n, []) if "batch_limit" in s]
        o = origin[n]
        p3.line([(s["t"] - o, s["batch_limit"]) for s in samples], color(n))
        executed = []
        for a, b in zip(samples, samples[1:]):
            dc = b.get("batch_count", 0) - a.get("batch_count", 0)
            if dc > 0:
                executed.append((b["t"] - o, (b.get("batch_sum", 0) - a.get("batch_sum", 0)) / dc))
        p3.line(executed, COLORS["executed"] if n == "adaptive" else "#fdae6b", width=1)
        p4.line([(s["t"] - o, s.get("delay_limit_s", 0) * 1000) for s in samples], color(n))
    legend = [(n, color(n)) for n in shown]
    p1.legend(legend)
    p2.legend(legend + [("offered", COLORS["offered"])])
    p3.legend([(f"{n} limit", color(n)) for n in adaptive] +
              [(f"{n} executed batch (mean per sample)", COLORS["executed"] if n == "adaptive" else "#fdae6b")
               for n in adaptive])
    p4.legend([(n, color(n)) for n in adaptive])
    H = int(40 + 3 * (ph + gap) + ph * 0.6 + 40)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    for p in (p1, p2, p3, p4):
        out += p.render()
    for k in range(0, int(xmax) + 1, max(1, nice_step(xmax / 10).__int__())):
        xx = left + pw * k / xmax
        out.append(f'<text x="{xx:.1f}" y="{H - 22}" font-size="10" text-anchor="middle">{k}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{H - 6}" font-size="11" text-anchor="middle">seconds since the '
               f'setting\'s first step</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--url", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--interval-ms", type=float, default=250)
    s.add_argument("--out", required=True)
    r = sub.add_parser("report")
    r.add_argument("run")
    args = ap.parse_args()
    if args.cmd == "sample":
        sample(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
