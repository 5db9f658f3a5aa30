#!/usr/bin/env bash
# run_all.sh - reproduce the README's evaluation table of Gemma 3 270M by form.
#
# Builds the forms (the GGUF Q4_K_M that scripts/setup.sh installs; the float32
# folder and the mlx_lm.convert 4-bit folder it makes from it; a bf16 folder,
# tools/eval/make_bf16.py), then for each form: PubMedQA (gemma eval, test
# split), perplexity on a biomedical text (gemma perplexity), KL / top-1
# agreement against the bf16 reference (gemma compare), the scoring
# cross-checked with mlx-lm (tools/reference/check_pubmedqa_mlx.py), and
# finally OUT_DIR/REPORT.md with two charts (tools/eval/report.py).
#
# Every step is resumable: results files are continued (--resume), finished
# JSON outputs are kept, so a stopped run picks up where it was.
#
#   bash tools/eval/run_all.sh [OUT_DIR]           (default bench/eval)
#   env: LIMIT  questions of the 500-question test split (default 500; in ori_pqal.json order)
#        THREADS (default: all CPUs)   CROSS  items cross-checked with mlx-lm (default 10)
#        PYTHON  with mlx-lm and matplotlib (default .refwork/venv-real/bin/python, else python3)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-bench/eval}
LIMIT=${LIMIT:-500}
THREADS=${THREADS:-$(nproc)}
CROSS=${CROSS:-10}
PY=${PYTHON:-.refwork/venv-real/bin/python}
[ -x "$PY" ] || PY=python3
GGUF=models/gemma3-270m/gemma-3-270m-q4_k_m.gguf HF=models/gemma3-270m-hf MLX=models/gemma3-270m-mlx4
BF16=models/gemma3-270m-bf16
say() { echo "run_all: $(date -u +%T) $*"; }

[ -f "$GGUF" ] && [ -f "$HF/model.safetensors" ] && [ -f "$MLX/model.safetensors" ] ||
    { echo "run_all: error: $GGUF, $HF or $MLX missing: run bash scripts/setup.sh first" >&2; exit 1; }
[ -f "$BF16/model.safetensors" ] || "$PY" tools/eval/make_bf16.py "$HF" "$BF16"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$THREADS" --target gemma >/dev/null
mkdir -p "$OUT"
TEXT=$OUT/pubmedqa-text.txt
[ -f "$TEXT" ] || python3 tools/eval/make_text.py data/pubmedqa 4 >"$TEXT"

path_of() { case $1 in gguf-q4_k_m) echo "$GGUF";; mlx4) echo "$MLX";; bf16) echo "$BF16";; esac; }
# json NAME COMMAND...: run a command that prints JSON into OUT/NAME.json, unless that file is already there
json() {
    local name=$1; shift
    [ -s "$OUT/$name.json" ] && { say "$name: kept"; return; }
    say "$name"
    "$@" >"$OUT/$name.json.tmp" && mv "$OUT/$name.json.tmp" "$OUT/$name.json"
}

for form in gguf-q4_k_m mlx4 bf16; do
    say "pubmedqa $form (limit $LIMIT)"
    build/gemma eval pubmedqa -m "$(path_of $form)" --split test --limit "$LIMIT" -t "$THREADS" \
        -o "$OUT/pubmedqa-$form.jsonl" --resume --json >"$OUT/pubmedqa-$form.json"
done
for form in gguf-q4_k_m mlx4 bf16; do
    json "perplexity-$form" build/gemma perplexity -m "$(path_of $form)" -f "$TEXT" --ctx 512 --stride 256 -t "$THREADS" --json
done
for form in gguf-q4_k_m mlx4; do
    json "compare-$form" build/gemma compare -m "$BF16" -m "$(path_of $form)" -f "$TEXT" --ctx 512 -t "$THREADS" --json
done
if "$PY" -c "import mlx_lm" 2>/dev/null; then
    for form in mlx4 bf16; do
        [ -s "$OUT/crosscheck-$form.json" ] && continue
        say "cross-check $form with mlx-lm ($CROSS items)"
        "$PY" tools/reference/check_pubmedqa_mlx.py "$(path_of $form)" "$OUT/pubmedqa-$form.jsonl" --limit "$CROSS" \
            --json "$OUT/crosscheck-$form.json" || say "cross-check $form: DISAGREES (see above)"
    done
else
    say "no mlx-lm in $PY: the cross-check is skipped (scripts/make_real_models.sh installs it in .refwork/venv-real)"
fi
"$PY" tools/eval/report.py "$OUT"
