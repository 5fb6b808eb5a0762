#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Embeds the texts of a JSONL corpus through a running ortserve (POST /embed)
into a raw float32 file for retrieval_bench --vectors.

    ortserve --model-repository models --http-port 8000 &
    /usr/bin/python3 scripts/sae/make_corpus.py --per-class 50000 --out-of-scope 12000 --out /tmp/sae_big.jsonl
    bench/retrieval/embed_corpus.py --url http://127.0.0.1:8000 --corpus /tmp/sae_big.jsonl \
        --out /tmp/sae_big.f32 [--count N] [--batch 64] [--threads 4]

The output is the vectors back to back (little-endian float32, the model's
dimension each), in corpus order; the dimension is printed at the end. The
texts are sent as they are (normalize: true, truncate: true). Standard library only.
"""
import argparse
import concurrent.futures
import json
import struct
import sys
import urllib.request


def embed(url, texts):
    body = json.dumps({"inputs": texts, "normalize": True, "truncate": True}).encode()
    request = urllib.request.Request(url + "/embed", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--count", type=int, default=0, help="first N texts (0: all)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    texts = []
    with open(args.corpus, encoding="utf-8") as corpus:
        for line in corpus:
            texts.append(json.loads(line)["text"])
            if args.count and len(texts) == args.count:
                break
    batches = [texts[i:i + args.batch] for i in range(0, len(texts), args.batch)]
    dimension = None
    done = 0
    with open(args.out, "wb") as out, concurrent.futures.ThreadPoolExecutor(args.threads) as pool:
        # map keeps the corpus order.
        for vectors in pool.map(lambda b: embed(args.url, b), batches):
            for v in vectors:
                if dimension is None:
                    dimension = len(v)
                if len(v) != dimension:
                    sys.exit(f"a vector of {len(v)} values after {dimension}")
                out.write(struct.pack(f"<{dimension}f", *v))
            done += len(vectors)
            if done % 20000 < args.batch:
                print(f"{done}/{len(texts)}", file=sys.stderr, flush=True)
    print(f"{done} vectors of dimension {dimension} in {args.out}")


if __name__ == "__main__":
    main()
