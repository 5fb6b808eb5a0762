#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Trains the demo generative model: a byte-level BPE tokenizer and a tiny
decoder-only transformer, exported to ONNX with a key/value cache.

Steps, deterministic for a given seed, CPU only, one thread:
  1. read the patient-style texts of data/sae/corpus.jsonl (written by
     scripts/sae/make_corpus.py; train split for training, val for the loss);
  2. train a GPT-2 style byte-level BPE (byte-to-unicode alphabet of 256
     symbols, the GPT-2 pre-tokenizer split, --merges merges, most frequent
     pair first, ties broken by the pair's text) and write it as vocab.json +
     merges.txt and as a Hugging Face tokenizer.json (model.type BPE,
     ByteLevel pre-tokenizer and decoder, <|endoftext|> as a special token);
  3. train a decoder (pre-LayerNorm, learned positions, tied embeddings) on the
     texts joined by <|endoftext|>, for --steps steps;
  4. export it to ONNX in the layout Hugging Face / optimum exports use:
       input_ids [batch, seq] int64, attention_mask [batch, past+seq] int64,
       position_ids [batch, seq] int64,
       past_key_values.{i}.key / .value [batch, heads, past, head_dim] float
       -> logits [batch, seq, vocab], present.{i}.key / .value [batch, heads, past+seq, head_dim]
  5. write greedy-decoding goldens (prompt ids and the ids torch generates with
     the same cache code path, checked against full recomputation without a
     cache) to tests/data/generation/greedy_goldens.json.

    /usr/bin/python3 scripts/generation/train_decoder.py

The model is a toy: about 0.7M parameters, 600 steps (about 5 minutes on one
idle core; 20 under a loaded machine). It continues
text in the style of the corpus (short patient reports) and knows nothing else.
"""

import argparse
import collections
import json
import math
import os
import random
import time
import unicodedata

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EOT = "<|endoftext|>"

# ---------------------------------------------------------------------------
# Byte-level BPE (GPT-2): the byte alphabet and the pre-tokenizer split.
# ---------------------------------------------------------------------------


def byte_to_unicode():
    """GPT-2's reversible map from the 256 byte values to printable characters:
    printable Latin-1 bytes stand for themselves, the others are moved to
    U+0100 and up, in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


# The characters of regex \s in the GPT-2 pattern as the Rust tokenizers crate
# (Oniguruma) defines it: Unicode White_Space.
_WHITESPACE = set([0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
                  + list(range(0x2000, 0x200B)))


def _is_space(ch):
    return ord(ch) in _WHITESPACE


def _is_letter(ch):
    return unicodedata.category(ch).startswith("L")


def _is_number(ch):
    return unicodedata.category(ch).startswith("N")


def _is_other(ch):
    return not (_is_space(ch) or _is_letter(ch) or _is_number(ch))


def _class(ch):
    if _is_space(ch):
        return "S"
    if _is_letter(ch):
        return "L"
    return "N" if _is_number(ch) else "O"


def gpt2_split(text):
    """The pieces of 's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == "'":
            if text[i + 1:i + 3] in ("re", "ve", "ll"):
                out.append(text[i:i + 3]); i += 3; continue
            if i + 1 < n and text[i + 1] in "stmd":
                out.append(text[i:i + 2]); i += 2; continue
        j = i + 1 if (c == " " and i + 1 < n and not _is_space(text[i + 1])) else i
        cls = _class(text[j])
        if cls != "S":
            k = j + 1
            while k < n and _class(text[k]) == cls:
                k += 1
            out.append(text[i:k]); i = k; continue
        k = i
        while k < n and _is_space(text[k]):
            k += 1
        if k == n or k - i == 1:
            out.append(text[i:k]); i = k
        else:
            out.append(text[i:k - 1]); i = k - 1
    return out


def train_bpe(texts, num_merges):
    b2u = byte_to_unicode()
    words = collections.Counter()
    for t in texts:
        for piece in gpt2_split(t):
            words[tuple(b2u[b] for b in piece.encode("utf-8"))] += 1
    seqs = [list(w) for w in words]
    freqs = [words[w] for w in words]
    pair_count = collections.Counter()
    where = collections.defaultdict(set)
    for wi, s in enumerate(seqs):
        for a, b in zip(s, s[1:]):
            pair_count[(a, b)] += freqs[wi]
            where[(a, b)].add(wi)
    merges = []
    for _ in range(num_merges):
        if not pair_count:
            break
        best = min(pair_count.items(), key=lambda kv: (-kv[1], kv[0]))
        if best[1] < 2:
            break
        (a, b), _ = best
        merged = a + b
        merges.append((a, b))
        for wi in list(where[(a, b)]):
            s, f = seqs[wi], freqs[wi]
            for x, y in zip(s, s[1:]):
                pair_count[(x, y)] -= f
                if pair_count[(x, y)] <= 0:
                    del pair_count[(x, y)]
            ns, k = [], 0
            while k < len(s):
                if k + 1 < len(s) and s[k] == a and s[k + 1] == b:
                    ns.append(merged); k += 2
                else:
                    ns.append(s[k]); k += 1
            seqs[wi] = ns
            for x, y in zip(ns, ns[1:]):
                pair_count[(x, y)] += f
                where[(x, y)].add(wi)
        where.pop((a, b), None)
    vocab = {}
    for b in range(256):
        vocab[b2u[b]] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    vocab[EOT] = len(vocab)
    return vocab, merges


class BpeEncoder:
    """Plain reference encoder (lowest-ranked pair first) used for training data."""

    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.b2u = byte_to_unicode()
        self.cache = {}

    def encode_piece(self, piece):
        if piece in self.cache:
            return self.cache[piece]
        s = [self.b2u[b] for b in piece.encode("utf-8")]
        while len(s) > 1:
            ranked = [(self.ranks.get((x, y), 1 << 30), k) for k, (x, y) in enumerate(zip(s, s[1:]))]
            r, k = min(ranked)
            if r == 1 << 30:
                break
            s = s[:k] + [s[k] + s[k + 1]] + s[k + 2:]
        ids = [self.vocab[t] for t in s]
        self.cache[piece] = ids
        return ids

    def encode(self, text):
        out = []
        for piece in gpt2_split(text):
            out.extend(self.encode_piece(piece))
        return out


def write_tokenizer(out_dir, vocab, merges):
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": vocab[EOT], "content": EOT, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)


# ---------------------------------------------------------------------------
# The decoder.
# ---------------------------------------------------------------------------

def build_model(torch, vocab_size, d_model, n_layers, n_heads, max_positions):
    nn = torch.nn
    F = torch.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(d_model)
            self.qkv = nn.Linear(d_model, 3 * d_model)
            self.proj = nn.Linear(d_model, d_model)
            self.ln2 = nn.LayerNorm(d_model)
            self.fc1 = nn.Linear(d_model, 4 * d_model)
            self.fc2 = nn.Linear(4 * d_model, d_model)

        def forward(self, x, bias, past_k, past_v):
            b, s, _ = x.shape
            hd = d_model // n_heads
            q, k, v = self.qkv(self.ln1(x)).split(d_model, dim=2)
            q = q.reshape(b, s, n_heads, hd).transpose(1, 2)
            k = torch.cat([past_k, k.reshape(b, s, n_heads, hd).transpose(1, 2)], dim=2)
            v = torch.cat([past_v, v.reshape(b, s, n_heads, hd).transpose(1, 2)], dim=2)
            att = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(hd)) + bias
            att = torch.softmax(att, dim=-1)
            y = torch.matmul(att, v).transpose(1, 2).reshape(b, s, d_model)
            x = x + self.proj(y)
            x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
            return x, k, v

    class Decoder(nn.Module):
        """forward(input_ids, attention_mask, position_ids, *past) -> (logits, *present);
        past holds key, value for each layer, [batch, heads, past, head_dim]."""

        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(vocab_size, d_model)
            self.pos = nn.Embedding(max_positions, d_model)
            self.blocks = nn.ModuleList([Block() for _ in range(n_layers)])
            self.ln_f = nn.LayerNorm(d_model)
            nn.init.normal_(self.tok.weight, std=0.02)
            nn.init.normal_(self.pos.weight, std=0.01)

        def forward(self, input_ids, attention_mask, position_ids, *past):
            s = input_ids.shape[1]
            total = attention_mask.shape[1]
            p = total - s
            # Query i (absolute position p + i) sees key j when j <= p + i and
            # attention_mask[:, j] is 1. Large negative, not -inf, so a fully
            # masked (padding) row stays finite.
            qpos = torch.arange(s, dtype=torch.int64).unsqueeze(1) + p
            kpos = torch.arange(total, dtype=torch.int64).unsqueeze(0)
            causal = kpos <= qpos
            keep = causal.unsqueeze(0).unsqueeze(0) & (attention_mask.unsqueeze(1).unsqueeze(2) > 0)
            bias = (1.0 - keep.to(torch.float32)) * -1e9
            x = self.tok(input_ids) + self.pos(position_ids)
            present = []
            for i, blk in enumerate(self.blocks):
                x, k, v = blk(x, bias, past[2 * i], past[2 * i + 1])
                present += [k, v]
            logits = torch.matmul(self.ln_f(x), self.tok.weight.t())
            return (logits, *present)

    return Decoder()


def empty_past(torch, batch, n_layers, n_heads, head_dim):
    return [torch.zeros(batch, n_heads, 0, head_dim) for _ in range(2 * n_layers)]


def greedy(torch, model, ids, new_tokens, n_layers, n_heads, head_dim, eot_id):
    """Greedy decoding with the cache, as the server does: one prefill, then one
    token per step. Returns (generated ids, smallest top-1/top-2 logit margin)."""
    past = empty_past(torch, 1, n_layers, n_heads, head_dim)
    cur = list(ids)
    out, margin = [], float("inf")
    step_ids = cur
    with torch.no_grad():
        for _ in range(new_tokens):
            n_past = past[0].shape[2]
            inp = torch.tensor([step_ids], dtype=torch.int64)
            mask = torch.ones(1, n_past + len(step_ids), dtype=torch.int64)
            pos = torch.arange(n_past, n_past + len(step_ids), dtype=torch.int64).unsqueeze(0)
            logits, *past = model(inp, mask, pos, *past)
            last = logits[0, -1]
            top2 = torch.topk(last, 2).values
            margin = min(margin, float(top2[0] - top2[1]))
            nxt = int(torch.argmax(last))
            out.append(nxt)
            if nxt == eot_id:
                break
            step_ids = [nxt]
        # Cross-check the cache path against a full recomputation.
        full = list(ids) + out[:-1]
        inp = torch.tensor([full], dtype=torch.int64)
        logits, *_ = model(inp, torch.ones_like(inp), torch.arange(len(full)).unsqueeze(0),
                           *empty_past(torch, 1, n_layers, n_heads, head_dim))
        recomputed = [int(t) for t in torch.argmax(logits[0, len(ids) - 1:], dim=-1)]
        assert recomputed == out, (recomputed, out)
    return out, margin


PROMPTS = [
    "I have been feeling",
    "my mom was left",
    "After the second dose I",
    "nothing new to report",
    "The headache started",
    "Yesterday",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.path.join(ROOT, "data/sae/corpus.jsonl"))
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "models/tiny_decoder"))
    ap.add_argument("--goldens", default=os.path.join(ROOT, "tests/data/generation/greedy_goldens.json"))
    ap.add_argument("--merges", type=int, default=2000)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--max-positions", type=int, default=256)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--new-tokens", type=int, default=24)
    ap.add_argument("--tokenizer-only", action="store_true")
    args = ap.parse_args()

    random.seed(args.seed)
    texts = {"train": [], "val": []}
    with open(args.corpus, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts["train" if row["split"] == "train" else "val"].append(row["text"])
    print(f"corpus: {len(texts['train'])} train, {len(texts['val'])} held-out texts", flush=True)

    t0 = time.time()
    vocab, merges = train_bpe(texts["train"], args.merges)
    os.makedirs(os.path.join(args.out_dir, "1"), exist_ok=True)
    write_tokenizer(args.out_dir, vocab, merges)
    print(f"tokenizer: {len(merges)} merges, vocab {len(vocab)} ({time.time() - t0:.1f}s)", flush=True)
    if args.tokenizer_only:
        return

    import torch
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    enc = BpeEncoder(vocab, merges)
    eot = vocab[EOT]

    def stream(split):
        ids = []
        for t in texts[split]:
            ids.extend(enc.encode(t))
            ids.append(eot)
        return torch.tensor(ids, dtype=torch.int64)

    train_ids, val_ids = stream("train"), stream("val")
    print(f"tokens: {len(train_ids)} train, {len(val_ids)} val ({time.time() - t0:.1f}s)", flush=True)

    hd = args.d_model // args.heads
    model = build_model(torch, len(vocab), args.d_model, args.layers, args.heads, args.max_positions)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params} parameters", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    ctx = args.context
    pos = torch.arange(ctx).unsqueeze(0).expand(args.batch, ctx)
    mask = torch.ones(args.batch, ctx, dtype=torch.int64)
    past = empty_past(torch, args.batch, args.layers, args.heads, hd)

    def batch_from(ids, gen):
        starts = torch.randint(0, len(ids) - ctx - 1, (args.batch,), generator=gen)
        x = torch.stack([ids[s:s + ctx] for s in starts])
        y = torch.stack([ids[s + 1:s + ctx + 1] for s in starts])
        return x, y

    def val_loss():
        model.eval()
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            tot = 0.0
            for _ in range(8):
                x, y = batch_from(val_ids, gen)
                logits = model(x, mask, pos, *past)[0]
                tot += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)))
        model.train()
        return tot / 8

    gen = torch.Generator().manual_seed(args.seed)
    for step in range(args.steps):
        lr = args.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch_from(train_ids, gen)
        logits = model(x, mask, pos, *past)[0]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step}: train loss {loss.item():.3f} ({time.time() - t0:.0f}s)", flush=True)
    model.eval()
    vl = val_loss()
    print(f"val loss {vl:.3f} (perplexity {math.exp(vl):.1f})", flush=True)

    # --- export -------------------------------------------------------------
    onnx_path = os.path.join(args.out_dir, "1", "model.onnx")
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
    torch.onnx.export(model, (*ex, *ex_past), onnx_path, opset_version=14, input_names=in_names,
                      output_names=out_names, dynamic_axes=dyn, do_constant_folding=True)
    import onnx
    proto = onnx.load(onnx_path)
    onnx.checker.check_model(proto, full_check=True)
    print(f"exported {onnx_path} ({os.path.getsize(onnx_path)} bytes), ops "
          f"{sorted({n.op_type for n in proto.graph.node})}", flush=True)

    # --- goldens ------------------------------------------------------------
    goldens = []
    for p in PROMPTS:
        ids = enc.encode(p)
        out, margin = greedy(torch, model, ids, args.new_tokens, args.layers, args.heads, hd, eot)
        goldens.append({"prompt": p, "prompt_ids": ids, "output_ids": out, "min_top2_margin": round(margin, 4)})
        text = bytes(bytearray(_unbyte(t) for i in out if i != eot for t in _token_chars(vocab, i))).decode(
            "utf-8", errors="replace")
        print(f"{p!r} -> {text!r} (margin {margin:.3f})", flush=True)
    os.makedirs(os.path.dirname(args.goldens), exist_ok=True)
    with open(args.goldens, "w", encoding="utf-8") as f:
        json.dump({"model": os.path.relpath(onnx_path, ROOT), "eos_token_id": eot, "cases": goldens}, f, indent=1)
        f.write("\n")
    with open(os.path.join(args.out_dir, "training.json"), "w", encoding="utf-8") as f:
        json.dump({"merges": len(merges), "vocab_size": len(vocab), "parameters": n_params,
                   "d_model": args.d_model, "layers": args.layers, "heads": args.heads,
                   "max_positions": args.max_positions, "steps": args.steps, "batch": args.batch,
                   "context": ctx, "seed": args.seed, "val_loss": round(vl, 4),
                   "train_tokens": len(train_ids), "seconds": round(time.time() - t0, 1)}, f, indent=1)
        f.write("\n")


_U2B = {u: b for b, u in byte_to_unicode().items()}
_ID2TOK = {}


def _token_chars(vocab, i):
    if not _ID2TOK:
        _ID2TOK.update({v: k for k, v in vocab.items()})
    return _ID2TOK[i]


def _unbyte(ch):
    return _U2B[ch]


if __name__ == "__main__":
    main()
