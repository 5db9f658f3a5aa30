#!/usr/bin/env bash
# run_suite.sh - one serve_tests.py suite as a ctest test: makes the small
# random text and vision models (real Gemma 3 tokenizer) it runs against, then
# runs the suite.  usage: run_suite.sh SUITE GEMMA MAKE_TEST_MODEL TOKENIZER_DIR TMPDIR [REAL_MODEL]
set -u
suite=$1; gemma=$2; make_model=$3; tokdir=$4; tmp=$5/server-$suite; real=${6:-}
here=$(cd "$(dirname "$0")" && pwd)
if ! python3 -c "import openai" 2>/dev/null; then
  echo "FAIL the OpenAI Python client is missing: bash scripts/setup.sh (pip install openai)"; echo "0 passed, 1 failed"; exit 1
fi
if [ "$suite" = real ]; then
  exec python3 "$here/serve_tests.py" real --gemma "$gemma" --model "$real"
fi
if [ ! -f "$tokdir/tokenizer.json" ]; then
  echo "FAIL the real tokenizer is missing: run scripts/setup.sh"; echo "0 passed, 1 failed"; exit 1
fi
rm -rf "$tmp"; mkdir -p "$tmp"
"$make_model" "$tmp/text" "$tokdir" >/dev/null || { echo "FAIL make_test_model"; exit 1; }
if [ "$suite" = clients ]; then   # only the clients suite shows images
  "$make_model" "$tmp/vision" "$tokdir" --vision >/dev/null || { echo "FAIL make_test_model --vision"; exit 1; }
fi
exec python3 "$here/serve_tests.py" "$suite" --gemma "$gemma" --text-model "$tmp/text" --vision-model "$tmp/vision" \
  --fixtures "$here/../fixtures/mm/e2e-f32-hub"
