#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Runs ONNX's backend node tests through a real ortserve process.

Every test in the node-test data (Debian's libonnx-testdata: data/node/test_*/
model.onnx plus test_data_set_*/input_*.pb and output_*.pb) becomes one model
in a temporary model repository with no config.pbtxt, so the server must
auto-complete each config from the ONNX graph (max_batch_size 0: shapes as in
the model). The script starts the server on that repository, asks
POST /v2/repository/index which models loaded, then sends every data set of
every READY model through POST /v2/models/<m>/infer with the binary tensor
extension (JSON header + raw little-endian tensors, outputs requested binary)
and compares the answers with the expected outputs the way onnx.backend.test
does (rtol 1e-3, atol 1e-7; strings, bools and integers exact; NaN equals NaN;
datatype and shape must match exactly).

Skipped (with the reason counted in the summary): tests whose inputs or outputs
are not plain tensors (sequences, optionals, maps), tensor types KServe cannot
carry, and models the server reports UNAVAILABLE (ONNX Runtime refused them).

Exit status: 0 when at least --min-pass tests passed and the server never died;
1 when fewer passed; 2 when the server process died (the run goes on in a fresh
server with the tests not yet run, so the summary is still complete).

Only the standard library (http.client) is used to talk to the server, plus
onnx and numpy to read the test data: run it with Debian's /usr/bin/python3.
"""

import argparse
import collections
import http.client
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

DEFAULT_TESTDATA = "/usr/share/libonnx-testdata/data/node"
RTOL = 1e-3   # onnx.backend.test's defaults for node tests.
ATOL = 1e-7

# TensorProto element type -> (KServe datatype, numpy dtype of the raw wire bytes).
# BF16 travels as its 16 raw bits; numpy has no bfloat16, so it is held as uint16.
KSERVE_TYPES = {
    TensorProto.FLOAT: ("FP32", np.float32),
    TensorProto.DOUBLE: ("FP64", np.float64),
    TensorProto.FLOAT16: ("FP16", np.float16),
    TensorProto.BFLOAT16: ("BF16", np.uint16),
    TensorProto.INT8: ("INT8", np.int8),
    TensorProto.INT16: ("INT16", np.int16),
    TensorProto.INT32: ("INT32", np.int32),
    TensorProto.INT64: ("INT64", np.int64),
    TensorProto.UINT8: ("UINT8", np.uint8),
    TensorProto.UINT16: ("UINT16", np.uint16),
    TensorProto.UINT32: ("UINT32", np.uint32),
    TensorProto.UINT64: ("UINT64", np.uint64),
    TensorProto.BOOL: ("BOOL", np.bool_),
    TensorProto.STRING: ("BYTES", object),
}
WIRE_DTYPE = {kserve: np_type for kserve, np_type in KSERVE_TYPES.values()}


# Tests whose expected outputs ONNX Runtime itself does not reproduce (ORT's own
# backend-test runner excludes them too), or whose test data contradicts the
# model. They still run; a mismatch is reported as "known difference" instead of
# a failure, and a pass is reported as such (then the entry can go).
KNOWN_DIFFERENCES = {}
for _names, _why in [
    (["test_bernoulli", "test_bernoulli_double", "test_bernoulli_double_expanded",
      "test_bernoulli_expanded", "test_bernoulli_seed", "test_bernoulli_seed_expanded",
      "test_training_dropout", "test_training_dropout_default",
      "test_training_dropout_default_mask", "test_training_dropout_mask"],
     "random op: ORT's generator differs from numpy's"),
    (["test_cast_FLOAT_to_BFLOAT16"],
     "ORT rounds FLOAT to BFLOAT16 differently from the reference"),
    (["test_cast_FLOAT_to_STRING", "test_castlike_FLOAT_to_STRING",
      "test_castlike_FLOAT_to_STRING_expanded"],
     "ORT prints floats with more digits than the reference"),
    (["test_castlike_BFLOAT16_to_FLOAT", "test_castlike_BFLOAT16_to_FLOAT_expanded",
      "test_castlike_FLOAT_to_BFLOAT16", "test_castlike_FLOAT_to_BFLOAT16_expanded"],
     "test data feeds 'like' as shape [1], the model declares [3,4]"),
    (["test_dft", "test_dft_axis", "test_dft_inverse", "test_stft", "test_stft_with_window"],
     "ORT's FFT leaves rounding noise where the reference has exact zeros (atol 1e-7)"),
    (["test_resize_downsample_scales_cubic_align_corners",
      "test_resize_downsample_scales_linear_align_corners"],
     "ORT's Resize align_corners downsampling differs from the reference"),
    (["test_maxunpool_export_with_output_shape"],
     "ORT's MaxUnpool with output_shape differs from the reference"),
]:
    for _name in _names:
        KNOWN_DIFFERENCES[_name] = _why


class ServerDied(Exception):
    """The server process exited (or stopped answering) while a test ran."""


# ---------------------------------------------------------------------------
# Test discovery
# ---------------------------------------------------------------------------

class NodeTest:
    def __init__(self, name, path):
        self.name = name
        self.path = path
        self.inputs = []    # [(name, elem_type)] graph inputs that are fed (not initializers)
        self.outputs = []   # [(name, elem_type)]
        self.data_sets = [] # [folder]
        self.skip = None    # reason, when the test cannot be sent at all


def elem_type_name(t):
    return TensorProto.DataType.Name(t) if t in TensorProto.DataType.values() else str(t)


def describe_value_info(vi):
    kind = vi.type.WhichOneof("value")
    if kind != "tensor_type":
        return None, f"{kind.replace('_type', '')} input/output (not a plain tensor)"
    t = vi.type.tensor_type.elem_type
    if t not in KSERVE_TYPES:
        return None, f"tensor type {elem_type_name(t)} has no KServe datatype"
    return t, None


def discover(testdata, pattern):
    tests = []
    for name in sorted(os.listdir(testdata)):
        if not name.startswith("test_") or (pattern and not re.search(pattern, name)):
            continue
        path = os.path.join(testdata, name)
        if not os.path.isfile(os.path.join(path, "model.onnx")):
            continue
        test = NodeTest(name, path)
        tests.append(test)
        try:
            model = onnx.load(os.path.join(path, "model.onnx"))
        except Exception as e:  # a broken file is a skip, not a crash of this script
            test.skip = f"onnx cannot parse model.onnx ({type(e).__name__})"
            continue
        initializers = {i.name for i in model.graph.initializer}
        for vi, dest in [(v, test.inputs) for v in model.graph.input
                         if v.name not in initializers] + [(v, test.outputs) for v in model.graph.output]:
            t, why = describe_value_info(vi)
            if why:
                test.skip = test.skip or why
            dest.append((vi.name, t))
        test.data_sets = sorted(
            os.path.join(path, d) for d in os.listdir(path)
            if d.startswith("test_data_set_") and os.path.isdir(os.path.join(path, d)))
        if not test.data_sets and not test.skip:
            test.skip = "no test_data_set folder"
    return tests


def read_tensor(path):
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t


def tensor_to_wire(t, elem_type):
    """A TensorProto as the numpy array that carries the graph's declared type on the wire."""
    arr = numpy_helper.to_array(t)
    if elem_type == TensorProto.BFLOAT16:
        if arr.dtype == np.uint16:      # older test data stores BF16 bits as UINT16
            return arr
        if arr.dtype == np.float32:     # newer onnx converts BF16 to float32
            return (arr.view(np.uint32) >> 16).astype(np.uint16)
        raise ValueError(f"cannot read BF16 data held as {arr.dtype}")
    if elem_type == TensorProto.STRING:
        return np.array([x if isinstance(x, bytes) else str(x).encode() for x in arr.reshape(-1)],
                        dtype=object).reshape(arr.shape)
    want = KSERVE_TYPES[elem_type][1]
    if arr.dtype != want:
        raise ValueError(f"data file holds {arr.dtype}, graph declares {elem_type_name(elem_type)}")
    return arr


