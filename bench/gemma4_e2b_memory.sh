#!/usr/bin/env bash
# gemma4_e2b_memory.sh - resident memory of Gemma 4 E2B (MLX 4-bit, synthetic weights with the real
# shapes) filling a 4096-token context: issue 6 item 5 (target <= 1.6 GB with the per-layer
# embedding table left on disk).  Writes the checkpoint (bench/make_synthetic_e2b_mlx4.py, ~2.6 GB)
# into WORK, prefills a ~4090-token prompt with `gemma run` (batches of 512) and decodes a few
# tokens (TOKENIZER_DIR "-": `gemma logits --last` on 4096 random ids instead, no tokenizer), and reports peak RSS from /usr/bin/time -v and the peaks of VmHWM / RssAnon / RssFile
# sampled from /proc/PID/status every 50 ms, with the session bytes `gemma info` estimates.
# Deletes the checkpoint at the end unless KEEP=1.
# usage: bench/gemma4_e2b_memory.sh GEMMA TOKENIZER_DIR WORK [THREADS]
set -eu
gemma=$1; tokdir=$2; work=$3; threads=${4:-$(nproc)}
here=$(cd "$(dirname "$0")" && pwd)
model=$work/e2b-mlx4-synthetic
mkdir -p "$work"
if [ ! -f "$model/model.safetensors" ]; then
  if [ "$tokdir" = "-" ]; then python3 "$here/make_synthetic_e2b_mlx4.py" "$model"
  else python3 "$here/make_synthetic_e2b_mlx4.py" "$model" --tokenizer "$tokdir"; fi
fi
cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$model"; }
trap cleanup EXIT

"$gemma" info -m "$model" --ctx 4096

if [ "$tokdir" = "-" ]; then
  # no tokenizer: `gemma logits` on 4096 random ids, 4090 prefilled in batches of 512, 6 decoded
  python3 -c 'import random; r=random.Random(5); print(",".join(["2"] + [str(r.randrange(3, 262144)) for _ in range(4095)]))' >"$work/ids.txt"
  echo "tokens: 4096 (prefill 4090 in batches of 512, then 6 decode steps)"
  /usr/bin/time -v -o "$work/time.txt" "$gemma" logits -m "$model" --tokens-file "$work/ids.txt" --prefill 4090 \
    --batch 512 --last --ctx 4096 -t "$threads" -o "$work/last.f32" >"$work/run.out" 2>"$work/run.err" &
else
  # a prompt of about 4090 tokens: distinct words of the vocabulary ("▁word" pieces), so the
  # per-layer table is read at many different rows, as real text does
  python3 - "$tokdir/tokenizer.json" "$work/prompt.txt" <<'EOF2'
import json, random, sys
vocab = json.load(open(sys.argv[1], encoding="utf-8"))["model"]["vocab"]
words = sorted(p[1:] for p in vocab if p.startswith("\u2581") and p[1:].isascii() and p[1:].isalpha())
random.Random(5).shuffle(words)
open(sys.argv[2], "w").write(" ".join(words[:4300]))
EOF2
  count() { echo $(( $("$gemma" tokenize --tokenizer "$tokdir/tokenizer.json" - <"$work/prompt.txt" | tr -cd ',' | wc -c) + 1 )); }
  n=$(count)
  # cut words until the prompt (with <bos>) leaves room for the decode steps
  while [ "$n" -gt 4089 ]; do
    python3 -c 'import sys; w=open(sys.argv[1]).read().split(" "); open(sys.argv[1],"w").write(" ".join(w[:len(w)-(int(sys.argv[2])-4089)]))' "$work/prompt.txt" "$n"
    n=$(count)
  done
  echo "prompt: $n tokens + <bos>, then 4 decode steps"
  /usr/bin/time -v -o "$work/time.txt" "$gemma" run -m "$model" --raw -p - --ctx 4096 -n 4 --temp 0 -t "$threads" \
    <"$work/prompt.txt" >"$work/run.out" 2>"$work/run.err" &
fi
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
