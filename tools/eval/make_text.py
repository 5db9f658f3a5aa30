#!/usr/bin/env python3
"""make_text.py - the text that `gemma perplexity` and `gemma compare` read in
tools/eval/run_all.sh: the abstracts (contexts, then the conclusion) of the
first N PubMedQA labelled items that are NOT in the official test split, so
the text is biomedical like the task but no test question leaks into it.
Standard library only; deterministic.

    python3 tools/eval/make_text.py data/pubmedqa 12 > bench/eval/pubmedqa-text.txt
"""
import json
import sys
from pathlib import Path


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make_text.py PUBMEDQA_DIR N_ABSTRACTS")
    data = Path(sys.argv[1])
    items = json.loads((data / "ori_pqal.json").read_text())
    test = json.loads((data / "test_ground_truth.json").read_text())
    picked = [v for k, v in items.items() if k not in test][: int(sys.argv[2])]
    out = []
    for item in picked:
        out.append(item["QUESTION"] + "\n" + "\n".join(item["CONTEXTS"]) + "\n" + item["LONG_ANSWER"])
    sys.stdout.write("\n\n".join(out) + "\n")


if __name__ == "__main__":
    main()