def load_data_set(test, folder):
    """Returns ([(name, datatype, array)] inputs, [(name, datatype, array)] expected outputs)."""
    def load(prefix, decl):
        files = sorted((f for f in os.listdir(folder) if f.startswith(prefix) and f.endswith(".pb")),
                       key=lambda f: int(f[len(prefix):-3]))
        by_name = dict(decl)
        out = []
        for i, f in enumerate(files):
            t = read_tensor(os.path.join(folder, f))
            name = t.name if t.name in by_name else (decl[i][0] if i < len(decl) else None)
            if name is None:
                raise ValueError(f"{f}: more data files than graph {prefix.rstrip('_')}s")
            elem_type = by_name[name]
            out.append((name, KSERVE_TYPES[elem_type][0], tensor_to_wire(t, elem_type)))
        return out
    return load("input_", test.inputs), load("output_", test.outputs)


# ---------------------------------------------------------------------------
# Wire format (KServe v2 REST + binary tensor extension)
# ---------------------------------------------------------------------------

def to_raw(arr):
    if arr.dtype == object:
        return b"".join(struct.pack("<I", len(b)) + b for b in arr.reshape(-1))
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()


def from_raw(raw, datatype, shape):
    count = int(np.prod(shape)) if shape else 1
    if datatype == "BYTES":
        items, pos = [], 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise ValueError(f"BYTES output truncated at byte {pos} of {len(raw)}")
            (n,) = struct.unpack_from("<I", raw, pos)
            if pos + 4 + n > len(raw):
                raise ValueError(f"BYTES element length {n} at byte {pos} runs past {len(raw)}")
            items.append(bytes(raw[pos + 4:pos + 4 + n]))
            pos += 4 + n
        if len(items) != count:
            raise ValueError(f"BYTES output holds {len(items)} elements, shape {shape} needs {count}")
        return np.array(items, dtype=object).reshape(shape)
    dt = np.dtype(WIRE_DTYPE[datatype]).newbyteorder("<")
    if len(raw) != count * dt.itemsize:
        raise ValueError(f"{datatype} output has {len(raw)} bytes, shape {shape} needs "
                         f"{count * dt.itemsize}")
    return np.frombuffer(raw, dtype=dt).reshape(shape)


