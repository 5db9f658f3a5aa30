#!/usr/bin/env bash
# test_bench.sh - `gemma bench` keeps working (a smoke run, never a timed
# assertion): the JSON line has every field with sane values for a fixture
# model, a synthetic architecture and a vision model; a bench-made
# --synthetic-dir is reused and a folder it did not make is refused and left
# untouched; bad invocations fail with one line and the documented exit code.
# usage: test_bench.sh GEMMA_BINARY FIXTURES_DIR TMPDIR
set -u
gemma=$1; fixtures=$2; tmp=$3/cli-bench
rm -rf "$tmp"; mkdir -p "$tmp"
. "$(dirname "$0")/lib.sh"

# every field the issue names, positive where a speed or a size
check_json() { # name file
  local f
  for f in prefill_tok_s decode_tok_s ttft_ms load_ms peak_rss_mb weight_bytes bytes_per_token threads; do
    if ! grep -q "\"$f\": [0-9]*[1-9]" "$2" && ! grep -q "\"$f\": 0\.[0-9]*[1-9]" "$2"; then
      bad "$1: field $f missing or not positive: $(head -c 400 "$2")"; return
    fi
  done
  grep -q '"isa": "[a-z0-9]*"' "$2" || { bad "$1: no isa"; return; }
  ok "$1"
}

"$gemma" bench -m "$fixtures/gemma3/text-f32-hub" --prompt 6 --gen 3 --reps 2 -t 2 --no-machine --json >"$tmp/a.json" 2>"$tmp/err" &&
  check_json "fixture model" "$tmp/a.json" || bad "fixture model: $(cat "$tmp/err")"

"$gemma" bench --synthetic gemma3-270m --synthetic-dir "$tmp/s270m" --prompt 4 --gen 2 --reps 1 -t 2 --json \
  >"$tmp/b.json" 2>"$tmp/err" && check_json "synthetic gemma3-270m" "$tmp/b.json" || bad "synthetic: $(cat "$tmp/err")"
# both positive (a figure like 24.00 counts: any nonzero digit)
grep -q '"fma_gflops": [1-9]' "$tmp/b.json" && grep -Eq '"read_gbs": (0*[1-9][0-9]*\.[0-9]+|0+\.[0-9]*[1-9][0-9]*),' "$tmp/b.json" &&
  ok "machine limits measured" || bad "machine limits: $(cat "$tmp/b.json")"
# 270M: 150.8 MB of MLX 4-bit weights, all read per token (tied head)
grep -q '"weight_bytes": 1507[0-9]\{5\},' "$tmp/b.json" && ok "synthetic 270m weight bytes" || bad "weight bytes: $(cat "$tmp/b.json")"
stamp=$(stat -c %Y "$tmp/s270m/model.safetensors")
"$gemma" bench --synthetic gemma3-270m --synthetic-dir "$tmp/s270m" --prompt 4 --gen 1 --reps 1 --no-machine >"$tmp/c.txt" 2>&1 &&
  [ "$(stat -c %Y "$tmp/s270m/model.safetensors")" = "$stamp" ] && ! grep -q "^synthetic .* written" "$tmp/c.txt" &&
  ok "synthetic dir reused" || bad "reuse: $(cat "$tmp/c.txt")"

"$gemma" bench -m "$fixtures/mm/e2e-f32-hub" --prompt 4 --gen 1 --reps 1 --image --no-machine --json >"$tmp/d.json" 2>"$tmp/err" &&
  grep -q '"vision_ms": [0-9]' "$tmp/d.json" && ok "vision_ms" || bad "vision: $(cat "$tmp/err" "$tmp/d.json")"

# --kv-type: in the JSON line and the table, and the session takes less memory with a half cache
"$gemma" bench -m "$fixtures/gemma3/text-f32-hub" --prompt 6 --gen 3 --reps 1 -t 2 --ctx 512 --no-machine --json --kv-type f16 \
  >"$tmp/k16.json" 2>"$tmp/err" && "$gemma" bench -m "$fixtures/gemma3/text-f32-hub" --prompt 6 --gen 3 --reps 1 -t 2 \
  --ctx 512 --no-machine --json >"$tmp/k32.json" 2>>"$tmp/err" && grep -q '"kv_type": "f16"' "$tmp/k16.json" &&
  grep -q '"kv_type": "f32"' "$tmp/k32.json" &&
  awk -v a="$(sed 's/.*"kv_bytes": \([0-9]*\).*/\1/' "$tmp/k16.json")" -v b="$(sed 's/.*"kv_bytes": \([0-9]*\).*/\1/' "$tmp/k32.json")" \
    'BEGIN{exit !(a > 0 && a < b)}' && ok "bench --kv-type f16: kv_type in the JSON, smaller kv_bytes" \
  || bad "bench kv-type: $(cat "$tmp/err" "$tmp/k16.json" "$tmp/k32.json")"
"$gemma" bench -m "$fixtures/gemma3/text-f32-hub" --prompt 4 --gen 1 --reps 1 -t 2 --no-machine --kv-type bf16 >"$tmp/kt.txt" 2>&1 &&
  grep -q "^model .*bf16 KV cache" "$tmp/kt.txt" && ok "bench table names the KV type" || bad "bench table: $(cat "$tmp/kt.txt")"
expect_fail "bad kv-type" 2 "bad --kv-type" -- "$gemma" bench --synthetic gemma3-1b --kv-type f8

mkdir -p "$tmp/mine"; echo keep >"$tmp/mine/notes.txt"
expect_fail "foreign --synthetic-dir refused" 1 "is not a synthetic" -- "$gemma" bench --synthetic gemma3-270m --synthetic-dir "$tmp/mine" --no-machine
[ "$(cat "$tmp/mine/notes.txt")" = keep ] && [ "$(ls "$tmp/mine")" = notes.txt ] && ok "foreign dir untouched" || bad "foreign dir changed"
expect_fail "unknown arch" 2 "unknown --synthetic" -- "$gemma" bench --synthetic gemma9
expect_fail "model and synthetic" 2 "one of them" -- "$gemma" bench -m x --synthetic gemma3-1b
expect_fail "no model" 2 "one of them" -- "$gemma" bench
expect_fail "image on text arch" 2 "no vision tower" -- "$gemma" bench --synthetic gemma3-1b --image
expect_fail "bad quant" 2 "quant must be" -- "$gemma" bench --synthetic gemma3-1b --quant q3
expect_fail "bad threads" 2 "must be 1..1024" -- "$gemma" bench --synthetic gemma3-1b -t 0
expect_fail "ctx too small" 2 "smaller than" -- "$gemma" bench --synthetic gemma3-1b --prompt 64 --gen 8 --ctx 32
expect_fail "missing model" 1 "nope" -- "$gemma" bench -m "$tmp/nope" --no-machine
expect_fail "image on text model" 1 "no vision tower" -- "$gemma" bench -m "$fixtures/gemma3/text-f32-hub" --image --prompt 2 --gen 1 --reps 1 --no-machine

rm -rf "$tmp/s270m"   # 150 MB
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
