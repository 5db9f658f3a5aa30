#!/usr/bin/env python3
"""report.py - the Markdown report and PNG charts of an evaluation folder.

Why: `gemma eval`, `gemma perplexity` and `gemma compare` write JSONL/JSON
(tools/eval/run_all.sh puts them in one folder); people read a table and a
picture.  This reads, from DIR:

    pubmedqa-FORM.jsonl     per-item results of `gemma eval pubmedqa -o`  (the metrics are recomputed from them)
    perplexity-FORM.json    `gemma perplexity --json`
    compare-FORM.json       `gemma compare --json` with the reference (bf16) as A and FORM as B
    crosscheck-FORM.json    tools/reference/check_pubmedqa_mlx.py --json

and writes DIR/REPORT.md, DIR/pubmedqa-accuracy.png (accuracy and macro-F1 per
form, with the always-"yes" baseline) and DIR/pubmedqa-confusion.png (one
confusion matrix per form).  The charts need matplotlib; without it the report
is still written and says so.

    python3 tools/eval/report.py bench/eval
"""
import json
import sys
from pathlib import Path

LABELS = ("yes", "no", "maybe")
FORM_ORDER = ("bf16", "mlx4", "gguf-q4_k_m")
FORM_NAMES = {"bf16": "bf16 (GGUF dequantized, rounded to bf16)", "mlx4": "MLX 4-bit g64 (mlx_lm.convert)",
              "gguf-q4_k_m": "GGUF Q4_K_M (as installed; llama.cpp numerics)", "f32": "float32 (GGUF dequantized)"}


