#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the demo SAE model in each precision into one model repository, for
bench/run_int8_bench.sh (issue 24):

  <out>/sae_classifier        FP32, a copy of models/sae_classifier
  <out>/sae_classifier_fp32sln  FP32 with SkipLayerNormalization fused
                              (quantize_int8.py --skip-layernorm, nothing quantized)
  <out>/sae_classifier_int8   INT8 as bundled: quantize_int8.py --skip-layernorm
  <out>/sae_classifier_int8only  INT8 without the LayerNorm fusion
  <out>/sae_classifier_fp16   FP16 weights and activations (initializers,
                              constants, casts); logits cast back to FP32 so the
                              text pipeline reads them unchanged
  <out>/bf16/model.onnx       MatMul weights and activations in BF16 (casts around
                              each MatMul), kept outside the repository: ONNX
                              Runtime 1.29's CPU provider has no BF16 MatMul
                              kernel, and the script only records whether it loads

With --check ORTSERVE it then compares each variant with the FP32 model on
the probe set through ortserve (quantize_int8.py's check) and writes
<out>/accuracy.json.

  /usr/bin/python3 bench/make_precision_variants.py OUT [--check build/src/server/ortserve]
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import quantize_int8  # noqa: E402


def to_half(tensor):
    if tensor.data_type != TensorProto.FLOAT:
        return tensor
    return numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), tensor.name)


def to_bf16(array, name):
    bits = np.ascontiguousarray(array, np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even
    return helper.make_tensor(name, TensorProto.BFLOAT16, array.shape, rounded.tobytes(), raw=True)


def write_fp16(src, dst):
    model = onnx.load(src)
    g = model.graph
    inits = [to_half(t) for t in g.initializer]
    del g.initializer[:]
    g.initializer.extend(inits)
    for node in g.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                a.t.CopyFrom(to_half(a.t))
            if node.op_type == "Cast" and a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.FLOAT16
    del g.value_info[:]
    for out in g.output:
        if out.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        half = out.name + "_fp16"
        for node in g.node:
            node.output[:] = [half if o == out.name else o for o in node.output]
        g.node.append(helper.make_node("Cast", [half], [out.name], to=TensorProto.FLOAT))
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    onnx.save(model, dst)


def write_bf16_matmuls(src, dst):
    model = onnx.load(src)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    nodes, extra = [], []
    for node in g.node:
        w = inits.get(node.input[1]) if node.op_type == "MatMul" else None
        if w is None or w.data_type != TensorProto.FLOAT:
            nodes.append(node)
            continue
        x16, w16, y16 = node.output[0] + "_x_bf16", node.input[1] + "_bf16", node.output[0] + "_bf16"
        extra.append(to_bf16(numpy_helper.to_array(w), w16))
        nodes += [helper.make_node("Cast", [node.input[0]], [x16], to=TensorProto.BFLOAT16),
                  helper.make_node("MatMul", [x16, w16], [y16]),
                  helper.make_node("Cast", [y16], [node.output[0]], to=TensorProto.FLOAT)]
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(extra)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    onnx.save(model, dst)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--check", metavar="ORTSERVE")
    args = ap.parse_args()
    src_dir = os.path.join(ROOT, "models", "sae_classifier")
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    shutil.copytree(src_dir, os.path.join(args.out, "sae_classifier"))
    fp32 = os.path.join(args.out, "sae_classifier", str(quantize_int8.highest_version(src_dir)), "model.onnx")
    variants = {"int8": dict(skip_layernorm=True), "int8only": {},
                "fp32sln": dict(skip_layernorm=True, min_elements=1 << 62, quantize_gather=False)}
    for variant, kw in variants.items():
        quantize_int8.write_sibling(src_dir, os.path.join(args.out, f"sae_classifier_{variant}"), **kw)
    shutil.copytree(os.path.join(args.out, "sae_classifier_int8"), os.path.join(args.out, "sae_classifier_fp16"))
    cfg = os.path.join(args.out, "sae_classifier_fp16", "config.pbtxt")
    text = open(cfg).read().replace('name: "sae_classifier_int8"', 'name: "sae_classifier_fp16"')
    open(cfg, "w").write(text)
    write_fp16(fp32, os.path.join(args.out, "sae_classifier_fp16", "1", "model.onnx"))
    write_bf16_matmuls(fp32, os.path.join(args.out, "bf16", "model.onnx"))
    if not args.check:
        return 0
    config_text = open(os.path.join(src_dir, "config.pbtxt")).read()
    check_args = argparse.Namespace(src=src_dir, check=args.check, texts=os.path.join(ROOT, "data/sae/probes.jsonl"),
                                    sample=0)
    accuracy = {}
    for variant in ("fp32sln", "int8only", "int8", "fp16"):
        path = os.path.join(args.out, f"sae_classifier_{variant}", "1", "model.onnx")
        r = quantize_int8.run_check(check_args, fp32, path, config_text)
        r.pop("disagreements")
        r[variant] = r.pop("int8")  # the check names the model it compares "int8"
        accuracy[variant] = r
        accuracy[variant]["bytes"] = os.path.getsize(path)
    accuracy["fp32_bytes"] = os.path.getsize(fp32)
    with open(os.path.join(args.out, "accuracy.json"), "w") as f:
        json.dump(accuracy, f, indent=2, sort_keys=True)
    print(json.dumps(accuracy, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
