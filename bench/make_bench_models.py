#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Generates the benchmark models (random weights, realistic shapes) as
Triton-layout repositories under bench/models/ (git-ignored; large).

Each model is written twice: bench/models/batching/<name>/ with
`dynamic_batching` in its config.pbtxt and bench/models/nobatching/<name>/
without it (max_batch_size 64 in both), so the same server binary can be
compared with batching on and off.

  bert_mini      BERT-shaped encoder: 4 layers, hidden 256, 4 heads, seq 128,
                 FFN 1024, vocab 30522; inputs input_ids / attention_mask INT64
                 [batch, 128]; output logits FP32 [batch, 2] (a sequence
                 classifier head on the first token).
  bert_base      the same with 12 layers, hidden 768, 12 heads, FFN 3072.
  bert_base_fp16 bert_base with FP16 weights and activations (--fp16).
  resnet50       ResNet-50 topology (bottleneck blocks 3-4-6-3), input
                 FP32 [batch, 3, 224, 224], output logits FP32 [batch, 1000].

With --gpu every model is also written to bench/models/gpu_batching/<name>/
and bench/models/gpu_nobatching/<name>/ (the same model.onnx, hard-linked
where possible) with `instance_group [ { count: 2 kind: KIND_GPU gpus: [ 0 ] } ]`
(two instances, so one batch's copies overlap the other's run) and otherwise
the CPU variants' max_batch_size / dynamic_batching. --configs-only (with
--gpu) exports nothing: it writes the GPU variants next to models already in
bench/models/batching/.

Run with Debian's python (torch 1.13, onnx), or on the GPU machine with its
python3 (torch 2.11, onnx 1.23: the TorchScript exporter is asked for by name,
with the dynamo exporter as the fallback):
  /usr/bin/python3 bench/make_bench_models.py [--models bert_mini,bert_base,resnet50] [--fp16] [--gpu]
  /usr/bin/python3 bench/make_bench_models.py --models bert_mini --gpu --configs-only
