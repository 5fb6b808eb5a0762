#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Dynamic INT8 quantization of an FP32 ONNX model, and its check against
the FP32 model through ortserve (docs/int8.md).

The rewrite (numpy + python3-onnx only; ONNX Runtime's own Python
quantization tool is not used):

- MatMul whose second input is a constant FP32 matrix W [K, N], and Gemm
  (alpha = beta = 1, no transA) with a constant B: W is stored as INT8, one
  symmetric scale per output column (s[n] = max|W[:, n]| / 127, zero point 0).
  The activation is quantized at run time to UINT8 by DynamicQuantizeLinear
  (one scale and zero point per tensor, per run), multiplied by
  MatMulInteger (INT32 accumulation) and scaled back:
      y = float(MatMulInteger(q(x), Wq, zp(x))) * (scale(x) * s)
  These are standard ONNX ops (opset >= 11). ONNX Runtime's CPU provider fuses
  the pattern into one kernel (MatMulIntegerToFloat, then
  DynamicQuantizeMatMul, com.microsoft) at graph optimization level 2 and
  above, which ortserve uses. --fused writes DynamicQuantizeMatMul directly
  (then only ONNX Runtime can load the model).
- Gather on a constant FP32 table (embeddings): the table is stored as INT8
  with one scale per row, and the gathered rows are scaled back:
      y = float(Gather(Tq, ids)) * Gather(s, ids)[..., None]
  This only shrinks the file; the lookup was never the cost.

Everything else (attention between activations, LayerNorm, softmax) stays
FP32. With --skip-layernorm a residual Add followed by a LayerNorm spelled out
in primitive ops (as PyTorch exports it) becomes one com.microsoft
SkipLayerNormalization: not a quantization, but on small encoders ONNX
Runtime's CPU LayerNormalization kernel costs as much as the INT8 matrix
products (docs/int8.md). The bundled siblings use it. The rewrite is deterministic: the same input model gives the same
output bytes.

