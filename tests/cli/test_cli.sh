#!/usr/bin/env bash
# test_cli.sh - `gemma logits` end to end: the file it writes matches the
# reference logits for several prefill splits, and bad invocations fail with
# a one-line message and the documented exit code (1 runtime, 2 usage).
# usage: test_cli.sh GEMMA_BINARY FIXTURES_DIR TMPDIR
set -u
gemma=$1; fixtures=$2/gemma3; tmp=$3/cli
rm -rf "$tmp"; mkdir -p "$tmp"
. "$(dirname "$0")/lib.sh"

fx=text-f32-hub
dir=$fixtures/$fx
tokens=$(tokens_of "$dir")
n=$(echo "$tokens" | tr ',' '\n' | wc -l)
for k in "$n" 1 5 $((n/2)); do
  if "$gemma" logits -m "$dir" --tokens "$tokens" --prefill "$k" -t 2 -o "$tmp/l.f32" 2>"$tmp/err"; then
    e=$(rel_err "$tmp/l.f32" "$dir/ref_hf.f32")
    if awk -v e="$e" 'BEGIN{exit !(e <= 2e-3)}'; then ok "logits prefill $k rel $e"; else bad "logits prefill $k rel $e"; fi
  else bad "logits prefill $k: $(cat "$tmp/err")"; fi
done
printf '%s' "$tokens" | tr ',' ' ' >"$tmp/tokens.txt"
"$gemma" logits -m "$dir" --tokens "$tokens" -t 1 -o "$tmp/l1.f32"
"$gemma" logits -m "$dir" --tokens-file "$tmp/tokens.txt" -t 1 -o "$tmp/l2.f32"
cmp -s "$tmp/l1.f32" "$tmp/l2.f32" && ok "tokens-file gives the same logits" || bad "tokens-file"

"$gemma" info -m "$dir" >"$tmp/info" 2>&1 && grep -q "gemma3_text" "$tmp/info" && ok "info" || bad "info: $(cat "$tmp/info")"

expect_fail "no model"      2 "missing -m"        -- "$gemma" logits --tokens 1,2 -o "$tmp/x.f32"
expect_fail "no output"     2 "missing -o"        -- "$gemma" logits -m "$dir" --tokens 1,2
expect_fail "bad tokens"    2 "tokens"            -- "$gemma" logits -m "$dir" --tokens 1,x -o "$tmp/x.f32"
expect_fail "bad option"    2 "unknown option"    -- "$gemma" logits -m "$dir" --frobnicate
expect_fail "bad command"   2 "unknown command"   -- "$gemma" frobnicate
expect_fail "missing dir"   1 "gemma: error: .*nope" -- "$gemma" logits -m "$tmp/nope" --tokens 1 -o "$tmp/x.f32"
expect_fail "token range"   1 "outside the vocabulary" -- "$gemma" logits -m "$dir" --tokens 1,999999 -o "$tmp/x.f32"
expect_fail "ctx too small" 1 "do not fit"        -- "$gemma" logits -m "$dir" --tokens 1,2,3 --ctx 2 -o "$tmp/x.f32"
[ ! -e "$tmp/x.f32" ] && ok "no output file after failures" || bad "output file written despite failure"

# no -m and no default model installed (a copy of the binary away from the
# repo, run from an empty folder, GEMMA_MODEL unset): a usage error saying how to get one
mkdir -p "$tmp/lone/bin" "$tmp/lone/cwd"; cp "$gemma" "$tmp/lone/bin/gemma"
( cd "$tmp/lone/cwd" && env -u GEMMA_MODEL "$tmp/lone/bin/gemma" run -p hi -n 1 >"$tmp/lone/out" 2>&1 ); rc=$?
[ "$rc" = 2 ] && grep -q "no default model: bash scripts/setup.sh" "$tmp/lone/out" && ok "no default model: usage error" \
  || bad "no default model: rc $rc, $(cat "$tmp/lone/out")"

# --numerics: llamacpp is refused for safetensors, unknown names are usage errors; on a GGUF both run
expect_fail "numerics name" 2 "bad --numerics"    -- "$gemma" logits -m "$dir" --tokens 1,2 --numerics fast -o "$tmp/x.f32"
expect_fail "numerics st"   1 "numerics llamacpp is for GGUF" -- "$gemma" logits -m "$dir" --tokens 1,2 --numerics llamacpp -o "$tmp/x.f32"
gg=$fixtures/gguf-mixed
ggtok=$(tokens_of "$gg")
"$gemma" logits -m "$gg/model.gguf" --tokens "$ggtok" --numerics exact -o "$tmp/ge.f32" 2>"$tmp/err" && \
  e=$(rel_err "$tmp/ge.f32" "$gg/ref_hf.f32") && awk -v e="$e" 'BEGIN{exit !(e <= 2e-2)}' && ok "gguf --numerics exact rel $e" \
  || bad "gguf --numerics exact: $(cat "$tmp/err")"
