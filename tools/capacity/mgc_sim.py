#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Capacity on paper: an M/G/c queue of ortserve replicas (docs/deploy.md).

Requests arrive as a Poisson stream at `rate` per second and wait in one FIFO
queue for the first of `c` replicas to come free (HAProxy's leastconn or a
Kubernetes Service spreading a steady load behaves close to this); each takes
a service time drawn from a measured distribution. The distribution is read
from an ortserve-loadgen JSON result of a closed loop with one request at a
time (`-c 1`) on one replica: its latency quantiles (every percent and the
tail, `latency_quantiles_us`) define a piecewise-linear inverse CDF that the
simulation samples, its top bent so that the mean is the measured mean.
Batching is not modelled: under load the dynamic batcher only makes a replica
faster than this, so the answers are on the safe side.

  mgc_sim.py check --service S.json --measured OPEN.json [--replicas 1]
      simulate the measured open-loop point (same rate) and compare p50/p99
  mgc_sim.py size --service S.json --rate 5000 --p99-ms 20
      fewest replicas that keep p99 under the target at that rate
  mgc_sim.py table --service S.json --rates 1000,5000 --p99-ms 10,50
  mgc_sim.py burst --service S.json --base-rate 1000 --factor 10 [--target-pending 16] ...
      a 10x step in the rate against the HorizontalPodAutoscaler of
      deploy/kubernetes (scale-up policy, metric lag, pod start-up time):
      replicas and p99 over time

