#!/usr/bin/env bash
# test_eval_real.sh - `gemma eval pubmedqa` on the real Gemma 3 270M: the
# yes/no/maybe probabilities of the first PubMedQA test items equal mlx-lm's on
# the same weights and prompts (tests/fixtures/real270m/pubmedqa_mlx.json, from
# tools/reference/check_pubmedqa_mlx.py) to 1e-4, on the mlx_lm.convert 4-bit
# folder and on the bf16 folder when tools/eval/make_bf16.py has made it.
# usage: test_eval_real.sh GEMMA_BINARY MODELS_DIR FIXTURES_DIR TMPDIR   (exit 77: models missing,
# unless GEMMA_REQUIRE_REAL_MODEL=1)
set -u
gemma=$1; models=$2; ref=$3/real270m/pubmedqa_mlx.json; tmp=$4/eval-real
if [ ! -f "$models/gemma3-270m-mlx4/model.safetensors" ]; then
  if [ "${GEMMA_REQUIRE_REAL_MODEL:-}" = 1 ]; then echo "FAIL $models/gemma3-270m-mlx4 missing (bash scripts/setup.sh makes it)"; exit 1; fi
  echo "skip: $models/gemma3-270m-mlx4 missing (bash scripts/setup.sh makes it)"; exit 77
fi
rm -rf "$tmp"; mkdir -p "$tmp"
. "$(dirname "$0")/lib.sh"
for form in mlx4 bf16; do
  dir=$models/gemma3-270m-$form
  [ -f "$dir/model.safetensors" ] || { echo "skip $form: $dir missing (tools/eval/make_bf16.py)"; continue; }
  n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))[sys.argv[2]]))' "$ref" "$form")
  "$gemma" eval pubmedqa -m "$dir" --limit "$n" -o "$tmp/$form.jsonl" >/dev/null 2>"$tmp/err" || { bad "$form: $(cat "$tmp/err")"; continue; }
  if d=$(python3 - "$tmp/$form.jsonl" "$ref" "$form" <<'PY'
import json, sys
want = json.load(open(sys.argv[2]))[sys.argv[3]]
rows = {r["id"]: r for r in map(json.loads, open(sys.argv[1]))}
worst = 0.0
for pid, w in want.items():
    r = rows[pid]
    worst = max(worst, max(abs(r["p_" + a] - w[a]) for a in ("yes", "no", "maybe")))
    assert r["pred"] == max(("yes", "no", "maybe"), key=lambda a: w[a]), pid
print(f"{worst:.2e}")
sys.exit(0 if worst <= 1e-4 else 1)
PY
  ); then ok "$form: p_yes/p_no/p_maybe equal mlx-lm's (max diff $d)"; else bad "$form: differs from mlx-lm ($d)"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
