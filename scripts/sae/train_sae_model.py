#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Trains and exports the demo serious-adverse-event (SAE) text classifier.

Steps, all deterministic for a given seed, CPU only, one thread:
  1. read data/sae/corpus.jsonl (made by scripts/sae/make_corpus.py);
  2. build a BERT-style uncased WordPiece vocabulary from the train split;
  3. train a 2-layer transformer encoder from scratch (AdamW) on three labels
     (not_serious, serious, out_of_scope); the epoch is chosen on the
     validation split;
  4. fit a calibration temperature on the validation split (NLL);
  5. export it to ONNX (input_ids, attention_mask, token_type_ids -> logits);
  6. verify the export (onnx.checker, a numpy evaluation of the ONNX graph
     compared with torch, padding invariance) and evaluate on the test split
     and on the hand-written probes (data/sae/probes.jsonl: evaluated only,
     never trained or selected on).

    /usr/bin/python3 scripts/sae/train_sae_model.py

Outputs (under models/sae_classifier/): 1/model.onnx, vocab.txt, labels.txt,
metrics.json, and the calibration temperature and threshold in config.pbtxt
(text_pipeline.calibration_temperature, text_pipeline.threshold), which
ortserve applies to the logits.

The tokenizer here follows the original BERT algorithm (BasicTokenizer +
WordpieceTokenizer) exactly, because the server tokenizes natively in C++ with
the same vocab.txt and must produce the same ids.
"""

import argparse
import collections
import hashlib
import heapq
import json
import math
import os
import random
import re
import time
import unicodedata

import numpy as np
import torch
from torch import nn

LABELS = ["not_serious", "serious", "out_of_scope"]
SERIOUS_ID = 1  # the positive label: ortserve thresholds p(serious) (text_pipeline.positive_label)
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(5)
MAX_LENGTH = 128
MAX_INPUT_CHARS_PER_WORD = 100


# ---------------------------------------------------------------------------
# BERT tokenizer (BasicTokenizer + WordpieceTokenizer), uncased.
# ---------------------------------------------------------------------------
def _is_whitespace(ch):
    if ch in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(ch) == "Zs"


def _is_control(ch):
    if ch in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def basic_tokenize(text):
    """BERT BasicTokenizer with do_lower_case=True (which also strips accents)."""
    cleaned = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        cleaned.append(" " if _is_whitespace(ch) else ch)
    spaced = []
    for ch in cleaned:
        if _is_cjk(ord(ch)):
            spaced.extend([" ", ch, " "])
        else:
            spaced.append(ch)
    out = []
    for token in "".join(spaced).strip().split():
        token = token.lower()
        token = "".join(c for c in unicodedata.normalize("NFD", token) if unicodedata.category(c) != "Mn")
        current = []
        for ch in token:
            if _is_punctuation(ch):
                if current:
                    out.append("".join(current))
                    current = []
                out.append(ch)
            else:
                current.append(ch)
        if current:
            out.append("".join(current))
    return " ".join(out).strip().split()


def wordpiece(word, vocab):
    """Greedy longest-match-first WordPiece; the whole word becomes [UNK] if any part fails."""
    if len(word) > MAX_INPUT_CHARS_PER_WORD:
        return ["[UNK]"]
    pieces = []
    start = 0
    while start < len(word):
        end = len(word)
        found = None
        while start < end:
            sub = word[start:end]
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                found = sub
                break
            end -= 1
        if found is None:
            return ["[UNK]"]
        pieces.append(found)
        start = end
    return pieces


class Tokenizer:
    def __init__(self, vocab_list):
        self.vocab_list = list(vocab_list)
        self.vocab = {t: i for i, t in enumerate(self.vocab_list)}

    def tokenize(self, text):
        out = []
        for w in basic_tokenize(text):
            out.extend(wordpiece(w, self.vocab))
        return out

    def encode(self, text, max_length=MAX_LENGTH):
        """Returns ids [CLS] ... [SEP], truncated to max_length (no padding)."""
        pieces = self.tokenize(text)[: max_length - 2]
        return [CLS_ID] + [self.vocab[p] for p in pieces] + [SEP_ID]


def build_vocab(texts, target_size):
    """WordPiece vocabulary: specials, every character seen (bare and ##), then
    pieces from greedy most-frequent-pair merges over the word counts (the merge
    procedure used by common WordPiece trainers), until target_size or until
    every word is a single piece. Pairs seen at least twice are merged first."""
    word_counts = collections.Counter()
    for t in texts:
        word_counts.update(basic_tokenize(t))
    chars = sorted({c for w in word_counts for c in w})
    vocab = list(SPECIALS) + chars + ["##" + c for c in chars]
    present = set(vocab)
    words = [[w[0]] + ["##" + c for c in w[1:]] for w in word_counts]
    counts = list(word_counts.values())
    # Pair counts, kept up to date incrementally; the heap holds (-count, a, b)
    # entries, stale ones skipped on pop. Same choice as recounting every
    # round: highest count, ties broken by the pair's text.
    pairs = collections.Counter()
    where = collections.defaultdict(set)
    for i, syms in enumerate(words):
        for x, y in zip(syms, syms[1:]):
            pairs[(x, y)] += counts[i]
            where[(x, y)].add(i)
    heap = [(-c, x, y) for (x, y), c in pairs.items()]
    heapq.heapify(heap)
    while len(vocab) < target_size:
        while heap and pairs.get((heap[0][1], heap[0][2]), 0) != -heap[0][0]:
            heapq.heappop(heap)
        if not heap:
            break
        _, a, b = heapq.heappop(heap)
        merged = a + b[2:]
        changed = set()
        for i in sorted(where.pop((a, b), ())):
            syms, n = words[i], counts[i]
            for x, y in zip(syms, syms[1:]):
                pairs[(x, y)] -= n
                changed.add((x, y))
            j, new = 0, []
            while j < len(syms):
                if j + 1 < len(syms) and syms[j] == a and syms[j + 1] == b:
                    new.append(merged)
                    j += 2
                else:
                    new.append(syms[j])
                    j += 1
            words[i] = new
            for x, y in zip(new, new[1:]):
                pairs[(x, y)] += n
                where[(x, y)].add(i)
                changed.add((x, y))
        for pair in changed:
            c = pairs[pair]
            if c > 0:
                heapq.heappush(heap, (-c, pair[0], pair[1]))
            else:
                del pairs[pair]
        if merged not in present:
            present.add(merged)
            vocab.append(merged)
    return vocab


# ---------------------------------------------------------------------------
# Model: a small BERT-like encoder with a [CLS] classification head.
# ---------------------------------------------------------------------------
class EncoderLayer(nn.Module):
    def __init__(self, hidden, heads, ffn, dropout):
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.ffn_in = nn.Linear(hidden, ffn)
        self.ffn_out = nn.Linear(ffn, hidden)
        self.ffn_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)

    def _split(self, x):
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x, additive_mask):
        b, s, h = x.shape
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + additive_mask
        probs = self.drop(torch.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, s, h)
        x = self.attn_norm(x + self.drop(self.attn_out(ctx)))
        x = self.ffn_norm(x + self.drop(self.ffn_out(self.act(self.ffn_in(x)))))
        return x


class SaeClassifier(nn.Module):
    def __init__(self, vocab_size, hidden=128, layers=2, heads=4, ffn=512, max_length=MAX_LENGTH,
                 type_vocab=2, num_labels=len(LABELS), dropout=0.1, pooling="cls"):
        super().__init__()
        self.pooling = pooling
        self.word_embeddings = nn.Embedding(vocab_size, hidden)
        self.position_embeddings = nn.Embedding(max_length, hidden)
        self.token_type_embeddings = nn.Embedding(type_vocab, hidden)
        self.register_buffer("position_ids", torch.arange(max_length).unsqueeze(0), persistent=False)
        self.emb_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList([EncoderLayer(hidden, heads, ffn, dropout) for _ in range(layers)])
        self.pooler = nn.Linear(2 * hidden if pooling == "meanmax" else hidden, hidden)
        self.classifier = nn.Linear(hidden, num_labels)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, input_ids, attention_mask, token_type_ids):
        seq = input_ids.size(1)
        pos = self.position_ids[:, :seq]
        x = self.word_embeddings(input_ids) + self.position_embeddings(pos) + self.token_type_embeddings(token_type_ids)
        x = self.drop(self.emb_norm(x))
        # Padded keys get -10000 before softmax: exp() underflows to exactly 0 in float32.
        additive = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, additive)
        if self.pooling == "mean":
            # Mean over the real tokens ([CLS] and [SEP] included, padding not).
            m = attention_mask.to(x.dtype).unsqueeze(-1)
            h = (x * m).sum(dim=1) / m.sum(dim=1)
        elif self.pooling in ("max", "meanmax"):
            # Max over the real tokens: padded positions get -10000 first, so
            # they never win (and padding does not change the result). One
            # serious phrase raises its features however much mild text
            # surrounds it; "meanmax" puts the mean beside it.
            m = attention_mask.to(x.dtype).unsqueeze(-1)
            h = torch.amax(x + (m - 1.0) * 10000.0, dim=1)
            if self.pooling == "meanmax":
                h = torch.cat([(x * m).sum(dim=1) / m.sum(dim=1), h], dim=-1)
        else:
            h = x[:, 0]
        pooled = torch.tanh(self.pooler(h))
        return self.classifier(self.drop(pooled))


# ---------------------------------------------------------------------------
# Data helpers.
# ---------------------------------------------------------------------------
def pad_batch(seqs, pad_to=None):
    n = pad_to or max(len(s) for s in seqs)
    ids = torch.zeros((len(seqs), n), dtype=torch.int64)
    mask = torch.zeros((len(seqs), n), dtype=torch.int64)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.int64)
        mask[i, : len(s)] = 1
    return ids, mask, torch.zeros_like(ids)


@torch.no_grad()
def predict_logits(model, seqs, batch_size=128):
    model.eval()
    out = []
    for i in range(0, len(seqs), batch_size):
        ids, mask, tt = pad_batch(seqs[i: i + batch_size])
        out.append(model(ids, mask, tt))
    return torch.cat(out).numpy().astype(np.float64)


def softmax(logits, temperature=1.0):
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits, labels):
    """Temperature scaling (Guo et al. 2017): the T > 0 minimising the
    negative log-likelihood of softmax(logits / T), by a log-spaced grid
    search refined by golden-section search (deterministic, no torch)."""
    labels = np.asarray(labels)

    def nll(t):
        p = softmax(logits, t)
        return float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, 1)).mean())

    grid = np.exp(np.linspace(np.log(0.05), np.log(10.0), 200))
    k = int(np.argmin([nll(t) for t in grid]))
    lo, hi = grid[max(0, k - 1)], grid[min(len(grid) - 1, k + 1)]
    g = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    t = (lo + hi) / 2
    return float(t), nll(1.0), nll(t)


def reliability(is_serious, p_serious, bins=10):
    """Expected calibration error of p(serious) as a forecast of 'serious'
    (10 equal-width bins, weighted by count) and the reliability table."""
    y = np.asarray(is_serious, dtype=np.float64)
    p = np.asarray(p_serious, dtype=np.float64)
    table, ece = [], 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        sel = (p >= lo) & ((p < hi) if b < bins - 1 else (p <= hi))
        n = int(sel.sum())
        if n == 0:
            table.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": 0})
            continue
        mean_p, frac = float(p[sel].mean()), float(y[sel].mean())
        ece += n / len(p) * abs(mean_p - frac)
        table.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": n, "mean_p_serious": round(mean_p, 4),
                      "fraction_serious": round(frac, 4)})
    return round(ece, 4), table


def top_label_ece(labels, probs, bins=10):
    """ECE of the winning label's probability (all labels), for reference."""
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(labels)).astype(np.float64)
    ece = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.sum() / len(conf) * abs(conf[sel].mean() - correct[sel].mean())
    return round(float(ece), 4)


