#!/usr/bin/env bash
# test_eval.sh - `gemma eval pubmedqa`, `gemma perplexity` and `gemma compare`
# end to end on the small random model with the real Gemma 3 tokenizer
# (tests/tools/make_test_model) and the 5-item PubMedQA fixture:
#  * the yes/no/maybe probabilities equal mlx-lm's for the same model and
#    prompts (tests/fixtures/pubmedqa-mini/expected_mlx.json, made by
#    tools/reference/check_pubmedqa_mlx.py) to 1e-4;
#  * --resume continues a results file (and drops a line cut off by a kill),
#    an existing file is refused without --resume/--force;
#  * perplexity's sliding windows equal the same sum computed from
#    `gemma logits` of each window; compare of a model with itself is KL 0;
#  * bad input fails with one line naming the file / field.
# usage: test_eval.sh GEMMA MAKE_TEST_MODEL TOKENIZER_DIR FIXTURES_DIR TMPDIR
set -u
gemma=$1; make_model=$2; tokdir=$3; mini=$4/pubmedqa-mini; tmp=$5/eval
rm -rf "$tmp"; mkdir -p "$tmp"
. "$(dirname "$0")/lib.sh"
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

if [ ! -f "$tokdir/tokenizer.json" ]; then
  echo "FAIL the real tokenizer is missing: run scripts/setup.sh"; echo "0 passed, 1 failed"; exit 1
fi
m=$tmp/model
"$make_model" "$m" "$tokdir" >/dev/null || { echo "FAIL make_test_model"; exit 1; }
ev() { "$gemma" eval pubmedqa -m "$m" --data "$mini" -t 1 "$@"; }

# ---- scoring against mlx-lm
ev -o "$tmp/r.jsonl" >"$tmp/sum.txt" 2>"$tmp/err"
check "eval writes one line per item" '[ "$(wc -l <"$tmp/r.jsonl")" = 5 ]'
check "eval prints accuracy, macro-F1 and the confusion matrix" 'grep -q "accuracy" "$tmp/sum.txt" && grep -q "macro-F1" "$tmp/sum.txt" && grep -q "confusion" "$tmp/sum.txt"'
check "p_yes/p_no/p_maybe match mlx-lm to 1e-4 and the argmax is the prediction" 'python3 - "$tmp/r.jsonl" "$mini/expected_mlx.json" <<"EOF"
import json, sys
want = json.load(open(sys.argv[2]))["items"]
rows = [json.loads(l) for l in open(sys.argv[1])]
assert sorted(r["id"] for r in rows) == sorted(want), "items differ"
for r in rows:
    w = want[r["id"]]
    d = max(abs(r["p_" + a] - w[a]) for a in ("yes", "no", "maybe"))
    assert d <= 1e-4, (r["id"], d)
    assert abs(sum(r["p_" + a] for a in ("yes", "no", "maybe")) - 1) < 1e-5
    assert r["pred"] == max(("yes", "no", "maybe"), key=lambda a: w[a]), r["id"]
EOF'
ev --json >"$tmp/sum.json" 2>/dev/null
check "--json summary agrees with the results file" 'python3 - "$tmp/r.jsonl" "$tmp/sum.json" <<"EOF"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
s = json.load(open(sys.argv[2]))
acc = sum(r["gold"] == r["pred"] for r in rows) / len(rows)
assert s["n"] == 5 and abs(s["accuracy"] - acc) < 1e-6 and sum(map(sum, s["confusion"])) == 5, s
EOF'
ev --split all --json 2>/dev/null | grep -q '"n":6' && ok "--split all takes every labelled item" || bad "--split all"
ev --limit 2 --json 2>/dev/null | grep -q '"n":2' && ok "--limit" || bad "--limit"

