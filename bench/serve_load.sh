#!/usr/bin/env bash
# Load benchmark of `clip serve` (not a test): indexes the fixture images with the tiny model,
# serves them on 127.0.0.1, and runs wrk against GET /healthz, GET /search, POST /embed and
# POST /v1/embeddings (OpenAI's API, three short texts) with
# 16, 64 and 256 connections for a bounded time each. Prints requests/s, p99 latency, errors
# (non-2xx answers and socket errors) and timeouts, and writes JSON.
# Usage: bench/serve_load.sh [build folder (default build)] [seconds per run (default 10)]
#        [model (default: the tiny test model)]
# CLIP_BENCH_SERVER_THREADS (default 4): --threads of the server; CLIP_BENCH_CONNECTIONS
# (default "16 64 256"): the connection counts. Any `clip` build works, so the same script
# measures an older server (e.g. bench/serve_load.sh /work/main/build).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
seconds="${2:-10}"
model="${3:-tests/data/fixtures/models/tiny-vit-f16.safetensors}"
threads="${CLIP_BENCH_SERVER_THREADS:-4}"
connections="${CLIP_BENCH_CONNECTIONS:-16 64 256}"
command -v wrk >/dev/null || { echo "wrk is not installed (scripts/setup.sh installs it)" >&2; exit 1; }

tmp=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

"$build/clip" index build --model "$model" --images tests/data/images/files --out "$tmp/index" 2>"$tmp/build.log"
images=$(sed -n 's/.*generation 1: \([0-9]*\) images indexed.*/\1/p' "$tmp/build.log")

"$build/clip" serve --index "$tmp/index" --port 0 --threads "$threads" 2>"$tmp/serve.log" &
server=$!
url=""
for _ in $(seq 600); do
  url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/serve.log")
  [ -n "$url" ] && curl -sf "${url}healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$tmp/serve.log" >&2; exit 1; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
rss_start=$(rss)

cp bench/serve_load_embed.lua "$tmp/embed.lua"
model_name=$(curl -sf "${url}v1/models" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
sed "s/MODEL_NAME/$model_name/" bench/serve_load_openai.lua >"$tmp/openai.lua"
mkdir -p "$build/bench"
run() {  # name, connections, wrk args...
  local name=$1 conns=$2
  shift 2
  local out="$tmp/$name-$conns.txt"
  wrk -t2 -c"$conns" -d"${seconds}s" --timeout 5s --latency "$@" >"$out" 2>&1 || true
  cp "$out" "$build/bench/serve_load_${name}_c${conns}.txt"
  local rps p99 non2xx sockerr timeouts
  rps=$(awk '/Requests\/sec/ {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$out")
  sockerr=$(awk '/Socket errors/ {gsub(",", ""); print $4+$6+$8}' "$out")
  timeouts=$(awk '/Socket errors/ {gsub(",", ""); print $10}' "$out")
  local errors=$(( ${non2xx:-0} + ${sockerr:-0} ))
  printf '%-8s %6s %10s %10s %8s %9s\n' "$name" "$conns" "${rps:-0}" "${p99:--}" "$errors" "${timeouts:-0}"
  echo "{\"endpoint\": \"$name\", \"connections\": $conns, \"requests_per_s\": ${rps:-0}, \"p99\": \"${p99:--}\", \"errors\": $errors, \"timeouts\": ${timeouts:-0}}" >>"$tmp/results.jsonl"
}

echo "clip serve ($build): $images indexed images, model $model, --threads $threads; wrk: 2 threads, ${seconds}s each"
printf '%-8s %6s %10s %10s %8s %9s\n' endpoint conns "req/s" p99 errors timeouts
for c in $connections; do
  run healthz "$c" "${url}healthz"
  run search "$c" "${url}search?q=a+photo+of+a+cat&k=10"
  run embed "$c" -s "$tmp/embed.lua" "${url}embed"
  run openai "$c" -s "$tmp/openai.lua" "${url}v1/embeddings"
done
rss_end=$(rss)
echo "server RSS: ${rss_start} KiB at start (model and index loaded), ${rss_end} KiB after the load"

{
  echo "{\"images\": $images, \"model\": \"$model\", \"server_threads\": $threads, \"seconds\": $seconds,"
  echo " \"rss_kib_start\": $rss_start, \"rss_kib_end\": $rss_end, \"results\": ["
  paste -sd, "$tmp/results.jsonl"
  echo "]}"
} >"$build/bench/serve_load.json"
echo "wrote $build/bench/serve_load.json"