def metrics(rows):
    conf = [[0] * 4 for _ in LABELS]   # [gold][pred], last column: invalid
    for r in rows:
        pred = 3 if r["pred"] == "invalid" else LABELS.index(r["pred"])
        conf[LABELS.index(r["gold"])][pred] += 1
    n = len(rows)
    correct = sum(conf[i][i] for i in range(3))
    f1 = []
    for c in range(3):
        tp, gold, pred = conf[c][c], sum(conf[c]), sum(conf[g][c] for g in range(3))
        p = tp / pred if pred else 0.0
        rc = tp / gold if gold else 0.0
        f1.append(2 * p * rc / (p + rc) if p + rc else 0.0)
    ms = sorted(r["ms"] for r in rows)
    return {"n": n, "accuracy": correct / n if n else 0.0, "macro_f1": sum(f1) / 3, "f1": f1, "confusion": conf,
            "ms_mean": sum(ms) / n if n else 0.0, "ms_p50": ms[n // 2] if n else 0.0,
            "total_s": sum(ms) / 1e3, "prompt_mean": sum(r["n_prompt"] for r in rows) / n if n else 0.0,
            "method": rows[0]["method"] if rows else "?"}


def baseline_yes(rows):
    gold_yes = sum(r["gold"] == "yes" for r in rows)
    acc = gold_yes / len(rows)
    f1_yes = 2 * acc / (1 + acc)
    return acc, f1_yes / 3


def load_json(path):
    return json.loads(path.read_text()) if path.is_file() else None


def charts(out_dir, results):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no charts (pip install matplotlib, then run this again)."
    forms = list(results)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    xs = range(len(forms))
    acc = [results[f]["accuracy"] for f in forms]
    mf1 = [results[f]["macro_f1"] for f in forms]
    ax.bar([x - 0.2 for x in xs], acc, width=0.4, label="accuracy")
    ax.bar([x + 0.2 for x in xs], mf1, width=0.4, label="macro-F1")
    any_rows = next(iter(results.values()))
    base_acc, base_f1 = any_rows["baseline"]
    ax.axhline(base_acc, color="grey", linestyle="--", linewidth=1, label=f'always "yes" ({base_acc:.3f})')
    ax.axhline(1 / 3, color="grey", linestyle=":", linewidth=1, label="uniform chance (0.333)")
    ax.set_xticks(list(xs), forms)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    n = any_rows["n"]
    ax.set_title(f"Gemma 3 270M on PubMedQA ({n} test items), by form")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(out_dir / "pubmedqa-accuracy.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(forms), figsize=(3.4 * len(forms), 3.3), squeeze=False)
    for ax, f in zip(axes[0], forms):
        conf = [row[:3] for row in results[f]["confusion"]]
        ax.imshow(conf, cmap="Blues")
        for g in range(3):
            for p in range(3):
                ax.text(p, g, str(conf[g][p]), ha="center", va="center",
                        color="white" if conf[g][p] > max(map(max, conf)) / 2 else "black")
        ax.set_xticks(range(3), LABELS)
        ax.set_yticks(range(3), LABELS)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.set_title(f"{f}: acc {results[f]['accuracy']:.3f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_dir / "pubmedqa-confusion.png", dpi=110)
    plt.close(fig)
    return None


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: report.py EVAL_DIR")
    d = Path(sys.argv[1])
    found = {p.name[len("pubmedqa-"):-len(".jsonl")]: p for p in d.glob("pubmedqa-*.jsonl")}
    forms = [f for f in FORM_ORDER if f in found] + sorted(f for f in found if f not in FORM_ORDER)
    if not forms:
        sys.exit(f"report: {d}: no pubmedqa-*.jsonl results")
    loaded = {f: [json.loads(line) for line in found[f].read_text().splitlines() if line.strip()] for f in forms}
    loaded = {f: rows for f, rows in loaded.items() if rows}
    # every form on the same items: those all results files have (a run may have stopped early)
    common = set.intersection(*({r["id"] for r in rows} for rows in loaded.values()))
    results = {}
    for f, rows in loaded.items():
        rows = [r for r in rows if r["id"] in common]
        m = metrics(rows)
        m["baseline"] = baseline_yes(rows)
        results[f] = m
    forms = list(results)
    note = charts(d, results)

    n_lines = ", ".join(f"{f} {len(rows)}" for f, rows in loaded.items())
    md = ["# Gemma 3 270M on PubMedQA, perplexity and KL by form (gemma.c)", "",
          "Made by `tools/eval/report.py` from the files in this folder (`tools/eval/run_all.sh` writes them).",
          f"Every form is scored on the same {len(common)} items, those all results files hold "
          f"(items per file: {n_lines}).", ""]
    md += ["| form | items | accuracy | macro-F1 | F1 yes / no / maybe | s per item (mean) | eval time | "
           "perplexity | KL vs bf16 (mean / p99) | top-1 agreement vs bf16 |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for f in forms:
        m = results[f]
        ppl = load_json(d / f"perplexity-{f}.json")
        cmp_ = load_json(d / f"compare-{f}.json")
        ppl_s = f"{ppl['perplexity']:.3f}" if ppl else "–"
        kl_s = f"{cmp_['kl']['mean']:.4f} / {cmp_['kl']['p99']:.4f}" if cmp_ else ("0 (reference)" if f == "bf16" else "–")
        top1 = f"{cmp_['top1_agreement']:.4f}" if cmp_ else ("1 (reference)" if f == "bf16" else "–")
        md.append(f"| {FORM_NAMES.get(f, f)} | {m['n']} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | "
                  f"{m['f1'][0]:.3f} / {m['f1'][1]:.3f} / {m['f1'][2]:.3f} | {m['ms_mean'] / 1e3:.2f} | "
                  f"{m['total_s'] / 60:.1f} min | {ppl_s} | {kl_s} | {top1} |")
    base_acc, base_f1 = results[forms[0]]["baseline"]
    md += ["", f"Always answering \"yes\" scores accuracy {base_acc:.4f} and macro-F1 {base_f1:.4f} on these items; "
           "uniform guessing 0.333.  **A 270M base model is at chance level on PubMedQA**: the table shows that "
           "the forms agree with each other, not that the model can answer clinical questions.  The tool is meant "
           "for MedGemma 4B (`gemma eval pubmedqa -m medgemma-4b-it`).", ""]
    if note:
        md += [note, ""]
    else:
        md += ["![accuracy per form](pubmedqa-accuracy.png)", "", "![confusion matrices](pubmedqa-confusion.png)", ""]
    md += ["## Confusion matrices (rows: gold, columns: predicted)", ""]
    for f in forms:
        m = results[f]
        md += [f"**{f}** ({m['n']} items, answers by {m['method']}; prompt {m['prompt_mean']:.0f} tokens on average)",
               "", "| gold \\ predicted | yes | no | maybe | invalid |", "|---|---|---|---|---|"]
        for g, lab in enumerate(LABELS):
            md.append(f"| {lab} | " + " | ".join(str(x) for x in m["confusion"][g]) + " |")
        md.append("")
    cmps = [(f, load_json(d / f"compare-{f}.json")) for f in forms]
    cmps = [(f, c) for f, c in cmps if c]
    if cmps:
        md += ["## Distance from the bf16 reference (`gemma compare`)", "",
               "| B | positions | KL mean | KL p50 | KL p90 | KL p99 | KL max | top-1 agreement | "
               "max abs logit diff (mean / max) | ppl A / B (windows) |", "|---|---|---|---|---|---|---|---|---|---|"]
        for f, c in cmps:
            k = c["kl"]
            md.append(f"| {f} | {c['n_positions']} | {k['mean']:.5f} | {k['p50']:.5f} | {k['p90']:.5f} | "
                      f"{k['p99']:.5f} | {k['max']:.4f} | {c['top1_agreement']:.4f} | "
                      f"{c['max_abs_logit_diff']['mean']:.3f} / {c['max_abs_logit_diff']['max']:.3f} | "
                      f"{c['ppl_a']:.3f} / {c['ppl_b']:.3f} |")
        md.append("")
    checks = [(f, load_json(d / f"crosscheck-{f}.json")) for f in list(forms) + ["f32"]]
    checks = [(f, c) for f, c in checks if c]
    if checks:
        md += ["## Cross-check of the scoring with mlx-lm (`tools/reference/check_pubmedqa_mlx.py`)", "",
               "| form | items | max abs diff of p_yes/p_no/p_maybe | argmax agreement | prompt lengths equal |",
               "|---|---|---|---|---|"]
        for f, c in checks:
            md.append(f"| {f} | {c['n_items']} | {c['max_abs_prob_diff']:.2e} | {c['argmax_agreement']:.3f} | "
                      f"{c['prompt_lengths_equal']} |")
        md.append("")
    (d / "REPORT.md").write_text("\n".join(md))
    print(f"report: wrote {d / 'REPORT.md'}" + ("" if note else " and 2 charts"))


if __name__ == "__main__":
    main()
