#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes models/text_embedding: a tiny BERT-shaped text encoder for the
embedding endpoints (TEI /embed, OpenAI /v1/embeddings) and their tests.

The weights are random (fixed seed): the embeddings are deterministic but carry
no meaning. It shares the SAE model's WordPiece vocabulary. Interface:
input_ids, attention_mask, token_type_ids int64 [batch, sequence] ->
last_hidden_state float32 [batch, sequence, 64]. Padded positions (mask 0)
are masked out of attention, so a row's outputs at its real positions do not
depend on how far it was padded.

Run with Debian's interpreter: /usr/bin/python3 scripts/make_embedding_model.py
"""
import argparse
import math
import os
import shutil

import onnx
import torch
from torch import nn

HIDDEN = 64
HEADS = 2
FFN = 128
LAYERS = 1
MAX_POSITIONS = 128


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(HIDDEN, 3 * HIDDEN)
        self.out = nn.Linear(HIDDEN, HIDDEN)
        self.norm1 = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.ff1 = nn.Linear(HIDDEN, FFN)
        self.ff2 = nn.Linear(FFN, HIDDEN)
        self.norm2 = nn.LayerNorm(HIDDEN, eps=1e-12)

    def forward(self, x, bias):
        b, s, _ = x.shape
        q, k, v = self.qkv(x).split(HIDDEN, dim=-1)
        head = HIDDEN // HEADS

        def split(t):
            return t.reshape(b, s, HEADS, head).transpose(1, 2)

        scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(head) + bias
        context = (scores.softmax(-1) @ split(v)).transpose(1, 2).reshape(b, s, HIDDEN)
        x = self.norm1(x + self.out(context))
        return self.norm2(x + self.ff2(torch.nn.functional.gelu(self.ff1(x))))


class Encoder(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, HIDDEN)
        self.positions = nn.Embedding(MAX_POSITIONS, HIDDEN)
        self.types = nn.Embedding(2, HIDDEN)
        self.norm = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.layers = nn.ModuleList([Layer() for _ in range(LAYERS)])

    def forward(self, input_ids, attention_mask, token_type_ids):
        positions = torch.arange(input_ids.shape[1]).unsqueeze(0)
        x = self.norm(self.tokens(input_ids) + self.positions(positions) + self.types(token_type_ids))
        bias = (1.0 - attention_mask.to(torch.float32))[:, None, None, :] * -10000.0
        for layer in self.layers:
            x = layer(x, bias)
        return x


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab", default=os.path.join(root, "models/sae_classifier/vocab.txt"))
    parser.add_argument("--out-dir", default=os.path.join(root, "models/text_embedding"))
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    with open(args.vocab, encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    model = Encoder(vocab_size).eval()
    os.makedirs(os.path.join(args.out_dir, "1"), exist_ok=True)
    shutil.copyfile(args.vocab, os.path.join(args.out_dir, "vocab.txt"))
    path = os.path.join(args.out_dir, "1", "model.onnx")
    ids = torch.tensor([[2, 34, 807, 3], [2, 34, 3, 0]], dtype=torch.int64)
    mask = (ids != 0).to(torch.int64)
    with torch.no_grad():
        torch.onnx.export(model, (ids, mask, torch.zeros_like(ids)), path,
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                        "attention_mask": {0: "batch", 1: "sequence"},
                                        "token_type_ids": {0: "batch", 1: "sequence"},
                                        "last_hidden_state": {0: "batch", 1: "sequence"}},
                          opset_version=14, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    print(f"wrote {path} ({os.path.getsize(path)} bytes), vocabulary {vocab_size}")
    print("now regenerate its INT8 sibling: make int8-models (docs/int8.md)")


if __name__ == "__main__":
    main()