def from_json(data, datatype, shape):
    if datatype == "BYTES":
        flat = np.array(data, dtype=object).reshape(-1)
        return np.array([x.encode() if isinstance(x, str) else x for x in flat],
                        dtype=object).reshape(shape)
    return np.array(data, dtype=WIRE_DTYPE[datatype]).reshape(shape)


def json_values(datatype, arr):
    """Flat JSON-ready list; non-finite floats as the strings KServe servers accept."""
    flat = arr.reshape(-1)
    if datatype == "BYTES":
        return [b.decode("utf-8") for b in flat]
    if datatype in ("FP32", "FP64"):
        return [v if np.isfinite(v) else ("NaN" if np.isnan(v) else
                                          ("Infinity" if v > 0 else "-Infinity"))
                for v in flat.tolist()]
    return flat.tolist()


def json_carries(datatype, arr):
    """Whether a tensor can travel as JSON data (FP16/BF16 and non-UTF-8 bytes cannot)."""
    if datatype in ("FP16", "BF16"):
        return False
    if datatype == "BYTES":
        try:
            for b in arr.reshape(-1):
                b.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def encode_request(inputs, outputs, encoding):
    """Returns (json header bytes, whole body).

    encoding "binary": every input binary, every output requested binary.
    encoding "json": inputs as JSON `data` where JSON can carry them (binary
    otherwise, mixed in one request as the extension allows), outputs as JSON
    except BF16, which is requested binary by name.
    """
    header = {"inputs": []}
    if encoding == "binary":
        header["parameters"] = {"binary_data_output": True}
    else:
        header["outputs"] = [{"name": name, "parameters": {"binary_data": datatype == "BF16"}}
                             for name, datatype, _ in outputs]
    blobs = []
    for name, datatype, arr in inputs:
        tensor = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        if encoding == "json" and json_carries(datatype, arr):
            tensor["data"] = json_values(datatype, arr)
        else:
            raw = to_raw(arr)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        header["inputs"].append(tensor)
    js = json.dumps(header, allow_nan=False).encode()
    return js, js + b"".join(blobs)


def decode_response(headers, body):
    length = headers.get("inference-header-content-length")
    hlen = int(length) if length is not None else len(body)
    resp = json.loads(body[:hlen])
    pos, outputs = hlen, {}
    for o in resp.get("outputs", []):
        size = (o.get("parameters") or {}).get("binary_data_size")
        shape = list(o["shape"])
        if size is not None:
            arr = from_raw(body[pos:pos + size], o["datatype"], shape)
            pos += size
        else:
            arr = from_json(o.get("data", []), o["datatype"], shape)
        outputs[o["name"]] = (o["datatype"], arr)
    if pos != len(body):
        raise ValueError(f"response body has {len(body) - pos} bytes after the last output")
    return outputs


