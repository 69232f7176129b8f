#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: install, build, and run CLIP++ on samples.
# (Until the training demo lands, this shows the tokenizer, the image pipeline and inference.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
clip=build/clip
fx=tests/data/fixtures
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== clip tokenize: CLIP's token ids (start, text, end) for captions"
$clip tokenize "a photo of a cat" "A DIAGRAM of a “transformer”, it’s café time &amp; more"
echo "== the same as JSON"
$clip tokenize --json "a photo of a dog 🐶"

echo "== clip preprocess: Pillow-exact model input (224 px) and the crop as PNG"
$clip preprocess --size 224 "$fx/images/chelsea_120x80.png" --out "$out/input.npy" --png "$out/crop.png"

echo "== inference with the tiny test model (random weights: the numbers show the pipeline, not meaning)"
$clip similarity --model "$fx/models/tiny-vit-f16.safetensors" --image "$fx/images/chelsea_120x80.png" \
  --image "$fx/images/astronaut_224x224.png" --text "a photo of a cat" --text "an astronaut"
$clip embed --model "$fx/models/tiny-vit-f16.safetensors" --image "$fx/images/chelsea_120x80.png" \
  --text "a photo of a cat" --normalize --out "$out/embeddings.npy"
