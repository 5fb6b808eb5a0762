#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Builds the small demo models that the default ortserve run serves.

Run with Debian's interpreter (it has python3-onnx and python3-numpy):

    /usr/bin/python3 scripts/make_demo_models.py            # writes models/
    /usr/bin/python3 scripts/make_demo_models.py --out DIR  # elsewhere
    /usr/bin/python3 scripts/make_demo_models.py --check-server http://127.0.0.1:8000

The output is deterministic: running it twice gives byte-identical files. Each
model is written in the Triton layout `<out>/<name>/config.pbtxt` +
`<out>/<name>/1/model.onnx` (except `no_config_model`, which deliberately has no
config.pbtxt so the server must auto-complete it from the ONNX graph).

Before writing, every model passes `onnx.checker.check_model` with full shape
inference, and every model carries test vectors whose expected outputs are
computed here in numpy from the same weights. `--check-server` sends those
vectors to a running ortserve over KServe v2 REST (JSON and the binary tensor
extension) and compares the answers, so the demo repository doubles as a smoke
test of the server. The models/sae_classifier/ folder is owned by another
generator and is never touched here.
"""

import argparse
import http.client
import json
import os
import struct
import sys
import urllib.parse

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 8          # ONNX 1.10+; every ORT since 1.10 loads it.
OPSET = 17              # newest default-domain opset that ONNX 1.12 knows.
ML_OPSET = 2            # ai.onnx.ml, for CategoryMapper.
PRODUCER = "ortserve scripts/make_demo_models.py"

# ---------------------------------------------------------------------------
# iris_classifier
# ---------------------------------------------------------------------------

IRIS_CLASSES = ["setosa", "versicolor", "virginica"]
IRIS_FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
# Per-class feature means of Fisher's iris data (cm), rows follow IRIS_CLASSES.
IRIS_CLASS_MEANS = np.array([
    [5.006, 3.428, 1.462, 0.246],
    [5.936, 2.770, 4.260, 1.326],
    [6.588, 2.974, 5.552, 2.026],
], dtype=np.float64)
# Whole-data-set mean and standard deviation per feature (for standardizing).
IRIS_MEAN = np.array([5.843, 3.057, 3.758, 1.199], dtype=np.float64)
IRIS_STD = np.array([0.825, 0.434, 1.759, 0.760], dtype=np.float64)
# Pooled within-class standard deviation per feature.
IRIS_WITHIN_STD = np.array([0.509, 0.337, 0.427, 0.203], dtype=np.float64)


def iris_weights():
    """Weights of a 4-8-3 MLP that is exactly a Gaussian naive-Bayes classifier.

    Layer 1 standardizes the features, z = (x - mean) / std, and splits each into
    its positive and negative part: h = [relu(z), relu(-z)] (8 hidden units).
    Layer 2 recombines z = relu(z) - relu(-z) and applies the linear
    discriminant of a Gaussian model with shared per-feature variance:
    logit_k = sum_j (x_j mu_kj - mu_kj^2 / 2) / s_j^2, rewritten in terms of z.
    Softmax of the logits is the posterior with equal priors.
    """
    inv_std = 1.0 / IRIS_STD
    w1 = np.concatenate([np.diag(inv_std), -np.diag(inv_std)], axis=1)  # [4, 8]
    b1 = np.concatenate([-IRIS_MEAN * inv_std, IRIS_MEAN * inv_std])     # [8]
    inv_var = 1.0 / IRIS_WITHIN_STD ** 2
    # logit_k = sum_j mu_kj inv_var_j x_j - sum_j mu_kj^2 inv_var_j / 2
    #         = sum_j (mu_kj inv_var_j std_j) z_j + sum_j mu_kj inv_var_j mean_j - ...
    a = (IRIS_CLASS_MEANS * inv_var).T                                  # [4, 3] on x
    a_z = a * IRIS_STD[:, None]                                         # [4, 3] on z
    c = IRIS_MEAN @ a - 0.5 * (IRIS_CLASS_MEANS ** 2 * inv_var).sum(axis=1)
    # Common shift (softmax is shift-invariant): keeps the bias readable.
    c = c - c.mean()
    w2 = np.concatenate([a_z, -a_z], axis=0)                             # [8, 3]
    b2 = c
    f = np.float32
    return w1.astype(f), b1.astype(f), w2.astype(f), b2.astype(f)


def iris_reference(x):
    w1, b1, w2, b2 = iris_weights()
    h = np.maximum(x.astype(np.float32) @ w1 + b1, 0).astype(np.float32)
    logits = (h @ w2 + b2).astype(np.float32)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return {"probabilities": p, "label": np.argmax(p, axis=1).astype(np.int64)}


def make_iris():
    w1, b1, w2, b2 = iris_weights()
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
             numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b2, "b2")]
    nodes = [
        helper.make_node("MatMul", ["input", "w1"], ["h_mm"], name="dense1_matmul"),
        helper.make_node("Add", ["h_mm", "b1"], ["h_pre"], name="dense1_bias"),
        helper.make_node("Relu", ["h_pre"], ["h"], name="dense1_relu"),
        helper.make_node("MatMul", ["h", "w2"], ["logits_mm"], name="dense2_matmul"),
        helper.make_node("Add", ["logits_mm", "b2"], ["logits"], name="dense2_bias"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1, name="softmax"),
        helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0,
                         name="argmax"),
    ]
    graph = helper.make_graph(
        nodes, "iris_classifier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"])],
        initializer=inits)
    graph.doc_string = ("Iris species from 4 measurements in cm (" +
                        ", ".join(IRIS_FEATURES) + "); classes " + ", ".join(IRIS_CLASSES))
    config = """\
