#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/step_load.py: the /metrics parser and the report (ratios, verdicts,
the SVG) on a run folder written here in the shape run_step_load.sh writes."""
import importlib.util
import json
import os
import sys
import tempfile
import unittest
import xml.dom.minidom

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("step_load", os.path.join(ROOT, "bench", "step_load.py"))
step_load = importlib.util.module_from_spec(spec)
spec.loader.exec_module(step_load)

METRICS = """# HELP ortserve_batch_size_limit The adaptive batcher's current batch size limit
# TYPE ortserve_batch_size_limit gauge
ortserve_batch_size_limit{model="weight",version="1"} 23
ortserve_batch_size_limit{model="other",version="1"} 64
ortserve_queue_delay_limit_seconds{version="1",model="weight"} 0.0025
ortserve_batch_size_bucket{model="weight",version="1",le="8"} 3
ortserve_batch_size_sum{model="weight",version="1"} 120
ortserve_batch_size_count{model="weight",version="1"} 10
ortserve_batch_size_sum{model="weightless",version="1"} 999
"""


def loadgen_json(rate, rps, p50_ms, p99_ms, failed=0):
    return {"target_rate_rps": rate, "throughput_rps": rps, "requests_ok": int(rps * 8),
            "requests_failed": failed, "errors": {"http_503": failed} if failed else {},
            "latency_us": {"p50": p50_ms * 1000, "p99": p99_ms * 1000}}


class StepLoadTest(unittest.TestCase):
    def test_parse_metrics_takes_only_the_model_asked_for(self):
        m = step_load.parse_metrics(METRICS, "weight")
        self.assertEqual(m, {"batch_limit": 23.0, "delay_limit_s": 0.0025, "batch_sum": 120.0, "batch_count": 10.0})
        self.assertEqual(step_load.parse_metrics(METRICS, "absent"), {})

    def test_report_ratios_verdicts_and_plot(self):
        with tempfile.TemporaryDirectory() as run:
            def write(name, obj):
                with open(os.path.join(run, name), "w") as f:
                    json.dump(obj, f)
            write("machine.json", {"nproc": 2, "cpu_model": "test", "server_cpus": "0", "loadgen_cpus": "1",
                                   "threads": 1, "nice": 10, "protocol": "http-binary", "git_rev": "x",
                                   "started_utc": "t0", "loadavg_at_start": "1 1 1", "steps": [0.5, 1.2],
                                   "step_s": 8, "drain_s": 5, "max_outstanding": 256, "adaptive_max_batch": 64,
                                   "adaptive_max_delay_us": 5000, "cap_setting": "64:2000", "cap_concurrency": 64,
                                   "sample_ms": 250})
            write("capacity_used.json", {"capacity_rps": 1000, "target_us": 50000})
            # Step 0: adaptive 0.95x the better static (b64) and within the target; step 1: adaptive at half the
            # throughput of b8, past the target that b8 met.
            results = {"adaptive": [(500, 475, 5, 20), (1200, 500, 900, 2000, 7)],
                       "static-b8-d0": [(500, 450, 6, 60), (1200, 1000, 10, 40)],
                       "static-b64-d0": [(500, 500, 6, 80), (1200, 990, 12, 45)]}
            steps = []
            t = 1000.0
            for name, rows in results.items():
                for i, row in enumerate(rows):
                    write(f"{name}-step{i}.json", loadgen_json(*row))
                    steps.append({"setting": name, "step": i, "fraction": [0.5, 1.2][i], "rate": row[0],
                                  "t_start": t, "t_end": t + 8})
                    t += 10
            with open(os.path.join(run, "steps.jsonl"), "w") as f:
                f.write("".join(json.dumps(s) + "\n" for s in steps))
            with open(os.path.join(run, "adaptive-metrics.jsonl"), "w") as f:
                for k in range(80):  # 250 ms samples over the adaptive run's 20 s; the limit climbs by one a second.
                    f.write(json.dumps({"t": 1000.0 + k * 0.25, "batch_limit": 1 + k // 4, "delay_limit_s": 0.005,
                                        "batch_sum": 6.0 * k, "batch_count": 2.0 * k}) + "\n")
            with open(os.devnull, "w") as devnull:
                stdout, sys.stdout = sys.stdout, devnull
                try:
                    step_load.report(type("Args", (), {"run": run})())
                finally:
                    sys.stdout = stdout
            with open(os.path.join(run, "results.json")) as f:
                summary = json.load(f)
            s0, s1 = summary["steps"]
            self.assertEqual(s0["best_static"], "static-b64-d0")
            self.assertIsNone(s0["best_static_meeting_target"])  # 60 and 80 ms against 50.
            self.assertAlmostEqual(s0["adaptive"]["adaptive"]["vs_best_static"], 0.95)
            self.assertTrue(s0["adaptive"]["adaptive"]["p99_met"])
            self.assertTrue(s0["adaptive"]["adaptive"]["throughput_met"])
            self.assertEqual(s1["best_static"], "static-b8-d0")
            self.assertEqual(s1["best_static_meeting_target"], "static-b8-d0")
            self.assertAlmostEqual(s1["adaptive"]["adaptive"]["vs_best_static"], 0.5)
            self.assertTrue(s1["adaptive"]["adaptive"]["target_feasible"])
            self.assertFalse(s1["adaptive"]["adaptive"]["p99_met"])
            self.assertFalse(s1["adaptive"]["adaptive"]["throughput_met"])
            choice = s0["adaptive"]["adaptive"]["choice"]
            self.assertEqual((choice["batch_limit_min"], choice["batch_limit_max"]), (1, 9))
            self.assertAlmostEqual(choice["mean_batch"], 3.0)
            self.assertAlmostEqual(choice["delay_limit_ms_mean"], 5.0)
            with open(os.path.join(run, "results.md")) as f:
                md = f.read()
            self.assertIn("| 1 (1.2×) | adaptive | 0.50× (static-b8-d0) | 0.50× (static-b8-d0) | 2000.00 | yes | **no** "
                          "| **no** |", md)
            self.assertIn("7 failed", md)
            svg = xml.dom.minidom.parse(os.path.join(run, "step_load.svg"))
            self.assertGreaterEqual(len(svg.getElementsByTagName("polyline")), 2)  # Batch limit, executed batch.


if __name__ == "__main__":
    unittest.main()
