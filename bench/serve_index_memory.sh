#!/usr/bin/env bash
# Memory and latency of `clip serve` on a large index (not a test): starts the server on INDEX
# (memory-mapped, re-ranking), reads its RSS when it is ready, then sends N text searches
# (GET /search?q=...&k=10, one at a time, distinct texts) and reads its RSS and peak RSS again.
# Prints the figures and writes JSON. Made for the index bench_index keeps with --keep --model
# (see docs/search.md, "Benchmarks"); any index whose model file still exists works.
#
# Usage: bench/serve_index_memory.sh INDEX [build folder (default build)] [queries (default 200)]
#        [json out (default BUILD/bench/serve_index_memory.json)]
# CLIP_BENCH_SERVE_ARGS: the serve flags (default "--mmap --rerank 100 --threads 2").
set -euo pipefail
cd "$(dirname "$0")/.."
index="${1:?usage: bench/serve_index_memory.sh INDEX [build] [queries] [json]}"
build="${2:-build}"
queries="${3:-200}"
json_out="${4:-$build/bench/serve_index_memory.json}"
serve_args="${CLIP_BENCH_SERVE_ARGS:---mmap --rerank 100 --threads 2}"
[ -f "$index/manifest.json" ] || { echo "$index: not an index (no manifest.json)" >&2; exit 1; }

tmp=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

started=$(date +%s%N)
# shellcheck disable=SC2086
"$build/clip" serve --index "$index" --port 0 $serve_args 2>"$tmp/serve.log" &
server=$!
url=""
for _ in $(seq 6000); do
  url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$tmp/serve.log")
  # /search answers 503 while the index and model load; ready once it answers 200.
  [ -n "$url" ] && curl -sf "${url}search?q=warmup&k=10" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$tmp/serve.log" >&2; exit 1; }
  sleep 0.1
done
curl -sf "${url}search?q=warmup&k=10" >/dev/null || { cat "$tmp/serve.log" >&2; exit 1; }
ready_s=$(awk -v ns=$(($(date +%s%N) - started)) 'BEGIN {printf "%.1f", ns / 1e9}')
status() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$server/status"; }
rss_ready=$(status VmRSS)

: >"$tmp/ms"
for i in $(seq "$queries"); do
  curl -sf -o /dev/null -w '%{time_total}\n' "${url}search?q=a+photo+number+$i+of+a+thing&k=10" >>"$tmp/ms"
done
rss_after=$(status VmRSS)
hwm=$(status VmHWM)
file_rss=$(status RssFile)
anon_rss=$(status RssAnon)
read -r p50 p99 < <(sort -n "$tmp/ms" | awk '{v[NR] = $1 * 1000} END {
  i99 = int(NR * 0.99 + 0.999); if (i99 < 1) i99 = 1
  printf "%.2f %.2f\n", v[int(NR / 2) + 1], v[i99]}')
rows=$(python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))
print(sum(c["rows"] - len(c.get("dropped", [])) for c in m.get("chunks", [])))' "$index/manifest.json")

printf 'clip serve --index %s %s (%s rows in the manifest chunks)\n' "$index" "$serve_args" "$rows"
printf '  ready (index + model loaded, first search answered): %.1f s, RSS %d MB\n' "$ready_s" $((rss_ready / 1024))
printf '  after %d searches (k = 10, one at a time, over HTTP): RSS %d MB (anonymous %d MB, file pages %d MB), peak %d MB\n' \
  "$queries" $((rss_after / 1024)) $((anon_rss / 1024)) $((file_rss / 1024)) $((hwm / 1024))
printf '  latency per search (text embedding + search + JSON): p50 %s ms, p99 %s ms\n' "$p50" "$p99"
mkdir -p "$(dirname "$json_out")"
cat >"$json_out.tmp" <<EOF
{"index": "$index", "serve_args": "$serve_args", "rows": $rows, "queries": $queries,
 "ready_s": $ready_s, "rss_ready_mb": $((rss_ready / 1024)), "rss_after_mb": $((rss_after / 1024)),
 "rss_anon_mb": $((anon_rss / 1024)), "rss_file_mb": $((file_rss / 1024)), "peak_rss_mb": $((hwm / 1024)),
 "p50_ms": $p50, "p99_ms": $p99}
EOF
mv "$json_out.tmp" "$json_out"
