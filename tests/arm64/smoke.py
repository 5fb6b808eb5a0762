#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Server smoke test of the linux/arm64 build under qemu-user (docs/arm64.md).

Starts the cross-built ortserve (an AArch64 ELF, checked) under
qemu-aarch64-static with the demo model repository on free loopback ports, and
checks that it answers correctly:
  1. KServe v2 REST: every demo model's test vectors, as JSON and with the
     binary tensor extension, against the outputs numpy computes from the
     same weights (scripts/make_demo_models.py --check-server);
  2. KServe v2 gRPC: the cross-built ortserve-cli (also under qemu) runs
     string_length through ModelInfer;
  3. SAE: all of data/sae/probes.jsonl through POST /api/v1/sae/analyze; the
     verdicts must be consistent with their probabilities and reproduce the
     probe confusion matrix of models/sae_classifier/metrics.json (the amd64
     numbers) within --max-flips probes per cell;
  4. SIGTERM stops the server with status 0.
Correctness only: times under emulation say nothing about arm64 speed.

  tests/arm64/smoke.py [--build build-arm64] [--sysroot .deps/sysroot-arm64]
  tests/arm64/smoke.py --prefix DIR      the same for an unpacked release tarball
                                         (DIR/bin, DIR/share/ortserve/models)
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(msg):
    print(f"[arm64 smoke] {msg}", flush=True)


def elf_machine(path):
    out = subprocess.run(["readelf", "-h", path], capture_output=True, text=True, check=True,
                         env=dict(os.environ, LC_ALL="C")).stdout
    m = re.search(r"^\s*Machine:\s*(.+)$", out, flags=re.M)
    return m.group(1).strip() if m else ""


def http(method, url, body=None, timeout=120):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Server:
    def __init__(self, qemu, binary, models, log_path, start_timeout):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        args = qemu + [binary, "--model-repository", models,
                       "--http-address", "127.0.0.1", "--http-port", "0",
                       "--grpc-address", "127.0.0.1", "--grpc-port", "0", "--metrics-port", "-1",
                       "--console=false"]
        log("starting: " + " ".join(args))
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.http_port = self.grpc_port = None
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            text = open(log_path, "rb").read()
            h = re.search(rb"HTTP listening on [^ \":]*:(\d+)", text)
            g = re.search(rb"gRPC listening on [^ \":]*:(\d+)", text)
            if h and g:
                self.http_port, self.grpc_port = int(h.group(1)), int(g.group(1))
                break
            time.sleep(0.2)
        if self.http_port is None:
            self.fail("did not start")
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                status, _ = http("GET", f"{self.url}/v2/health/ready", timeout=10)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        self.fail("did not become ready")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def fail(self, what):
        self.stop()
        sys.exit(f"[arm64 smoke] ortserve {what}:\n" + open(self.log_path, errors="replace").read()[-4000:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def check_kserve_rest(server):
    r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "make_demo_models.py"),
                        "--check-server", server.url], capture_output=True, text=True)
    lines = r.stdout.strip().splitlines()
    ok = sum(1 for line in lines if line.startswith("ok "))
    for line in lines:
        if line.startswith("FAIL"):
            log(line)
    if r.returncode != 0 or ok == 0:
        return [f"KServe v2 REST: {lines[-1] if lines else r.stderr.strip()}"]
    log(f"KServe v2 REST: {ok} model/encoding checks ok (scripts/make_demo_models.py --check-server)")
    return []


