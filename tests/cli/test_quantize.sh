#!/usr/bin/env bash
# test_quantize.sh - `gemma quantize` end to end: its output runs in
# `gemma logits` within the quantized-parity bound of the fixture's
# transformers logits, sharding changes no logit, --skip-vision keeps the
# vision tower in float, --force replaces only what it writes, the input is
# never touched, and bad invocations fail with one line and the documented
# exit code (1 runtime, 2 usage).  Bit-identity with mlx is test_quantize.
# usage: test_quantize.sh GEMMA_BINARY FIXTURES_DIR TMPDIR
set -u
gemma=$1; fixtures=$2/gemma3; tmp=$3/cli-quantize
rm -rf "$tmp"; mkdir -p "$tmp"
. "$(dirname "$0")/lib.sh"

# 8-bit output within 2e-2 * max|ref| of transformers' float logits (the
# quantized parity bound); 4-bit noise on these tiny random models is larger,
# test_quantize compares those with mlx-lm on the same quantized weights.
for spec in "text-f32-hub 8 32" "mm-f32-hub-sharded 8 64"; do
  set -- $spec; fx=$1; dir=$fixtures/$fx; out=$tmp/$fx-b$2g$3
  if "$gemma" quantize -q -m "$dir" -o "$out" --bits "$2" --group-size "$3" 2>"$tmp/err" &&
     "$gemma" logits -m "$out" --tokens "$(tokens_of "$dir")" -t 2 -o "$out.f32" 2>>"$tmp/err"; then
    e=$(rel_err "$out.f32" "$dir/ref_hf.f32")
    if awk -v e="$e" 'BEGIN{exit !(e <= 2e-2)}'; then ok "$fx $2-bit g$3 logits rel $e"; else bad "$fx $2-bit g$3 logits rel $e"; fi
  else bad "$fx $2-bit g$3: $(cat "$tmp/err")"; fi
done
grep -q '"quantization_config"' "$tmp/text-f32-hub-b8g32/config.json" &&
  grep -q '"bits": 8' "$tmp/text-f32-hub-b8g32/config.json" && ok "config.json declares the quantization" || bad "config.json"
[ -f "$tmp/text-f32-hub-b8g32/model.safetensors" ] && [ -f "$tmp/text-f32-hub-b8g32/model.safetensors.index.json" ] &&
  ok "one shard is model.safetensors + index" || bad "single-shard layout"

# sharded output: several model-0000i-of-0000N files, the same logits
dir=$fixtures/text-bf16-t5; toks=$(tokens_of "$dir")
"$gemma" quantize -q -m "$dir" -o "$tmp/one" && "$gemma" quantize -q -m "$dir" -o "$tmp/many" --shard-size 40K &&
  "$gemma" logits -m "$tmp/one" --tokens "$toks" -o "$tmp/one.f32" && "$gemma" logits -m "$tmp/many" --tokens "$toks" -o "$tmp/many.f32"
n=$(ls "$tmp/many"/model-*-of-*.safetensors 2>/dev/null | wc -l)
if [ "$n" -ge 3 ] && [ ! -e "$tmp/many/model.safetensors" ] && cmp -s "$tmp/one.f32" "$tmp/many.f32"; then ok "$n shards, identical logits"
else bad "sharding ($n shards)"; fi

# --skip-vision: no vision tensor gets scales; without it the tower is quantized too
dir=$fixtures/mm-f32-hub-sharded
"$gemma" quantize -q -m "$dir" -o "$tmp/vq" --group-size 32 && "$gemma" quantize -q -m "$dir" -o "$tmp/vf" --group-size 32 --skip-vision
a=$(grep -c 'vision_tower[^"]*\.scales"' "$tmp/vq/model.safetensors.index.json"); b=$(grep -c 'vision_tower[^"]*\.scales"' "$tmp/vf/model.safetensors.index.json")
c=$(grep -c '"vision_tower[^"]*"' "$tmp/vf/model.safetensors.index.json")
if [ "$a" -gt 0 ] && [ "$b" = 0 ] && [ "$c" -gt 0 ]; then ok "--skip-vision keeps $c vision tensors in float (default quantizes $a)"
else bad "--skip-vision ($a quantized by default, $b with the flag, $c kept)"; fi

