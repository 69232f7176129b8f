#!/usr/bin/env bash
# 1 process × T threads against N processes × T/N threads (Gloo on 127.0.0.1) on the demo model
# (FMNIST-ViT, Fashion-MNIST): samples/s, communication seconds and bytes per step (from rank 0's
# metrics.jsonl, averaged over the logged steps after the first window). Prints a table and
# writes JSON.
#
#   bench/bench_distributed.sh [clip executable] [steps] [batch] [threads] [nproc] [out.json]
set -euo pipefail
CLIP=${1:-build/clip}
STEPS=${2:-30}
BATCH=${3:-256}
THREADS=${4:-2}
NPROC=${5:-2}
OUT_JSON=${6:-bench_distributed.json}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

run() {  # name, extra flags
  "$CLIP" train --data fashion-mnist --val-size 0 --model FMNIST-ViT --batch-size "$BATCH" --steps "$STEPS" \
    --warmup 5 --log-every 5 --threads "$THREADS" --workers "$THREADS" --out "$WORK/$1" $2 > "$WORK/$1.log" 2>&1
  # Skip the first window (start-up), average the rest.
  python3 - "$WORK/$1/metrics.jsonl" "$1" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l][1:]
n = len(lines)
rate = sum(l["samples_per_s"] for l in lines) / n
comm = sum(l.get("comm_s_per_step", 0) for l in lines) / n
nbytes = sum(l.get("comm_bytes_per_step", 0) for l in lines) / n
print(json.dumps({"config": sys.argv[2], "samples_per_s": rate, "comm_s_per_step": comm, "comm_bytes_per_step": nbytes}))
EOF
}

{
  run "1x${THREADS}" ""
  run "${NPROC}x$((THREADS / NPROC))" "--nproc-per-node $NPROC"
  run "${NPROC}x$((THREADS / NPROC))-local" "--nproc-per-node $NPROC --local-loss"
} > "$WORK/rows.jsonl"

python3 - "$WORK/rows.jsonl" "$OUT_JSON" "$BATCH" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"global batch {sys.argv[3]}")
print(f"{'config':<14}{'samples/s':>12}{'comm s/step':>14}{'comm MB/step':>15}")
for r in rows:
    print(f"{r['config']:<14}{r['samples_per_s']:>12.1f}{r['comm_s_per_step']:>14.4f}{r['comm_bytes_per_step'] / 1e6:>15.3f}")
json.dump(rows, open(sys.argv[2], "w"), indent=2)
EOF