Only numpy and the standard library (Debian's python3-numpy).
"""

import argparse
import heapq
import json
import math
import sys

import numpy as np


class ServiceTime:
    """Samples service times (seconds) from a measured latency distribution."""

    def __init__(self, loadgen_json):
        lat = loadgen_json["latency_us"]
        points = [(0.0, lat["min"])]
        # Every percent and the tail, when the load generator wrote them;
        # else its summary quantiles.
        table = loadgen_json.get("latency_quantiles_us") or [
            (0.5, lat["p50"]), (0.9, lat["p90"]), (0.99, lat["p99"]), (0.999, lat["p99_9"])]
        points += [(q, v) for q, v in table] + [(1.0, lat["max"])]
        # Quantiles from a histogram can tie; keep the inverse CDF monotone.
        self.q = np.array([p for p, _ in points])
        self.v = np.maximum.accumulate(np.array([v for _, v in points])) / 1e6
        self.measured_mean = lat["mean"] / 1e6
        # Above the last quantile only the maximum is known: a straight line
        # up to it would weigh one outlier as half the top interval. Bend the
        # top point instead (between the last quantile and the maximum) so
        # that the distribution's mean is the measured mean.
        rest = self.mean() - (self.v[-1] + self.v[-2]) / 2 * (1 - self.q[-2])
        top = 2 * (self.measured_mean - rest) / (1 - self.q[-2]) - self.v[-2]
        self.v[-1] = min(self.v[-1], max(self.v[-2], top))

    def sample(self, rng, n):
        return np.interp(rng.random(n), self.q, self.v)

    def mean(self):
        # Mean of the piecewise-linear inverse CDF: trapezoids.
        return float(np.sum(np.diff(self.q) * (self.v[1:] + self.v[:-1]) / 2))


def simulate(service, rate, replicas, seconds, seed=1, warmup=0.1):
    """FIFO M/G/c: returns the sojourn times (wait + service) in seconds."""
    rng = np.random.default_rng(seed)
    n = max(1000, int(rate * seconds))
    arrivals = np.cumsum(rng.exponential(1.0 / rate, n))
    services = service.sample(rng, n)
    free = [0.0] * replicas  # When each replica is next free (a heap).
    sojourn = np.empty(n)
    for i in range(n):
        start = max(arrivals[i], free[0])
        done = start + services[i]
        heapq.heapreplace(free, done)
        sojourn[i] = done - arrivals[i]
    return sojourn[int(n * warmup):]


def percentiles_ms(sojourn):
    return {k: float(np.percentile(sojourn, p) * 1e3) for k, p in (("p50", 50), ("p99", 99), ("p99_9", 99.9))}


def fewest_replicas(service, rate, p99_ms, seconds, limit=1000):
    """(replicas, p99 ms) for the fewest replicas meeting the target, or (None, None)."""
    c = max(1, math.ceil(rate * service.mean() * 1.0001))  # Below this the queue grows without bound.
    while c <= limit:
        p = percentiles_ms(simulate(service, rate, c, seconds))
        if p["p99"] <= p99_ms:
            return c, p["p99"]
        c += 1 if c < 20 else max(1, c // 20)
    return None, None


def burst(service, args):
    """A step from base_rate to factor x base_rate at t=0 against the HPA.

    The HPA runs every `sync` seconds on the average of ortserve_pending_requests
    per ready replica, as Prometheus last scraped it (`lag` seconds old):
    desired = ceil(ready * pending_per_pod / target), capped by the scale-up
    policy of deploy/kubernetes/base/hpa.yaml (max of +100% and +4 pods per
    15 s) and max_replicas. A new replica serves `startup` seconds after the
    HPA asks for it (scheduling, image on the node, model load, readiness).
    A request that waits longer than queue_timeout_ms is answered 504 without
    running, as the model's queue policy does.
    """
    rng = np.random.default_rng(args.seed)
    base, peak = args.base_rate, args.base_rate * args.factor
    timeout = args.queue_timeout_ms / 1e3
    t_end = args.seconds
    # Start in the steady state the HPA holds at the base rate.
    replicas = max(args.min_replicas, math.ceil(base * service.mean() / args.utilization))
    n_before = int(base * args.settle)
    arrivals = np.concatenate([
        -args.settle + np.cumsum(rng.exponential(1.0 / base, n_before)),
        np.cumsum(rng.exponential(1.0 / peak, int(peak * t_end * 1.05)))])
    arrivals = arrivals[(arrivals >= -args.settle) & (arrivals < t_end)]
    services = service.sample(rng, len(arrivals))
    free = [-args.settle] * replicas
    heapq.heapify(free)
    ready = replicas
    pending_starts = []  # Times at which asked-for replicas become ready.
    # Pending requests over time, sampled every second: (time, in system).
    in_system_done = []  # A heap of completion times of admitted requests.
    samples = {}
    next_sync = 0.0
    sync_log = []
    sojourn = np.empty(len(arrivals))
    for i, t in enumerate(arrivals):
        while pending_starts and pending_starts[0] <= t:
            heapq.heappush(free, heapq.heappop(pending_starts))
            ready += 1
        while in_system_done and in_system_done[0] <= t:
            heapq.heappop(in_system_done)
        second = math.floor(t)
        if second not in samples:
            samples[second] = (len(in_system_done), ready)
        while t >= next_sync:
            seen = samples.get(math.floor(next_sync - args.lag), (0, ready))
            per_pod = seen[0] / max(1, seen[1])
            asked = ready + len(pending_starts)
            # ready x per-pod average = all requests pending; within the HPA's
            # 10% tolerance it does nothing. (No scale-down here: the HPA
            # waits 5 minutes before it lowers the count.)
            desired = math.ceil(ready * per_pod / args.target_pending) if per_pod > args.target_pending * 1.1 else asked
            cap = max(2 * asked, asked + 4)
            desired = min(args.max_replicas, max(asked, min(desired, cap)))
            for _ in range(desired - asked):
                heapq.heappush(pending_starts, next_sync + args.startup)
            sync_log.append((next_sync, ready, desired, per_pod))
            next_sync += args.sync
        start = max(t, free[0])
        if start - t > timeout:
            # Its deadline passes in the queue: answered 504, never run
            # (dynamic_batching.default_queue_policy.default_timeout_microseconds).
            sojourn[i] = np.nan
            heapq.heappush(in_system_done, t + timeout)
            continue
        done = start + services[i]
        heapq.heapreplace(free, done)
        heapq.heappush(in_system_done, done)
        sojourn[i] = done - t
    windows = []
    for w0 in range(0, int(t_end), args.window):
        mask = (arrivals >= w0) & (arrivals < w0 + args.window)
        if mask.any():
            s = sojourn[mask]
            ok = s[~np.isnan(s)]
            windows.append({"from_s": w0, "to_s": w0 + args.window,
                            "replicas_ready": samples.get(w0, (0, ready))[1],
                            "timed_out_share": round(float(np.isnan(s).mean()), 3),
                            "p50_ms": round(float(np.percentile(ok, 50)) * 1e3, 2) if len(ok) else None,
                            "p99_ms": round(float(np.percentile(ok, 99)) * 1e3, 2) if len(ok) else None})
    before = sojourn[arrivals < 0]
    before = before[~np.isnan(before)]
    return {"base_rate": base, "peak_rate": peak, "replicas_before": replicas,
            "p99_ms_before": round(float(np.percentile(before, 99)) * 1e3, 2) if len(before) else None,
            "replicas_after": ready,
            "windows": windows,
            "hpa_syncs": [{"t_s": round(t, 1), "ready": r, "desired": d, "pending_per_pod_seen": round(p, 1)}
                          for t, r, d, p in sync_log if t <= t_end]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("check", "size", "table", "burst"):
        p = sub.add_parser(name)
        p.add_argument("--service", required=True, help="ortserve-loadgen JSON of a -c 1 closed loop on one replica")
        p.add_argument("--seconds", type=float, default=60, help="simulated seconds")
        p.add_argument("--seed", type=int, default=1)
    sub.choices["check"].add_argument("--measured", required=True, help="ortserve-loadgen JSON of an open loop")
    sub.choices["check"].add_argument("--replicas", type=int, default=1)
    sub.choices["size"].add_argument("--rate", type=float, required=True)
    sub.choices["size"].add_argument("--p99-ms", type=float, required=True)
    sub.choices["table"].add_argument("--rates", required=True)
    sub.choices["table"].add_argument("--p99-ms", required=True)
    b = sub.choices["burst"]
    b.add_argument("--base-rate", type=float, required=True)
    b.add_argument("--factor", type=float, default=10)
    b.add_argument("--target-pending", type=float, default=16, help="the HPA's averageValue of pending requests")
    b.add_argument("--utilization", type=float, default=0.5, help="replica load before the burst")
    b.add_argument("--min-replicas", type=int, default=2)
    b.add_argument("--max-replicas", type=int, default=10)
    b.add_argument("--sync", type=float, default=15, help="HPA sync period, s")
    b.add_argument("--lag", type=float, default=15, help="age of the metric the HPA sees (scrape interval), s")
    b.add_argument("--startup", type=float, default=20, help="from the HPA's decision to a ready replica, s")
    b.add_argument("--settle", type=float, default=30, help="simulated seconds at the base rate before the step")
    b.add_argument("--window", type=int, default=5, help="seconds per reported p99")
    b.add_argument("--queue-timeout-ms", type=float, default=1000,
                   help="a request still queued this long is answered 504 and never runs")
    args = parser.parse_args()
    with open(args.service) as f:
        service = ServiceTime(json.load(f))
    out = {"service_mean_ms": round(service.mean() * 1e3, 4),
           "service_mean_ms_measured": round(service.measured_mean * 1e3, 4),
           "replica_capacity_rps": round(1 / service.mean(), 1)}
    if args.command == "check":
        with open(args.measured) as f:
            measured = json.load(f)
        rate = measured.get("target_rate_rps") or measured["throughput_rps"]
        sim = percentiles_ms(simulate(service, rate, args.replicas, args.seconds, args.seed))
        lat = measured["latency_us"]
        meas = {"p50": lat["p50"] / 1e3, "p99": lat["p99"] / 1e3, "p99_9": lat["p99_9"] / 1e3}
        out.update({"rate_rps": rate, "replicas": args.replicas,
                    "utilization": round(rate * service.mean() / args.replicas, 3),
                    "simulated_ms": {k: round(v, 3) for k, v in sim.items()},
                    "measured_ms": {k: round(v, 3) for k, v in meas.items()},
                    "simulated_over_measured": {k: round(sim[k] / meas[k], 3) for k in sim}})
    elif args.command == "size":
        c, p99 = fewest_replicas(service, args.rate, args.p99_ms, args.seconds)
        out.update({"rate_rps": args.rate, "p99_target_ms": args.p99_ms, "replicas": c,
                    "p99_ms": None if p99 is None else round(p99, 3)})
    elif args.command == "table":
        rows = []
        for rate in (float(r) for r in args.rates.split(",")):
            for target in (float(t) for t in args.p99_ms.split(",")):
                c, p99 = fewest_replicas(service, rate, target, args.seconds)
                rows.append({"rate_rps": rate, "p99_target_ms": target, "replicas": c,
                             "p99_ms": None if p99 is None else round(p99, 3)})
        out["rows"] = rows
    else:
        out.update(burst(service, args))
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
