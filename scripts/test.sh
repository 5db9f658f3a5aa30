#!/usr/bin/env bash
# test.sh - the test command: a Release build with every test (unit, parity,
# CLI), then the same unit and parity tests under AddressSanitizer +
# UndefinedBehaviorSanitizer (clang; the real-model tests only in Release), then a short fuzz of the parsers.
# Prints a final "N passed, N failed" line.  Needs: cmake, gcc, clang,
# libclang-rt-14-dev, libcmocka-dev (scripts/setup.sh installs them).
set -u
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
passed=0; failed=0
step() { # name, command...
  local name=$1; shift
  echo "=== $name"
  if "$@"; then passed=$((passed+1)); echo "--- $name: ok"; else failed=$((failed+1)); echo "--- $name: FAILED"; fi
}

step "release build" bash -c "cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j$jobs"
# GEMMA_REQUIRE_REAL_MODEL: the real-model tests fail (not skip) if setup did not install the model
step "release tests" env GEMMA_REQUIRE_REAL_MODEL=1 ctest --test-dir build --output-on-failure

if command -v clang >/dev/null; then
  step "sanitizer build" bash -c "CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGEMMA_SANITIZE=ON >/dev/null && cmake --build build-asan -j$jobs"
  # parity on 2 threads only here: the 1-thread runs are the Release step's (time); the server's
  # load suite only there too (its requests and replies run here in server_clients and server_disconnect)
  step "sanitizer tests" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    GEMMA_PARITY_THREADS=2 ctest --test-dir build-asan -LE real -E server_load --output-on-failure
  # fuzzers: the library instrumented for coverage too, in a build of its own
  fuzzers="fuzz_json fuzz_safetensors fuzz_tokenizer fuzz_gguf fuzz_image fuzz_request"
  step "fuzz build" bash -c "CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGEMMA_SANITIZE=ON -DGEMMA_FUZZ=ON >/dev/null && cmake --build build-fuzz -j$jobs --target $fuzzers"
  for f in $fuzzers; do
    corpus=tests/fuzz/corpus/${f#fuzz_}
    step "fuzz $f (15 s)" bash -c "set -o pipefail; mkdir -p build-fuzz/corpus-$f && build-fuzz/tests/$f -max_total_time=15 -max_len=8192 -print_final_stats=1 build-fuzz/corpus-$f $corpus 2>&1 | tail -n 4"
  done
else
  echo "clang not found: sanitizer and fuzz steps skipped"; failed=$((failed+1))
fi

# NEON kernels: cross-compile for aarch64 and run the kernel, quantization
# and parity tests under qemu (NEON path only, one thread: emulation is slow)
if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null; then
  step "aarch64 cross build" bash -c "cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build-arm64 -j$jobs --target test_kernels test_matvec test_quant test_parity test_siglip test_mm_parity test_kv_half"
  step "aarch64 NEON tests (qemu)" env GEMMA_PARITY_ISAS=neon GEMMA_PARITY_THREADS=1 \
    ctest --test-dir build-arm64 -R '^test_(kernels|matvec|quant|parity|parity_gemma4|siglip|mm_parity|kv_half)$' --output-on-failure
  # the int8 kernels' base-ARMv8 path too (qemu has the dot product, as phones since 2018 do)
  step "aarch64 NEON without dot product (qemu)" env GEMMA_NEON_NODOT=1 \
    ctest --test-dir build-arm64 -R '^test_matvec$' --output-on-failure
else
  echo "aarch64 cross compiler or qemu-aarch64 not found: NEON steps skipped"; failed=$((failed+1))
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
