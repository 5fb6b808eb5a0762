#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Find earlier reports like this one: the SAE corpus in a collection.

Loads the first --count reports of data/sae/corpus.jsonl into a collection
(text embedded by the server's text_embedding model; kind, label and split as
metadata), then asks, for each of a few probe reports from
data/sae/probes.jsonl, which earlier training reports are nearest, once
without a filter and once for serious ones only.

    ortserve --model-repository models --collections-dir /tmp/collections &
    scripts/retrieval_sae_example.py --url http://127.0.0.1:8000

Standard library only (urllib). docs/retrieval.md explains the output.
"""
import argparse
import json
import pathlib
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent


def call(url, method, path, body=None, key=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("X-API-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--collection", default="sae_reports")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--probes", type=int, default=3)
    parser.add_argument("--api-key")
    args = parser.parse_args()

    status, answer = call(args.url, "PUT", f"/v1/collections/{args.collection}",
                          {"model": "text_embedding", "dimension": 64, "metric": "cosine"}, args.api_key)
    print("create:", status, answer.get("created", answer))
    reports = []
    with open(ROOT / "data/sae/corpus.jsonl", encoding="utf-8") as corpus:
        for line in corpus:
            reports.append(json.loads(line))
            if len(reports) == args.count:
                break
    for start in range(0, len(reports), 256):
        documents = [{"id": f"report-{start + i}", "text": r["text"],
                      "metadata": {"kind": r["kind"], "label": r["label"], "split": r["split"]}}
                     for i, r in enumerate(reports[start:start + 256])]
        status, answer = call(args.url, "POST", f"/v1/collections/{args.collection}/documents",
                              {"documents": documents}, args.api_key)
        if status != 200:
            raise SystemExit(f"upsert failed: {status} {answer}")
    status, stats = call(args.url, "GET", f"/v1/collections/{args.collection}", key=args.api_key)
    print(f"loaded {stats['documents']} reports ({stats['bytes']} bytes held, indexed: {stats['indexed']})")

    with open(ROOT / "data/sae/probes.jsonl", encoding="utf-8") as probes:
        for line in list(probes)[:args.probes]:
            probe = json.loads(line)
            print(f"\nnew report ({probe['label']}): {probe['text']}")
            for title, query_filter in (("nearest training reports", {"split": "train"}),
                                        ("nearest serious ones", {"split": "train", "kind": "serious"})):
                status, answer = call(args.url, "POST", f"/v1/collections/{args.collection}/query",
                                      {"text": probe["text"], "top_k": 3, "filter": query_filter}, args.api_key)
                print(f"  {title}:")
                for hit in answer.get("results", []):
                    number = int(hit["id"].split("-")[1])
                    print(f"    {hit['score']:.3f} {hit['id']} [{hit['metadata']['kind']}] {reports[number]['text'][:70]!r}")


if __name__ == "__main__":
    main()
