#!/usr/bin/env bash
# Sets up and runs every test of CLIP++:
#   1. installs the Debian packages (scripts/setup.sh) and builds (scripts/build.sh);
#   2. builds the torch-free code with clang + AddressSanitizer + UndefinedBehaviorSanitizer,
#      runs its unit tests and each libFuzzer target for CLIP_FUZZ_SECONDS (default 30);
#   3. runs the whole CTest suite of the main build.
# Exit status is non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

bash scripts/setup.sh
bash scripts/build.sh

echo "== sanitizer build (ASan + UBSan, torch-free code) and fuzzing"
CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCLIP_TORCH_FREE_ONLY=ON -DCLIP_FUZZ=ON -DCLIP_BUILD_BENCH=OFF \
  -DCLIP_FUZZ_SECONDS="${CLIP_FUZZ_SECONDS:-30}" >/dev/null
cmake --build build-asan -j"$jobs"
ctest --test-dir build-asan --output-on-failure -j"$jobs"

echo "== test suite"
if ! ctest --test-dir build --output-on-failure -j"$jobs"; then
  # The failures' output is buried mid-log among hundreds of tests; run them again, alone, so it
  # ends the log (where a CI summary shows it) and a flaky test shows as such. Still a failure.
  echo "== the failed tests again, one at a time"
  ctest --test-dir build --rerun-failed --output-on-failure -j1 || true
  exit 1
fi
