#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: install, build, train a small CLIP from scratch on
# Fashion-MNIST, then evaluate it on the test set — zero-shot with held-out prompt templates, a
# linear probe on the frozen image features, image↔text retrieval — and write an HTML report.
#
#   bash scripts/demo.sh            # the full run: about 9 minutes of training + evaluation on 2 cores
#   bash scripts/demo.sh --quick    # about 2 minutes
#   OUT=runs/x bash scripts/demo.sh # another run folder (default runs/demo or runs/demo-quick)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    *) echo "usage: bash scripts/demo.sh [--quick]" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh
bash scripts/build.sh

# The recipe (docs/train.md): FMNIST-ViT (patch 7 on 28×28, width 128, 4 image and 2 text blocks,
# context 16, a 4,096-token BPE vocabulary), batch 128, bf16 autocast, AdamW lr 1e-3 (weight decay
# 0.1), warmup then cosine, random resized crops (scale 0.9–1.0), captions from class synonyms ×
# training templates; the linear probe fits on the first 10,000 / 20,000 training images.
if [ "$quick" = 1 ]; then
  out=${OUT:-runs/demo-quick}
  recipe=(--epochs 2.25 --warmup 100 --probe-train-limit 10000)
else
  out=${OUT:-runs/demo}
  recipe=(--epochs 12 --warmup 200 --probe-train-limit 20000)
fi
rm -rf "$out"
build/clip train --data fashion-mnist --model FMNIST-ViT --out "$out" --batch-size 128 --lr 1e-3 --wd 0.1 \
  --precision bf16 --val-size 2000 "${recipe[@]}"
echo "== results ($out/results.json)"
python3 - "$out/results.json" <<'PY' 2>/dev/null || cat "$out/results.json"
import json, sys
r = json.load(open(sys.argv[1]))
z, p, t = r["zero_shot"], r["linear_probe"], r["retrieval"]
print(f"zero-shot top-1 {100*z['top1']:.2f}%  top-5 {100*z['top5']:.2f}%  (held-out templates)")
print(f"linear probe     {100*p['test_accuracy']:.2f}%")
print(f"image->text R@1/5/10 {100*t['image_to_text']['r1']:.1f}/{100*t['image_to_text']['r5']:.1f}/{100*t['image_to_text']['r10']:.1f}%"
      f"   text->image {100*t['text_to_image']['r1']:.1f}/{100*t['text_to_image']['r5']:.1f}/{100*t['text_to_image']['r10']:.1f}%")
PY
echo "report: $out/report.html  (curves: $out/curves.svg, model: $out/model.safetensors)"
