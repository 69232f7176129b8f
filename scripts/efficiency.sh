#!/usr/bin/env bash
# The data-efficiency experiment of CLIP's paper (its figure 2), on Fashion-MNIST: the same image
# tower (FMNIST-ViT's) trained three ways for the same number of images, with held-out zero-shot
# top-1 measured at fixed points:
#   transformer  contrastive, CLIP's text Transformer (FMNIST-ViT)
#   cbow         contrastive, a bag-of-words text encoder (FMNIST-CBOW)
#   bow-predict  the image tower predicts each caption's bag of words (--objective bow-predict)
#   caption      FMNIST-ViT's text Transformer, conditioned on the image, predicts each caption
#                token by token (--objective caption)
# Writes into the run folder (default runs/efficiency): one training run per variant, and
# efficiency.svg (accuracy against images seen, one curve per variant), efficiency.md (the table
# and the efficiency ratios) and efficiency.json.
#
#   bash scripts/efficiency.sh [--quick] [--out DIR] [--build DIR]
# --quick: 0.5 epoch per variant; default: 3 epochs (docs/train.md: figures and times).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
out=runs/efficiency
build=build
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) out=$2; shift ;;
    --build) build=$2; shift ;;
    *) echo "usage: bash scripts/efficiency.sh [--quick] [--out DIR] [--build DIR]" >&2; exit 2 ;;
  esac
  shift
done
clip="$build/clip"
[ -x "$clip" ] || { echo "error: $clip not found: build first (bash scripts/build.sh, or --build DIR)" >&2; exit 1; }

if [ "$quick" = 1 ]; then
  # 227 steps: evaluations at 57, 114, 171 and the end (caption's zero-shot scores every image
  # against every prompt, so its evaluations cost more than the others').
  epochs=0.5 eval_every=57 warmup=50
else
  epochs=3 eval_every=100 warmup=200
fi
mkdir -p "$out"
variants=(transformer cbow bow-predict caption)
for v in "${variants[@]}"; do
  case "$v" in
    transformer) args=(--model FMNIST-ViT) ;;
    cbow) args=(--model FMNIST-CBOW) ;;
    bow-predict) args=(--model FMNIST-CBOW --objective bow-predict) ;;
    caption) args=(--model FMNIST-ViT --objective caption) ;;
  esac
  rm -rf "${out:?}/$v"
  echo "== $v" >&2
  start=$(date +%s.%N)
  "$clip" train --data fashion-mnist "${args[@]}" --out "$out/$v" --batch-size 128 --lr 1e-3 --wd 0.1 \
    --precision bf16 --val-size 2000 --epochs "$epochs" --warmup "$warmup" --eval-every "$eval_every" \
    --no-final-eval --seed 0 >"$out/$v.log" 2>&1 || { tail -5 "$out/$v.log" >&2; exit 1; }
  python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$(date +%s.%N)" >"$out/$v.seconds"
done

python3 - "$out" 128 "${variants[@]}" <<'PY'
import json, sys
out, batch, variants = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
curves = {}
for v in variants:
    pts = [(0, 0.1)]  # before training: chance (10 classes)
    for line in open(f"{out}/{v}/metrics.jsonl"):
        j = json.loads(line)
        if "val_zeroshot_top1" in j:
            pts.append((j["step"] * batch, j["val_zeroshot_top1"]))
    curves[v] = {"points": pts, "seconds": float(open(f"{out}/{v}.seconds").read())}

def images_to_reach(pts, target):
    """Images seen when the curve first reaches target (linear between evaluation points)."""
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if y1 >= target:
            return x0 + (x1 - x0) * (target - y0) / (y1 - y0) if y1 > y0 else x1
    return None

# Ratios at the accuracy the weakest variant reaches (its best), and at a lower level.
weakest = min(max(y for _, y in c["points"][1:]) for c in curves.values())
targets = sorted({round(0.5 * (0.1 + weakest), 3), round(weakest, 3)})
ratios = []
for t in targets:
    need = {v: images_to_reach(c["points"], t) for v, c in curves.items()}
    ratios.append({"target": t, "images": need})

