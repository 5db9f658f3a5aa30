#!/usr/bin/env bash
# test_gemma4.sh - `gemma info`, `tokenize --chat`, `run` and `chat` end to end on a Gemma 4
# checkpoint directory: a tiny random gemma4_text model (make_test_model --gemma4) with the stand-in
# Gemma 4 tokenizer that tools/reference/make_gemma4_tokenizer.py derives from the real Gemma 3 one
# (no real Gemma 4 tokenizer or weights exist here).  Checks the Gemma 4 prompt ids, the stop ids of
# generation_config.json (1, 106, 50), thinking mode, thought channels shown apart from the answer
# (stderr vs stdout) and left out of the next turn's history.  Replies are random text; the tests
# check behaviour, not words.  --force-reply puts chosen ids where the model would sample.
# usage: test_gemma4.sh GEMMA MAKE_TEST_MODEL GEMMA3_TOKENIZER_DIR TMPDIR
set -u
gemma=$1; make_model=$2; tok3=$3; tmp=$4/gemma4
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$tmp"; mkdir -p "$tmp"
source "$here/lib.sh"
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

if [ ! -f "$tok3/tokenizer.json" ]; then
  echo "FAIL the real Gemma 3 tokenizer is missing: run scripts/setup.sh"; echo "0 passed, 1 failed"; exit 1
fi
tok=$tmp/tok
python3 "$here/../../tools/reference/make_gemma4_tokenizer.py" --from "$tok3" --out "$tok" >/dev/null ||
  { echo "FAIL make_gemma4_tokenizer.py"; exit 1; }
m=$tmp/model
"$make_model" "$m" "$tok" --gemma4 || { echo "FAIL make_test_model --gemma4"; exit 1; }
ids() { "$gemma" tokenize -m "$m" "$@"; }

# ---- the stand-in tokenizer: Gemma 4's control tokens at Gemma 4's ids (spec 4.1)
check "special tokens at Gemma 4's ids" '[ "$(ids "<|turn><turn|><|channel><channel|><|think|><|tool_response><|image|><|image><image|>")" = "[105,106,100,101,98,50,258880,255999,258882]" ]'
check "Gemma 3's turn markers are gone" '[ "$(ids "<start_of_turn>" | tr -cd , | wc -c)" -gt 0 ]'

# ---- info
"$gemma" info -m "$m" >"$tmp/info.txt" 2>&1; rc=$?
check "info: gemma4_text, per-layer inputs, KV sharing" '[ $rc = 0 ] && grep -q "arch: *gemma4_text: 6 layers (2 global)" "$tmp/info.txt" && grep -q "per-layer inputs 16, 2 KV-shared layers" "$tmp/info.txt"'
check "info: stop ids 1 106 50 (generation_config)" 'grep -q "stop ids: *1 106 50$" "$tmp/info.txt"'
check "info: chat format gemma4 with thinking, the 262144-id tokenizer marked STAND-IN" 'grep -q "chat format: gemma4 (thinking mode: --think)" "$tmp/info.txt" && grep -q "tokenizer: *262144 ids (STAND-IN" "$tmp/info.txt"'

# ---- tokenize --chat: the spec's prompt ids (4.2: 2,105,2364,107,...,106,107,105,4368,107)
test_id=$(ids "TEST" | tr -d '[]')
check "tokenize --chat" '[ "$(ids --chat TEST)" = "[2,105,2364,107,$test_id,106,107,105,4368,107]" ]'
printf '<bos><|turn>user\nTEST<turn|>\n<|turn>model\n' >"$tmp/want.txt"
ids --chat " TEST " --render >"$tmp/got.txt"
check "tokenize --chat --render (trimmed, no empty thought block)" 'cmp -s "$tmp/want.txt" "$tmp/got.txt"'
check "tokenize --chat --system" '[ "$(ids --chat TEST --system S --render)" = "$(printf "<bos><|turn>system\nS<turn|>\n<|turn>user\nTEST<turn|>\n<|turn>model\n")" ]'
check "tokenize --chat --think: <|think|> opens a system turn" '[ "$(ids --chat TEST --think)" = "[2,105,9731,107,98,107,106,107,105,2364,107,$test_id,106,107,105,4368,107]" ]'
check "tokenize --chat --no-generation-prompt" '[ "$(ids --chat TEST --no-generation-prompt)" = "[2,105,2364,107,$test_id,106,107]" ]'
expect_fail "tokenize --think without a chat" 2 "go with --messages or --chat" -- "$gemma" tokenize -m "$m" --think TEST
expect_fail "--think on a Gemma 3 format" 1 "no thinking mode" -- "$gemma" tokenize --tokenizer "$tok3/tokenizer.json" --chat hi --think

# ---- run: streams text, deterministic, stops on generation_config's stop ids
"$gemma" run -m "$m" -p "Hello there" -n 12 --temp 0 -t 2 >"$tmp/g1.txt" 2>"$tmp/g1.err"; rc=$?
"$gemma" run -m "$m" -p "Hello there" -n 12 --temp 0 -t 1 >"$tmp/g2.txt" 2>/dev/null
check "run prints text (greedy, 1 vs 2 threads the same)" '[ $rc = 0 ] && [ -s "$tmp/g1.txt" ] && [ "$(wc -c <"$tmp/g1.txt")" -gt 1 ] && cmp -s "$tmp/g1.txt" "$tmp/g2.txt"'
np=$(( $(ids --chat "Hello there" | tr -cd , | wc -c) + 1 ))
check "run evaluates the Gemma 4 prompt ($np tokens) and generates 12" 'grep -q "prompt: $np tokens" "$tmp/g1.err" && grep -q "generation: 12 tokens" "$tmp/g1.err"'
hello=$(ids "Hello" | tr -d '[]')
for stop in 1 106 50; do
  "$gemma" run -m "$m" -p hi -n 8 --force-reply "$hello,$stop,$hello" -t 1 >"$tmp/s.txt" 2>"$tmp/s.err"
  check "run stops on id $stop" 'grep -q "generation: 1 tokens" "$tmp/s.err" && grep -q "stopped: stop token" "$tmp/s.err" && [ "$(cat "$tmp/s.txt")" = "Hello" ]'
