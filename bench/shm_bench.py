#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Large tensors through system shared memory vs binary HTTP vs gRPC.

Starts `ortserve` on a generated model `image_identity` (FP32 [N,3,224,224]
in, the same out: 602,112 bytes each way per image) and sends the same image
four ways, one after the other in one run:

  http_binary  REST with the binary tensor extension (input and output bytes
               in the HTTP bodies)
  grpc         gRPC ModelInfer (raw_input_contents / raw_output_contents)
  http_shm     REST; input and output in a registered POSIX shared-memory
               region per client (docs/triton.md "System shared memory")
  grpc_shm     gRPC; the same regions

Each client writes a fresh input for every request (into its region for the
shm modes: that copy is the client's cost of shared memory) and reads the
output back (from its region for the shm modes). Every mode checks its first
answer equals its input. For each concurrency level (closed loop, one
connection and one region pair per client thread) it reports throughput and
latency percentiles, into RUN/results.md and RUN/results.json.

  bench/shm_bench.py --server build/src/server/ortserve --requests 300 --concurrency 1,4

Needs /usr/bin/python3 with numpy, grpcio and onnx, and Debian's protoc and
grpc_python_plugin (the gRPC stubs are generated from proto/ at start).
The client is Python: its own cost (a few hundred µs per request) is in every
mode alike; compare modes within one run.
"""
import argparse
import http.client
import importlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import shared_memory

import grpc
import numpy as np

SHAPE = (1, 3, 224, 224)
NBYTES = int(np.prod(SHAPE)) * 4
MODEL = "image_identity"
SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_model(root):
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 224, 224])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3, 224, 224])
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    os.makedirs(os.path.join(root, MODEL, "1"))
    onnx.save(model, os.path.join(root, MODEL, "1", "model.onnx"))
    with open(os.path.join(root, MODEL, "config.pbtxt"), "w") as f:
        f.write('name: "%s"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n' % MODEL)


def stubs(out_dir):
    proto = os.path.join(SOURCE, "proto")
    subprocess.run(["protoc", f"-I{proto}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
                    "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
                    os.path.join(proto, "model_config.proto"), os.path.join(proto, "grpc_service.proto")],
                   check=True)
    sys.path.insert(0, out_dir)
    return importlib.import_module("grpc_service_pb2"), importlib.import_module("grpc_service_pb2_grpc")


class Client:
    """One closed-loop client: its HTTP connection, gRPC stub and two regions."""

    def __init__(self, index, http_port, grpc_port, pb, pb_grpc, tag):
        self.pb = pb
        self.http = http.client.HTTPConnection("127.0.0.1", http_port)
        self.stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(
            f"127.0.0.1:{grpc_port}", options=[("grpc.max_receive_message_length", 64 << 20),
                                               ("grpc.max_send_message_length", 64 << 20)]))
        self.shm = shared_memory.SharedMemory(name=f"ortserve_shm_bench_{tag}_{index}", create=True,
                                              size=2 * NBYTES)
        self.in_region, self.out_region = f"in{index}", f"out{index}"
        for region, offset in ((self.in_region, 0), (self.out_region, NBYTES)):
            status, body = self.post(f"/v2/systemsharedmemory/region/{region}/register",
                                     json.dumps({"key": "/" + self.shm.name, "offset": offset,
                                                 "byte_size": NBYTES}).encode())
            if status != 200:
                raise RuntimeError(f"register {region}: {status} {body[:200]!r}")
        self.in_view = np.ndarray(SHAPE, np.float32, buffer=self.shm.buf, offset=0)
        self.out_view = np.ndarray(SHAPE, np.float32, buffer=self.shm.buf, offset=NBYTES)
        header = {"inputs": [{"name": "x", "shape": list(SHAPE), "datatype": "FP32",
                              "parameters": {"binary_data_size": NBYTES}}],
                  "outputs": [{"name": "y", "parameters": {"binary_data": True}}]}
        self.binary_header = json.dumps(header).encode()
        shm_request = {"inputs": [{"name": "x", "shape": list(SHAPE), "datatype": "FP32",
                                   "parameters": {"shared_memory_region": self.in_region,
                                                  "shared_memory_byte_size": NBYTES}}],
                       "outputs": [{"name": "y", "parameters": {"shared_memory_region": self.out_region,
                                                                "shared_memory_byte_size": NBYTES}}]}
        self.shm_body = json.dumps(shm_request).encode()

    def post(self, path, body, headers=None):
        self.http.request("POST", path, body=body, headers=headers or {})
        response = self.http.getresponse()
        return response.status, response.read()

    def grpc_request(self, image, shm):
        pb = self.pb
        request = pb.ModelInferRequest(model_name=MODEL)
        tensor = request.inputs.add(name="x", datatype="FP32", shape=list(SHAPE))
        output = request.outputs.add(name="y")
        if shm:
            tensor.parameters["shared_memory_region"].string_param = self.in_region
            tensor.parameters["shared_memory_byte_size"].int64_param = NBYTES
            output.parameters["shared_memory_region"].string_param = self.out_region
            output.parameters["shared_memory_byte_size"].int64_param = NBYTES
        else:
            request.raw_input_contents.append(image.tobytes())
        return request

    def infer(self, mode, image):
        """One request; returns the output as an array (a copy)."""
        if mode == "http_binary":
            status, body = self.post(f"/v2/models/{MODEL}/infer", self.binary_header + image.tobytes(),
                                     {"Inference-Header-Content-Length": str(len(self.binary_header)),
                                      "Content-Type": "application/octet-stream"})
            if status != 200:
                raise RuntimeError(f"{mode}: {status} {body[:200]!r}")
            return np.frombuffer(body[len(body) - NBYTES:], np.float32).reshape(SHAPE).copy()
        if mode == "http_shm":
            self.in_view[...] = image
            status, body = self.post(f"/v2/models/{MODEL}/infer", self.shm_body,
                                     {"Content-Type": "application/json"})
            if status != 200:
                raise RuntimeError(f"{mode}: {status} {body[:200]!r}")
            return self.out_view.copy()
        if mode == "grpc":
            response = self.stub.ModelInfer(self.grpc_request(image, False))
            return np.frombuffer(response.raw_output_contents[0], np.float32).reshape(SHAPE).copy()
        if mode == "grpc_shm":
            self.in_view[...] = image
            self.stub.ModelInfer(self.grpc_request(image, True))
            return self.out_view.copy()
        raise ValueError(mode)

    def close(self):
        for region in (self.in_region, self.out_region):
            self.post(f"/v2/systemsharedmemory/region/{region}/unregister", b"")
        self.http.close()
        del self.in_view, self.out_view
        self.shm.close()
        self.shm.unlink()


def run_mode(clients, mode, requests, warmup):
    rng = np.random.default_rng(0)
    images = [rng.random(SHAPE, dtype=np.float32) for _ in range(4)]
    for client in clients:  # Correctness, then warm-up.
        out = client.infer(mode, images[0])
        if not np.array_equal(out, images[0]):
            raise RuntimeError(f"{mode}: the answer differs from the input")
        for i in range(warmup):
            client.infer(mode, images[i % 4])
    latencies = [[] for _ in clients]
    per_client = requests // len(clients)
    errors = []

    def loop(k):
        try:
            for i in range(per_client):
                start = time.perf_counter()
                clients[k].infer(mode, images[(i + k) % 4])
                latencies[k].append(time.perf_counter() - start)
        except Exception as e:  # Reported after the run.
            errors.append(f"client {k}: {e}")

    threads = [threading.Thread(target=loop, args=(k,)) for k in range(len(clients))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError("; ".join(errors))
    all_ms = np.array(sorted(x for l in latencies for x in l)) * 1000
    n = len(all_ms)
    return {"mode": mode, "concurrency": len(clients), "requests": n, "seconds": round(elapsed, 3),
            "rps": round(n / elapsed, 1), "mb_per_s": round(2 * NBYTES * n / elapsed / 1e6, 1),
            "p50_ms": round(float(np.percentile(all_ms, 50)), 3), "p90_ms": round(float(np.percentile(all_ms, 90)), 3),
            "p99_ms": round(float(np.percentile(all_ms, 99)), 3), "mean_ms": round(float(all_ms.mean()), 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default=os.path.join(SOURCE, "build/src/server/ortserve"))
    parser.add_argument("--requests", type=int, default=300, help="measured requests per mode and concurrency")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up requests per client and mode")
    parser.add_argument("--concurrency", default="1,4", help="comma-separated client counts")
    parser.add_argument("--modes", default="http_binary,grpc,http_shm,grpc_shm")
    parser.add_argument("--out", default=None, help="run folder (default bench/results/shm-<time>)")
    args = parser.parse_args()
    run = args.out or os.path.join(SOURCE, "bench/results", time.strftime("shm-%Y%m%d-%H%M%S"))
    os.makedirs(run, exist_ok=True)
    work = tempfile.mkdtemp(prefix="shm_bench_")
    write_model(os.path.join(work, "models"))
    pb, pb_grpc = stubs(work)
    http_port, grpc_port = free_port(), free_port()
    log = open(os.path.join(run, "server.log"), "wb")
    server = subprocess.Popen([args.server, "--model-repository", os.path.join(work, "models"),
                               "--http-address", "127.0.0.1", "--http-port", str(http_port),
                               "--grpc-address", "127.0.0.1", "--grpc-port", str(grpc_port),
                               "--metrics-port", "-1", "--http-max-input-size", str(64 << 20),
                               "--grpc-max-message-size", str(64 << 20)], stdout=log, stderr=subprocess.STDOUT)
    rows = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", http_port, timeout=1)
                probe.request("GET", f"/v2/models/{MODEL}/ready")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"the server did not become ready; see {run}/server.log")
            time.sleep(0.2)
        tag = str(os.getpid())
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            clients = [Client(i, http_port, grpc_port, pb, pb_grpc, tag) for i in range(concurrency)]
            try:
                for mode in args.modes.split(","):
                    row = run_mode(clients, mode, args.requests, args.warmup)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
            finally:
                for client in clients:
                    client.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    commit = subprocess.run(["git", "-C", SOURCE, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    machine = {"host": platform.node(), "cpus": os.cpu_count(), "loadavg": os.getloadavg(), "commit": commit,
               "tensor_bytes": NBYTES, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    with open(os.path.join(run, "results.json"), "w") as f:
        json.dump({"machine": machine, "rows": rows}, f, indent=1)
    lines = [f"Tensor: FP32 {list(SHAPE)} ({NBYTES} bytes) in and out per request; commit {commit}; "
             f"{os.cpu_count()} CPUs, load average {' '.join('%.2f' % x for x in machine['loadavg'])}.", "",
             "| mode | clients | requests | req/s | MB/s (in+out) | p50 ms | p90 ms | p99 ms | mean ms |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['concurrency']} | {r['requests']} | {r['rps']} | {r['mb_per_s']} | "
                     f"{r['p50_ms']} | {r['p90_ms']} | {r['p99_ms']} | {r['mean_ms']} |")
    with open(os.path.join(run, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"run folder: {run}")


if __name__ == "__main__":
    main()
