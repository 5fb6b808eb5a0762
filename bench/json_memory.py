#!/usr/bin/python3
"""Peak resident memory of one large KServe v2 JSON request (issue #14.4).

Starts each given ortserve binary on an identity model (FP32 [1, -1]), sends
one JSON body of about --mb megabytes of FP32 numbers (--number, default
"1.2345678", repeated), and
reports how far the server's resident memory rose above where it stood just
before the request (VmHWM after the request, reset through
/proc/<pid>/clear_refs, minus VmRSS before), as a multiple of the body size.
The body itself is part of that cost: the server has to hold it.

  bench/json_memory.py [--mb 60] [--output binary|json] [--number 0] [--repeat 3] BIN [BIN ...]

Several binaries (an A/B) are measured in turn, interleaved when --repeat > 1.
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_repo(root):
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    os.makedirs(os.path.join(root, "ident", "1"))
    onnx.save(model, os.path.join(root, "ident", "1", "model.onnx"))
    with open(os.path.join(root, "ident", "config.pbtxt"), "w") as f:
        f.write("max_batch_size: 0\n")


def proc_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def post(port, body, timeout=600):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", "/v2/models/ident/infer", body=body,
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def body_of(values, output, number="1.2345678"):
    parts = ['{"inputs":[{"name":"x","shape":[1,%d],"datatype":"FP32","data":[' % values]
    parts.append(",".join([number] * values))
    parts.append(']}]')
    if output == "binary":
        parts.append(',"outputs":[{"name":"y","parameters":{"binary_data":true}}]')
    parts.append("}")
    return "".join(parts).encode()


def measure(binary, repo, body, small):
    port = free_port()
    server = subprocess.Popen(
        [binary, "--model-repository", repo, "--http-port", str(port), "--grpc-port", "-1",
         "--metrics-port", "-1", "--http-max-input-size", str(len(body) + 4096)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                if post(port, small, timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"{binary} did not answer")
            time.sleep(0.2)
        for _ in range(3):
            post(port, small)
        time.sleep(0.5)
        before = proc_kib(server.pid, "VmRSS")
        with open(f"/proc/{server.pid}/clear_refs", "w") as f:
            f.write("5")  # Resets VmHWM to the current resident size.
        start = time.perf_counter()
        status, _ = post(port, body)
        seconds = time.perf_counter() - start
        if status != 200:
            raise RuntimeError(f"{binary}: HTTP {status}")
        peak = proc_kib(server.pid, "VmHWM")
        return before, peak, seconds
    finally:
        server.terminate()
        server.wait(30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=60)
    parser.add_argument("--output", choices=["binary", "json"], default="binary")
    parser.add_argument("--number", default="1.2345678",
                        help="the number repeated in the data array (a short one, such as 0, is the worst case)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json-out")
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    values = int(args.mb * 1e6 / (len(args.number) + 1))
    body = body_of(values, args.output, args.number)
    small = body_of(4, args.output)
    results = {b: [] for b in args.binaries}
    with tempfile.TemporaryDirectory() as repo:
        make_repo(repo)
        for r in range(args.repeat):
            for b in args.binaries:
                before, peak, seconds = measure(b, repo, body, small)
                cost = (peak - before) * 1024 / len(body)
                results[b].append({"rss_before_kib": before, "peak_kib": peak,
                                   "seconds": seconds, "cost_x_body": cost})
                print(f"{b}: body {len(body) / 1e6:.1f} MB, RSS {before} KiB -> peak {peak} KiB, "
                      f"+{(peak - before) / 1024:.0f} MiB = {cost:.2f}x the body, {seconds:.2f} s",
                      flush=True)
    for b, runs in results.items():
        costs = sorted(r["cost_x_body"] for r in runs)
        print(f"{b}: median {costs[len(costs) // 2]:.2f}x the body over {len(costs)} run(s)")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"body_bytes": len(body), "output": args.output, "results": results}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
