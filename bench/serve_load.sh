#!/usr/bin/env bash
# Load benchmark of `clip serve` (not a test): serves a model on 127.0.0.1 and runs wrk against
# its endpoints for a bounded time each, at several connection counts. Prints requests/s, items/s,
# p50 and p99 latency, errors (non-2xx answers and socket errors) and timeouts, the server's RSS
# sampled every second over the whole load, and (with bench_model built) the model's own
# throughput at the same batch sizes, measured in the same run; writes JSON.
#
# Usage: bench/serve_load.sh [build folder (default build)] [seconds per run (default 10)]
#                            [model (default: the tiny test model) | vit-b-32]
# `vit-b-32`: a ViT-B/32 with random weights (CLIP's init, seed 0), written by
# `bench_model --save-model`: the model bench_model measures, at its real size.
# Endpoints (CLIP_BENCH_ENDPOINTS, default "healthz search embed openai openai_image"):
#   healthz       GET /healthz
#   search        GET /search?q=... (needs an index: the fixture images are indexed first)
#   embed         POST /embed, three short texts
#   openai        POST /v1/embeddings, three short texts (batch 3)
#   openai_text1  POST /v1/embeddings, one short text (batch 1)
#   openai_image  POST /v1/embeddings, one JPEG photo (451x300, 21 KB) as a data URI (batch 1)
# CLIP_BENCH_SERVER_THREADS (default 4): --threads of the server; CLIP_BENCH_CONNECTIONS (default
# "16 64 256"): the connection counts; CLIP_BENCH_WRK_TIMEOUT (default 30s): wrk's request timeout
# (a request slower than this counts as a timeout); CLIP_BENCH_SERVE_ARGS: more `clip serve` flags;
# CLIP_BENCH_OUT (default BUILD/bench): where wrk's outputs and serve_load.json go.
# Any `clip` build works, so the same script measures an older server (e.g. /work/main/build,
# with CLIP_BENCH_OUT elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
seconds="${2:-10}"
model="${3:-tests/data/fixtures/models/tiny-vit-f16.safetensors}"
threads="${CLIP_BENCH_SERVER_THREADS:-4}"
connections="${CLIP_BENCH_CONNECTIONS:-16 64 256}"
endpoints="${CLIP_BENCH_ENDPOINTS:-healthz search embed openai openai_image}"
wrk_timeout="${CLIP_BENCH_WRK_TIMEOUT:-30s}"
out_dir="${CLIP_BENCH_OUT:-$build/bench}"
command -v wrk >/dev/null || { echo "wrk is not installed (scripts/setup.sh installs it)" >&2; exit 1; }

tmp=$(mktemp -d)
server=""
sampler=""
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null || true
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

compare_vit=0
if [ "$model" = vit-b-32 ]; then
  compare_vit=1
  [ -x "$build/bench/bench_model" ] || { echo "vit-b-32 needs $build/bench/bench_model (cmake --build $build --target bench_model)" >&2; exit 1; }
  "$build/bench/bench_model" --save-model "$tmp/vit-b-32.safetensors" --models vit-b-32
  model="$tmp/vit-b-32.safetensors"
fi

images=0
if [[ " $endpoints " == *" search "* ]]; then
  "$build/clip" index build --model "$model" --images tests/data/images/files --out "$tmp/index" 2>"$tmp/build.log"
  images=$(sed -n 's/.*generation 1: \([0-9]*\) images indexed.*/\1/p' "$tmp/build.log")
  served=(--index "$tmp/index")
else
  served=(--model "$model")
fi
# shellcheck disable=SC2086
"$build/clip" serve "${served[@]}" --port 0 --threads "$threads" ${CLIP_BENCH_SERVE_ARGS:-} 2>"$tmp/serve.log" &
server=$!
url=""
for _ in $(seq 1200); do
  url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/serve.log")
  [ -n "$url" ] && curl -sf "${url}healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
[ -n "$url" ] && curl -sf "${url}healthz" >/dev/null 2>&1 || { cat "$tmp/serve.log" >&2; exit 1; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
# The server's CPU seconds so far (user + system): items per CPU second do not depend on the share
# of a busy machine the server gets, requests per second do.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$server/stat"; }
rss_start=$(rss)

cp bench/serve_load_embed.lua "$tmp/embed.lua"
model_name=$(curl -sf "${url}v1/models" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
sed "s/MODEL_NAME/$model_name/" bench/serve_load_openai.lua >"$tmp/openai.lua"
sed -e "s/MODEL_NAME/$model_name/" -e 's/"input": \[[^]]*\]/"input": ["a photo of a cat"]/' bench/serve_load_openai.lua \
  >"$tmp/openai_text1.lua"
photo=tests/data/images/files/chelsea_q75.jpg
sed -e "s/MODEL_NAME/$model_name/" -e "s|IMAGE_DATA_URI|data:image/jpeg;base64,$(base64 -w0 "$photo")|" \
  bench/serve_load_openai_image.lua >"$tmp/openai_image.lua"
mkdir -p "$out_dir"

# The server's RSS every second, for the whole load.
(while kill -0 "$server" 2>/dev/null; do rss >>"$tmp/rss.txt" 2>/dev/null || true; sleep 1; done) &
sampler=$!

# Items each request computes: texts or images.
items_per_request() { case $1 in embed | openai) echo 3 ;; openai_text1 | openai_image) echo 1 ;; *) echo 0 ;; esac; }

