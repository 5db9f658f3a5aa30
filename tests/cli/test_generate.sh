#!/usr/bin/env bash
# test_generate.sh - `gemma run`, `gemma chat` and `gemma tokenize` end to end on
# a small random model that uses the real Gemma 3 tokenizer: determinism with a
# seed, stop strings, the KV cache reused across chat turns, /reset, ^C, bad
# flags.  The replies are random text; the tests check behaviour, not words.
# usage: test_generate.sh GEMMA MAKE_TEST_MODEL TOKENIZER_DIR TMPDIR
set -u
gemma=$1; make_model=$2; tokdir=$3; tmp=$4/gen
rm -rf "$tmp"; mkdir -p "$tmp"
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

if [ ! -f "$tokdir/tokenizer.json" ]; then
  echo "FAIL the real tokenizer is missing: run scripts/setup.sh"; echo "0 passed, 1 failed"; exit 1
fi
m=$tmp/model
"$make_model" "$m" "$tokdir" || { echo "FAIL make_test_model"; exit 1; }

# ---- tokenize
check "tokenize text" '[ "$("$gemma" tokenize --tokenizer "$tokdir/tokenizer.json" "Hello")" = "[9259]" ]'
check "tokenize --bos" '[ "$("$gemma" tokenize -m "$m" --bos "Hello")" = "[2,9259]" ]'
echo '[{"role":"user","content":"Hello"}]' >"$tmp/conv.json"
check "tokenize --messages" '[ "$("$gemma" tokenize -m "$m" --messages "$tmp/conv.json")" = "[2,105,2364,107,9259,106,107,105,4368,107]" ]'
printf '<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n' >"$tmp/want.txt"
"$gemma" tokenize -m "$m" --messages "$tmp/conv.json" --render >"$tmp/got.txt"
check "tokenize --render" 'cmp -s "$tmp/want.txt" "$tmp/got.txt"'
printf '"Hello"\n"a<bos>b"\n' | "$gemma" tokenize -m "$m" --jsonl >"$tmp/jsonl.txt"
check "tokenize --jsonl" '[ "$(cat "$tmp/jsonl.txt")" = "$(printf "[9259]\n[236746,2,236763]")" ]'
echo '[{"role":"user","content":"a"},{"role":"user","content":"b"}]' >"$tmp/bad.json"
"$gemma" tokenize -m "$m" --messages "$tmp/bad.json" >/dev/null 2>"$tmp/err"; rc=$?
check "tokenize rejects a bad conversation" '[ $rc = 1 ] && grep -q alternate "$tmp/err"'
printf 'bad \xff byte' | "$gemma" tokenize -m "$m" - >/dev/null 2>"$tmp/err"; rc=$?
check "tokenize rejects invalid UTF-8" '[ $rc = 1 ] && grep -q "UTF-8" "$tmp/err"'