def evaluate(labels, probs, threshold):
    """Serious-vs-rest metrics at `threshold` on p(serious), three-label
    accuracy, and calibration."""
    labels = np.asarray(labels)
    y = (labels == SERIOUS_ID).astype(int)
    p = probs[:, SERIOUS_ID]
    pred = (p >= threshold).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    ece, table = reliability(y, p)
    oos = labels == 2
    return {"n": int(len(labels)), "accuracy": round((tp + tn) / len(labels), 4),
            "precision_serious": round(precision, 4), "recall_serious": round(recall, 4),
            "f1_serious": round(f1, 4), "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
            "label_accuracy": round(float((probs.argmax(axis=1) == labels).mean()), 4),
            "out_of_scope_recall": round(float((probs[oos].argmax(axis=1) == 2).mean()), 4) if oos.any() else None,
            "ece_serious_10_bins": ece, "ece_top_label_10_bins": top_label_ece(labels, probs),
            "reliability_serious": table}


# ---------------------------------------------------------------------------
# A small numpy evaluator for the exported ONNX graph (onnxruntime is not
# available here). It covers exactly the ops this export produces and fails
# loudly on anything else, so a change in the export cannot slip by unverified.
# ---------------------------------------------------------------------------
def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype)


def run_onnx_numpy(model_proto, feeds):
    from onnx import numpy_helper
    env = dict(feeds)
    for init in model_proto.graph.initializer:
        env[init.name] = numpy_helper.to_array(init)

    def attr(node, name, default=None):
        for a in node.attribute:
            if a.name == name:
                import onnx
                return onnx.helper.get_attribute_value(a)
        return default

    for node in model_proto.graph.node:
        ins = [env[n] if n else None for n in node.input]
        op = node.op_type
        if op == "Constant":
            out = numpy_helper.to_array(attr(node, "value"))
        elif op == "Shape":
            out = np.array(ins[0].shape, dtype=np.int64)
        elif op == "Gather":
            out = np.take(ins[0], ins[1].astype(np.int64), axis=attr(node, "axis", 0))
        elif op == "Unsqueeze":
            out = ins[0]
            for ax in sorted(int(a) % (out.ndim + len(ins[1])) for a in ins[1]):
                out = np.expand_dims(out, ax)
        elif op == "Squeeze":
            out = np.squeeze(ins[0], axis=tuple(int(a) for a in ins[1])) if len(ins) > 1 else np.squeeze(ins[0])
        elif op == "Concat":
            out = np.concatenate(ins, axis=attr(node, "axis"))
        elif op == "Slice":
            data, starts, ends = ins[0], ins[1], ins[2]
            axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
            steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
            sl = [slice(None)] * data.ndim
            for s, e, a, st in zip(starts, ends, axes, steps):
                sl[int(a)] = slice(int(s), int(min(e, 2**62)), int(st))
            out = data[tuple(sl)]
        elif op == "Cast":
            import onnx
            out = ins[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[attr(node, "to")])
        elif op in ("Add", "Sub", "Mul", "Div", "Pow", "Equal", "Where"):
            fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power,
                  "Equal": np.equal}
            out = np.where(*ins) if op == "Where" else fn[op](ins[0], ins[1])
            if op in ("Add", "Sub", "Mul", "Div", "Pow"):
                out = out.astype(ins[0].dtype)
        elif op == "MatMul":
            out = np.matmul(ins[0], ins[1])
        elif op == "Gemm":
            a = ins[0].T if attr(node, "transA", 0) else ins[0]
            b = ins[1].T if attr(node, "transB", 0) else ins[1]
            out = attr(node, "alpha", 1.0) * (a @ b)
            if len(ins) > 2 and ins[2] is not None:
                out = out + attr(node, "beta", 1.0) * ins[2]
            out = out.astype(np.float32)
        elif op == "Reshape":
            shape = [int(d) for d in ins[1]]
            shape = [ins[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
            out = ins[0].reshape(shape)
        elif op == "Transpose":
            out = np.transpose(ins[0], attr(node, "perm"))
        elif op == "Softmax":
            ax = attr(node, "axis", -1)
            e = np.exp(ins[0] - ins[0].max(axis=ax, keepdims=True))
            out = e / e.sum(axis=ax, keepdims=True)
        elif op == "ReduceSum":
            axes = tuple(int(a) for a in ins[1]) if len(ins) > 1 and ins[1] is not None else attr(node, "axes")
            out = ins[0].sum(axis=tuple(axes) if axes is not None else None,
                             keepdims=bool(attr(node, "keepdims", 1))).astype(ins[0].dtype)
        elif op == "ReduceMax":
            axes = attr(node, "axes")
            out = ins[0].max(axis=tuple(axes) if axes is not None else None, keepdims=bool(attr(node, "keepdims", 1)))
        elif op == "ReduceMean":
            out = ins[0].mean(axis=tuple(attr(node, "axes")), keepdims=bool(attr(node, "keepdims", 1)))
        elif op == "Sqrt":
            out = np.sqrt(ins[0])
        elif op == "Erf":
            out = _erf(ins[0])
        elif op == "Tanh":
            out = np.tanh(ins[0])
        elif op == "ConstantOfShape":
            v = attr(node, "value")
            v = numpy_helper.to_array(v) if v is not None else np.zeros(1, np.float32)
            out = np.full(tuple(int(d) for d in ins[0]), v.reshape(-1)[0], dtype=v.dtype)
        elif op == "Expand":
            out = ins[0] * np.ones(tuple(int(d) for d in ins[1]), dtype=ins[0].dtype)
        elif op == "Identity":
            out = ins[0]
        else:
            raise NotImplementedError(f"numpy ONNX evaluator: op {op} (node {node.name}) not supported")
        env[node.output[0]] = np.asarray(out)
    return {o.name: env[o.name] for o in model_proto.graph.output}


# ---------------------------------------------------------------------------
# Examples for the integration tests: ortserve must reproduce these
# probabilities (tests/integration/pipeline_test.cc reads them from
# metrics.json). They are the 18 probes of the first demo model plus two
# out-of-scope texts; all of them are also in data/sae/probes.jsonl.
# ---------------------------------------------------------------------------
EXAMPLES = [
    "I can't breathe and my chest hurts",
    "my throat is swelling up after the injection",
    "I passed out in the bathroom this morning",
    "dizzy and faintd after my dose",
    "cant breath",
    "mild headache and a little tired, otherwise fine, but i had a seizure last night",
    "I have been thinking about killing myself",
    "went to the ER last night because of chest pain",
    "vomiting blood since this morning",
    "my face is drooping on one side and my speech is slurred",
    "mild headache today",
    "a bit tired after the shot, arm is sore",
    "no chest pain, no shortness of breath, just a mild headache",
    "I didn't faint, just felt a little dizzy when standing up",
    "denies shortness of breath. slight nausea after breakfast",
    "Trouble sleeping and dry mouth, nothing else",
    "feeling fine today, no side effects",
    "small itchy rash on my wrist, no blisters",
    "asdfgh",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit",
]


# Tokenizer expectations for the C++ BERT tokenizer: accents, punctuation, CJK,
# control characters, characters missing from the vocabulary, misspellings.
TOKENIZER_CASES = [
    "I can't breathe!!",
    "Héllo, WORLD... naïve café",
    "dizzy and faintd @ 3:15pm (took 2.5mg)",
    "chest\tpain\u00a0since\r\nyesterday",
    "fever 39\u00b0C \u2014 \u201cbad\u201d",
    "\u4e2d\u6587 text",
    "emoji \U0001f622 and zero\u200bwidth",
    "supercalifragilisticexpialidocious" * 4,
]


def set_determinism(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=os.path.join(root, "data", "sae", "corpus.jsonl"))
    ap.add_argument("--out-dir", default=os.path.join(root, "models", "sae_classifier"))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--probes", default=os.path.join(root, "data", "sae", "probes.jsonl"),
                    help="hand-written probe set, evaluated only (never trained or selected on)")
    ap.add_argument("--threshold", type=float, default=0.0,
                    help="on calibrated p(serious), written to config.pbtxt; 0 (default): chosen on the "
                         "validation split by the rule of --val-recall and --val-precision")
    ap.add_argument("--val-precision", type=float, default=0.90,
                    help="threshold rule: the validation precision the threshold must keep")
    ap.add_argument("--val-recall", type=float, default=0.97,
                    help="threshold rule: the highest threshold with this validation recall (and the precision)")
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--token-dropout", type=float, default=0.1)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--opset", type=int, default=14)
    ap.add_argument("--pooling", choices=["cls", "mean", "max", "meanmax"], default="meanmax",
                    help="sentence vector: the [CLS] state (BERT's pooler), the mean or the maximum over the "
                         "real tokens, or the mean and the maximum side by side")
    ap.add_argument("--hidden", type=int, default=128, help="encoder width")
    ap.add_argument("--layers", type=int, default=2, help="encoder layers")
    ap.add_argument("--heads", type=int, default=4, help="attention heads")
    ap.add_argument("--ffn", type=int, default=512, help="feed-forward width")
    args = ap.parse_args()

    t_start = time.time()
    set_determinism(args.seed)

    rows = [json.loads(line) for line in open(args.corpus, encoding="utf-8")]
    split = {s: [r for r in rows if r["split"] == s] for s in ("train", "val", "test")}
    print({s: len(v) for s, v in split.items()})

    vocab = build_vocab([r["text"] for r in split["train"]], args.vocab_size)
    tok = Tokenizer(vocab)
    print(f"vocab: {len(vocab)} entries ({time.time() - t_start:.1f}s)")
    enc = {s: [tok.encode(r["text"]) for r in v] for s, v in split.items()}
    lab = {s: [r["label"] for r in v] for s, v in split.items()}
    unk_rate = {s: round(sum(x.count(UNK_ID) for x in e) / sum(len(x) for x in e), 5) for s, e in enc.items()}

    model = SaeClassifier(len(vocab), hidden=args.hidden, layers=args.layers, heads=args.heads, ffn=args.ffn,
                          pooling=args.pooling)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params}")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps_per_epoch = math.ceil(len(enc["train"]) / args.batch_size)
    total = steps_per_epoch * args.epochs
    warmup = max(1, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    gen = torch.Generator().manual_seed(args.seed)

    best = (-1.0, None, -1)
    history = []
    for epoch in range(args.epochs):
        model.train()
        # Length bucketing: shuffle, sort chunks of 16 batches by length, shuffle the batches.
        # Keeps padding (and CPU time) low while every epoch still sees a fresh order.
        order = torch.randperm(len(enc["train"]), generator=gen).tolist()
        chunk = args.batch_size * 16
        batches = []
        for c in range(0, len(order), chunk):
            part = sorted(order[c: c + chunk], key=lambda j: len(enc["train"][j]))
            batches.extend(part[i: i + args.batch_size] for i in range(0, len(part), args.batch_size))
        batches = [batches[k] for k in torch.randperm(len(batches), generator=gen).tolist()]
        running = 0.0
        for idx in batches:
            ids, mask, tt = pad_batch([enc["train"][j] for j in idx])
            # Token dropout: replace some word pieces with [MASK] so the model cannot
            # lean on any single (possibly misspelled) piece. [CLS]/[SEP]/[PAD] stay.
            drop = (torch.rand(ids.shape, generator=gen) < args.token_dropout) & (ids > MASK_ID)
            ids = ids.masked_fill(drop, MASK_ID)
            y = torch.tensor([lab["train"][j] for j in idx], dtype=torch.int64)
            loss = loss_fn(model(ids, mask, tt), y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            running += loss.item() * len(idx)
        val = evaluate(lab["val"], softmax(predict_logits(model, enc["val"])), 0.5)
        history.append({"epoch": epoch + 1, "train_loss": round(running / len(order), 4),
                        "val_label_accuracy": val["label_accuracy"], "val_f1_serious": val["f1_serious"]})
        print(f"epoch {epoch + 1}: loss {running / len(order):.4f} val label acc {val['label_accuracy']:.4f} "
              f"f1 {val['f1_serious']:.4f} ({time.time() - t_start:.1f}s)", flush=True)
        # Model selection on the validation split only (never on the probes).
        if val["label_accuracy"] > best[0]:
            best = (val["label_accuracy"], {k: v.clone() for k, v in model.state_dict().items()}, epoch + 1)
    model.load_state_dict(best[1])
    model.eval()
    print(f"best epoch by val label accuracy: {best[2]}")

    # --- calibration: temperature scaling fit on the validation split ------------
    val_logits = predict_logits(model, enc["val"])
    temperature, nll_before, nll_after = fit_temperature(val_logits, lab["val"])
    print(f"temperature {temperature:.4f} (val NLL {nll_before:.4f} -> {nll_after:.4f})")
    if args.threshold > 0:
        threshold = args.threshold
    else:
        # Issue 17's bar (recall >= 0.97 at precision >= 0.90) applied to the
        # calibrated validation split, never to the probes: on a 0.05 grid,
        # the highest threshold with validation recall >= --val-recall and
        # precision >= --val-precision; if no threshold has both, the lowest
        # one with precision >= --val-precision (the most recall at that
        # precision; a safety screen would rather over-report).
        p_val, y_val = softmax(val_logits, temperature)[:, SERIOUS_ID], np.asarray(lab["val"]) == SERIOUS_ID

        def val_precision(t):
            pred = p_val >= t
            return (pred & y_val).sum() / max(1, pred.sum())

        def val_recall(t):
            return ((p_val >= t) & y_val).sum() / max(1, y_val.sum())

        grid = [round(float(t), 2) for t in np.arange(0.05, 0.951, 0.05)]
        precise = [t for t in grid if val_precision(t) >= args.val_precision]
        both = [t for t in precise if val_recall(t) >= args.val_recall]
        threshold = max(both) if both else (min(precise) if precise else 0.5)
        print(f"threshold {threshold} (validation precision {val_precision(threshold):.4f}, "
              f"recall {val_recall(threshold):.4f}; recall target {'met' if both else 'not met'})")

    # --- write vocab / labels -----------------------------------------------
    os.makedirs(os.path.join(args.out_dir, "1"), exist_ok=True)
    with open(os.path.join(args.out_dir, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(args.out_dir, "labels.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(LABELS) + "\n")

    # --- export ---------------------------------------------------------------
    onnx_path = os.path.join(args.out_dir, "1", "model.onnx")
    ex_ids, ex_mask, ex_tt = pad_batch([enc["val"][0], enc["val"][1]])
    dyn = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
           "token_type_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch"}}
    torch.onnx.export(model, (ex_ids, ex_mask, ex_tt), onnx_path, opset_version=args.opset,
                      input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
                      dynamic_axes=dyn, do_constant_folding=True)
    import onnx
    proto = onnx.load(onnx_path)
    onnx.checker.check_model(proto, full_check=True)
    op_types = sorted({n.op_type for n in proto.graph.node})
    print(f"exported {onnx_path} ({os.path.getsize(onnx_path)} bytes), ops: {op_types}")

    # --- verify: numpy evaluation of the ONNX graph vs torch, shapes and padding ---
    checks = {}
    example_seqs = [tok.encode(t) for t in EXAMPLES]
    for name, seqs, pad_to in [("examples_dynamic_pad", example_seqs, None),
                               ("examples_pad_128", example_seqs, MAX_LENGTH),
                               ("single_unpadded", example_seqs[:1], None),
                               ("test_batch_7", enc["test"][:7], None)]:
        ids, mask, tt = pad_batch(seqs, pad_to)
        with torch.no_grad():
            ref = model(ids, mask, tt).numpy()
        got = run_onnx_numpy(proto, {"input_ids": ids.numpy(), "attention_mask": mask.numpy(),
                                     "token_type_ids": tt.numpy()})["logits"]
        assert got.shape == ref.shape == (len(seqs), len(LABELS)), (name, got.shape, ref.shape)
        assert got.dtype == np.float32, got.dtype
        diff = float(np.abs(got - ref).max())
        checks[f"onnx_vs_torch_max_abs_diff[{name}]"] = diff
        assert diff < 1e-4, f"ONNX graph disagrees with torch on {name}: {diff}"
    # Padding invariance: each text alone at its own length vs padded to 128.
    pad_diff = 0.0
    for s in example_seqs + enc["test"][:50]:
        with torch.no_grad():
            a = model(*pad_batch([s])).numpy()
            b = model(*pad_batch([s], MAX_LENGTH)).numpy()
        pad_diff = max(pad_diff, float(np.abs(a - b).max()))
    checks["padding_own_length_vs_128_max_abs_diff"] = pad_diff
    assert pad_diff < 1e-5, f"padding changes logits by {pad_diff}"
    print(f"verification: {checks}")

    # --- evaluate (calibrated probabilities, as ortserve computes them) ---------
    def probs_of(seqs):
        return softmax(predict_logits(model, seqs), temperature)

    test_probs, val_probs = probs_of(enc["test"]), softmax(val_logits, temperature)
    test_m = evaluate(lab["test"], test_probs, threshold)
    val_m = evaluate(lab["val"], val_probs, threshold)
    test_m["uncalibrated"] = {k: v for k, v in evaluate(lab["test"], softmax(predict_logits(model, enc["test"])),
                                                        threshold).items() if k.startswith("ece")}
    errors = [{"text": r["text"], "label": LABELS[r["label"]], "kind": r.get("kind"),
               "p": [round(float(x), 4) for x in p]}
              for r, p in zip(split["test"], test_probs)
              if int(p[SERIOUS_ID] >= threshold) != int(r["label"] == SERIOUS_ID)]

    # The probe set (data/sae/probes.jsonl): evaluated here, never trained or selected on.
    probes = [json.loads(line) for line in open(args.probes, encoding="utf-8")] if os.path.exists(args.probes) else []
    probe_m, probe_errors, by_category = None, [], {}
    if probes:
        probe_labels = [LABELS.index(r["label"]) for r in probes]
        probe_probs = probs_of([tok.encode(r["text"]) for r in probes])
        probe_m = evaluate(probe_labels, probe_probs, threshold)
        probe_m["uncalibrated"] = {k: v for k, v in evaluate(
            probe_labels, softmax(predict_logits(model, [tok.encode(r["text"]) for r in probes])), threshold).items()
            if k.startswith("ece")}
        for r, p in zip(probes, probe_probs):
            key = f'{r["label"]}/{r["category"]}'
            ok = int(p[SERIOUS_ID] >= threshold) == int(r["label"] == "serious")
            c = by_category.setdefault(key, {"n": 0, "correct": 0})
            c["n"] += 1
            c["correct"] += int(ok)
            if not ok:
                probe_errors.append({"text": r["text"], "label": r["label"], "category": r["category"],
                                     "p": [round(float(x), 4) for x in p]})

    example_logits = predict_logits(model, example_seqs)
    examples = []
    for text, seq, lg in zip(EXAMPLES, example_seqs, example_logits):
        p = softmax(lg[None, :], temperature)[0]
        examples.append({"text": text, "p_serious": round(float(p[SERIOUS_ID]), 6),
                         "probabilities": [round(float(x), 6) for x in p],
                         "predicted_label": LABELS[int(p.argmax())], "is_sae": bool(p[SERIOUS_ID] >= threshold),
                         "input_ids": seq})
    print(f"test: { {k: v for k, v in test_m.items() if k != 'reliability_serious'} }")
    print(f"val: { {k: v for k, v in val_m.items() if k != 'reliability_serious'} }")
    if probe_m:
        print(f"probes: { {k: v for k, v in probe_m.items() if k != 'reliability_serious'} }")
        for e in probe_errors:
            print(f"  probe miss {e['label']:12s} {e['category']:20s} {e['p']} {e['text']}")
    for e in examples:
        print(f"  {e['p_serious']:.4f} {e['predicted_label']:12s} {e['text']}")

    tokenizer_cases = [{"text": t, "tokens": tok.tokenize(t), "input_ids": tok.encode(t)} for t in TOKENIZER_CASES]
    # ortserve reads the calibration and the threshold from config.pbtxt.
    config_path = os.path.join(args.out_dir, "config.pbtxt")
    if os.path.exists(config_path):
        cfg = open(config_path, encoding="utf-8").read()
        cfg, n_t = re.subn(r'(key: "text_pipeline\.calibration_temperature" value: \{ string_value: ")[^"]*(")',
                           lambda m: f"{m.group(1)}{temperature:.4f}{m.group(2)}", cfg)
        cfg, n_h = re.subn(r"(\n  threshold: )[0-9.]+", lambda m: f"{m.group(1)}{threshold}", cfg)
        if n_t != 1 or n_h != 1:
            raise SystemExit(f"{config_path}: could not set the temperature ({n_t}) or threshold ({n_h})")
        with open(config_path, "w", encoding="utf-8") as f:
            f.write(cfg)
    metrics = {
        "model": "sae_classifier", "version": 1, "labels": LABELS, "threshold": threshold,
        "threshold_rule": (f"highest threshold on a 0.05 grid with validation recall >= {args.val_recall} and "
                           f"precision >= {args.val_precision}; if none, the lowest with validation precision >= "
                           f"{args.val_precision}" if args.threshold <= 0 else "given"),
        "calibration": {"method": "temperature scaling, fit on the validation split (NLL)",
                        "temperature": round(temperature, 4), "val_nll_before": round(nll_before, 4),
                        "val_nll_after": round(nll_after, 4)},
        "test": test_m, "val": val_m,
        "probes": probe_m, "probes_by_category": by_category, "probe_errors": probe_errors,
        "test_errors": errors,
        "examples": examples,
        "verification": checks,
        "tokenizer_cases": tokenizer_cases,
        "training": {"seed": args.seed, "epochs": args.epochs, "best_epoch": best[2], "batch_size": args.batch_size,
                     "lr": args.lr, "token_dropout": args.token_dropout,
                     "label_smoothing": args.label_smoothing,
                     "optimizer": "AdamW(weight_decay=0.01), linear warmup 10% + linear decay",
                     "history": history, "train_size": len(enc["train"]), "val_size": len(enc["val"]),
                     "test_size": len(enc["test"]), "unk_rate": unk_rate,
                     "wall_seconds": round(time.time() - t_start, 1), "torch": torch.__version__,
                     "onnx": onnx.__version__},
        "architecture": {"pooling": args.pooling, "layers": args.layers, "hidden": args.hidden, "heads": args.heads,
                         "ffn": args.ffn, "activation": "gelu (erf)",
                         "max_length": MAX_LENGTH, "vocab_size": len(vocab), "parameters": n_params,
                         "opset": args.opset, "onnx_ops": op_types},
        "tokenizer": {"type": "bert_wordpiece", "lowercase": True, "strip_accents": True,
                      "max_input_chars_per_word": MAX_INPUT_CHARS_PER_WORD, "max_length": MAX_LENGTH,
                      "special_tokens": {t: i for i, t in enumerate(SPECIALS)}},
        "files": {"model.onnx_sha256": sha256_file(onnx_path),
                  "vocab.txt_sha256": sha256_file(os.path.join(args.out_dir, "vocab.txt"))},
    }
    with open(os.path.join(args.out_dir, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"done in {time.time() - t_start:.1f}s")


if __name__ == "__main__":
    main()
