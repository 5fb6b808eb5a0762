#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""scripts/quantize_int8.py and the bundled INT8 siblings (issue 24):

- each committed sibling (models/*_int8) is what the quantizer makes from the
  committed FP32 model today, byte for byte: the rewrite is deterministic and
  the sibling is not stale (after changing an FP32 model: make int8-models);
- the rewrite keeps a hand-built graph's answers (Gather on a table, Gemm
  with transB and a bias, MatMuls on a 3-D activation, a residual Add and a
  spelled-out LayerNorm fused to SkipLayerNormalization) within 2% of FP32,
  served by the real ortserve (argv[1]), and --exclude keeps a node in FP32;
- a bare model file with random inputs passes the generic check.

Usage: int8_models_test.py path/to/ortserve
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SCRIPT = os.path.join(ROOT, "scripts", "quantize_int8.py")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import quantize_int8  # noqa: E402

failures = []


def check(cond, message):
    print(("ok   " if cond else "FAIL ") + message)
    if not cond:
        failures.append(message)


def run(*args):
    r = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)
    if r.returncode != 0:
        failures.append(f"quantize_int8.py {' '.join(args)} exited {r.returncode}: {r.stdout}{r.stderr}")
    return r


def siblings_are_current(tmp):
    for fp32, int8 in (("sae_classifier", "sae_classifier_int8"), ("text_embedding", "text_embedding_int8")):
        folder = os.path.join(ROOT, "models", fp32)
        version = quantize_int8.highest_version(folder)
        src = os.path.join(folder, str(version), "model.onnx")
        report = json.load(open(os.path.join(ROOT, "models", int8, "quantization.json")))
        check(report["fp32"]["sha256"] == quantize_int8.sha256(src),
              f"{int8}/quantization.json names the current {fp32} model (else: make int8-models)")
        out = os.path.join(tmp, f"{int8}.onnx")
        quantize_int8.quantize_model(src, out, **report["options"])
        committed = open(os.path.join(ROOT, "models", int8, "1", "model.onnx"), "rb").read()
        check(open(out, "rb").read() == committed,
              f"{int8}/1/model.onnx is byte for byte the quantizer's output (else: make int8-models)")
        again = os.path.join(tmp, f"{int8}.again.onnx")
        quantize_int8.quantize_model(src, again, **report["options"])
        check(open(again, "rb").read() == open(out, "rb").read(), f"{int8}: two runs give the same bytes")


def hand_built_graph(tmp, server):
    rng = np.random.default_rng(3)
    table = rng.standard_normal((2048, 64)).astype(np.float32)
    w_gemm = (rng.standard_normal((48, 64)) / 8).astype(np.float32)  # [N, K], transB
    b_gemm = rng.standard_normal(48).astype(np.float32)
    w_mm = (rng.standard_normal((48, 40)) / 7).astype(np.float32)
    w_res = (rng.standard_normal((48, 40)) / 7).astype(np.float32)
    c = lambda name, v: helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(v, np.float32)))
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["emb"], axis=0, name="embed"),
        helper.make_node("Reshape", ["emb", "flat_shape"], ["emb2"], name="flatten"),
        helper.make_node("Gemm", ["emb2", "w_gemm", "b_gemm"], ["h2"], transB=1, name="dense"),
        helper.make_node("Reshape", ["h2", "back_shape"], ["h"], name="unflatten"),
        helper.make_node("MatMul", ["h", "w_mm"], ["p"], name="project"),
        helper.make_node("MatMul", ["h", "w_res"], ["r"], name="residual"),
        # A residual Add and a LayerNorm spelled out as PyTorch exports it.
        helper.make_node("Add", ["p", "r"], ["x"], name="sum"),
        helper.make_node("ReduceMean", ["x"], ["mean"], axes=[-1]),
        helper.make_node("Sub", ["x", "mean"], ["d"]),
        c("two", 2.0), helper.make_node("Pow", ["d", "two"], ["d2"]),
        helper.make_node("ReduceMean", ["d2"], ["var"], axes=[-1]),
        c("eps", 1e-5), helper.make_node("Add", ["var", "eps"], ["var_eps"]),
        helper.make_node("Sqrt", ["var_eps"], ["std"]),
        helper.make_node("Div", ["d", "std"], ["norm"]),
        helper.make_node("Mul", ["norm", "gamma"], ["scaled"]),
        helper.make_node("Add", ["scaled", "beta"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "int8_test",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 6, 40])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(w_gemm, "w_gemm"),
         numpy_helper.from_array(b_gemm, "b_gemm"), numpy_helper.from_array(w_mm, "w_mm"),
         numpy_helper.from_array(w_res, "w_res"),
         numpy_helper.from_array((1 + rng.random(40)).astype(np.float32), "gamma"),
         numpy_helper.from_array(rng.random(40).astype(np.float32), "beta"),
         numpy_helper.from_array(np.array([-1, 64], np.int64), "flat_shape"),
         numpy_helper.from_array(np.array([-1, 6, 48], np.int64), "back_shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    src = os.path.join(tmp, "graph.onnx")
    onnx.save(model, src)
    out, report = os.path.join(tmp, "graph_int8.onnx"), os.path.join(tmp, "graph.json")
    run(src, out, "--skip-layernorm", "--check", server, "--report", report)
    r = json.load(open(report))
    check(r["quantized_nodes"] == {"MatMul": 2, "Gemm": 1, "Gather": 1, "kept_fp32": 0, "SkipLayerNormalization": 1},
          f"hand-built graph: Gather, Gemm and MatMuls quantized, the LayerNorm fused ({r['quantized_nodes']})")
    y = r["check"]["outputs"]["y"]
    check(y["relative_delta"] < 0.02, f"hand-built graph: max |delta| / max |y| = {y['relative_delta']} < 0.02")
    ops = [n.op_type for n in onnx.load(out).graph.node]
    check("MatMul" not in ops and "Gemm" not in ops and ops.count("MatMulInteger") == 3,
          "hand-built graph: no FP32 MatMul/Gemm left, three MatMulInteger")
    check(not {"ReduceMean", "Pow", "Sqrt", "Constant"} & set(ops), "hand-built graph: the LayerNorm's primitives are gone")
    run(src, out, "--exclude", "^dense$", "--report", report)
    r = json.load(open(report))
    check(r["quantized_nodes"]["Gemm"] == 0 and r["quantized_nodes"]["kept_fp32"] == 1,
          "--exclude keeps the matching Gemm in FP32")


def bare_model(tmp, server):
    report = os.path.join(tmp, "bare.json")
    run(os.path.join(ROOT, "models", "sae_classifier", "1", "model.onnx"), os.path.join(tmp, "bare.onnx"),
        "--check", server, "--int-max", "100000", "--report", report)
    logits = json.load(open(report))["check"]["outputs"]["logits"]
    check(logits["relative_delta"] < 0.05, f"bare SAE model, random token ids: relative delta {logits['relative_delta']}")


def main():
    server = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        siblings_are_current(tmp)
        hand_built_graph(tmp, server)
        bare_model(tmp, server)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("all int8 checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
