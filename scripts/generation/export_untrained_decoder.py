#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Exports an untrained decoder (random weights, seeded) in the demo model's
layout, with the demo tokenizer, as a model folder ortserve serves.

Tests use it where they need a generation that takes a while (a stream that
is still running when the test acts on it): with --positions 2048 and
--max-tokens 2000 a request runs for seconds, where the demo model's
200 tokens take a fraction of one. Its text is noise; only its cost matters.

    /usr/bin/python3 scripts/generation/export_untrained_decoder.py OUT_DIR \\
        [--d-model 256] [--layers 4] [--heads 4] [--positions 2048] [--generation kv_cache_bytes=...]
"""

import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_decoder  # noqa: E402  (the model definition and ONNX layout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--name", default="slow_decoder")
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--positions", type=int, default=2048)
    ap.add_argument("--max-tokens", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--parameter", action="append", default=[],
                    help="KEY=VALUE: the model parameter generation.KEY (repeatable; the deprecated "
                         "spelling of the batching settings)")
    ap.add_argument("--generation", action="append", default=[],
                    help="KEY=VALUE: the field KEY of the generation block (repeatable), e.g. kv_cache_bytes=...")
    args = ap.parse_args()

    import torch
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    demo = os.path.join(train_decoder.ROOT, "models", "tiny_decoder")
    model_dir = os.path.join(args.out_dir, args.name)
    os.makedirs(os.path.join(model_dir, "1"), exist_ok=True)
    shutil.copy(os.path.join(demo, "tokenizer.json"), model_dir)
    import json
    with open(os.path.join(demo, "tokenizer.json"), encoding="utf-8") as f:
        vocab_size = len(json.load(f)["model"]["vocab"])
    model = train_decoder.build_model(torch, vocab_size, args.d_model, args.layers, args.heads, args.positions)
    model.eval()
    hd = args.d_model // args.heads
    ex_past = [torch.randn(2, args.heads, 3, hd) for _ in range(2 * args.layers)]
    ex = (torch.tensor([[5, 6], [7, 8]]), torch.ones(2, 5, dtype=torch.int64), torch.tensor([[3, 4], [3, 4]]))
    in_names = ["input_ids", "attention_mask", "position_ids"]
    out_names = ["logits"]
    dyn = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "total_sequence"},
           "position_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch", 1: "sequence"}}
    for i in range(args.layers):
        for kv in ("key", "value"):
            in_names.append(f"past_key_values.{i}.{kv}")
            out_names.append(f"present.{i}.{kv}")
            dyn[in_names[-1]] = {0: "batch", 2: "past_sequence"}
            dyn[out_names[-1]] = {0: "batch", 2: "total_sequence"}
    with torch.no_grad():
        torch.onnx.export(model, (*ex, *ex_past), os.path.join(model_dir, "1", "model.onnx"), opset_version=14,
                          input_names=in_names, output_names=out_names, dynamic_axes=dyn,
                          do_constant_folding=True)
    with open(os.path.join(model_dir, "config.pbtxt"), "w", encoding="utf-8") as f:
        f.write(f'name: "{args.name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 0\n'
                f'generation {{\n  tokenizer: "tokenizer.json"\n  max_context_tokens: {args.positions}\n'
                f'  max_tokens_limit: {args.max_tokens}\n')
        for p in args.generation:
            key, _, value = p.partition("=")
            f.write(f'  {key}: {value}\n')
        f.write('}\n')
        for p in args.parameter:
            key, _, value = p.partition("=")
            f.write(f'parameters {{ key: "generation.{key}" value {{ string_value: "{value}" }} }}\n')


if __name__ == "__main__":
    main()