# ---- results files: refuse, force, resume
expect_fail "an existing results file is refused" 2 "exists: --resume" -- "$gemma" eval pubmedqa -m "$m" --data "$mini" -o "$tmp/r.jsonl"
ev -o "$tmp/r.jsonl" --force --limit 2 >/dev/null 2>&1
check "--force starts the file again" '[ "$(wc -l <"$tmp/r.jsonl")" = 2 ]'
{ cat "$tmp/r.jsonl"; printf '{"id":"24577079","gold":"no","pr'; } >"$tmp/cut.jsonl"   # killed while writing line 3
ev -o "$tmp/cut.jsonl" --resume >/dev/null 2>&1
check "--resume evaluates only the missing items, dropping a cut-off line" 'python3 - "$tmp/cut.jsonl" "$tmp/r.jsonl" <<"EOF"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
first = open(sys.argv[2]).read().splitlines()
assert len(lines) == 5 and lines[:2] == first, len(lines)
assert len({json.loads(l)["id"] for l in lines}) == 5
EOF'
ev -o "$tmp/cut.jsonl" --resume --json >"$tmp/resumed.json" 2>/dev/null
check "a resumed run reports the whole run's figures" 'python3 - "$tmp/resumed.json" "$tmp/sum.json" <<"EOF"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert all(a[k] == b[k] for k in ("n", "accuracy", "macro_f1", "confusion")), (a, b)
EOF'
expect_fail "--resume with another method is refused" 1 "method 'score'" -- "$gemma" eval pubmedqa -m "$m" --data "$mini" -o "$tmp/cut.jsonl" --resume --generate
expect_fail "--resume needs -o" 2 "needs -o" -- "$gemma" eval pubmedqa -m "$m" --data "$mini" --resume

