#!/usr/bin/env python3
"""Cross-check chat fixtures against transformers' own apply_chat_template.

Run with the CPU venv that has transformers (not needed to *generate* fixtures):

    .refwork/venv/bin/python tools/reference/check_chat_transformers.py \
        tests/fixtures/chat/gemma3.jsonl [.refwork/chat-fresh-SEED.jsonl ...]

For every case it calls tokenizer.apply_chat_template(messages,
add_generation_prompt=..., tokenize=False) on the same tokenizer folder and
checks that (a) non-error cases render byte-identically, (b) the token ids of
apply_chat_template(..., tokenize=True) equal the fixture's ids, and (c) the
fixture's error cases raise in transformers too (same message where the
exception comes from the template). Known API-level differences (transformers
checks the conversation before the template runs) are reported separately.
"""

import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def main(paths):
    import transformers
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(os.path.join(ROOT, "models", "gemma3-tokenizer"))
    print(f"transformers {transformers.__version__}  tokenizer class {type(tok).__name__}  "
          f"special_tokens_map {tok.special_tokens_map}")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_chat_cases import load_template
    src, special = load_template(os.path.join(ROOT, "models", "gemma3-tokenizer"))
    same_vars = special == tok.special_tokens_map and src == tok.chat_template
    print(f"template source and special-token variables identical to transformers': {same_vars}")
    bad_total = 0 if same_vars else 1
    for path in paths:
        n = ok_render = ok_err = 0
        api_diff, bad = [], []
        with open(path, encoding="utf-8") as f:
            recs = [json.loads(l) for l in f]
        for r in recs:
            n += 1
            msgs, agp = r["messages"], r["add_generation_prompt"]
            try:
                out = tok.apply_chat_template(msgs, add_generation_prompt=agp, tokenize=False)
                terr = None
            except Exception as e:  # noqa: BLE001
                out, terr = None, e
            if "error" in r:
                if terr is None:
                    # transformers treats [[...]] as a batch of conversations
                    if msgs and isinstance(msgs[0], list):
                        api_diff.append((r["name"], "transformers: batch input, rendered", None))
                    else:
                        bad.append((r["name"], "fixture error, transformers rendered", repr(out)[:200]))
                elif str(terr) == r["error"]:
                    ok_err += 1
                elif not msgs:
                    api_diff.append((r["name"], f"transformers pre-check: {type(terr).__name__}: {terr}", r["error"]))
                else:
                    bad.append((r["name"], f"error text differs: {type(terr).__name__}: {terr}", r["error"]))
                continue
            if terr is not None:
                bad.append((r["name"], f"transformers raised {type(terr).__name__}: {terr}", None))
                continue
            if out != r["rendered"]:
                bad.append((r["name"], "rendering differs", repr(out)[:200]))
                continue
            ids = tok.apply_chat_template(msgs, add_generation_prompt=agp, tokenize=True, return_dict=False)
            if hasattr(ids, "tolist"):
                ids = ids.tolist()
            if list(ids) != r["ids"]:
                bad.append((r["name"], "ids differ", None))
                continue
            ok_render += 1
        n_err = sum(1 for r in recs if "error" in r)
        print(f"{path}: {n} cases; rendered+ids identical {ok_render}/{n - n_err}; "
              f"errors identical {ok_err}/{n_err}; api-level differences {len(api_diff)}; mismatches {len(bad)}")
        kinds = {}
        for name, what, _ in api_diff:
            kinds.setdefault(what, []).append(name)
        for what, names in kinds.items():
            print(f"  api-level difference x{len(names)}: {what}  (e.g. {names[0]})")
        for x in bad:
            print("  MISMATCH:", x)
        bad_total += len(bad)
    return 1 if bad_total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or [os.path.join(ROOT, "tests", "fixtures", "chat", "gemma3.jsonl")]))