Usage (Debian's interpreter; ortserve built for the check):
  /usr/bin/python3 scripts/quantize_int8.py IN.onnx OUT.onnx
  /usr/bin/python3 scripts/quantize_int8.py models/sae_classifier models/sae_classifier_int8 \\
      --check build/src/server/ortserve --texts data/sae/probes.jsonl

With a model folder (Triton layout) the sibling folder gets a copy of the
config (renamed) and of every other file, and the highest version's
model.onnx quantized. --check serves both models from one ortserve process
(a temporary repository, free ports) and compares their answers: for a text
classification pipeline, labels, thresholded verdicts and the positive
probability on --texts (with accuracy, recall and precision when the lines
carry a "label"); for an embedding pipeline, the cosine between the two
embeddings; otherwise every output on random inputs. It prints the file
sizes and those deltas, and with --report writes them as JSON. Exit status 1
when the check fails its bars (--min-agreement, --min-cosine).
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MS_DOMAIN = "com.microsoft"


# ---------------------------------------------------------------------------
# The rewrite
# ---------------------------------------------------------------------------
def quantize_columns(w):
    """W [K, N] float32 -> (INT8 [K, N], scales float32 [N]), symmetric per column."""
    w = w.astype(np.float32)
    scale = (np.abs(w).max(axis=0) / np.float32(127.0)).astype(np.float32)
    scale[scale == 0] = np.float32(1.0)
    q = np.clip(np.rint(w / scale[None, :]), -127, 127).astype(np.int8)
    return q, scale


def quantize_rows(t):
    """T [R, D] float32 -> (INT8 [R, D], scales float32 [R]), symmetric per row."""
    q, scale = quantize_columns(t.T)
    return np.ascontiguousarray(q.T), scale


class Rewriter:
    def __init__(self, model, fused, min_elements, quantize_gather, exclude):
        self.model = model
        self.graph = model.graph
        self.fused = fused
        self.min_elements = min_elements
        self.quantize_gather = quantize_gather
        self.exclude = [re.compile(p) for p in exclude]
        self.inits = {t.name: t for t in self.graph.initializer}
        self.new_inits = []
        self.names = set()
        for n in self.graph.node:
            self.names.update(n.output)
            if n.name:
                self.names.add(n.name)
        self.names.update(self.inits)
        self.names.update(i.name for i in self.graph.input)
        self.counts = {"MatMul": 0, "Gemm": 0, "Gather": 0, "kept_fp32": 0}

    def unique(self, base):
        name, i = base, 1
        while name in self.names:
            name = f"{base}_{i}"
            i += 1
        self.names.add(name)
        return name

    def const(self, base, array):
        name = self.unique(base)
        self.new_inits.append(numpy_helper.from_array(array, name))
        return name

    def weight(self, name):
        t = self.inits.get(name)
        if t is None or t.data_type != TensorProto.FLOAT or len(t.dims) != 2:
            return None
        return numpy_helper.to_array(t)

    def excluded(self, node):
        return any(p.search(node.name or node.output[0]) for p in self.exclude)

    def matmul(self, prefix, x, w, y, bias=None):
        """Nodes computing y = x @ w (+ bias) with INT8 weights and UINT8 activations."""
        q, scale = quantize_columns(w)
        wq = self.const(f"{prefix}.weight_int8", q)
        ws = self.const(f"{prefix}.weight_scale", scale)
        if self.fused:
            zp = self.const(f"{prefix}.weight_zero_point", np.zeros(scale.shape, np.int8))
            inputs = [x, wq, ws, zp] + ([bias] if bias else [])
            return [helper.make_node("DynamicQuantizeMatMul", inputs, [y], name=self.unique(f"{prefix}.qmatmul"),
                                     domain=MS_DOMAIN)]
        xq, xs, xz = (self.unique(f"{prefix}.{s}") for s in ("x_quantized", "x_scale", "x_zero_point"))
        acc, accf, s, out = (self.unique(f"{prefix}.{s}") for s in ("acc_int32", "acc_float", "scale", "out"))
        nodes = [
            helper.make_node("DynamicQuantizeLinear", [x], [xq, xs, xz], name=self.unique(f"{prefix}.quantize")),
            helper.make_node("MatMulInteger", [xq, wq, xz], [acc], name=self.unique(f"{prefix}.matmul_integer")),
            helper.make_node("Cast", [acc], [accf], to=TensorProto.FLOAT, name=self.unique(f"{prefix}.cast")),
            helper.make_node("Mul", [xs, ws], [s], name=self.unique(f"{prefix}.scale")),
        ]
        if bias:
            nodes.append(helper.make_node("Mul", [accf, s], [out], name=self.unique(f"{prefix}.rescale")))
            nodes.append(helper.make_node("Add", [out, bias], [y], name=self.unique(f"{prefix}.bias")))
        else:
            nodes.append(helper.make_node("Mul", [accf, s], [y], name=self.unique(f"{prefix}.rescale")))
        return nodes

    def rewrite(self, node):
        """The nodes replacing `node`, or None to keep it."""
        prefix = node.name or node.output[0]
        if node.op_type == "MatMul" and not self.excluded(node):
            w = self.weight(node.input[1])
            if w is not None and w.size >= self.min_elements:
                self.counts["MatMul"] += 1
                return self.matmul(prefix, node.input[0], w, node.output[0])
        elif node.op_type == "Gemm" and not self.excluded(node):
            a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
            w = self.weight(node.input[1])
            plain = a.get("alpha", 1.0) == 1.0 and a.get("beta", 1.0) == 1.0 and not a.get("transA", 0)
            if w is not None and plain and w.size >= self.min_elements:
                if a.get("transB", 0):
                    w = np.ascontiguousarray(w.T)
                self.counts["Gemm"] += 1
                c = node.input[2] if len(node.input) > 2 and node.input[2] else None
                if c is None:
                    return self.matmul(prefix, node.input[0], w, node.output[0])
                if c in self.inits and list(self.inits[c].dims) == [w.shape[1]]:
                    return self.matmul(prefix, node.input[0], w, node.output[0], c)
                # Any other C (2-D, or computed) broadcasts through a plain Add.
                out = self.unique(f"{prefix}.product")
                return self.matmul(prefix, node.input[0], w, out) + [
                    helper.make_node("Add", [out, c], [node.output[0]], name=self.unique(f"{prefix}.bias"))]
        elif node.op_type == "Gather" and self.quantize_gather and not self.excluded(node):
            a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
            t = self.weight(node.input[0])
            if t is not None and a.get("axis", 0) == 0 and t.size >= self.min_elements:
                self.counts["Gather"] += 1
                q, scale = quantize_rows(t)
                tq = self.const(f"{prefix}.table_int8", q)
                ts = self.const(f"{prefix}.table_scale", scale.reshape(-1, 1))
                rows, rowsf, srows = (self.unique(f"{prefix}.{s}") for s in ("rows_int8", "rows_float", "row_scale"))
                ids = node.input[1]
                return [
                    helper.make_node("Gather", [tq, ids], [rows], axis=0, name=self.unique(f"{prefix}.gather_int8")),
                    helper.make_node("Cast", [rows], [rowsf], to=TensorProto.FLOAT, name=self.unique(f"{prefix}.cast")),
                    helper.make_node("Gather", [ts, ids], [srows], axis=0, name=self.unique(f"{prefix}.gather_scale")),
                    helper.make_node("Mul", [rowsf, srows], [node.output[0]], name=self.unique(f"{prefix}.rescale")),
                ]
        weight_input = 0 if node.op_type == "Gather" else 1
        if node.op_type in ("MatMul", "Gemm", "Gather") and self.weight(node.input[weight_input]) is not None:
            self.counts["kept_fp32"] += 1  # a constant weight left in FP32: excluded, too small or not plain.
        return None

    def run(self):
        nodes = []
        for node in self.graph.node:
            replaced = self.rewrite(node)
            nodes.extend([node] if replaced is None else replaced)
        del self.graph.node[:]
        self.graph.node.extend(nodes)
        self.graph.initializer.extend(self.new_inits)
        # Drop the FP32 initializers nothing reads any more.
        used = {i for n in self.graph.node for i in n.input}
        used.update(o.name for o in self.graph.output)
        keep = [t for t in self.graph.initializer if t.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(keep)
        # Value infos of rewritten tensors stay valid (same names, same types).
        opsets = {o.domain: o for o in self.model.opset_import}
        default = opsets.get("", None) or opsets.get("ai.onnx")
        if default is None or default.version < 11:
            raise SystemExit("quantize_int8: the model needs ONNX opset >= 11 (DynamicQuantizeLinear)")
        if self.fused and MS_DOMAIN not in opsets:
            self.model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
        return self.counts


def fuse_skip_layernorm(model):
    """Residual Add + a LayerNorm spelled out in primitive ops (ReduceMean, Sub,
    Pow, ReduceMean, Add eps, Sqrt, Div, Mul gamma, Add beta over the last axis,
    as PyTorch exports it) -> one com.microsoft SkipLayerNormalization.

    ONNX Runtime fuses the primitives into LayerNormalization by itself, but
    not with the Add before it when it cannot prove the shapes, and its CPU
    LayerNormalization kernel is several times slower than SkipLayerNormalization
    on rows this short (128 floats). Only a residual Add of two computed tensors
    of which nothing else reads the sum is fused. Returns the count."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    consts = {}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    for t in g.initializer:
        consts[t.name] = numpy_helper.to_array(t)
    producer = {o: n for n in g.node for o in n.output}
    readers = {}
    for n in g.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    graph_outputs = {o.name for o in g.output}

    def only(name, op):
        r = readers.get(name, [])
        return r[0] if len(r) == 1 and r[0].op_type == op and name not in graph_outputs else None

    def last_axis(n):
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        axes = a.get("axes")
        if axes is None and len(n.input) > 1:
            axes = consts.get(n.input[1])
            axes = None if axes is None else list(np.asarray(axes).reshape(-1))
        return axes is not None and list(axes) == [-1] and a.get("keepdims", 1) == 1

    def scalar(name, value=None):
        v = consts.get(name)
        return v is not None and v.size == 1 and (value is None or float(v.reshape(-1)[0]) == value)

    remove, fused = set(), 0
    replace = {}
    for mean in g.node:
        if mean.op_type != "ReduceMean" or not last_axis(mean):
            continue
        x = mean.input[0]
        add = producer.get(x)
        if add is None or add.op_type != "Add" or any(i in inits or i in consts for i in add.input):
            continue
        if sorted(r.op_type for r in readers.get(x, [])) != ["ReduceMean", "Sub"] or x in graph_outputs:
            continue
        sub = only(mean.output[0], "Sub")
        if sub is None or list(sub.input) != [x, mean.output[0]]:
            continue
        d_readers = readers.get(sub.output[0], [])
        pow_ = next((r for r in d_readers if r.op_type == "Pow"), None)
        div = next((r for r in d_readers if r.op_type == "Div"), None)
        if len(d_readers) != 2 or pow_ is None or div is None or not scalar(pow_.input[1], 2.0):
            continue
        var = only(pow_.output[0], "ReduceMean")
        if var is None or not last_axis(var):
            continue
        eps = only(var.output[0], "Add")
        if eps is None:
            continue
        eps_name = eps.input[1] if eps.input[0] == var.output[0] else eps.input[0]
        sqrt = only(eps.output[0], "Sqrt")
        if not scalar(eps_name) or sqrt is None or only(sqrt.output[0], "Div") is not div:
            continue
        if list(div.input) != [sub.output[0], sqrt.output[0]]:
            continue
        mul = only(div.output[0], "Mul")
        if mul is None:
            continue
        gamma = mul.input[1] if mul.input[0] == div.output[0] else mul.input[0]
        beta_add = only(mul.output[0], "Add")
        if beta_add is None or gamma not in inits:
            continue
        beta = beta_add.input[1] if beta_add.input[0] == mul.output[0] else beta_add.input[0]
        if beta not in inits or len(inits[gamma].dims) != 1 or list(inits[beta].dims) != list(inits[gamma].dims):
            continue
        epsilon = float(consts[eps_name].reshape(-1)[0])
        chain = [add, mean, sub, pow_, var, eps, sqrt, div, mul, beta_add]
        remove.update(id(n) for n in chain)
        replace[id(beta_add)] = helper.make_node(
            "SkipLayerNormalization", [add.input[0], add.input[1], gamma, beta], [beta_add.output[0]],
            name=(mean.name or beta_add.output[0]) + ".skip_layer_norm", domain=MS_DOMAIN, epsilon=epsilon)
        fused += 1
    if fused:
        nodes = [replace.get(id(n), n) for n in g.node if id(n) not in remove or id(n) in replace]
        del g.node[:]
        g.node.extend(nodes)
        if MS_DOMAIN not in {o.domain for o in model.opset_import}:
            model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return fused


def quantize_model(src, dst, fused=False, min_elements=1024, quantize_gather=True, exclude=(), skip_layernorm=False):
    model = onnx.load(src)
    counts = Rewriter(model, fused, min_elements, quantize_gather, exclude).run()
    counts["SkipLayerNormalization"] = fuse_skip_layernorm(model) if skip_layernorm else 0
    # Constants nothing reads any more (the fused LayerNorms' exponents and epsilons).
    used = {i for n in model.graph.node for i in n.input}
    nodes = [n for n in model.graph.node if n.op_type != "Constant" or any(o in used for o in n.output)]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    if not fused and not counts["SkipLayerNormalization"]:
        onnx.checker.check_model(model)
    model.producer_name = "ortserve scripts/quantize_int8.py"
    model.producer_version = "1"
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    tmp = dst + ".tmp"
    with open(tmp, "wb") as f:
        f.write(model.SerializeToString(deterministic=True))
    os.replace(tmp, dst)
    return counts


# ---------------------------------------------------------------------------
# Model folders (Triton layout)
# ---------------------------------------------------------------------------
def highest_version(folder):
    versions = [int(d) for d in os.listdir(folder) if d.isdigit() and os.path.isfile(os.path.join(folder, d, "model.onnx"))]
    if not versions:
        raise SystemExit(f"quantize_int8: no <version>/model.onnx in {folder}")
    return max(versions)


def strip_block(text, field):
    """`text` without its top-level `field { ... }` blocks (braces matched)."""
    out, pos = [], 0
    for m in re.finditer(rf"(?m)^{field}\s*\{{", text):
        if m.start() < pos:
            continue
        depth, i = 0, m.end() - 1
        while i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
            if depth == 0:
                break
        out.append(text[pos:m.start()])
        pos = i
    out.append(text[pos:])
    return "".join(out)


def write_sibling(src_dir, dst_dir, **kw):
    """models/x -> models/x_int8: config renamed, other files copied, model quantized."""
    src_dir, dst_dir = os.path.normpath(src_dir), os.path.normpath(dst_dir)
    version = highest_version(src_dir)
    name = os.path.basename(dst_dir)
    if os.path.isdir(dst_dir):
        shutil.rmtree(dst_dir)
    os.makedirs(dst_dir)
    for entry in sorted(os.listdir(src_dir)):
        path = os.path.join(src_dir, entry)
        if entry.isdigit() or entry == "metrics.json":  # training metrics describe the FP32 model only
            continue
        if entry == "config.pbtxt":
            text = open(path, encoding="utf-8").read()
            text, n = re.subn(r'^name:\s*"[^"]*"', f'name: "{name}"', text, count=1, flags=re.M)
            # The FP32 model's routing (a shadow to this sibling, an A/B split) is its own.
            text = strip_block(text, "routing")
            header = (f"# INT8 sibling of {os.path.basename(src_dir)} (docs/int8.md), written by\n"
                      f"# scripts/quantize_int8.py from its version {version}: edit the FP32 model's config\n"
                      f"# and regenerate (make int8-models), not this file.\n")
            with open(os.path.join(dst_dir, entry), "w", encoding="utf-8") as f:
                f.write(header + text)
        elif os.path.isfile(path):
            shutil.copyfile(path, os.path.join(dst_dir, entry))
    src = os.path.join(src_dir, str(version), "model.onnx")
    dst = os.path.join(dst_dir, "1", "model.onnx")
    return src, dst, quantize_model(src, dst, **kw)


# ---------------------------------------------------------------------------
# The check: both models in one ortserve process
# ---------------------------------------------------------------------------
class Server:
    def __init__(self, binary, repository, log_path):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        args = [binary, "--model-repository", repository, "--http-address", "127.0.0.1", "--http-port", "0",
                "--grpc-port", "-1", "--metrics-port", "-1", "--intra-op-thread-count", "1"]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.proc.poll() is None:
            m = re.search(rb"HTTP listening on [^ \":]*:(\d+)", open(log_path, "rb").read())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.1)
        if self.port is None:
            self.stop()
            raise SystemExit("quantize_int8: ortserve did not start:\n" + open(log_path, errors="replace").read())
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/health/ready", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit("quantize_int8: the models did not become ready:\n" + open(log_path, errors="replace").read())

    def infer(self, model, body):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/v2/models/{model}/infer",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                answer = json.load(r)
        except urllib.error.HTTPError as e:
            raise SystemExit(f"quantize_int8: {model}: HTTP {e.code}: {e.read().decode(errors='replace')}")
        return {o["name"]: o for o in answer["outputs"]}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def pipeline_task(config_text):
    m = re.search(r"text_pipeline\s*\{[^}]*task:\s*(\w+)", config_text or "", flags=re.S)
    return m.group(1) if m else None


def load_texts(path, limit):
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("{"):
                row = json.loads(line)
                texts.append(row["text"])
                labels.append(row.get("label"))
            else:
                texts.append(line)
                labels.append(None)
    return texts[:limit] if limit else texts, labels[:limit] if limit else labels


def positive_label(config_text):
    m = re.search(r'positive_label:\s*"([^"]*)"', config_text)
    return m.group(1) if m else None


def quality(labels, verdicts, predicted, positive):
    """Accuracy (labels), recall and precision of the positive verdict against the probe labels."""
    pairs = [(l, v, p) for l, v, p in zip(labels, verdicts, predicted) if l is not None]
    if not pairs:
        return None
    tp = sum(1 for l, v, _ in pairs if v and l == positive)
    fp = sum(1 for l, v, _ in pairs if v and l != positive)
    fn = sum(1 for l, v, _ in pairs if not v and l == positive)
    return {"n": len(pairs), "accuracy": round(sum(1 for l, _, p in pairs if l == p) / len(pairs), 4),
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None, "tp": tp, "fp": fp, "fn": fn}


def check_classification(server, fp32, int8, texts, labels, positive, batch=16):
    got = {fp32: ([], [], []), int8: ([], [], [])}
    for start in range(0, len(texts), batch):
        chunk = texts[start:start + batch]
        body = {"parameters": {"sliding_window": True},
                "inputs": [{"name": "text", "shape": [len(chunk)], "datatype": "BYTES", "data": chunk}],
                "outputs": [{"name": "label"}, {"name": "is_positive"}, {"name": "positive_probability"}]}
        for model in (fp32, int8):
            out = server.infer(model, body)
            got[model][0].extend(out["label"]["data"])
            got[model][1].extend(out["is_positive"]["data"])
            got[model][2].extend(out["positive_probability"]["data"])
    a, b = got[fp32], got[int8]
    n = len(texts)
    delta = [abs(x - y) for x, y in zip(a[2], b[2])]
    flips = [{"text": t, "fp32": [la, round(pa, 4)], "int8": [lb, round(pb, 4)]}
             for t, la, lb, va, vb, pa, pb in zip(texts, a[0], b[0], a[1], b[1], a[2], b[2]) if va != vb or la != lb]
    return {"texts": n,
            "verdict_agreement": round(sum(1 for x, y in zip(a[1], b[1]) if x == y) / n, 4),
            "label_agreement": round(sum(1 for x, y in zip(a[0], b[0]) if x == y) / n, 4),
            "positive_probability_max_abs_delta": round(max(delta), 4),
            "positive_probability_mean_abs_delta": round(sum(delta) / n, 5),
            "fp32": quality(labels, a[1], a[0], positive), "int8": quality(labels, b[1], b[0], positive),
            "disagreements": flips}


def check_embedding(server, fp32, int8, texts, batch=16):
    cos = []
    for start in range(0, len(texts), batch):
        chunk = texts[start:start + batch]
        body = {"inputs": [{"name": "text", "shape": [len(chunk)], "datatype": "BYTES", "data": chunk}],
                "outputs": [{"name": "embedding"}]}
        ea, eb = (np.array(server.infer(m, body)["embedding"]["data"], np.float64).reshape(len(chunk), -1)
                  for m in (fp32, int8))
        cos.extend((ea * eb).sum(1) / (np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1)))
    return {"texts": len(texts), "cosine_min": round(float(min(cos)), 5), "cosine_mean": round(float(np.mean(cos)), 5)}


ONNX_TO_KSERVE = {TensorProto.FLOAT: "FP32", TensorProto.INT64: "INT64", TensorProto.INT32: "INT32",
                  TensorProto.DOUBLE: "FP64", TensorProto.BOOL: "BOOL"}


def check_tensors(server, fp32_path, fp32, int8, rows, dim, int_max, seed=7):
    """Random inputs (ints in [0, int_max], floats in [0, 1)) through both models; every FP32 output compared."""
    model = onnx.load(fp32_path, load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    rng = np.random.default_rng(seed)
    # An integer input read directly as Gather indices (token ids) stays inside its table.
    tables = {t.name: t.dims[0] for t in model.graph.initializer if t.dims}
    bound = {}
    for n in model.graph.node:
        if n.op_type == "Gather" and len(n.input) > 1 and n.input[0] in tables:
            bound[n.input[1]] = min(bound.get(n.input[1], int_max), tables[n.input[0]] - 1)
    inputs = []
    for i in model.graph.input:
        if i.name in inits:
            continue
        t = i.type.tensor_type
        dtype = ONNX_TO_KSERVE.get(t.elem_type)
        if dtype is None:
            raise SystemExit(f"quantize_int8: input {i.name}: element type {t.elem_type} not supported by the check")
        shape = [d.dim_value if d.HasField("dim_value") else (rows if k == 0 else dim)
                 for k, d in enumerate(t.shape.dim)]
        n = int(np.prod(shape)) if shape else 1
        if dtype in ("FP32", "FP64"):
            data = rng.random(n).round(6).tolist()
        elif dtype == "BOOL":
            data = [bool(x) for x in rng.integers(0, 2, n)]
        else:
            data = rng.integers(0, bound.get(i.name, int_max) + 1, n).tolist()
        if i.name == "attention_mask":  # a text encoder's mask: all tokens real.
            data = [1] * n
        inputs.append({"name": i.name, "shape": shape, "datatype": dtype, "data": data})
    a, b = server.infer(fp32, {"inputs": inputs}), server.infer(int8, {"inputs": inputs})
    report = {}
    for name, out in a.items():
        if out["datatype"] not in ("FP32", "FP64"):
            continue
        x = np.array(out["data"], np.float64).reshape(out["shape"])
        y = np.array(b[name]["data"], np.float64).reshape(b[name]["shape"])
        entry = {"max_abs_delta": round(float(np.abs(x - y).max()), 6),
                 "relative_delta": round(float(np.abs(x - y).max() / max(np.abs(x).max(), 1e-12)), 6)}
        if x.ndim >= 2:
            entry["argmax_agreement"] = round(float((x.argmax(-1) == y.argmax(-1)).mean()), 4)
        report[name] = entry
    return report


def run_check(args, fp32_path, int8_path, config_text):
    tmp = tempfile.mkdtemp(prefix="quantize_int8.")
    try:
        repo = os.path.join(tmp, "repository")
        for name, path in (("fp32", fp32_path), ("int8", int8_path)):
            os.makedirs(os.path.join(repo, name, "1"))
            shutil.copyfile(path, os.path.join(repo, name, "1", "model.onnx"))
            if config_text is not None:
                text = re.sub(r'^name:\s*"[^"]*"', f'name: "{name}"', config_text, count=1, flags=re.M)
                text = strip_block(text, "routing")  # compare the two models alone
                with open(os.path.join(repo, name, "config.pbtxt"), "w", encoding="utf-8") as f:
                    f.write(text)
                for entry in os.listdir(args.src):
                    p = os.path.join(args.src, entry)
                    if os.path.isfile(p) and entry not in ("config.pbtxt", "metrics.json"):
                        shutil.copyfile(p, os.path.join(repo, name, entry))
        server = Server(args.check, repo, os.path.join(tmp, "server.log"))
        try:
            task = pipeline_task(config_text)
            if task in ("TEXT_CLASSIFICATION", "EMBEDDING"):
                if not args.texts:
                    raise SystemExit("quantize_int8: a text pipeline model needs --texts FILE for the check")
                texts, labels = load_texts(args.texts, args.sample)
                if task == "EMBEDDING":
                    return {"kind": "embedding", **check_embedding(server, "fp32", "int8", texts)}
                return {"kind": "classification",
                        **check_classification(server, "fp32", "int8", texts, labels, positive_label(config_text))}
            return {"kind": "tensors",
                    "outputs": check_tensors(server, fp32_path, "fp32", "int8", args.rows, args.dim, args.int_max)}
        finally:
            server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("src", help="FP32 model.onnx, or a model folder (<folder>/<version>/model.onnx)")
    ap.add_argument("dst", help="output .onnx, or the sibling model folder (replaced)")
    ap.add_argument("--fused", action="store_true",
                    help="write com.microsoft DynamicQuantizeMatMul nodes instead of standard ONNX ops")
    ap.add_argument("--no-gather", action="store_true", help="keep embedding tables in FP32")
    ap.add_argument("--skip-layernorm", action="store_true",
                    help="also fuse residual Add + LayerNorm into com.microsoft SkipLayerNormalization "
                         "(ONNX Runtime only; several times faster than ORT's CPU LayerNormalization here)")
    ap.add_argument("--min-elements", type=int, default=1024,
                    help="quantize only weights with at least this many elements (default 1024)")
    ap.add_argument("--exclude", action="append", default=[], metavar="REGEX",
                    help="keep nodes whose name (or first output) matches in FP32; repeatable")
    ap.add_argument("--check", metavar="ORTSERVE", help="compare against the FP32 model through this ortserve binary")
    ap.add_argument("--texts", help="texts for a text pipeline model: JSON lines with \"text\" (and \"label\"), or plain lines")
    ap.add_argument("--sample", type=int, default=0, help="use the first N texts (default: all)")
    ap.add_argument("--rows", type=int, default=4, help="random check: batch rows (default 4)")
    ap.add_argument("--dim", type=int, default=16, help="random check: other dynamic dimensions (default 16)")
    ap.add_argument("--int-max", type=int, default=100, help="random check: integer inputs in [0, N] (default 100)")
    ap.add_argument("--min-agreement", type=float, default=0.0,
                    help="classification: fail below this verdict and label agreement (0..1)")
    ap.add_argument("--min-cosine", type=float, default=0.0, help="embedding: fail below this cosine")
    ap.add_argument("--report", help="write the sizes and the check as JSON here")
    args = ap.parse_args()

    kw = dict(fused=args.fused, min_elements=args.min_elements, quantize_gather=not args.no_gather,
              exclude=args.exclude, skip_layernorm=args.skip_layernorm)
    config_text = None
    if os.path.isdir(args.src):
        fp32_path, int8_path, counts = write_sibling(args.src, args.dst, **kw)
        cfg = os.path.join(args.src, "config.pbtxt")
        config_text = open(cfg, encoding="utf-8").read() if os.path.isfile(cfg) else None
    else:
        fp32_path, int8_path = args.src, args.dst
        counts = quantize_model(fp32_path, int8_path, **kw)
    fp32_size, int8_size = os.path.getsize(fp32_path), os.path.getsize(int8_path)
    report = {"fp32": {"path": fp32_path, "bytes": fp32_size, "sha256": sha256(fp32_path)},
              "int8": {"path": int8_path, "bytes": int8_size, "sha256": sha256(int8_path)},
              "size_ratio": round(int8_size / fp32_size, 4), "quantized_nodes": counts,
              "options": {k: v for k, v in kw.items()}}
    print(f"{fp32_path}: {fp32_size:,} bytes -> {int8_path}: {int8_size:,} bytes "
          f"({100 * int8_size / fp32_size:.1f}%); quantized MatMul {counts['MatMul']}, Gemm {counts['Gemm']}, "
          f"Gather {counts['Gather']}; kept FP32 {counts['kept_fp32']}; SkipLayerNormalization "
          f"{counts['SkipLayerNormalization']}")
    failed = []
    if args.check:
        check = run_check(args, fp32_path, int8_path, config_text)
        report["check"] = check
        if check["kind"] == "classification":
            print(f"  {check['texts']} texts: verdict agreement {check['verdict_agreement']:.4f}, label agreement "
                  f"{check['label_agreement']:.4f}, |delta p(positive)| max {check['positive_probability_max_abs_delta']}"
                  f" mean {check['positive_probability_mean_abs_delta']}")
            for kind in ("fp32", "int8"):
                q = check[kind]
                if q:
                    print(f"  {kind}: accuracy {q['accuracy']}, recall {q['recall']}, precision {q['precision']} "
                          f"(tp {q['tp']}, fp {q['fp']}, fn {q['fn']} of {q['n']})")
            for d in check["disagreements"]:
                print(f"  differs: {d['text'][:70]!r}: fp32 {d['fp32']} int8 {d['int8']}")
            if min(check["verdict_agreement"], check["label_agreement"]) < args.min_agreement:
                failed.append(f"agreement below {args.min_agreement}")
        elif check["kind"] == "embedding":
            print(f"  {check['texts']} texts: cosine(fp32, int8) min {check['cosine_min']}, mean {check['cosine_mean']}")
            if check["cosine_min"] < args.min_cosine:
                failed.append(f"cosine below {args.min_cosine}")
        else:
            for name, e in check["outputs"].items():
                print(f"  output {name}: " + ", ".join(f"{k} {v}" for k, v in e.items()))
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, sort_keys=True)
            f.write("\n")
    if failed:
        print("quantize_int8: FAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
