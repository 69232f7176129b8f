#!/usr/bin/env bash
# Does gathering concurrent requests into one batch (`clip serve --batch-window-ms`) raise
# throughput? A/B in one run (benchmark, not a test): 16 connections (wrk) sending one short text,
# or one image (a data URI), per POST /v1/embeddings, against the server with gathering off
# (--batch-window-ms -1) at 8 and at 16 endpoint threads, with the default (16 threads, window 0:
# requests that queue while a batch computes form the next one), and with a window of W ms
# (16 threads, idle leaders wait up to W ms). The configurations alternate, REPS times; medians of items/s
# and of items per CPU-second of the server (on a machine shared with other work, the share of the
# CPU a configuration gets depends on its thread count; the work per item does not).
# Usage: bench/serve_batching.sh [build (default build)] [seconds per run (default 20)] [reps (default 3)]
#                                [model (default: the tiny test model) | vit-b-32] [window ms (default 5)]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
seconds="${2:-20}"
reps="${3:-3}"
model="${4:-tests/data/fixtures/models/tiny-vit-f16.safetensors}"
window="${5:-5}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$model" = vit-b-32 ]; then
  "$build/bench/bench_model" --save-model "$tmp/vit-b-32.safetensors" --models vit-b-32
  model="$tmp/vit-b-32.safetensors"
fi
configs=("off8:8:--batch-window-ms -1" "off16:16:--batch-window-ms -1" "gather16:16:" "window16:16:--batch-window-ms $window")  # name:--threads:more flags
for rep in $(seq "$reps"); do
  for c in "${configs[@]}"; do
    IFS=: read -r name threads args <<<"$c"
    CLIP_BENCH_OUT="$tmp/$name-$rep" CLIP_BENCH_CONNECTIONS=16 CLIP_BENCH_ENDPOINTS="openai_text1 openai_image" \
      CLIP_BENCH_SERVER_THREADS="$threads" CLIP_BENCH_SERVE_ARGS="$args" bash bench/serve_load.sh "$build" "$seconds" "$model" \
      >"$tmp/$name-$rep.log" 2>&1 || { cat "$tmp/$name-$rep.log" >&2; exit 1; }
    /usr/bin/python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
for r in j["results"]:
    print(sys.argv[2], r["endpoint"], r["items_per_s"], r["items_per_cpu_s"], r["p50"], r["p99"], r["errors"])' \
      "$tmp/$name-$rep/serve_load.json" "$name" | tee -a "$tmp/all.txt"
  done
done
echo "medians of $reps runs of ${seconds}s, 16 connections, model $model, window ${window} ms:"
/usr/bin/python3 - "$tmp/all.txt" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for endpoint in ("openai_text1", "openai_image"):
    for name in ("off8", "off16", "gather16", "window16"):
        v = [float(r[2]) for r in rows if r[0] == name and r[1] == endpoint]
        c = [float(r[3]) for r in rows if r[0] == name and r[1] == endpoint]
        med[name, endpoint] = statistics.median(v)
        med[name, endpoint, "cpu"] = statistics.median(c)
        print(f"  {endpoint:13s} {name:10s} {med[name, endpoint]:9.2f} items/s (runs: {', '.join(f'{x:.2f}' for x in v)}); "
              f"{med[name, endpoint, 'cpu']:9.2f} items per CPU-second (runs: {', '.join(f'{x:.2f}' for x in c)})")
    for unit, key in (("items/s", None), ("items per CPU-second", "cpu")):
        k = (lambda n: (n, endpoint, key)) if key else (lambda n: (n, endpoint))
        print(f"  {endpoint:13s} {unit}: gather16 / off8 = {med[k('gather16')] / med[k('off8')]:.2f}x, "
              f"gather16 / off16 = {med[k('gather16')] / med[k('off16')]:.2f}x, "
              f"window16 / off8 = {med[k('window16')] / med[k('off8')]:.2f}x")
EOF