name: "iris_classifier"
platform: "onnxruntime_onnx"
max_batch_size: 64
input {
  name: "input"
  data_type: TYPE_FP32
  dims: [ 4 ]
}
output {
  name: "probabilities"
  data_type: TYPE_FP32
  dims: [ 3 ]
  label_filename: "labels.txt"
}
output {
  name: "label"
  data_type: TYPE_INT64
  dims: [ ]
}
dynamic_batching {
  max_queue_delay_microseconds: 500
}
instance_group {
  count: 1
  kind: KIND_CPU
}
"""
    x = np.array([[5.1, 3.5, 1.4, 0.2],    # a setosa from the data set
                  [6.4, 3.2, 4.5, 1.5],    # a versicolor
                  [6.3, 3.3, 6.0, 2.5],    # a virginica
                  [5.9, 3.0, 5.1, 1.8]],   # a virginica near the border
                 dtype=np.float32)
    ref = iris_reference(x)
    assert list(ref["label"]) == [0, 1, 2, 2], ref
    vectors = [{"inputs": {"input": x}, "outputs": ref}]
    return "iris_classifier", graph, config, {"labels.txt": "\n".join(IRIS_CLASSES) + "\n"}, vectors


# ---------------------------------------------------------------------------
# multi_io
# ---------------------------------------------------------------------------

def multi_io_reference(a, b, flag):
    a = a.astype(np.float32)
    return {
        "sum": (a + b.astype(np.float32)).astype(np.float32),
        # Round is half-to-even in ONNX and numpy alike.
        "prod_i64": np.round(a).astype(np.int64) * b.astype(np.int64),
        "masked": np.where(flag, a, np.float32(0)).astype(np.float32),
        "a_fp16": a.astype(np.float16),
        "a_f64": a.astype(np.float64),
    }


def make_multi_io():
    zero = numpy_helper.from_array(np.array(0, dtype=np.float32), "zero")
    nodes = [
        helper.make_node("Cast", ["b"], ["b_f32"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["a", "b_f32"], ["sum"]),
        helper.make_node("Round", ["a"], ["a_round"]),
        helper.make_node("Cast", ["a_round"], ["a_i64"], to=TensorProto.INT64),
        helper.make_node("Cast", ["b"], ["b_i64"], to=TensorProto.INT64),
        helper.make_node("Mul", ["a_i64", "b_i64"], ["prod_i64"]),
        helper.make_node("Where", ["flag", "a", "zero"], ["masked"]),
        helper.make_node("Cast", ["a"], ["a_fp16"], to=TensorProto.FLOAT16),
        helper.make_node("Cast", ["a"], ["a_f64"], to=TensorProto.DOUBLE),
    ]
    graph = helper.make_graph(
        nodes, "multi_io",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("b", TensorProto.INT32, ["batch", 3]),
         helper.make_tensor_value_info("flag", TensorProto.BOOL, ["batch", 1])],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("prod_i64", TensorProto.INT64, ["batch", 3]),
         helper.make_tensor_value_info("masked", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("a_fp16", TensorProto.FLOAT16, ["batch", 3]),
         helper.make_tensor_value_info("a_f64", TensorProto.DOUBLE, ["batch", 3])],
        initializer=[zero])
    graph.doc_string = "Mixed-type inputs and outputs for datatype conformance."
    config = """\
