# SPDX-License-Identifier: Apache-2.0
"""Three ortserve replicas behind Debian's HAProxy (issue #19, part 4).

HAProxy runs deploy/haproxy/haproxy.cfg (on this machine's ports): active
checks of GET /v2/health/ready every 200 ms (out after 2 failures, back after
2 successes), passive checks that take a replica out on a refused connection.
Under load from ortserve-loadgen on POST /api/v1/sae/analyze through HAProxy:
  - a rolling restart of all three replicas, one at a time (SIGTERM, drain,
    exit, start, ready, back in HAProxy), under a steady open-loop load,
    loses no request;
  - a replica killed with SIGKILL costs at most the requests in flight on it
    (HAProxy lets each replica hold at most MAXCONN), each reported as an
    error, none left hanging;
  - the closed-loop throughput of three replicas is measured against one.
The replicas run with --shutdown-delay-seconds, so that HAProxy sees their
readiness go false before their listeners close (docs/deploy.md).

Run: /usr/bin/python3 haproxy_test.py --server build/src/server/ortserve \
        --loadgen build/tools/loadgen/ortserve-loadgen --source-dir . [--report out.json]
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploytest  # noqa: E402

ARGS = None
MAXCONN = 4           # Requests HAProxy lets one replica hold at once.
SHUTDOWN_DELAY = 1.0  # Seconds a stopping replica serves while not ready (> 2 checks of 200 ms).
REPORT = {}


class Cluster:
    """Three replicas and HAProxy in front of them, in a temporary folder."""

    def __init__(self, tmp, replicas=3):
        self.tmp = tmp
        self.ports = [deploytest.free_port() for _ in range(replicas)]
        self.replicas = [None] * replicas
        self.front = deploytest.free_port()
        self.stats_socket = os.path.join(tmp, "haproxy.sock")
        self.haproxy = None

    def replica_args(self, i):
        return ["--model-repository", os.path.join(ARGS.source_dir, "models"),
                "--model-control-mode", "explicit", "--load-model", "sae_classifier",
                "--http-address", "127.0.0.1", "--http-port", str(self.ports[i]),
                "--grpc-port", "-1", "--metrics-port", "-1",
                "--http-thread-count", "1", "--intra-op-thread-count", "1", "--tokenizer-threads", "1",
                "--shutdown-delay-seconds", str(SHUTDOWN_DELAY), "--shutdown-grace-seconds", "20",
                "--log-format", "text"]

    def start_replica(self, i):
        self.replicas[i] = deploytest.Ortserve(ARGS.server, os.path.join(self.tmp, f"replica{i}.log"),
                                               self.replica_args(i)).start()

    def start(self):
        for i in range(len(self.ports)):
            self.start_replica(i)
        for i, port in enumerate(self.ports):
            deploytest.wait_for(lambda: deploytest.ready(port), 120, f"replica {i} ready")
        # deploy/haproxy/haproxy.cfg, on this machine's ports: only the bind
        # and server lines change, plus the test's admin socket and log, and
        # a per-replica maxconn of MAXCONN (a tight bound on what a kill costs).
        with open(os.path.join(ARGS.source_dir, "deploy/haproxy/haproxy.cfg")) as f:
            shipped = f.read()
        lines = []
        for line in shipped.splitlines():
            stripped = line.strip()
            if stripped.startswith("server "):
                continue
            if stripped.startswith("bind "):
                line = f"    bind 127.0.0.1:{self.front}"
            elif stripped.startswith("default-server "):
                if not re.search(r" maxconn \d+", line):
                    raise AssertionError("deploy/haproxy/haproxy.cfg: default-server has no maxconn")
                line = re.sub(r" maxconn \d+", f" maxconn {MAXCONN}", line)
            lines.append(line)
            if stripped == "global":
                lines += [f"    stats socket {self.stats_socket} mode 600 level admin",
                          "    log stdout format raw local0 info"]
            elif stripped == "defaults":
                lines += ["    log global", "    option httplog"]
        lines += [f"    server r{i} 127.0.0.1:{port}" for i, port in enumerate(self.ports)]
        config = os.path.join(self.tmp, "haproxy.cfg")
        with open(config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.haproxy_log = open(os.path.join(self.tmp, "haproxy.log"), "wb")
        self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", config], stdout=self.haproxy_log,
                                        stderr=subprocess.STDOUT)
        for i in range(len(self.ports)):
            deploytest.wait_for(lambda: self.state(i) == "UP" or self.haproxy.poll() is not None, 30,
                                f"HAProxy to see r{i} UP")
            if self.haproxy.poll() is not None:
                with open(os.path.join(self.tmp, "haproxy.log"), "rb") as f:
                    raise RuntimeError("haproxy exited:\n" + f.read().decode(errors="replace"))

    def admin(self, command):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.stats_socket)
            s.sendall(command.encode() + b"\n")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        return out.decode()

    def stat_rows(self):
        lines = self.admin("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        return [dict(zip(header, line.split(","))) for line in lines[1:] if line]

    def served(self):
        """Requests the backend has answered so far."""
        for row in self.stat_rows():
            if row.get("pxname") == "ortserve" and row.get("svname") == "BACKEND":
                return int(row["stot"])
        return 0

    def state(self, i):
        """HAProxy's view of replica i: UP, DOWN, MAINT, ... (None before it answers)."""
        try:
            rows = self.stat_rows()
        except OSError:
            return None
        for row in rows:
            if row.get("pxname") == "ortserve" and row.get("svname") == f"r{i}":
                return row["status"].split(" ")[0]
        return None

    def stop(self):
        if self.haproxy:
            self.haproxy.terminate()
            self.haproxy.wait(timeout=10)
            self.haproxy_log.close()
        for r in self.replicas:
            if r:
                r.stop()


