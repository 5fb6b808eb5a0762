# SPDX-License-Identifier: Apache-2.0
"""The capacity simulation against queueing theory's closed forms: with
exponential service times (given as a load generator's quantile table) it is
an M/M/c queue, whose sojourn-time mean and tail are known (Erlang C)."""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgc_sim  # noqa: E402

MEAN_US = 1000.0  # Exponential service, mean 1 ms.


def exponential_loadgen_json():
    """What ortserve-loadgen would write for exponential latencies."""
    q = lambda p: -MEAN_US * math.log(1 - p)  # noqa: E731
    table = [[p / 100, q(p / 100)] for p in range(1, 100)] + [[p, q(p)] for p in (0.995, 0.999, 0.9995, 0.9999)]
    return {"latency_us": {"mean": MEAN_US, "min": 0.0, "p50": q(0.5), "p90": q(0.9), "p99": q(0.99),
                           "p99_9": q(0.999), "max": q(0.999999)},
            "latency_quantiles_us": table}


def erlang_c(c, a):
    """Probability that an arrival waits in M/M/c with offered load a = lambda/mu."""
    top = a ** c / math.factorial(c) * c / (c - a)
    return top / (sum(a ** k / math.factorial(k) for k in range(c)) + top)


class MgcSimTest(unittest.TestCase):
    def setUp(self):
        self.service = mgc_sim.ServiceTime(exponential_loadgen_json())

    def test_service_distribution_keeps_the_measured_mean(self):
        self.assertAlmostEqual(self.service.mean() * 1e6, MEAN_US, delta=MEAN_US * 0.01)
        draws = self.service.sample(np.random.default_rng(3), 200000)
        self.assertAlmostEqual(draws.mean() * 1e6, MEAN_US, delta=MEAN_US * 0.02)

    def test_one_replica_matches_mm1(self):
        rate = 700.0  # utilisation 0.7
        sojourn = mgc_sim.simulate(self.service, rate, 1, seconds=400)
        # M/M/1: sojourn time is exponential with rate mu - lambda.
        expected_mean = 1 / (1000.0 - rate)
        self.assertAlmostEqual(sojourn.mean(), expected_mean, delta=expected_mean * 0.08)
        self.assertAlmostEqual(np.percentile(sojourn, 99), math.log(100) * expected_mean,
                               delta=math.log(100) * expected_mean * 0.1)

    def test_four_replicas_match_erlang_c(self):
        rate, c = 3200.0, 4  # utilisation 0.8
        sojourn = mgc_sim.simulate(self.service, rate, c, seconds=200)
        a = rate / 1000.0
        expected_mean = erlang_c(c, a) / (c * 1000.0 - rate) + 1 / 1000.0
        self.assertAlmostEqual(sojourn.mean(), expected_mean, delta=expected_mean * 0.08)

    def test_size_finds_the_fewest_replicas_that_meet_the_p99(self):
        c, p99 = mgc_sim.fewest_replicas(self.service, 3000.0, 10.0, seconds=60)
        self.assertLessEqual(p99, 10.0)
        fewer = mgc_sim.percentiles_ms(mgc_sim.simulate(self.service, 3000.0, c - 1, 60))["p99"]
        self.assertGreater(fewer, 10.0)

    def test_burst_scales_within_the_hpa_policy(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(exponential_loadgen_json(), f)
        self.addCleanup(os.unlink, f.name)
        out = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "mgc_sim.py"), "burst",
                              "--service", f.name, "--base-rate", "1000", "--factor", "10", "--max-replicas", "20",
                              "--seconds", "120"], capture_output=True, text=True, check=True)
        result = json.loads(out.stdout)
        syncs = result["hpa_syncs"]
        asked = result["replicas_before"]
        for s in syncs:
            # Each step at most doubles the replicas or adds 4, never past the maximum.
            self.assertLessEqual(s["desired"], max(2 * asked, asked + 4))
            self.assertLessEqual(s["desired"], 20)
            asked = max(asked, s["desired"])
        self.assertEqual(result["replicas_after"], 20)
        last = result["windows"][-1]
        self.assertEqual(last["timed_out_share"], 0)
        self.assertLess(last["p99_ms"], 20)  # 20 replicas carry 10,000/s at 50%.


if __name__ == "__main__":
    unittest.main(verbosity=2)