# ---- generate and parse
ev --generate --max-new 3 -o "$tmp/g.jsonl" >/dev/null 2>&1
check "--generate records the reply and its parsed answer" 'python3 -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 5 and all(r[\"method\"] == \"generate\" and \"reply\" in r for r in rows)
assert all(r[\"pred\"] in (\"yes\", \"no\", \"maybe\", \"invalid\") for r in rows)" "$tmp/g.jsonl"'

# ---- bad datasets
mkdir -p "$tmp/bad1" "$tmp/bad2" "$tmp/bad3" "$tmp/bad4"
printf '{"1": {"QUESTION": "q", "CONTEXTS": ["c"]' >"$tmp/bad1/ori_pqal.json"; cp "$mini/test_ground_truth.json" "$tmp/bad1/"
expect_fail "malformed dataset JSON" 1 "bad1/ori_pqal.json: line" -- "$gemma" eval pubmedqa -m "$m" --data "$tmp/bad1"
printf '{"12377809": {"CONTEXTS": ["c"], "final_decision": "yes"}}' >"$tmp/bad2/ori_pqal.json"
printf '{"12377809": "yes"}' >"$tmp/bad2/test_ground_truth.json"
expect_fail "an item without QUESTION" 1 "item 12377809: field QUESTION" -- "$gemma" eval pubmedqa -m "$m" --data "$tmp/bad2"
printf '{"12377809": {"QUESTION": "q", "CONTEXTS": ["c"]}}' >"$tmp/bad3/ori_pqal.json"
printf '{"12377809": "perhaps"}' >"$tmp/bad3/test_ground_truth.json"
expect_fail "a label other than yes/no/maybe" 1 "bad3/test_ground_truth.json: item 12377809: the label" -- "$gemma" eval pubmedqa -m "$m" --data "$tmp/bad3"
cp "$mini/ori_pqal.json" "$tmp/bad4/"
expect_fail "a missing ground-truth file" 1 "bad4/test_ground_truth.json: cannot open" -- "$gemma" eval pubmedqa -m "$m" --data "$tmp/bad4"
expect_fail "an unknown task" 2 "unknown task" -- "$gemma" eval mmlu -m "$m"
expect_fail "a bad split" 2 "bad --split" -- "$gemma" eval pubmedqa -m "$m" --split dev

# ---- perplexity: the sliding windows against the same sum from `gemma logits`
printf 'The patient presented with acute chest pain radiating to the left arm and was given aspirin.' >"$tmp/text.txt"
"$gemma" perplexity -m "$m" -f "$tmp/text.txt" --ctx 8 --stride 3 -t 1 --json >"$tmp/ppl.json" 2>"$tmp/err"
ids=$("$gemma" tokenize -m "$m" --bos "$(cat "$tmp/text.txt")" | tr -d '[]')
python3 - "$ids" 8 3 >"$tmp/windows.txt" <<'EOF'
import sys
ids = sys.argv[1].split(","); ctx, stride = int(sys.argv[2]), int(sys.argv[3])
prev = 0
for begin in range(0, len(ids), stride):          # the loop of HF's perplexity guide
    end = min(begin + ctx, len(ids))
    print(begin, end, max(prev, begin + 1), ",".join(ids[begin:end]))
    prev = end
    if end == len(ids):
        break
EOF
while read -r begin end first win; do
  "$gemma" logits -m "$m" --tokens "$win" -t 1 -o "$tmp/w$begin.f32" 2>/dev/null
done <"$tmp/windows.txt"
check "perplexity equals HF's sliding-window loop over gemma logits" 'python3 - "$tmp" "$tmp/ppl.json" <<"EOF"
import json, math, struct, sys
tmp = sys.argv[1]; got = json.load(open(sys.argv[2]))
nll, n = 0.0, 0
for line in open(tmp + "/windows.txt"):
    begin, end, first, win = line.split(); begin, end, first = int(begin), int(end), int(first)
    ids = [int(x) for x in win.split(",")]
    raw = open(f"{tmp}/w{begin}.f32", "rb").read(); vocab = len(raw) // 4 // len(ids)
    for j in range(first, end):                    # token j is predicted by the row after token j-1
        row = struct.unpack_from(f"<{vocab}f", raw, (j - 1 - begin) * vocab * 4)
        mx = max(row); lse = mx + math.log(sum(math.exp(x - mx) for x in row))
        nll += lse - row[ids[j - begin]]; n += 1
assert got["n_scored"] == n, (got["n_scored"], n)
assert abs(got["nll_mean"] - nll / n) < 1e-4 * max(1, nll / n), (got["nll_mean"], nll / n)
EOF'
"$gemma" perplexity -m "$m" -f "$tmp/text.txt" --ctx 8 --stride 8 -t 1 --json >"$tmp/ppl8.json" 2>/dev/null
"$gemma" compare -m "$m" -m "$m" -f "$tmp/text.txt" --ctx 8 -t 1 --json >"$tmp/cmp.json" 2>/dev/null
check "compare of a model with itself: KL 0, top-1 agreement 1, same perplexity as stride = ctx" 'python3 - "$tmp/cmp.json" "$tmp/ppl8.json" <<"EOF"
import json, sys
c = json.load(open(sys.argv[1])); p = json.load(open(sys.argv[2]))
assert c["kl"]["max"] == 0 and c["top1_agreement"] == 1 and c["max_abs_logit_diff"]["max"] == 0, c
assert abs(c["ppl_a"] - p["perplexity"]) < 1e-6 * p["perplexity"], (c["ppl_a"], p["perplexity"])
EOF'
: >"$tmp/empty.txt"
expect_fail "perplexity of an empty text" 1 "empty.txt: the text is empty" -- "$gemma" perplexity -m "$m" -f "$tmp/empty.txt"
expect_fail "perplexity of a missing file" 1 "nope.txt: cannot open" -- "$gemma" perplexity -m "$m" -f "$tmp/nope.txt"
expect_fail "perplexity --ctx 1" 2 "at least 2" -- "$gemma" perplexity -m "$m" -f "$tmp/text.txt" --ctx 1
expect_fail "perplexity --stride > --ctx" 2 "larger than --ctx" -- "$gemma" perplexity -m "$m" -f "$tmp/text.txt" --ctx 4 --stride 5
expect_fail "compare needs two models" 2 "exactly two" -- "$gemma" compare -m "$m" -f "$tmp/text.txt"
expect_fail "compare of an empty text" 1 "the text is empty" -- "$gemma" compare -m "$m" -m "$m" -f "$tmp/empty.txt"
printf 'bad \xff byte' >"$tmp/bad.txt"
expect_fail "invalid UTF-8 names the file" 1 "bad.txt: .*UTF-8" -- "$gemma" perplexity -m "$m" -f "$tmp/bad.txt"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