# ---------------------------------------------------------------------------
# Comparison (onnx.backend.test semantics)
# ---------------------------------------------------------------------------

def as_float(datatype, arr):
    if datatype == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr


def first_mismatch(datatype, got, want):
    """None when equal within tolerance, else a one-line description."""
    if datatype == "BYTES" or datatype == "BOOL" or datatype.startswith(("INT", "UINT")):
        bad = np.flatnonzero(got.reshape(-1) != want.reshape(-1))
    else:
        g = as_float(datatype, got).astype(np.float64).reshape(-1)
        w = as_float(datatype, want).astype(np.float64).reshape(-1)
        both_nan = np.isnan(g) & np.isnan(w)
        with np.errstate(invalid="ignore"):
            # Infinities must match exactly (inf - -inf would pass the tolerance test).
            close = np.where(np.isfinite(w), np.abs(g - w) <= ATOL + RTOL * np.abs(w), g == w)
        bad = np.flatnonzero(~(close | both_nan))
    if bad.size == 0:
        return None
    i = int(bad[0])
    g, w = got.reshape(-1)[i], want.reshape(-1)[i]
    if datatype == "BF16":
        g, w = as_float(datatype, np.array([g]))[0], as_float(datatype, np.array([w]))[0]
    return f"{bad.size} of {want.size} elements differ; first at flat index {i}: got {g!r}, want {w!r}"


def check_outputs(got, expected):
    for name, datatype, want in expected:
        if name not in got:
            return f"output '{name}' missing (got {sorted(got)})"
        g_type, g = got[name]
        if g_type != datatype:
            return f"output '{name}' datatype {g_type}, want {datatype}"
        if list(g.shape) != list(want.shape):
            return f"output '{name}' shape {list(g.shape)}, want {list(want.shape)}"
        why = first_mismatch(datatype, g, want)
        if why:
            return f"output '{name}': {why}"
    return None


# ---------------------------------------------------------------------------
# Server process
# ---------------------------------------------------------------------------