"""

import argparse
import inspect
import math
import os
import shutil
import sys

import torch
from torch import nn

SEQ = 128
VOCAB = 30522


class Encoder(nn.Module):
    """A BERT encoder written out (the ONNX graph then has plain MatMul/Softmax)."""

    def __init__(self, layers, hidden, heads, ffn):
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.word = nn.Embedding(VOCAB, hidden)
        self.position = nn.Embedding(SEQ, hidden)
        self.token_type = nn.Embedding(2, hidden)
        self.embed_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList()
        for _ in range(layers):
            self.layers.append(nn.ModuleDict({
                "qkv": nn.Linear(hidden, 3 * hidden),
                "out": nn.Linear(hidden, hidden),
                "norm1": nn.LayerNorm(hidden, eps=1e-12),
                "up": nn.Linear(hidden, ffn),
                "down": nn.Linear(ffn, hidden),
                "norm2": nn.LayerNorm(hidden, eps=1e-12),
            }))
        self.pool = nn.Linear(hidden, hidden)
        self.classifier = nn.Linear(hidden, 2)
        self.register_buffer("positions", torch.arange(SEQ).unsqueeze(0))

    def forward(self, input_ids, attention_mask):
        b = input_ids.shape[0]
        x = self.word(input_ids) + self.position(self.positions) + self.token_type.weight[0]
        x = self.embed_norm(x)
        # [b, 1, 1, seq]: 0 where attended, a large negative where masked.
        bias = (1.0 - attention_mask.to(x.dtype)).unsqueeze(1).unsqueeze(2) * -10000.0
        scale = 1.0 / math.sqrt(self.head_dim)
        for layer in self.layers:
            qkv = layer["qkv"](x).view(b, SEQ, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = torch.matmul(q, k.transpose(-1, -2)) * scale + bias
            context = torch.matmul(torch.softmax(scores, dim=-1), v)
            context = context.permute(0, 2, 1, 3).reshape(b, SEQ, self.heads * self.head_dim)
            x = layer["norm1"](x + layer["out"](context))
            x = layer["norm2"](x + layer["down"](nn.functional.gelu(layer["up"](x))))
        pooled = torch.tanh(self.pool(x[:, 0]))
        return self.classifier(pooled)


class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNet50(nn.Module):
    """ResNet-50 v1.5 topology, written out (torchvision is not in Debian)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1))
        blocks = []
        cin = 64
        for width, count, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(count):
                blocks.append(Bottleneck(cin, width, stride if i == 0 else 1))
                cin = width * 4
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def randomize_batchnorm(model):
    """Random but sane running statistics, so activations neither vanish nor blow up."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.2, 0.5)


CONFIG = """name: "{name}"
backend: "onnxruntime"
max_batch_size: 64
input [
{inputs}
]
output [
  {{ name: "logits" data_type: {out_type} dims: [ {out_dims} ] }}
]
instance_group [ {instance_group} ]
{batching}"""

CPU_INSTANCES = "{ count: 1 kind: KIND_CPU }"
GPU_INSTANCES = "{{ count: {count} kind: KIND_GPU gpus: [ {gpu} ] }}"

BATCHING = """dynamic_batching {{
  max_queue_delay_microseconds: {delay}{preferred}
}}
"""
# Set from the command line (--queue-delay-us, --preferred-batch-size, --gpu*).
BATCHING_ARGS = {"delay": 2000, "preferred": ""}
GPU_ARGS = {"enabled": False, "count": 2, "gpu": 0}

BERT_INPUTS = [("input_ids", "TYPE_INT64", SEQ), ("attention_mask", "TYPE_INT64", SEQ)]
# name -> (inputs, output type, output dims): what each model's config.pbtxt declares.
SIGNATURES = {
    "bert_mini": (BERT_INPUTS, "TYPE_FP32", "2"),
    "bert_base": (BERT_INPUTS, "TYPE_FP32", "2"),
    "bert_base_fp16": (BERT_INPUTS, "TYPE_FP16", "2"),
    "resnet50": ([("input", "TYPE_FP32", "3, 224, 224")], "TYPE_FP32", "1000"),
}


def config_text(name, instance_group, batching):
    inputs, out_type, out_dims = SIGNATURES[name]
    lines = ",\n".join(f'  {{ name: "{n}" data_type: {t} dims: [ {d} ] }}' for n, t, d in inputs)
    return CONFIG.format(name=name, inputs=lines, out_type=out_type, out_dims=out_dims,
                         instance_group=instance_group, batching=batching)


def variants(gpu):
    """(folder, instance_group, batching) for the CPU or the GPU pair of variants."""
    if gpu:
        group = GPU_INSTANCES.format(**GPU_ARGS)
        return (("gpu_batching", group, BATCHING.format(**BATCHING_ARGS)), ("gpu_nobatching", group, ""))
    return (("batching", CPU_INSTANCES, BATCHING.format(**BATCHING_ARGS)), ("nobatching", CPU_INSTANCES, ""))


def link_or_copy(src, dst):
    """dst becomes the same file as src: a hard link where the file system allows, else a copy."""
    if os.path.exists(dst):
        if os.path.samefile(src, dst):
            return
        os.remove(dst)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def write_gpu_repo(root, name):
    """Writes the GPU variants of `name` next to its existing CPU model file."""
    source = os.path.join(root, "batching", name, "1", "model.onnx")
    if not os.path.isfile(source):
        sys.exit(f"--gpu: {source} does not exist (generate '{name}' first, without --configs-only)")
    for variant, group, batching in variants(gpu=True):
        model_dir = os.path.join(root, variant, name)
        os.makedirs(os.path.join(model_dir, "1"), exist_ok=True)
        link_or_copy(source, os.path.join(model_dir, "1", "model.onnx"))
        with open(os.path.join(model_dir, "config.pbtxt"), "w") as f:
            f.write(config_text(name, group, batching))
    print(f"{name}: GPU variants in {os.path.join(root, 'gpu_batching', name)} and gpu_nobatching")


def write_repo(root, name, onnx_bytes):
    for variant, group, batching in variants(gpu=False):
        model_dir = os.path.join(root, variant, name)
        os.makedirs(os.path.join(model_dir, "1"), exist_ok=True)
        with open(os.path.join(model_dir, "1", "model.onnx"), "wb") as f:
            f.write(onnx_bytes)
        with open(os.path.join(model_dir, "config.pbtxt"), "w") as f:
            f.write(config_text(name, group, batching))
    if GPU_ARGS["enabled"]:
        write_gpu_repo(root, name)


def export(model, args, input_names, path_tmp):
    """Exports to ONNX bytes (weights inline) with a dynamic batch dimension.

    torch 1.13 has only the TorchScript exporter. torch >= 2.9 defaults to the
    dynamo exporter (which may also write weights to a side file); ask for the
    TorchScript one by name and fall back to dynamo (opset 18, batch as a
    torch.export Dim) only if it is gone."""
    model.eval()
    dynamic = {n: {0: "batch"} for n in input_names}
    dynamic["logits"] = {0: "batch"}
    common = dict(input_names=input_names, output_names=["logits"], do_constant_folding=True)
    has_dynamo = "dynamo" in inspect.signature(torch.onnx.export).parameters
    with torch.no_grad():
        try:
            extra = {"dynamo": False} if has_dynamo else {}
            torch.onnx.export(model, args, path_tmp, dynamic_axes=dynamic, opset_version=17, **common, **extra)
        except Exception as legacy_error:  # noqa: BLE001 - any failure: try the other exporter.
            if not has_dynamo:
                raise
            print(f"TorchScript exporter failed ({legacy_error!r}); trying the dynamo exporter", file=sys.stderr)
            batch = torch.export.Dim("batch", min=1, max=1024)
            shapes = tuple({0: batch} for _ in input_names)  # Positional: forward()'s own argument names vary.
            torch.onnx.export(model, args, path_tmp, dynamo=True, external_data=False, opset_version=18,
                              dynamic_shapes=shapes, **common)
    side_files = [p for p in (path_tmp + ".data",) if os.path.exists(p)]
    if side_files:
        import onnx  # Inline the side file's weights (onnx.load reads them).
        data = onnx.load(path_tmp).SerializeToString()
    else:
        with open(path_tmp, "rb") as f:
            data = f.read()
    for p in [path_tmp] + side_files:
        os.remove(p)
    return data


def to_fp16(data):
    """FP32 -> FP16 for a whole exported graph: initializers, Constant tensors,
    Cast targets and the output become FLOAT16 (torch 1.13 cannot trace LayerNorm
    in half precision on CPU, so the conversion is done on the ONNX graph)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, numpy_helper
    model = onnx.load_from_string(data)
    graph = model.graph

    def convert(tensor):
        if tensor.data_type == TensorProto.FLOAT:
            array = numpy_helper.to_array(tensor).astype(np.float16)
            tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))

    for init in graph.initializer:
        convert(init)
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                convert(attr.t)
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
    for out in graph.output:
        if out.type.tensor_type.elem_type == TensorProto.FLOAT:
            out.type.tensor_type.elem_type = TensorProto.FLOAT16
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model.SerializeToString()