done
# without generation_config.json only config.json's eos ids (1, 106) stop: 50 is generated
cp -r "$m" "$tmp/nogen" && rm "$tmp/nogen/generation_config.json"
"$gemma" run -m "$tmp/nogen" -p hi -n 3 --force-reply "$hello,50,$hello" -t 1 >/dev/null 2>"$tmp/s.err"
check "id 50 stops only because generation_config.json says so" 'grep -q "generation: 3 tokens" "$tmp/s.err" && grep -q "stopped: length limit" "$tmp/s.err"'

# ---- thinking: the thought channel on stderr, the answer alone on stdout
think_ids=$(ids "The user greets me." | tr -d '[]'); answer_ids=$(ids "Hi! How can I help?" | tr -d '[]')
reply="100,$(ids thought | tr -d '[]'),107,$think_ids,101,$answer_ids,106"
"$gemma" run -m "$m" -p "Hello" --think --force-reply "$reply" -t 1 >"$tmp/t.out" 2>"$tmp/t.err"; rc=$?
check "run --think: answer on stdout" '[ $rc = 0 ] && [ "$(cat "$tmp/t.out")" = "Hi! How can I help?" ]'
check "run --think: thought on stderr" 'grep -q "^thought$" "$tmp/t.err" && grep -q "^The user greets me.$" "$tmp/t.err"'
nt=$(( $(ids --chat Hello --think | tr -cd , | wc -c) + 1 ))
check "run --think: the prompt is the thinking one ($nt tokens)" 'grep -q "prompt: $nt tokens" "$tmp/t.err"'
"$gemma" run -m "$m" -p "Hello" --hide-thinking --force-reply "$reply" -t 1 >"$tmp/h.out" 2>"$tmp/h.err"
check "run --hide-thinking: no thought anywhere" '[ "$(cat "$tmp/h.out")" = "Hi! How can I help?" ] && ! grep -q "greets" "$tmp/h.err"'
"$gemma" run -m "$m" -p "Hello" --raw --force-reply "$reply" -t 1 >"$tmp/r.out" 2>/dev/null
check "run --raw: no channel splitting (markers are special, the thought text is printed)" 'grep -q "greets" "$tmp/r.out"'
expect_fail "run --raw --think" 2 "needs the chat format" -- "$gemma" run -m "$m" -p hi --raw --think

# ---- chat: multi-turn history in the Gemma 4 format, without the thoughts
printf 'Hello\nAgain\n' | "$gemma" chat -m "$m" --force-reply "$reply" -t 1 >"$tmp/c.out" 2>"$tmp/c.err"; rc=$?
check "chat: 2 turns, answers on stdout" '[ $rc = 0 ] && [ "$(grep -c "^Hi! How can I help?$" "$tmp/c.out")" = 2 ] && ! grep -q greets "$tmp/c.out"'
check "chat: thoughts shown on stderr" '[ "$(grep -c "^The user greets me.$" "$tmp/c.err")" = 2 ]'
# turn 2's prompt is exactly the history the template renders with the thought stripped
printf '[{"role":"user","content":"Hello"},{"role":"assistant","content":"Hi! How can I help?"},{"role":"user","content":"Again"}]' >"$tmp/h.json"
n1=$(( $(ids --chat Hello | tr -cd , | wc -c) + 1 )); n2=$(( $(ids --messages "$tmp/h.json" | tr -cd , | wc -c) + 1 ))
turn2=$(grep "generation:" "$tmp/c.err" | sed -n 2p)
new2=$(echo "$turn2" | sed -n 's/.*prompt: \([0-9]*\) tokens.*/\1/p'); cached2=$(echo "$turn2" | sed -n 's/.*(\([0-9]*\) reused.*/\1/p')
check "chat turn 2: history re-rendered without the thought ($cached2 cached = turn 1's prompt $n1; $cached2 + $new2 = $n2)" '[ "$cached2" = "$n1" ] && [ $((cached2 + new2)) = "$n2" ]'
printf 'Hello\nAgain\n' | "$gemma" chat -m "$m" --think -n 4 --temp 0 -t 1 >/dev/null 2>"$tmp/ct.err"; rc=$?
check "chat --think: turn 1 is the thinking prompt ($nt tokens)" '[ $rc = 0 ] && grep -q "prompt: $nt tokens (0 reused" "$tmp/ct.err" && [ "$(grep -c "generation:" "$tmp/ct.err")" = 2 ]'
printf 'Hi\n' | "$gemma" chat -m "$m" --hide-thinking --force-reply "$reply" -t 1 >"$tmp/ch.out" 2>"$tmp/ch.err"
check "chat --hide-thinking" '[ "$(cat "$tmp/ch.out")" = "Hi! How can I help?" ] && ! grep -q greets "$tmp/ch.err"'
expect_fail "run: bad --force-reply" 2 "bad value" -- "$gemma" run -m "$m" -p hi --force-reply x
expect_fail "run: --force-reply id past the vocabulary" 1 "outside the vocabulary" -- "$gemma" run -m "$m" -p hi --force-reply 262144 -t 1

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
