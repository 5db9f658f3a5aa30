"""tokenizer_bench.py - HF `tokenizers` on the workload of tokenizer_bench.c.

Why: the reference point for our tokenizer's speed.  Same texts (every
QUESTION, CONTEXTS entry and LONG_ANSWER of ori_pqal.json, in file order,
each encoded alone without <bos>), same statistics.  Two ways of calling HF:
`encode` in a Python loop, and one `encode_batch` call; run with
RAYON_NUM_THREADS=1 so that encode_batch uses one thread like ours.

    RAYON_NUM_THREADS=1 python3 bench/tokenizer_bench.py [-t tokenizer.json] [-d ori_pqal.json] [-r runs] [-l loads]
"""
import argparse
import json
import os
import statistics
import sys
import time

from tokenizers import Tokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-t", default="models/gemma3-tokenizer/tokenizer.json")
    ap.add_argument("-d", default="/work/shared/data/pubmedqa/ori_pqal.json")
    ap.add_argument("-r", type=int, default=7)
    ap.add_argument("-l", type=int, default=5)
    a = ap.parse_args()
    if os.environ.get("RAYON_NUM_THREADS") != "1":
        print("note: RAYON_NUM_THREADS is not 1: encode_batch may use several threads", file=sys.stderr)

    loads = []
    for _ in range(a.l):
        t0 = time.perf_counter()
        tok = Tokenizer.from_file(a.t)
        loads.append(time.perf_counter() - t0)

    data = json.load(open(a.d, encoding="utf-8"))
    texts = []
    for item in data.values():
        texts.append(item["QUESTION"])
        texts.extend(item["CONTEXTS"])
        texts.append(item["LONG_ANSWER"])
    nbytes = sum(len(t.encode("utf-8")) for t in texts)

    def report(name, secs, tokens):
        lo, med = min(secs), statistics.median(secs)
        print(f"HF {name}: min {lo:.4f} s ({nbytes / lo / 1e6:.2f} MB/s, {tokens / lo:.0f} tokens/s)  "
              f"median {med:.4f} s ({nbytes / med / 1e6:.2f} MB/s, {tokens / med:.0f} tokens/s)  ({len(secs)} runs)")

    loop_s, tokens = [], 0
    for r in range(a.r):
        t0 = time.perf_counter()
        tokens = sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)
        loop_s.append(time.perf_counter() - t0)
        print(f"encode loop run {r + 1}: {loop_s[-1]:.4f} s")
    batch_s = []
    for r in range(a.r):
        t0 = time.perf_counter()
        out = tok.encode_batch(texts, add_special_tokens=False)
        batch_s.append(time.perf_counter() - t0)
        assert sum(len(e.ids) for e in out) == tokens
        print(f"encode_batch run {r + 1}: {batch_s[-1]:.4f} s")
    print(f"texts {len(texts)}  bytes {nbytes}  tokens {tokens}")
    print(f"HF load: min {min(loads):.3f} s  median {statistics.median(loads):.3f} s  ({a.l} loads)")
    report("encode (loop)", loop_s, tokens)
    report("encode_batch", batch_s, tokens)


if __name__ == "__main__":
    main()