name: "multi_io"
platform: "onnxruntime_onnx"
max_batch_size: 8
input {
  name: "a"
  data_type: TYPE_FP32
  dims: [ 3 ]
}
input {
  name: "b"
  data_type: TYPE_INT32
  dims: [ 3 ]
}
input {
  name: "flag"
  data_type: TYPE_BOOL
  dims: [ 1 ]
}
output {
  name: "sum"
  data_type: TYPE_FP32
  dims: [ 3 ]
}
output {
  name: "prod_i64"
  data_type: TYPE_INT64
  dims: [ 3 ]
}
output {
  name: "masked"
  data_type: TYPE_FP32
  dims: [ 3 ]
}
output {
  name: "a_fp16"
  data_type: TYPE_FP16
  dims: [ 3 ]
}
output {
  name: "a_f64"
  data_type: TYPE_FP64
  dims: [ 3 ]
}
dynamic_batching {
  max_queue_delay_microseconds: 200
}
instance_group {
  count: 1
  kind: KIND_CPU
}
"""
    a = np.array([[1.5, -2.25, 3.0], [0.5, 2.5, -7.75]], dtype=np.float32)
    b = np.array([[1, 2, 3], [-4, 100000, 6]], dtype=np.int32)
    flag = np.array([[True], [False]], dtype=np.bool_)
    vectors = [{"inputs": {"a": a, "b": b, "flag": flag},
                "outputs": multi_io_reference(a, b, flag)}]
    return "multi_io", graph, config, {}, vectors


# ---------------------------------------------------------------------------
# string_length (strings in, strings / ints / bools out)
# ---------------------------------------------------------------------------

ANSWERS = ["no", "yes", "maybe"]   # ids 0, 1, 2; anything else is -1
# StringNormalizer's default locale is en_US.UTF-8, which minimal images (Debian
# containers included) do not have; ORT then refuses the model. C.UTF-8 is built
# into glibc >= 2.35 and still case-maps non-ASCII letters.
LOCALE = "C.UTF-8"


def string_reference(text):
    lower = [t.lower() for t in text]
    ids = np.array([ANSWERS.index(t) if t in ANSWERS else -1 for t in lower], dtype=np.int64)
    return {
        "upper": np.array([t.upper() for t in text], dtype=object),
        "answer_id": ids,
        "is_yes": ids == 1,
    }


def make_string():
    one = numpy_helper.from_array(np.array(1, dtype=np.int64), "yes_id")
    nodes = [
        helper.make_node("StringNormalizer", ["text"], ["upper"],
                         case_change_action="UPPER", is_case_sensitive=1, locale=LOCALE,
                         name="to_upper"),
        helper.make_node("StringNormalizer", ["text"], ["lower"],
                         case_change_action="LOWER", is_case_sensitive=1, locale=LOCALE,
                         name="to_lower"),
        helper.make_node("CategoryMapper", ["lower"], ["answer_id"], domain="ai.onnx.ml",
                         cats_strings=ANSWERS, cats_int64s=list(range(len(ANSWERS))),
                         default_int64=-1, name="answer_lookup"),
        helper.make_node("Equal", ["answer_id", "yes_id"], ["is_yes"], name="is_yes"),
    ]
    graph = helper.make_graph(
        nodes, "string_length",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["n"])],
        [helper.make_tensor_value_info("upper", TensorProto.STRING, ["n"]),
         helper.make_tensor_value_info("answer_id", TensorProto.INT64, ["n"]),
         helper.make_tensor_value_info("is_yes", TensorProto.BOOL, ["n"])],
        initializer=[one])
    graph.doc_string = ("Upper-cases each string, and maps 'no'/'yes'/'maybe' "
                        "(any case) to 0/1/2, anything else to -1.")
    # StringNormalizer takes [C] or [1, C], so this model cannot be batched by
    # stacking requests: max_batch_size 0, and the one dimension is variable.
    config = """\
