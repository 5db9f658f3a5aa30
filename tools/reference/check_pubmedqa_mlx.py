#!/usr/bin/env python3
"""check_pubmedqa_mlx.py - cross-check `gemma eval pubmedqa`'s scoring with mlx-lm.

Why: the accuracy table is only worth something if the yes/no/maybe
probabilities are the model's.  This script computes them independently of
gemma.c: the prompt is rendered by the model folder's own chat template
(transformers' apply_chat_template through mlx-lm's tokenizer wrapper), the
logits come from mlx-lm's Gemma 3, and the scoring rule is the one
`gemma eval --help` documents:

    log P(answer) = log(P("answer") + P("Answer")), each spelling's probability
    the product of its tokens' after the prompt; p_* = the three renormalised.

It then reads the JSONL that `gemma eval pubmedqa -o FILE` wrote for the same
model and items and reports the largest |p_gemma - p_mlx| over the three
probabilities and the items, and how often the argmax agrees.

    python3 tools/reference/check_pubmedqa_mlx.py MODEL_DIR RESULTS.jsonl [--limit N] [--data DIR]
        [--json OUT.json] [--max-diff 1e-3]

MODEL_DIR is an HF-format or mlx_lm.convert folder (the GGUF cannot be loaded
by mlx-lm).  Float (bf16/f16) parameters are upcast to float32 so that mlx
computes what gemma.c computes (f32 arithmetic on the stored weights).
Exit 1 if the max difference exceeds --max-diff or an argmax differs.
Pins: mlx 0.32.4, mlx-lm 0.32.2 (scripts/make_real_models.sh installs them in
.refwork/venv-real).
"""
import argparse
import json
import math
import sys
import time
from pathlib import Path

ANSWERS = ("yes", "no", "maybe")


def user_message(item):
    """The same text as user_message() in tools/gemma/cmd_eval.c."""
    text = ("Answer the research question using the context from the abstract. "
            "Reply with one word: yes, no, or maybe.\n\nContext:\n")
    labels = item.get("LABELS")
    for i, ctx in enumerate(item["CONTEXTS"]):
        if labels is not None:
            text += labels[i] + ": "
        text += ctx + "\n"
    return text + "\nQuestion: " + item["QUESTION"]


def logsumexp(xs):
    m = max(xs)
    if m == -math.inf:
        return m
    return m + math.log(sum(math.exp(x - m) for x in xs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("results")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "data" / "pubmedqa"))
    ap.add_argument("--json", help="write the agreement figures here")
    ap.add_argument("--max-diff", type=float, default=1e-3)
    args = ap.parse_args()

    import mlx.core as mx
    from mlx.utils import tree_map
    from mlx_lm import load

    items = json.loads((Path(args.data) / "ori_pqal.json").read_text())
    ours = {}
    for line in Path(args.results).read_text().splitlines():
        r = json.loads(line)
        ours[r["id"]] = r
    ids = list(ours)[: args.limit]
    if not ids:
        sys.exit(f"{args.results}: no results")

    model, tok = load(args.model)
    float_types = (mx.bfloat16, mx.float16)
    model.update(tree_map(lambda p: p.astype(mx.float32) if p.dtype in float_types else p, model.parameters()))
    hf_tok = getattr(tok, "_tokenizer", tok)

    spellings = {}
    for a in ANSWERS:
        spellings[a] = [hf_tok.encode(w, add_special_tokens=False) for w in (a, a.capitalize())]

    def logprobs_after(prefix):
        # the head on the last position only (model(...) would make [n, 262144] logits)
        hidden = model.model(mx.array([prefix]))[:, -1:]
        head = model.model.embed_tokens.as_linear if model.tie_word_embeddings else model.lm_head
        logits = head(hidden)[0, -1].astype(mx.float32)
        return logits - mx.logsumexp(logits)

    max_diff, agree, rows = 0.0, 0, []
    t0 = time.time()
    for pid in ids:
        msgs = [{"role": "user", "content": user_message(items[pid])}]
        prompt = hf_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        prompt_ids = hf_tok.encode(prompt, add_special_tokens=False)
        first = logprobs_after(prompt_ids)
        logp = {}
        for a in ANSWERS:
            per_spelling = []
            for sp in spellings[a]:
                lp = first[sp[0]].item()
                for t in range(1, len(sp)):
                    lp += logprobs_after(prompt_ids + sp[:t])[sp[t]].item()
                per_spelling.append(lp)
            logp[a] = logsumexp(per_spelling)
        z = logsumexp(list(logp.values()))
        p = {a: math.exp(logp[a] - z) for a in ANSWERS}
        r = ours[pid]
        diff = max(abs(p[a] - r["p_" + a]) for a in ANSWERS)
        pred = max(ANSWERS, key=lambda a: logp[a])
        ours_pred = max(ANSWERS, key=lambda a: r["logp_" + a])
        max_diff = max(max_diff, diff)
        agree += pred == ours_pred
        tokens_match = len(prompt_ids) == r["n_prompt"]
        rows.append({"id": pid, "p_mlx": p, "p_gemma": {a: r["p_" + a] for a in ANSWERS},
                     "logp_mlx": logp, "max_abs_diff": diff, "argmax_mlx": pred, "argmax_gemma": ours_pred,
                     "n_prompt_mlx": len(prompt_ids), "n_prompt_gemma": r["n_prompt"]})
        print(f"{pid}: mlx {p['yes']:.6f} {p['no']:.6f} {p['maybe']:.6f}  "
              f"max|diff| {diff:.2e}  argmax {pred}/{ours_pred}{'' if tokens_match else '  PROMPT LENGTH DIFFERS'}",
              flush=True)
    summary = {"model": args.model, "results": args.results, "n_items": len(ids),
               "max_abs_prob_diff": max_diff, "argmax_agreement": agree / len(ids),
               "prompt_lengths_equal": all(r["n_prompt_mlx"] == r["n_prompt_gemma"] for r in rows),
               "mlx_lm": __import__("mlx_lm").__version__, "mlx": mx.__version__,
               "seconds": round(time.time() - t0, 1), "items": rows}
    print(f"{len(ids)} items: max |p_gemma - p_mlx| = {max_diff:.3g}, argmax agreement {agree}/{len(ids)}, "
          f"prompt lengths equal: {summary['prompt_lengths_equal']}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    ok = max_diff <= args.max_diff and agree == len(ids) and summary["prompt_lengths_equal"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