run() {  # name, connections, wrk args...
  local name=$1 conns=$2
  shift 2
  local out="$tmp/$name-$conns.txt"
  local rss_before cpu_before
  rss_before=$(rss)
  cpu_before=$(cpu_s)
  wrk -t2 -c"$conns" -d"${seconds}s" --timeout "$wrk_timeout" --latency "$@" >"$out" 2>&1 || true
  cp "$out" "$out_dir/serve_load_${name}_c${conns}.txt"
  local rps p50 p99 non2xx sockerr timeouts items per_item
  rps=$(awk '/Requests\/sec/ {print $2}' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$out")
  sockerr=$(awk '/Socket errors/ {gsub(",", ""); print $4+$6+$8}' "$out")
  timeouts=$(awk '/Socket errors/ {gsub(",", ""); print $10}' "$out")
  local errors=$((${non2xx:-0} + ${sockerr:-0}))
  items=$(items_per_request "$name")
  per_item=$(awk -v r="${rps:-0}" -v n="$items" 'BEGIN {printf "%.2f", r * n}')
  local requests cpu per_cpu
  requests=$(awk '/requests in/ {print $1}' "$out")
  cpu=$(awk -v a="$cpu_before" -v b="$(cpu_s)" 'BEGIN {printf "%.2f", b - a}')
  per_cpu=$(awk -v r="${requests:-0}" -v n="$items" -v c="$cpu" 'BEGIN {printf "%.2f", (c > 0 ? r * n / c : 0)}')
  printf '%-13s %6s %10s %9s %9s %10s %10s %8s %9s %9s\n' "$name" "$conns" "${rps:-0}" "$per_item" "$per_cpu" \
    "${p50:--}" "${p99:--}" "$errors" "${timeouts:-0}" "$(rss)"
  echo "{\"endpoint\": \"$name\", \"connections\": $conns, \"requests_per_s\": ${rps:-0}, \"items_per_request\": $items, \"items_per_s\": $per_item, \"server_cpu_s\": $cpu, \"items_per_cpu_s\": $per_cpu, \"p50\": \"${p50:--}\", \"p99\": \"${p99:--}\", \"errors\": $errors, \"timeouts\": ${timeouts:-0}, \"rss_kib_before\": $rss_before, \"rss_kib_after\": $(rss)}" >>"$tmp/results.jsonl"
}

echo "clip serve ($build): model $model, --threads $threads ${CLIP_BENCH_SERVE_ARGS:-}; wrk: 2 threads, ${seconds}s each, timeout $wrk_timeout"
printf '%-13s %6s %10s %9s %9s %10s %10s %8s %9s %9s\n' endpoint conns "req/s" "items/s" "items/cpu-s" p50 p99 errors timeouts "RSS KiB"
for c in $connections; do
  for e in $endpoints; do
    case $e in
      healthz) run healthz "$c" "${url}healthz" ;;
      search) run search "$c" "${url}search?q=a+photo+of+a+cat&k=10" ;;
      embed) run embed "$c" -s "$tmp/embed.lua" "${url}embed" ;;
      openai) run openai "$c" -s "$tmp/openai.lua" "${url}v1/embeddings" ;;
      openai_text1) run openai_text1 "$c" -s "$tmp/openai_text1.lua" "${url}v1/embeddings" ;;
      openai_image) run openai_image "$c" -s "$tmp/openai_image.lua" "${url}v1/embeddings" ;;
      *) echo "unknown endpoint $e" >&2; exit 2 ;;
    esac
  done
done
rss_end=$(rss)
kill "$sampler" 2>/dev/null && wait "$sampler" 2>/dev/null || true
sampler=""
# RSS over the load: the samples after the first run's first 5 s (allocator warm-up), their
# median, and the largest departure from it.
read -r rss_median rss_min rss_max rss_spread < <(tail -n +6 "$tmp/rss.txt" | sort -n | awk '
  { v[NR] = $1 } END { if (NR == 0) { print 0, 0, 0, 0; exit }
    m = v[int((NR + 1) / 2)]; d1 = (v[NR] - m) / m * 100; d2 = (m - v[1]) / m * 100
    printf "%d %d %d %.1f\n", m, v[1], v[NR], (d1 > d2 ? d1 : d2) }')
samples=$(wc -l <"$tmp/rss.txt")
echo "server RSS: ${rss_start} KiB at start (model loaded), ${rss_end} KiB after the load; over the load" \
  "($samples samples, 1/s): median ${rss_median}, min ${rss_min}, max ${rss_max} KiB: within ±${rss_spread}% of the median"

# The model alone at the requests' batch sizes (1 image; 1 and 3 texts) and at 16 (what gathering
# 16 concurrent requests into one batch could at best reach), same machine, same run.
model_json=null
if [ "$compare_vit" = 1 ]; then
  kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  server=""
  "$build/bench/bench_model" --no-peer --models vit-b-32 --precisions fp32 --text-batches 1 3 16 --image-batches 1 16 \
    --json "$tmp/bench_model.json" >"$tmp/bench_model.txt" 2>&1
  model_json=$(cat "$tmp/bench_model.json")
  echo "bench_model (same run, server stopped), ViT-B/32 fp32, items/s by batch:"
  awk '$1 == "vit-b-32" && $2 == "fp32" {printf "  %-5s batch %3d: %8.2f /s\n", $3, $4, $5}' "$tmp/bench_model.txt"
fi

{
  echo "{\"images\": $images, \"model\": \"$model\", \"server_threads\": $threads, \"seconds\": $seconds,"
  echo " \"rss_kib_start\": $rss_start, \"rss_kib_end\": $rss_end, \"rss_kib_median\": $rss_median,"
  echo " \"rss_kib_min\": $rss_min, \"rss_kib_max\": $rss_max, \"rss_spread_percent\": $rss_spread,"
  echo " \"bench_model\": $model_json, \"results\": ["
  paste -sd, "$tmp/results.jsonl"
  echo "]}"
} >"$out_dir/serve_load.json"
echo "wrote $out_dir/serve_load.json"
