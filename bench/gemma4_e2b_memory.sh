#!/usr/bin/env bash
# gemma4_e2b_memory.sh - resident memory of Gemma 4 E2B (MLX 4-bit, synthetic weights with the real
# shapes) filling a 4096-token context: issue 6 item 5 (target <= 1.6 GB with the per-layer
# embedding table left on disk).  Writes the checkpoint (bench/make_synthetic_e2b_mlx4.py, ~2.6 GB)
# into WORK, prefills a ~4090-token prompt with `gemma run` (batches of 512) and decodes a few
# tokens, and reports peak RSS from /usr/bin/time -v and the peaks of VmHWM / RssAnon / RssFile
# sampled from /proc/PID/status every 50 ms, with the session bytes `gemma info` estimates.
# Deletes the checkpoint at the end unless KEEP=1.
# usage: bench/gemma4_e2b_memory.sh GEMMA TOKENIZER_DIR WORK [THREADS]
set -eu
gemma=$1; tokdir=$2; work=$3; threads=${4:-$(nproc)}
here=$(cd "$(dirname "$0")" && pwd)
model=$work/e2b-mlx4-synthetic
mkdir -p "$work"
[ -f "$model/model.safetensors" ] || python3 "$here/make_synthetic_e2b_mlx4.py" "$model" --tokenizer "$tokdir"
cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$model"; }
trap cleanup EXIT

"$gemma" info -m "$model" --ctx 4096

# a prompt of about 4090 tokens: distinct words of the vocabulary ("▁word" pieces), so the
# per-layer table is read at many different rows, as real text does
python3 - "$tokdir/tokenizer.json" "$work/prompt.txt" <<'EOF'
import json, random, sys
vocab = json.load(open(sys.argv[1], encoding="utf-8"))["model"]["vocab"]
words = sorted(p[1:] for p in vocab if p.startswith("\u2581") and p[1:].isascii() and p[1:].isalpha())
random.Random(5).shuffle(words)
open(sys.argv[2], "w").write(" ".join(words[:4300]))
EOF
n=$("$gemma" tokenize --tokenizer "$tokdir/tokenizer.json" - <"$work/prompt.txt" | tr -cd ',' | wc -c)
n=$((n + 1))
# cut words until the prompt (with <bos>) leaves room for the decode steps
while [ "$n" -gt 4089 ]; do
  python3 -c "import sys; w=open(sys.argv[1]).read().split(' '); open(sys.argv[1],'w').write(' '.join(w[:len(w)-($2-4089)]))" "$work/prompt.txt" "$n"
  n=$(( $("$gemma" tokenize --tokenizer "$tokdir/tokenizer.json" - <"$work/prompt.txt" | tr -cd ',' | wc -c) + 1 ))
done
echo "prompt: $n tokens + <bos>"

/usr/bin/time -v -o "$work/time.txt" "$gemma" run -m "$model" --raw -p - --ctx 4096 -n 4 --temp 0 -t "$threads" \
  <"$work/prompt.txt" >"$work/run.out" 2>"$work/run.err" &
tpid=$!
pid=""
for _ in $(seq 100); do
  pid=$(cat /proc/$tpid/task/$tpid/children 2>/dev/null | tr -d ' ')
  [ -n "$pid" ] && break
  sleep 0.05
done
hwm=0; anon=0; file=0
while [ -n "$pid" ] && [ -r /proc/$pid/status ]; do
  read -r h a f < <(awk '/^VmHWM/{h=$2} /^RssAnon/{a=$2} /^RssFile/{f=$2} END{print h+0, a+0, f+0}' /proc/$pid/status 2>/dev/null || echo "0 0 0")
  [ "$h" -gt "$hwm" ] && hwm=$h
  [ "$a" -gt "$anon" ] && anon=$a
  [ "$f" -gt "$file" ] && file=$f
  sleep 0.05
done
wait $tpid || { cat "$work/run.err"; exit 1; }
cat "$work/run.err"
peak=$(awk -F': ' '/Maximum resident/{print $2}' "$work/time.txt")
echo "peak RSS (time -v): $peak kB = $(awk -v k="$peak" 'BEGIN{printf "%.3f", k*1024/1e9}') GB"
echo "sampled peaks: VmHWM $hwm kB, RssAnon $anon kB ($(awk -v k="$anon" 'BEGIN{printf "%.1f", k*1024/1e6}') MB), RssFile $file kB ($(awk -v k="$file" 'BEGIN{printf "%.1f", k*1024/1e6}') MB)"
grep -E "Elapsed|Major|Minor" "$work/time.txt"
