#!/usr/bin/env bash
# Installs every Debian 12 package CLIP++ needs to build, test and benchmark.
# Idempotent and non-interactive: packages already present are left alone.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git clang libclang-rt-14-dev
  # torch-free core: text (ICU, zlib), image codecs, CLI and JSON
  libicu-dev zlib1g-dev
  libjpeg62-turbo-dev libturbojpeg0-dev libpng-dev libwebp-dev libgif-dev
  libcli11-dev nlohmann-json3-dev
  # models: libtorch (CPU, oneDNN), checkpoints (zip archives)
  libtorch-dev libdnnl-dev
  # an optimized BLAS behind libblas.so.3 (without it, libtorch falls back to the reference BLAS)
  libopenblas0-pthread
  # data sets (WebDataset tar shards) and the demo's data (Fashion-MNIST IDX files)
  libarchive-dev dataset-fashion-mnist
  # models by name: downloads from the Hugging Face Hub (src/hub)
  libcurl4-openssl-dev
  # distributed training (c10d Gloo), the embedding index, the HTTP service
  libgloo-dev libfaiss-dev libcpp-httplib-dev
  # the HTTP server's event-driven core (Boost.Beast on asio, header-only)
  libboost-dev
  # browser test of the web page (playwright-core from npm, with the machine's Node.js; the API
  # clients test installs the openai package the same way: scripts/api_clients_test.sh) and load
  # benchmarks
  chromium wrk
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # the PyTorch peer and Pillow, run side by side in benchmarks
  python3 python3-numpy python3-pil python3-regex python3-torch
  # the Python module clip_cpp (python/: pybind11 + the interpreter's headers) and its tests
  python3-dev pybind11-dev python3-pytest
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