class Server:
    def __init__(self, binary, repository, startup_timeout):
        help_text = subprocess.run([binary, "--help"], capture_output=True, text=True,
                                   timeout=30).stdout
        cmd = [binary, "--model-repository", repository, "--http-port", "0"]
        if "--http-address" in help_text:
            cmd += ["--http-address", "127.0.0.1"]
        # Optional listeners would otherwise take fixed ports (and clash between runs).
        for flag in ("--grpc-port", "--metrics-port"):
            if flag in help_text:
                cmd += [flag, "-1"]
        self.cmd = cmd
        # The log (and the "HTTP listening on" line) may go to either stream.
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.log = collections.deque(maxlen=40)
        self.port = None
        found = threading.Event()

        def drain():
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip()
                self.log.append(line)
                m = re.search(r"HTTP listening on ([^\s:\"]+):(\d+)(?!\d)", line)
                if m and self.port is None:
                    self.port = int(m.group(2))
                    found.set()
            found.set()  # stderr closed: the process exited

        self.reader = threading.Thread(target=drain, daemon=True)
        self.reader.start()
        if not found.wait(startup_timeout) or self.port is None:
            self.stop()
            raise ServerDied("server did not report its HTTP port within "
                             f"{startup_timeout}s; last log lines:\n  " + "\n  ".join(self.log))
        self.conn = None

    def alive(self):
        return self.proc.poll() is None

    def request(self, method, path, body=None, headers=None, timeout=60):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                data = resp.read()
                hdrs = {k.lower(): v for k, v in resp.getheaders()}
                if hdrs.get("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, hdrs, data
            except (ConnectionError, http.client.HTTPException, OSError) as e:
                self.conn.close()
                self.conn = None
                if not self.alive():
                    raise ServerDied(f"server exited with status {self.proc.returncode} during "
                                     f"{method} {path}") from e
                if attempt == 1:  # alive but the connection failed twice: report it as such
                    raise
        raise AssertionError("unreachable")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------

def normalize_reason(reason):
    """Groups load failures: drops model names, paths, quoted names and numbers."""
    r = reason.splitlines()[0] if reason else "no reason given"
    r = re.sub(r"/\S+", "<path>", r)
    r = re.sub(r"test_\w+", "<test>", r)
    r = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", r)
    r = re.sub(r"\b\d+\b", "N", r)
    return r[:160]


class Results:
    def __init__(self):
        self.passed = []
        self.failed = []          # (name, detail)
        self.known = []           # (name, known reason, detail): a listed ORT difference
        self.unexpected_pass = [] # names in KNOWN_DIFFERENCES that passed
        self.skipped = collections.defaultdict(list)  # reason -> [names]
        self.crashes = []         # (name, detail)


def run_tests_in_server(args, tests, results):
    """Runs `tests` in one server; returns the tests not run because the server died."""
    repo = tempfile.mkdtemp(prefix="ortserve-node-tests-")
    try:
        for t in tests:
            os.makedirs(os.path.join(repo, t.name, "1"))
            # Copied, not linked: a link out of the repository fails the load.
            shutil.copyfile(os.path.join(t.path, "model.onnx"), os.path.join(repo, t.name, "1", "model.onnx"))
        started = time.monotonic()
        try:
            server = Server(args.server, repo, args.startup_timeout)
        except ServerDied as e:
            results.crashes.append(("<startup>", str(e)))
            results.failed.extend((t.name, "not run: the server failed to start") for t in tests)
            return []
        if args.verbose:
            print(f"server up on port {server.port} with {len(tests)} models in "
                  f"{time.monotonic() - started:.1f}s", file=sys.stderr)
        try:
            return run_against(server, args, tests, results)
        finally:
            server.stop()
    finally:
        shutil.rmtree(repo, ignore_errors=True)


def run_against(server, args, tests, results):
    status, _, body = server.request("GET", "/v2/health/live")
    if status != 200:
        results.crashes.append(("<live>", f"GET /v2/health/live answered {status}: {body[:200]!r}"))
        return []
    status, _, body = server.request("POST", "/v2/repository/index", body=b"{}",
                                     headers={"Content-Type": "application/json"})
    if status != 200:
        results.crashes.append(("<index>", f"POST /v2/repository/index answered {status}: "
                                           f"{body[:200]!r}"))
        return []
    if args.verbose:
        print(f"repository index answered in {len(body)} bytes", file=sys.stderr)
    index = collections.defaultdict(list)
    for entry in json.loads(body):
        index[entry.get("name")].append(entry)

    for n, test in enumerate(tests):
        entries = index.get(test.name, [])
        ready = [e for e in entries if e.get("state") == "READY"]
        if not ready:
            if entries:
                reason = "; ".join(e.get("reason", "") for e in entries if e.get("reason"))
                results.skipped["UNAVAILABLE: " + normalize_reason(reason)].append(test.name)
            else:
                results.failed.append((test.name, "model missing from /v2/repository/index"))
            continue
        try:
            detail = run_one(server, test, args.encoding)
        except ServerDied as e:
            results.crashes.append((test.name, f"{e}; last log lines:\n    " +
                                    "\n    ".join(server.log)))
            return tests[n + 1:]
        if detail is None:
            results.passed.append(test.name)
            if test.name in KNOWN_DIFFERENCES:
                results.unexpected_pass.append(test.name)
            if args.verbose:
                print(f"PASS {test.name}", file=sys.stderr)
        elif test.name in KNOWN_DIFFERENCES:
            results.known.append((test.name, KNOWN_DIFFERENCES[test.name], detail))
            if args.verbose:
                print(f"KNOWN {test.name}: {detail}", file=sys.stderr)
        else:
            results.failed.append((test.name, detail))
            if args.verbose:
                print(f"FAIL {test.name}: {detail}", file=sys.stderr)
    return []


def run_one(server, test, encoding):
    for folder in test.data_sets:
        where = os.path.basename(folder)
        try:
            inputs, expected = load_data_set(test, folder)
        except ValueError as e:
            return f"{where}: cannot read test data: {e}"
        js, body = encode_request(inputs, expected, encoding)
        headers = {"Content-Type": "application/octet-stream",
                   "Inference-Header-Content-Length": str(len(js))}
        if len(js) == len(body):  # all JSON: a plain KServe request, no extension header
            headers = {"Content-Type": "application/json"}
        try:
            status, hdrs, data = server.request(
                "POST", f"/v2/models/{test.name}/infer", body=body, headers=headers)
        except ServerDied:
            raise
        except Exception as e:
            return f"{where}: request failed: {type(e).__name__}: {e}"
        if status != 200:
            return f"{where}: HTTP {status}: {data[:300].decode('utf-8', 'replace')}"
        try:
            got = decode_response(hdrs, data)
        except Exception as e:
            return f"{where}: cannot decode response: {type(e).__name__}: {e}"
        why = check_outputs(got, expected)
        if why:
            return f"{where}: {why}"
    return None


def main():
    ap = argparse.ArgumentParser(description="ONNX backend node tests through ortserve (KServe v2 REST)")
    ap.add_argument("--server", required=True, help="path of the ortserve binary")
    ap.add_argument("--testdata", default=DEFAULT_TESTDATA, help="folder of test_* node tests")
    ap.add_argument("--min-pass", type=int, default=0,
                    help="fail (exit 1) when fewer tests than this pass")
    ap.add_argument("--filter", help="only tests whose name matches this regular expression")
    ap.add_argument("--encoding", choices=["binary", "json"], default="binary",
                    help="binary: the binary tensor extension both ways; json: JSON data "
                         "wherever JSON can carry the tensor")
    ap.add_argument("--chunk", type=int, default=0,
                    help="models per server process (0: all in one server)")
    ap.add_argument("--startup-timeout", type=float, default=150.0,
                    help="seconds to wait for the server to load its models and listen")
    ap.add_argument("--show-skipped", action="store_true", help="list the names of skipped tests")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    if not os.path.isdir(args.testdata):
        print(f"test data folder {args.testdata} does not exist "
              "(install Debian's libonnx-testdata)", file=sys.stderr)
        return 1
    started = time.monotonic()
    tests = discover(args.testdata, args.filter)
    results = Results()
    runnable = []
    for t in tests:
        if t.skip:
            results.skipped[t.skip].append(t.name)
        else:
            runnable.append(t)

    chunk = args.chunk if args.chunk > 0 else max(1, len(runnable))
    pending = [runnable[i:i + chunk] for i in range(0, len(runnable), chunk)]
    restarts = 0
    while pending:
        batch = pending.pop(0)
        left = run_tests_in_server(args, batch, results)
        if left:
            restarts += 1
            if restarts > 10:
                results.failed.extend((t.name, "not run: server died too often") for t in left)
            else:
                pending.insert(0, left)

    attempted = (len(results.passed) + len(results.failed) + len(results.known) +
                 len(results.crashes))
    skipped = sum(len(v) for v in results.skipped.values())
    print(f"\nONNX node tests through ortserve ({args.encoding}): {len(tests)} tests, "
          f"{attempted} attempted, "
          f"{len(results.passed)} passed, {len(results.failed)} failed, "
          f"{len(results.known)} known ORT differences, "
          f"{len(results.crashes)} server crashes, {skipped} skipped "
          f"({time.monotonic() - started:.1f}s)")
    if skipped:
        print("\nSkipped, by reason:")
        for reason, names in sorted(results.skipped.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            shown = ", ".join(names[:3]) + (", …" if len(names) > 3 and not args.show_skipped else "")
            if args.show_skipped:
                shown = ", ".join(names)
            print(f"  {len(names):4d}  {reason}\n        e.g. {shown}")
    if results.known:
        print("\nKnown ORT differences (not counted as failures):")
        for name, why, detail in results.known:
            print(f"  {name}: {why}\n      {detail}")
    if results.unexpected_pass:
        print("\nListed as known differences but passed (the list can shrink): " +
              ", ".join(results.unexpected_pass))
    if results.failed:
        print("\nFailed:")
        for name, detail in results.failed:
            print(f"  {name}: {detail}")
    if results.crashes:
        print("\nServer died:")
        for name, detail in results.crashes:
            print(f"  {name}: {detail}")

    if results.crashes:
        return 2
    if len(results.passed) < args.min_pass:
        print(f"\nFAIL: {len(results.passed)} passed, fewer than --min-pass {args.min_pass}")
        return 1
    print(f"\nOK: {len(results.passed)} passed (--min-pass {args.min_pass})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