# the input folder is only read; --force replaces what quantize writes and keeps the rest
in=$tmp/in; mkdir -p "$in"; cp "$fixtures/text-bf16-t5"/config.json "$fixtures/text-bf16-t5"/model.safetensors "$in/"
printf '{"x":1}' >"$in/tokenizer.json"; printf '{}' >"$in/generation_config.json"
before=$(cd "$in" && sha256sum * | sha256sum)
out=$tmp/forced; mkdir -p "$out"; echo mine >"$out/notes.txt"
expect_fail "refuses a non-empty OUT_DIR" 1 "not empty.*--force" -- "$gemma" quantize -m "$in" -o "$out"
if "$gemma" quantize -q -m "$in" -o "$out" --force && grep -q mine "$out/notes.txt" && cmp -s "$in/tokenizer.json" "$out/tokenizer.json" &&
   cmp -s "$in/generation_config.json" "$out/generation_config.json" && "$gemma" info -m "$out" >/dev/null 2>&1; then ok "--force writes, keeps other files"
else bad "--force"; fi
"$gemma" quantize -q -m "$in" -o "$out" --force --bits 8 && grep -q '"bits": 8' "$out/config.json" && ok "--force again replaces" || bad "--force again"
[ "$(ls -A "$out" | grep -c tmp)" = 0 ] && ok "no temporaries left" || bad "temporaries left: $(ls -A "$out")"
expect_fail "OUT_DIR is HF_DIR" 1 "input model directory" -- "$gemma" quantize -m "$in" -o "$in/." --force
[ "$(cd "$in" && sha256sum * | sha256sum)" = "$before" ] && [ "$(ls -A "$in" | wc -l)" = 4 ] && ok "HF_DIR untouched" || bad "HF_DIR changed"

# corrupt input: one line naming the file and the tensor, nothing written
cp -r "$fixtures/text-bf16-t5" "$tmp/corrupt"; head -c 150000 "$fixtures/text-bf16-t5/model.safetensors" >"$tmp/corrupt/model.safetensors"
expect_fail "truncated input" 1 "gemma: error: .*corrupt/model.safetensors: tensor '.*truncated" -- "$gemma" quantize -m "$tmp/corrupt" -o "$tmp/c-out"
[ ! -e "$tmp/c-out" ] && ok "nothing written for a corrupt input" || bad "output left for a corrupt input"
expect_fail "missing input" 1 "gemma: error: .*nope" -- "$gemma" quantize -m "$tmp/nope" -o "$tmp/x"
expect_fail "already quantized" 1 "already quantized" -- "$gemma" quantize -m "$fixtures/mlx4-g64-convert" -o "$tmp/x"

# usage errors
d=$fixtures/text-bf16-t5
expect_fail "--bits 7"          2 "bad --bits"       -- "$gemma" quantize -m "$d" -o "$tmp/x" --bits 7
expect_fail "--bits 16"         2 "bad --bits"       -- "$gemma" quantize -m "$d" -o "$tmp/x" --bits 16
expect_fail "--group-size 48"   2 "bad --group-size" -- "$gemma" quantize -m "$d" -o "$tmp/x" --group-size 48
expect_fail "--shard-size x"    2 "bad --shard-size" -- "$gemma" quantize -m "$d" -o "$tmp/x" --shard-size 5X
expect_fail "missing -m"        2 "missing -m"       -- "$gemma" quantize -o "$tmp/x"
expect_fail "missing -o"        2 "missing -o"       -- "$gemma" quantize -m "$d"
expect_fail "-m without value"  2 "needs a value"    -- "$gemma" quantize -o "$tmp/x" -m
expect_fail "unknown option"    2 "unknown option"   -- "$gemma" quantize -m "$d" -o "$tmp/x" --frobnicate
[ ! -e "$tmp/x" ] && ok "nothing written after usage errors" || bad "output written despite usage errors"
"$gemma" quantize --help >"$tmp/help" 2>&1 && grep -q -- "--skip-vision" "$tmp/help" && grep -q -- "--force" "$tmp/help" &&
  grep -q "Exit codes" "$tmp/help" && ok "--help" || bad "--help"
"$gemma" --help | grep -q quantize && ok "listed in gemma --help" || bad "not in gemma --help"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