def check_kserve_grpc(server, qemu, cli):
    args = qemu + [cli, "--url", f"127.0.0.1:{server.grpc_port}", "--protocol", "grpc", "--format", "json",
                   "infer", "string_length", "--input", 'text=3:BYTES:["Yes","no","maybe"]']
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        return [f"KServe v2 gRPC: ortserve-cli exited {r.returncode}: {r.stderr.strip()[-500:]}"]
    outs = {o["name"]: o for o in json.loads(r.stdout)["outputs"]}
    want = {"upper": ["YES", "NO", "MAYBE"], "answer_id": [1, 0, 2], "is_yes": [True, False, False]}
    got = {name: outs.get(name, {}).get("data") for name in want}
    if got != want:
        return [f"KServe v2 gRPC: string_length answered {got}, want {want}"]
    log("KServe v2 gRPC: string_length through ortserve-cli (arm64) ok")
    return []


def check_sae(server, max_flips):
    with open(os.path.join(ROOT, "models", "sae_classifier", "metrics.json")) as f:
        want = json.load(f)["probes"]["confusion"]
    probes = []
    with open(os.path.join(ROOT, "data", "sae", "probes.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                probes.append(json.loads(line))
    got = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    errors = []
    for i, probe in enumerate(probes):
        status, body = http("POST", f"{server.url}/api/v1/sae/analyze",
                            {"patientId": f"arm64-{i}", "reportText": probe["text"]})
        if status != 200:
            errors.append(f"SAE: HTTP {status} for probe {i}: {body[:200]!r}")
            continue
        doc = json.loads(body)
        p, verdict = doc["seriousProbability"], doc["isSAE"]
        if not (0.0 <= p <= 1.0) or verdict != (p >= doc["threshold"]) or doc["patientId"] != f"arm64-{i}":
            errors.append(f"SAE: inconsistent answer for probe {i}: {doc}")
        serious = probe["label"] == "serious"
        got[("t" if verdict == serious else "f") + ("p" if verdict else "n")] += 1
    flips = {k: abs(got[k] - want[k]) for k in got}
    log(f"SAE: {len(probes)} probes, confusion {got} (amd64, metrics.json: {want})")
    if max(flips.values()) > max_flips:
        errors.append(f"SAE: confusion {got} differs from the amd64 one {want} by more than {max_flips}")
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-arm64"))
    ap.add_argument("--sysroot", default=os.path.join(ROOT, ".deps", "sysroot-arm64"))
    ap.add_argument("--prefix", help="an unpacked release tarball to test instead of --build")
    ap.add_argument("--qemu", default="qemu-aarch64-static")
    ap.add_argument("--start-timeout", type=float, default=300)
    ap.add_argument("--max-flips", type=int, default=1,
                    help="probes per confusion cell the arm64 verdicts may differ from amd64's (rounding)")
    args = ap.parse_args()
    if args.prefix:
        binary = os.path.join(args.prefix, "bin", "ortserve")
        cli = os.path.join(args.prefix, "bin", "ortserve-cli")
        models = os.path.join(args.prefix, "share", "ortserve", "models")
    else:
        binary = os.path.join(args.build, "src", "server", "ortserve")
        cli = os.path.join(args.build, "tools", "cli", "ortserve-cli")
        models = os.path.join(ROOT, "models")
    for path in (binary, cli):
        if elf_machine(path) != "AArch64":
            sys.exit(f"[arm64 smoke] {path} is not an AArch64 binary ({elf_machine(path)!r})")
    qemu = [args.qemu, "-L", args.sysroot]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ortserve-arm64-") as tmp:
        server = Server(qemu, binary, models, os.path.join(tmp, "ortserve.log"), args.start_timeout)
        log(f"ready after {time.monotonic() - started:.0f} s (HTTP {server.http_port}, gRPC {server.grpc_port})")
        errors = check_kserve_rest(server)
        errors += check_kserve_grpc(server, qemu, cli)
        errors += check_sae(server, args.max_flips)
        rc = server.stop()
        if rc != 0:
            errors.append(f"ortserve exited {rc} on SIGTERM:\n" + open(server.log_path, errors="replace").read()[-2000:])
    for e in errors:
        log("FAIL " + e)
    log(f"{'FAILED' if errors else 'passed'} in {time.monotonic() - started:.0f} s")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
