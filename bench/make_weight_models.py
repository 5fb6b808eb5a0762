#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the two FP32 [b, 2048] -> [b, 2048] models of issue #20 into a
Triton-layout repository (max_batch_size 64, dynamic batching, 2 ms):

  weight  4 x (2048x2048 MatMul + ReLU), 64 MB of weights: weight-bound, raw
          ORT gains several times from batching on a CPU
  relu    one ReLU: the model costs nothing, so the codec and HTTP are all

    /usr/bin/python3 bench/make_weight_models.py REPOSITORY
"""
import os, sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
repo = sys.argv[1]
def save(name, nodes, inits):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2048])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2048])
    model = helper.make_model(helper.make_graph(nodes, name, [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    os.makedirs(f"{repo}/{name}/1", exist_ok=True)
    onnx.save(model, f"{repo}/{name}/1/model.onnx")
    with open(f"{repo}/{name}/config.pbtxt", "w") as f:
        f.write(f'name: "{name}"\nmax_batch_size: 64\n'
                'dynamic_batching { max_queue_delay_microseconds: 2000 }\n')
rng = np.random.default_rng(0)
nodes, inits, prev = [], [], "x"
for i in range(4):
    w = (rng.standard_normal((2048, 2048)) / np.sqrt(2048)).astype(np.float32)
    inits.append(numpy_helper.from_array(w, f"w{i}"))
    out = "y" if i == 3 else f"h{i}"
    nodes += [helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]), helper.make_node("Relu", [f"m{i}"], [out])]
    prev = out
save("weight", nodes, inits)
save("relu", [helper.make_node("Relu", ["x"], ["y"])], [])