def loadgen(cluster, out, extra, duration):
    """Starts ortserve-loadgen on the SAE endpoint through HAProxy."""
    body = os.path.join(cluster.tmp, "body.json")
    with open(body, "w") as f:
        f.write(deploytest.SAE_BODY)
    cmd = [ARGS.loadgen, "--host", "127.0.0.1", "--port", str(cluster.front), "--http-post", "/api/v1/sae/analyze",
           "--body-file", body, "-d", str(duration), "--warmup", "0.5", "--drain", "20", "--json-out", out,
           "-q"] + extra
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc, out):
    text = proc.communicate(timeout=180)[0].decode(errors="replace")
    if proc.returncode != 0:
        raise AssertionError(f"loadgen failed ({proc.returncode}):\n{text}")
    with open(out) as f:
        return json.load(f)


class HaproxyReplicasTest(unittest.TestCase):
    def setUp(self):
        if shutil.which("haproxy") is None:
            self.skipTest("haproxy is not installed (scripts/setup.sh installs it)")
        self.tmp = tempfile.mkdtemp(prefix="ortserve-haproxy-")
        self.cluster = Cluster(self.tmp)
        if not os.environ.get("ORTSERVE_KEEP_TEST_FILES"):  # Set it to read the logs afterwards.
            self.addCleanup(shutil.rmtree, self.tmp, True)
        self.addCleanup(self.cluster.stop)
        self.cluster.start()

    def logs(self):
        text = ""
        for r in self.cluster.replicas:
            text += f"--- {r.log_path}\n{r.output()[-3000:]}\n"
        with open(os.path.join(self.tmp, "haproxy.log"), "rb") as f:
            text += "--- haproxy\n" + f.read().decode(errors="replace")[-3000:]
        return text

    def test_rolling_restart_of_every_replica_loses_no_request(self):
        c = self.cluster
        out = os.path.join(self.tmp, "rolling.json")
        # Open loop: 150 requests/s whatever happens, from before the first
        # restart until after the last replica is back.
        load = loadgen(c, out, ["--mode", "open", "-r", "150", "--max-outstanding", "64"], duration=60)
        stop_at = time.monotonic() + 60
        start = c.served()
        deploytest.wait_for(lambda: c.served() > start + 150, 30, "the load under way")
        restarts = []
        for i in range(len(c.ports)):
            t0 = time.monotonic()
            c.replicas[i].signal(signal.SIGTERM)
            # HAProxy takes the replica out on its readiness (the replica still
            # serves meanwhile), then the replica drains and exits.
            deploytest.wait_for(lambda: c.state(i) == "DOWN", 10, f"HAProxy to see r{i} DOWN")
            t_down = time.monotonic() - t0
            code = c.replicas[i].wait(timeout=60)
            self.assertEqual(code, 0, self.logs())
            t_exit = time.monotonic() - t0
            c.start_replica(i)
            deploytest.wait_for(lambda: c.state(i) == "UP", 120, f"HAProxy to see r{i} UP again")
            restarts.append({"replica": i, "down_after_s": round(t_down, 2), "exited_after_s": round(t_exit, 2),
                             "back_up_after_s": round(time.monotonic() - t0, 2)})
        self.assertLess(time.monotonic(), stop_at - 1, "the restarts outlasted the load")
        result = finish(load, out)
        REPORT["rolling_restart"] = {"restarts": restarts, "requests_ok": result["requests_ok"],
                                     "requests_failed": result["requests_failed"], "errors": result["errors"],
                                     "p99_ms": result["latency_us"]["p99"] / 1000}
        self.assertEqual(len(restarts), 3)
        self.assertGreater(result["requests_ok"], 150 * 30, result)
        self.assertEqual(result["requests_failed"], 0, f"{result}\n{self.logs()}")

    def test_killed_replica_costs_at_most_its_requests_in_flight(self):
        c = self.cluster
        out = os.path.join(self.tmp, "kill.json")
        # Closed loop: 12 requests always outstanding, MAXCONN=4 per replica.
        load = loadgen(c, out, ["--mode", "closed", "-c", "12"], duration=8)
        start = c.served()
        deploytest.wait_for(lambda: c.served() > start + 500, 30, "the load under way")  # Then r1 dies mid-run.
        c.replicas[1].proc.kill()
        c.replicas[1].wait(timeout=10)
        deploytest.wait_for(lambda: c.state(1) == "DOWN", 10, "HAProxy to see r1 DOWN")
        result = finish(load, out)
        REPORT["sigkill"] = {"requests_ok": result["requests_ok"], "requests_failed": result["requests_failed"],
                             "errors": result["errors"]}
        self.assertGreater(result["requests_ok"], 0, result)
        self.assertLessEqual(result["requests_failed"], MAXCONN, f"{result}\n{self.logs()}")
        # Each failure was reported (HAProxy's 502 for a replica that died
        # mid-request); none hung until the load generator gave up on it.
        for kind in result["errors"]:
            self.assertNotIn(kind, ("no_answer_by_drain_deadline", "not_sent_by_drain_deadline"), result)

    def test_throughput_of_three_replicas_against_one(self):
        c = self.cluster
        results = {}
        for replicas in (1, 3):
            for i in range(1, 3):
                c.admin(f"{'enable' if replicas == 3 else 'disable'} server ortserve/r{i}")
            deploytest.wait_for(lambda: all((c.state(i) == "UP") == (i < replicas) for i in range(3)), 30,
                                f"{replicas} replica(s) in service")
            out = os.path.join(self.tmp, f"throughput{replicas}.json")
            results[replicas] = finish(loadgen(c, out, ["--mode", "closed", "-c", str(4 * replicas)], duration=5),
                                       out)
            self.assertEqual(results[replicas]["requests_failed"], 0, results[replicas])
        REPORT["throughput"] = {
            "cores": os.cpu_count(),
            "one_replica_rps": round(results[1]["throughput_rps"]),
            "three_replicas_rps": round(results[3]["throughput_rps"]),
            "one_replica_p99_ms": results[1]["latency_us"]["p99"] / 1000,
            "three_replicas_p99_ms": results[3]["latency_us"]["p99"] / 1000,
        }
        self.assertGreater(results[1]["throughput_rps"], 0)
        self.assertGreater(results[3]["throughput_rps"], 0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--loadgen", required=True)
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--report", help="write what was measured here as JSON")
    ARGS, rest = parser.parse_known_args()
    program = unittest.main(argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
    print(json.dumps(REPORT, indent=2))
    if ARGS.report:
        with open(ARGS.report, "w") as f:
            json.dump(REPORT, f, indent=2)
    sys.exit(0 if program.result.wasSuccessful() else 1)
