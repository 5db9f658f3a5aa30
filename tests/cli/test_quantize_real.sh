#!/usr/bin/env bash
# test_quantize_real.sh - `gemma quantize` on the real Gemma 3 270M float32
# folder (scripts/make_real_models.sh) gives what mlx_lm.convert -q --q-bits 4
# --q-group-size 64 made of it (models/gemma3-270m-mlx4): the same tensors,
# index and total size, and identical logits in `gemma logits`; and it does so
# streaming (peak RSS far below the 671 MB embedding, where /usr/bin/time exists).
# usage: test_quantize_real.sh GEMMA_BINARY MODELS_DIR TMPDIR   (exit 77: models missing,
# unless GEMMA_REQUIRE_REAL_MODEL=1)
set -u
gemma=$1; models=$2; tmp=$3/quantize-real
hf=$models/gemma3-270m-hf; ref=$models/gemma3-270m-mlx4
if [ ! -f "$hf/model.safetensors" ] || [ ! -f "$ref/model.safetensors" ]; then
  if [ "${GEMMA_REQUIRE_REAL_MODEL:-}" = 1 ]; then echo "FAIL $hf or $ref missing (bash scripts/setup.sh makes them)"; exit 1; fi
  echo "skip: $hf or $ref missing (bash scripts/setup.sh makes them; GEMMA_REQUIRE_REAL_MODEL=1 makes that a failure)"; exit 77
fi
rm -rf "$tmp"; mkdir -p "$tmp"
. "$(dirname "$0")/lib.sh"
out=$tmp/q4

if [ -x /usr/bin/time ]; then
  /usr/bin/time -v "$gemma" quantize -q -m "$hf" -o "$out" 2>"$tmp/time"; rc=$?
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tmp/time")
  [ "$rc" = 0 ] && [ "${rss:-999999}" -lt 65536 ] && ok "quantized with peak RSS $rss KB" || bad "quantize (exit $rc, RSS ${rss:-?} KB)"
else
  "$gemma" quantize -q -m "$hf" -o "$out" && ok "quantized" || bad "quantize"
fi

# the index, whitespace aside: same tensors in the same file, same total size and parameter count
if cmp -s <(tr -d ' \n' <"$out/model.safetensors.index.json") <(tr -d ' \n' <"$ref/model.safetensors.index.json"); then
  ok "index identical to mlx_lm.convert's"
else bad "index differs from mlx_lm.convert's"; fi
[ "$(stat -c %s "$out/model.safetensors")" -ge 167750144 ] && ok "one model.safetensors" || bad "shard"

toks=2,105,2364,107,818,6213,15060,607,236764,3730,532,236761,106,107,105,4368,107
"$gemma" logits -m "$out" --tokens "$toks" -o "$tmp/ours.f32" && "$gemma" logits -m "$ref" --tokens "$toks" -o "$tmp/ref.f32"
cmp -s "$tmp/ours.f32" "$tmp/ref.f32" && ok "logits identical to the mlx_lm.convert folder's" || bad "logits differ (rel $(rel_err "$tmp/ours.f32" "$tmp/ref.f32"))"
rm -rf "$out"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