# ---- run
"$gemma" run -m "$m" -p "Hello there" -n 12 --temp 0 -t 2 >"$tmp/g1.txt" 2>"$tmp/g1.err"
"$gemma" run -m "$m" -p "Hello there" -n 12 --temp 0 -t 1 >"$tmp/g2.txt" 2>/dev/null
check "run greedy is deterministic (1 vs 2 threads)" 'cmp -s "$tmp/g1.txt" "$tmp/g2.txt" && [ -s "$tmp/g1.txt" ]'
check "run prints speed and time to first token" 'grep -q "generation: 12 tokens" "$tmp/g1.err" && grep -q "time to first token" "$tmp/g1.err"'
"$gemma" run -m "$m" -p "Hi" -n 16 --seed 7 --temp 1 >"$tmp/s1.txt" 2>/dev/null
"$gemma" run -m "$m" -p "Hi" -n 16 --seed 7 --temp 1 >"$tmp/s2.txt" 2>/dev/null
"$gemma" run -m "$m" -p "Hi" -n 16 --seed 8 --temp 1 >"$tmp/s3.txt" 2>/dev/null
check "run with a seed is reproducible" 'cmp -s "$tmp/s1.txt" "$tmp/s2.txt"'
check "another seed gives another reply" '! cmp -s "$tmp/s1.txt" "$tmp/s3.txt"'
# a stop string taken from the middle of a sampled reply cuts it right before its first occurrence
"$gemma" run -m "$m" -p "Hi" -n 24 --seed 11 --temp 1 >"$tmp/full.txt" 2>/dev/null
stop=$(python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); s=d[8:12]; print(s.decode("utf-8","ignore").strip() or d[:2].decode("utf-8","ignore"), end="")' "$tmp/full.txt")
"$gemma" run -m "$m" -p "Hi" -n 24 --seed 11 --temp 1 --stop "$stop" >"$tmp/st.txt" 2>"$tmp/st.err"
check "stop string cuts the reply before it" 'python3 -c "
import sys; full=open(sys.argv[1],\"rb\").read(); got=open(sys.argv[2],\"rb\").read(); stop=sys.argv[3].encode()
i=full.find(stop); sys.exit(0 if i >= 0 and got == full[:i] + b\"\\n\" else 1)" "$tmp/full.txt" "$tmp/st.txt" "$stop" && grep -q "stopped: stop string" "$tmp/st.err"'
"$gemma" run -m "$m" -p "Hello" --raw -n 4 --temp 0 >/dev/null 2>"$tmp/raw.err"
check "run --raw" 'grep -q "generation: 4 tokens" "$tmp/raw.err"'
echo "Hello from stdin" | "$gemma" run -m "$m" -p - -n 3 --temp 0 >/dev/null 2>"$tmp/stdin.err"
check "run reads the prompt from stdin" 'grep -q "generation: 3 tokens" "$tmp/stdin.err"'

# ---- chat: scripted turns through a pipe
printf 'Hello\nHow are you?\n/reset\nHi again\n/system Be brief.\nOne more\n' |
  "$gemma" chat -m "$m" -n 6 --temp 0 >"$tmp/chat.out" 2>"$tmp/chat.err"; rc=$?
check "chat exits 0 at EOF" '[ $rc = 0 ]'
check "chat answers 4 turns" '[ "$(grep -c "generation:" "$tmp/chat.err")" = 4 ]'
turn2=$(sed -n 2p <(grep "generation:" "$tmp/chat.err"))
cached2=$(echo "$turn2" | sed -n 's/.*(\([0-9]*\) reused.*/\1/p')
new2=$(echo "$turn2" | sed -n 's/.*prompt: \([0-9]*\) tokens.*/\1/p')
check "chat turn 2 reuses the cache and evaluates only new tokens ($new2 new, $cached2 cached)" '[ "${cached2:-0}" -ge 10 ] && [ "${new2:-99}" -lt 30 ]'
turn3=$(sed -n 3p <(grep "generation:" "$tmp/chat.err"))
check "chat /reset starts from an empty cache" 'echo "$turn3" | grep -q "(0 reused"'
check "chat /reset and /system are acknowledged" 'grep -q "conversation reset" "$tmp/chat.out" && grep -q "system prompt set" "$tmp/chat.out"'

# ---- ^C stops the reply, not the program
mkfifo "$tmp/fifo"
("$gemma" chat -m "$m" -n 100000 --temp 1 --seed 1 <"$tmp/fifo" >"$tmp/int.out" 2>"$tmp/int.err"; echo $? >"$tmp/int.rc") &
exec 3>"$tmp/fifo"
echo "Tell me a long story" >&3
sleep 2
pkill -INT -f "chat -m $m -n 100000" 
sleep 1
echo "/quit" >&3
exec 3>&-
wait
check "^C stops the reply and chat goes on to exit 0" '[ "$(cat "$tmp/int.rc")" = 0 ] && grep -q "(stopped)" "$tmp/int.out" && grep -q "stopped: interrupted" "$tmp/int.err"'

# ---- bad flags and files
expect() { # name code pattern -- cmd
  local name=$1 code=$2 pat=$3; shift 4
  "$@" >/dev/null 2>"$tmp/err" </dev/null; local rc=$?
  if [ $rc = "$code" ] && grep -q -- "$pat" "$tmp/err"; then ok "$name"; else bad "$name (exit $rc: $(head -c 200 "$tmp/err"))"; fi
}
expect "run: bad --temp"     2 "bad value"      -- "$gemma" run -m "$m" -p hi --temp abc
expect "run: bad -n"         2 "bad value"      -- "$gemma" run -m "$m" -p hi -n -5
expect "run: no prompt"      2 "missing -p"     -- "$gemma" run -m "$m"
expect "run: missing model"  1 "gemma: error"   -- "$gemma" run -m "$tmp/none" -p hi
expect "run: --top-p 2"      2 "bad value"      -- "$gemma" run -m "$m" -p hi --top-p 2
expect "chat: unknown flag"  2 "unknown option" -- "$gemma" chat -m "$m" --bogus
expect "tokenize: no source" 2 "exactly one of" -- "$gemma" tokenize hello
expect "run: prompt too long for --ctx" 1 "context" -- "$gemma" run -m "$m" -p "$(printf 'word %.0s' $(seq 200))" --ctx 64
for c in run chat tokenize info logits; do
  "$gemma" $c --help >/dev/null 2>&1 && ok "$c --help" || bad "$c --help"
done

# ---- images: a multimodal model (random SigLIP tower) with the real tokenizer
mm=$tmp/mm
"$make_model" "$mm" "$tokdir" --vision || { echo "FAIL make_test_model --vision"; exit 1; }
img=$(dirname "$0")/../fixtures/mm/e2e-f32-hub/image0.png
jpg=$(dirname "$0")/../fixtures/mm/e2e-f32-hub/image1.jpg
"$gemma" run -m "$mm" --image "$img" -p "What is this?" -n 6 --temp 0 -t 2 >"$tmp/i1.txt" 2>"$tmp/i1.err"; rc=$?
"$gemma" run -m "$mm" --image "$img" -p "What is this?" -n 6 --temp 0 -t 1 >"$tmp/i2.txt" 2>/dev/null
check "run --image (1 vs 2 threads the same)" '[ $rc = 0 ] && cmp -s "$tmp/i1.txt" "$tmp/i2.txt" && grep -q "prompt: 17 tokens" "$tmp/i1.err"'
"$gemma" run -m "$mm" --image "$jpg" -p "What is this?" -n 6 --temp 0 -t 2 >"$tmp/i3.txt" 2>/dev/null
"$gemma" run -m "$mm" -p "What is this?" -n 6 --temp 0 -t 2 >"$tmp/i4.txt" 2>"$tmp/i4.err"
check "run --image twice: two images in the prompt" '"$gemma" run -m "$mm" --image "$img" --image "$jpg" -p "Compare." -n 2 --temp 0 2>&1 >/dev/null | grep -q "prompt: 19 tokens"'
# "\n\n<start_of_image><image_soft_token><end_of_image>\n\n" after "user\n": 4 more tokens per image
check "run without the image: 4 tokens fewer" 'grep -q "prompt: 13 tokens" "$tmp/i4.err"'
"$gemma" run -m "$m" --image "$img" -p "hi" -n 2 >/dev/null 2>"$tmp/err"; rc=$?
check "run --image on a text-only model fails" '[ $rc = 1 ] && grep -q "takes no images" "$tmp/err"'
"$gemma" run -m "$mm" --image "$tmp/none.png" -p "hi" -n 2 >/dev/null 2>"$tmp/err"; rc=$?
check "run --image of a missing file names it" '[ $rc = 1 ] && grep -q "none.png" "$tmp/err"'
echo "not an image" >"$tmp/text.png"
"$gemma" run -m "$mm" --image "$tmp/text.png" -p "hi" -n 2 >/dev/null 2>"$tmp/err"; rc=$?
check "run --image of a non-image fails" '[ $rc = 1 ] && grep -q "text.png" "$tmp/err"'
"$gemma" run -m "$mm" --raw --image "$img" -p "hi" -n 2 >/dev/null 2>"$tmp/err"; rc=$?
check "--raw --image is a usage error" '[ $rc = 2 ]'
printf '/image %s\nWhat is this?\nAnd now?\n' "$img" | "$gemma" chat -m "$mm" -n 3 --temp 0 >"$tmp/c.txt" 2>"$tmp/c.err"; rc=$?
check "chat /image: attached, then reused from the cache" '[ $rc = 0 ] && grep -q "image 1 attached" "$tmp/c.txt" && grep -q "prompt: 17 tokens (0 reused" "$tmp/c.err" && grep -q "reused from cache" "$tmp/c.err"'
printf '/image %s\nhi\n' "$tmp/none.png" | "$gemma" chat -m "$mm" -n 2 --temp 0 >/dev/null 2>"$tmp/err"; rc=$?
check "chat /image of a missing file: an error, the chat goes on" '[ $rc = 0 ] && grep -q "none.png" "$tmp/err"'
"$gemma" logits -m "$mm" --tokens 2,262144,9259 --image "$img" -o "$tmp/l.f32" 2>"$tmp/err"; rc=$?
check "logits --image" '[ $rc = 0 ] && [ "$(stat -c %s "$tmp/l.f32")" = $((3 * 262144 * 4)) ]'
"$gemma" logits -m "$mm" --tokens 2,262144,9259 --image "$img" --image "$img" -o "$tmp/l2.f32" 2>"$tmp/err"; rc=$?
check "logits: more images than image runs fails" '[ $rc = 1 ] && grep -q "1 image tokens but 2 image embeddings" "$tmp/err" && [ ! -e "$tmp/l2.f32" ]'

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
