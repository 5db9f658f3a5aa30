#!/usr/bin/env bash
# setup.sh - install what building and testing gemma.c needs (Debian/Ubuntu),
# then build.  Run as root or with sudo available.
set -eu
cd "$(dirname "$0")/.."
pkgs="cmake make gcc clang libclang-rt-14-dev libcmocka-dev"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
echo "built: build/gemma, build/libgemma.a, build/libgemma.so"