def make_bert(root, name, layers, hidden, heads, fp16=False):
    torch.manual_seed(1234)
    model = Encoder(layers, hidden, heads, 4 * hidden)
    for p in model.parameters():
        p.data.normal_(0.0, 0.02)
    ids = torch.randint(0, VOCAB, (2, SEQ), dtype=torch.int64)
    mask = torch.ones(2, SEQ, dtype=torch.int64)
    data = export(model, (ids, mask), ["input_ids", "attention_mask"], os.path.join(root, name + ".tmp.onnx"))
    if fp16:
        data = to_fp16(data)
    write_repo(root, name, data)
    print(f"{name}: {len(data) / 1e6:.1f} MB")


def make_resnet(root):
    torch.manual_seed(1234)
    model = ResNet50()
    randomize_batchnorm(model)
    x = torch.rand(2, 3, 224, 224)
    data = export(model, (x,), ["input"], os.path.join(root, "resnet50.tmp.onnx"))
    write_repo(root, "resnet50", data)
    print(f"resnet50: {len(data) / 1e6:.1f} MB")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(here, "models"), help="output folder (default bench/models)")
    parser.add_argument("--models", default="bert_mini", help="comma-separated: bert_mini,bert_base,resnet50")
    parser.add_argument("--fp16", action="store_true", help="also write bert_base_fp16")
    parser.add_argument("--queue-delay-us", type=int, default=2000,
                        help="dynamic_batching max_queue_delay_microseconds (default 2000)")
    parser.add_argument("--preferred-batch-size", default="",
                        help="comma-separated preferred_batch_size for the batching variant (default: none)")
    parser.add_argument("--gpu", action="store_true",
                        help="also write gpu_batching/<name> and gpu_nobatching/<name> (KIND_GPU instances)")
    parser.add_argument("--gpu-instances", type=int, default=2, help="instance_group count for --gpu (default 2)")
    parser.add_argument("--gpu-id", type=int, default=0, help="instance_group gpus for --gpu (default 0)")
    parser.add_argument("--configs-only", action="store_true",
                        help="with --gpu: export nothing, write the GPU variants of models already generated")
    args = parser.parse_args()
    if args.configs_only and not args.gpu:
        parser.error("--configs-only writes only the GPU variants: give --gpu too")
    if args.gpu_instances < 1:
        parser.error(f"--gpu-instances {args.gpu_instances}: must be at least 1")
    GPU_ARGS.update(enabled=args.gpu, count=args.gpu_instances, gpu=args.gpu_id)
    BATCHING_ARGS["delay"] = args.queue_delay_us
    if args.preferred_batch_size:
        BATCHING_ARGS["preferred"] = f"\n  preferred_batch_size: [ {args.preferred_batch_size.replace(',', ', ')} ]"
    os.makedirs(args.out, exist_ok=True)
    if args.configs_only:
        names = [n for n in args.models.split(",") if n] + (["bert_base_fp16"] if args.fp16 else [])
        for name in names:
            if name not in SIGNATURES:
                sys.exit(f"unknown model '{name}' (expected one of {', '.join(SIGNATURES)})")
            write_gpu_repo(args.out, name)
        return
    for name in args.models.split(","):
        if name == "bert_mini":
            make_bert(args.out, "bert_mini", 4, 256, 4)
        elif name == "bert_base":
            make_bert(args.out, "bert_base", 12, 768, 12)
        elif name == "resnet50":
            make_resnet(args.out)
        elif name:
            sys.exit(f"unknown model '{name}' (expected bert_mini, bert_base, resnet50)")
    if args.fp16:
        make_bert(args.out, "bert_base_fp16", 12, 768, 12, fp16=True)


if __name__ == "__main__":
    main()
