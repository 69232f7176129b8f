#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: install, build, and run CLIP++ on samples.
# (Until the training demo lands, this shows the tokenizer and the image pipeline.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
clip=build/clip

echo "== clip tokenize: CLIP's token ids (start, text, end) for captions"
$clip tokenize "a photo of a cat" "A DIAGRAM of a “transformer”, it’s café time &amp; more"
echo "== the same as JSON, with Hugging Face-style detail"
$clip tokenize --json "a photo of a dog 🐶"