name: "string_length"
platform: "onnxruntime_onnx"
max_batch_size: 0
input {
  name: "text"
  data_type: TYPE_STRING
  dims: [ -1 ]
}
output {
  name: "upper"
  data_type: TYPE_STRING
  dims: [ -1 ]
}
output {
  name: "answer_id"
  data_type: TYPE_INT64
  dims: [ -1 ]
}
output {
  name: "is_yes"
  data_type: TYPE_BOOL
  dims: [ -1 ]
}
instance_group {
  count: 1
  kind: KIND_CPU
}
"""
    text = ["Yes", "no", "MaYbE", "perhaps", "ça va"]
    vectors = [{"inputs": {"text": np.array(text, dtype=object)},
                "outputs": string_reference(text)}]
    return "string_length", graph, config, {}, vectors


# ---------------------------------------------------------------------------
# no_config_model
# ---------------------------------------------------------------------------

def make_no_config():
    two = numpy_helper.from_array(np.array(2, dtype=np.float32), "two")
    one = numpy_helper.from_array(np.array(1, dtype=np.float32), "one")
    nodes = [helper.make_node("Mul", ["x", "two"], ["x2"]),
             helper.make_node("Add", ["x2", "one"], ["y"])]
    graph = helper.make_graph(
        nodes, "no_config_model",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        initializer=[two, one])
    graph.doc_string = "y = 2x + 1; shipped without config.pbtxt on purpose."
    x = np.array([[0.0, 1.0], [-0.5, 1e6]], dtype=np.float32)
    vectors = [{"inputs": {"x": x}, "outputs": {"y": (x * 2 + 1).astype(np.float32)}}]
    return "no_config_model", graph, None, {}, vectors


BUILDERS = [make_iris, make_multi_io, make_string, make_no_config]


def finish_model(graph):
    opsets = [helper.make_opsetid("", OPSET)]
    if any(n.domain == "ai.onnx.ml" for n in graph.node):
        opsets.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    model = helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER,
                              producer_version="1")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def write_if_changed(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(data)


def build_all():
    """Returns [(name, model, config_text|None, extra_files, vectors)]."""
    out = []
    for build in BUILDERS:
        name, graph, config, extra, vectors = build()
        out.append((name, finish_model(graph), config, extra, vectors))
    return out


# ---------------------------------------------------------------------------
# --check-server: KServe v2 REST round trip of every test vector
# ---------------------------------------------------------------------------

KSERVE_DTYPE = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64",
                np.dtype(np.float16): "FP16", np.dtype(np.int32): "INT32",
                np.dtype(np.int64): "INT64", np.dtype(np.bool_): "BOOL",
                np.dtype(object): "BYTES"}
NP_DTYPE = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "INT32": np.int32,
            "INT64": np.int64, "BOOL": np.bool_, "BYTES": object}


def to_raw(arr):
    if arr.dtype == object:
        parts = []
        for s in arr.reshape(-1):
            b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
            parts.append(struct.pack("<I", len(b)) + b)
        return b"".join(parts)
    return np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()


def from_raw(raw, datatype, shape):
    if datatype == "BYTES":
        items, pos = [], 0
        while pos < len(raw):
            (n,) = struct.unpack_from("<I", raw, pos)
            items.append(raw[pos + 4:pos + 4 + n].decode("utf-8"))
            pos += 4 + n
        return np.array(items, dtype=object).reshape(shape)
    return np.frombuffer(raw, dtype=np.dtype(NP_DTYPE[datatype]).newbyteorder("<")).reshape(shape)


def post(conn, path, body, headers):
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), resp.read()


def infer(conn, model, inputs, binary):
    if binary:
        header = {"inputs": [], "parameters": {"binary_data_output": True}}
        blobs = []
        for name, arr in inputs.items():
            raw = to_raw(arr)
            header["inputs"].append({"name": name, "shape": list(arr.shape),
                                     "datatype": KSERVE_DTYPE[arr.dtype],
                                     "parameters": {"binary_data_size": len(raw)}})
            blobs.append(raw)
        js = json.dumps(header).encode()
        status, hdrs, body = post(conn, f"/v2/models/{model}/infer", js + b"".join(blobs),
                                  {"Content-Type": "application/octet-stream",
                                   "Inference-Header-Content-Length": str(len(js))})
    else:
        req = {"inputs": [{"name": n, "shape": list(a.shape), "datatype": KSERVE_DTYPE[a.dtype],
                           "data": a.reshape(-1).tolist()} for n, a in inputs.items()]}
        status, hdrs, body = post(conn, f"/v2/models/{model}/infer", json.dumps(req).encode(),
                                  {"Content-Type": "application/json"})
    if status != 200:
        raise RuntimeError(f"{model}: HTTP {status}: {body[:300]!r}")
    hlen = int(hdrs.get("inference-header-content-length", len(body)))
    resp = json.loads(body[:hlen])
    pos, outs = hlen, {}
    for o in resp["outputs"]:
        shape = o["shape"]
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            outs[o["name"]] = from_raw(body[pos:pos + size], o["datatype"], shape)
            pos += size
        else:
            dt = NP_DTYPE[o["datatype"]]
            outs[o["name"]] = np.array(o["data"], dtype=dt).reshape(shape)
        outs[o["name"] + ":datatype"] = o["datatype"]
    return outs


def check_server(url, models):
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
    failures = 0
    for name, _, _, _, vectors in models:
        for vec in vectors:
            for binary in (False, True):
                what = f"{name} ({'binary' if binary else 'json'})"
                before = failures
                try:
                    got = infer(conn, name, vec["inputs"], binary)
                except Exception as e:  # report and continue with the next model
                    print(f"FAIL {what}: {e}")
                    failures += 1
                    conn.close()
                    continue
                for oname, want in vec["outputs"].items():
                    if oname not in got:
                        print(f"FAIL {what}: output {oname} missing")
                        failures += 1
                        continue
                    g = got[oname]
                    if got[oname + ":datatype"] != KSERVE_DTYPE[want.dtype]:
                        print(f"FAIL {what}: output {oname} datatype {got[oname + ':datatype']}, "
                              f"want {KSERVE_DTYPE[want.dtype]}")
                        failures += 1
                    elif list(g.shape) != list(want.shape):
                        print(f"FAIL {what}: output {oname} shape {list(g.shape)}, "
                              f"want {list(want.shape)}")
                        failures += 1
                    elif want.dtype == object or want.dtype.kind in "biu":
                        if not np.array_equal(g, want):
                            print(f"FAIL {what}: output {oname} = {g.tolist()}, want {want.tolist()}")
                            failures += 1
                    elif not np.allclose(g.astype(np.float64), want.astype(np.float64),
                                         rtol=1e-5, atol=1e-6):
                        print(f"FAIL {what}: output {oname} = {g.tolist()}, want {want.tolist()}")
                        failures += 1
                if failures == before:
                    print(f"ok   {what}")
    return failures


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "models"),
                    help="repository folder to write (default: models/ of this checkout)")
    ap.add_argument("--check-server", metavar="URL",
                    help="instead of writing, send the test vectors to a running server")
    args = ap.parse_args()

    models = build_all()
    if args.check_server:
        failures = check_server(args.check_server, models)
        print(f"{failures} failure(s)")
        return 1 if failures else 0

    out = os.path.abspath(args.out)
    for name, model, config, extra, _ in models:
        mdir = os.path.join(out, name)
        cfg_path = os.path.join(mdir, "config.pbtxt")
        write_if_changed(os.path.join(mdir, "1", "model.onnx"), model.SerializeToString())
        if config is None:
            if os.path.exists(cfg_path):
                os.remove(cfg_path)
        else:
            write_if_changed(cfg_path, config)
        for fname, text in extra.items():
            write_if_changed(os.path.join(mdir, fname), text)
        size = os.path.getsize(os.path.join(mdir, "1", "model.onnx"))
        print(f"wrote {os.path.relpath(mdir, os.getcwd())} (model.onnx {size} bytes"
              f"{', no config.pbtxt' if config is None else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