colors = {"transformer": "#1f77b4", "cbow": "#2ca02c", "bow-predict": "#d62728", "caption": "#9467bd"}
W, H, L, R, T, B = 640, 400, 60, 150, 20, 50
xmax = max(x for c in curves.values() for x, _ in c["points"])
def sx(x): return L + (W - L - R) * x / xmax
def sy(y): return T + (H - T - B) * (1 - y)
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>']
for k in range(11):
    y = k / 10
    svg.append(f'<line x1="{L}" y1="{sy(y):.1f}" x2="{W-R}" y2="{sy(y):.1f}" stroke="#eee"/>')
    svg.append(f'<text x="{L-6}" y="{sy(y)+4:.1f}" text-anchor="end">{int(100*y)}%</text>')
for k in range(6):
    x = xmax * k / 5
    svg.append(f'<text x="{sx(x):.1f}" y="{H-B+16}" text-anchor="middle">{x/1000:.0f}k</text>')
svg.append(f'<line x1="{L}" y1="{sy(0)}" x2="{W-R}" y2="{sy(0)}" stroke="black"/>')
svg.append(f'<line x1="{L}" y1="{sy(0)}" x2="{L}" y2="{sy(1)}" stroke="black"/>')
svg.append(f'<text x="{(L+W-R)/2}" y="{H-10}" text-anchor="middle">images seen</text>')
svg.append(f'<text x="14" y="{(T+H-B)/2}" text-anchor="middle" transform="rotate(-90 14 {(T+H-B)/2})">held-out zero-shot top-1</text>')
for i, (v, c) in enumerate(curves.items()):
    pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in c["points"])
    svg.append(f'<polyline points="{pts}" fill="none" stroke="{colors.get(v, "black")}" stroke-width="2"/>')
    svg.append(f'<line x1="{W-R+10}" y1="{T+20+18*i}" x2="{W-R+30}" y2="{T+20+18*i}" stroke="{colors.get(v, "black")}" stroke-width="2"/>')
    svg.append(f'<text x="{W-R+36}" y="{T+24+18*i}">{v}</text>')
svg.append("</svg>")
open(f"{out}/efficiency.svg", "w").write("\n".join(svg) + "\n")

xs = sorted({x for c in curves.values() for x, _ in c["points"][1:]})
md = ["| images seen | " + " | ".join(variants) + " |", "|---" * (len(variants) + 1) + "|"]
for x in xs:
    row = []
    for v in variants:
        y = dict(curves[v]["points"]).get(x)
        row.append("" if y is None else f"{100*y:.2f} %")
    md.append(f"| {x:,} | " + " | ".join(row) + " |")
md.append("| run time | " + " | ".join(f"{curves[v]['seconds']:.0f} s" for v in variants) + " |")
md.append("")
# The paper's comparisons: bag-of-words prediction needs 4× the images of the contrastive CBOW
# model, caption prediction 3× those of bag-of-words prediction.
pairs = [("transformer", "cbow"), ("bow-predict", "cbow"), ("caption", "bow-predict"), ("caption", "cbow")]
pairs = [(a, b) for a, b in pairs if a in curves and b in curves]
md.append("| to reach | " + " | ".join(f"images ({v})" for v in variants) + " | "
          + " | ".join(f"{a} ÷ {b}" for a, b in pairs) + " |")
md.append("|---" * (len(variants) + len(pairs) + 1) + "|")
def ratio(a, b): return f"{a/b:.2f}×" if a and b else "not reached"
for r in ratios:
    n = r["images"]
    md.append(f"| {100*r['target']:.1f} % | " + " | ".join("not reached" if n[v] is None else f"{n[v]:,.0f}" for v in variants)
              + " | " + " | ".join(ratio(n.get(a), n.get(b)) for a, b in pairs) + " |")
open(f"{out}/efficiency.md", "w").write("\n".join(md) + "\n")
json.dump({"batch_size": batch, "curves": curves, "ratios": ratios}, open(f"{out}/efficiency.json", "w"), indent=1)
print("\n".join(md))
print(f"plot: {out}/efficiency.svg")
PY
