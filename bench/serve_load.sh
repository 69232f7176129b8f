#!/usr/bin/env bash
# Load benchmark of `clip serve` (not a test): indexes the fixture images with the tiny model,
# serves them on 127.0.0.1, and runs wrk against GET /search and POST /embed for a bounded time
# each. Prints requests/s, p50/p99 latency, errors and the server's RSS, and writes JSON.
# Usage: bench/serve_load.sh [build folder (default build)] [seconds per endpoint (default 10)]
#        [model (default: the tiny test model)]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
seconds="${2:-10}"
model="${3:-tests/data/fixtures/models/tiny-vit-f16.safetensors}"
threads="${CLIP_BENCH_SERVER_THREADS:-4}"
connections="${CLIP_BENCH_CONNECTIONS:-8}"
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

cat > "$tmp/embed.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"texts": ["a photo of a cat", "an astronaut in space", "a red rocket"]}'
wrk.headers["Content-Type"] = "application/json"
LUA
# wrk's --latency table gives the percentiles; non-2xx answers and socket errors are the errors.
mkdir -p "$build/bench"
run() {  # name, wrk args...
  local name=$1
  shift
  wrk -t2 -c"$connections" -d"${seconds}s" --timeout 5s --latency "$@" >"$tmp/$name.txt"
  cp "$tmp/$name.txt" "$build/bench/serve_load_$name.txt"
  local rps p50 p99 non2xx sockerr
  rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/$name.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$tmp/$name.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$tmp/$name.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$tmp/$name.txt")
  sockerr=$(awk '/Socket errors/ {gsub(",", ""); print $4+$6+$8+$10}' "$tmp/$name.txt")
  printf '%-8s %10s %10s %10s %8s\n' "$name" "$rps" "$p50" "$p99" "$(( ${non2xx:-0} + ${sockerr:-0} ))"
  echo "{\"endpoint\": \"$name\", \"requests_per_s\": $rps, \"p50\": \"$p50\", \"p99\": \"$p99\", \"errors\": $(( ${non2xx:-0} + ${sockerr:-0} ))}" >>"$tmp/results.jsonl"
}

echo "clip serve: $images indexed images, model $model, $threads HTTP threads; wrk: 2 threads, $connections connections, ${seconds}s each"
printf '%-8s %10s %10s %10s %8s\n' endpoint "req/s" p50 p99 errors
run search "${url}search?q=a+photo+of+a+cat&k=10"
run embed -s "$tmp/embed.lua" "${url}embed"
rss_end=$(rss)
echo "server RSS: ${rss_start} KiB at start (model and index loaded), ${rss_end} KiB after the load"

mkdir -p "$build/bench"
{
  echo "{\"images\": $images, \"model\": \"$model\", \"server_threads\": $threads, \"connections\": $connections,"
  echo " \"seconds\": $seconds, \"rss_kib_start\": $rss_start, \"rss_kib_end\": $rss_end, \"results\": ["
  paste -sd, "$tmp/results.jsonl"
  echo "]}"
} >"$build/bench/serve_load.json"
echo "wrote $build/bench/serve_load.json"