"$gemma" logits -m "$gg/model.gguf" --tokens "$ggtok" -o "$tmp/gl.f32" 2>"$tmp/err" && \
  cmp -s "$tmp/gl.f32" "$gg/ref_llamacpp_batch.f32" && ok "gguf default numerics = llama.cpp's logits, byte for byte" \
  || bad "gguf default numerics: $(cat "$tmp/err")"

# --numerics int8 on an MLX 4-bit folder: near the reference, and not the exact logits
mx=$fixtures/mlx4-g64-convert
mxtok=$(tokens_of "$mx")
"$gemma" logits -m "$mx" --tokens "$mxtok" --numerics int8 -o "$tmp/mi.f32" 2>"$tmp/err" && \
  "$gemma" logits -m "$mx" --tokens "$mxtok" --numerics exact -o "$tmp/me.f32" 2>>"$tmp/err" && \
  e=$(rel_err "$tmp/mi.f32" "$mx/ref_hf.f32") && awk -v e="$e" 'BEGIN{exit !(e <= 1e-1)}' && ! cmp -s "$tmp/mi.f32" "$tmp/me.f32" \
  && ok "mlx4 --numerics int8 rel $e" || bad "mlx4 --numerics int8: $(cat "$tmp/err")"

# --kv-type: every command that makes a session takes it; unknown names are usage errors (one line, exit 2)
for cmd in logits run chat bench serve "eval pubmedqa" perplexity compare info; do
  expect_fail "$cmd --kv-type name" 2 "bad --kv-type 'q4'" -- "$gemma" $cmd -m "$dir" --kv-type q4
done
expect_fail "kv-type value missing" 2 "needs a value" -- "$gemma" run -m "$dir" --kv-type
# f16 / bf16 caches stay close to the reference; f32 gives the f32 default's bits
"$gemma" logits -m "$dir" --tokens "$tokens" -t 2 --kv-type f32 -o "$tmp/k32.f32" 2>"$tmp/err" &&
  "$gemma" logits -m "$dir" --tokens "$tokens" -t 2 -o "$tmp/kdef.f32" 2>>"$tmp/err" &&
  cmp -s "$tmp/k32.f32" "$tmp/kdef.f32" && ok "--kv-type f32 = the default (exact numerics)" || bad "kv f32: $(cat "$tmp/err")"
for kv in f16 bf16; do
  if "$gemma" logits -m "$dir" --tokens "$tokens" -t 2 --kv-type $kv -o "$tmp/k.f32" 2>"$tmp/err"; then
    e=$(rel_err "$tmp/k.f32" "$dir/ref_hf.f32")
    if ! cmp -s "$tmp/k.f32" "$tmp/k32.f32" && awk -v e="$e" 'BEGIN{exit !(e <= 2e-2)}'; then ok "--kv-type $kv rel $e"
    else bad "--kv-type $kv rel $e"; fi
  else bad "--kv-type $kv: $(cat "$tmp/err")"; fi
done
# llama.cpp numerics: the f16 cache is its default, and an f32 one gives the same bytes
"$gemma" logits -m "$gg/model.gguf" --tokens "$ggtok" --kv-type f32 -o "$tmp/gk.f32" 2>"$tmp/err" &&
  cmp -s "$tmp/gk.f32" "$gg/ref_llamacpp_batch.f32" && ok "gguf --kv-type f32 = llama.cpp's logits too" \
  || bad "gguf --kv-type f32: $(cat "$tmp/err")"
"$gemma" info -m "$dir" --kv-type f16 >"$tmp/info16" 2>&1 && "$gemma" info -m "$dir" --kv-type f32 >"$tmp/info32" 2>&1 &&
  m16=$(sed -n 's/^memory: *\([0-9.]*\) MB.*/\1/p' "$tmp/info16") && m32=$(sed -n 's/^memory: *\([0-9.]*\) MB.*/\1/p' "$tmp/info32") &&
  awk -v a="$m16" -v b="$m32" 'BEGIN{exit !(a < b)}' && ok "info: f16 session $m16 MB < f32 $m32 MB" || bad "info kv: $(cat "$tmp/info16" "$tmp/info32")"

# a failed run leaves an existing output file untouched
echo keep >"$tmp/keep.f32"
"$gemma" logits -m "$dir" --tokens 1,999999 -o "$tmp/keep.f32" 2>/dev/null
[ "$(cat "$tmp/keep.f32")" = keep ] && ok "existing file kept on failure" || bad "existing file clobbered"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
