#!/usr/bin/env bash
# The fixed benchmark workload of docs/performance.md. Run on an otherwise idle machine:
#   tools/bench.sh            # full run (about 10 minutes)
# It builds the release binary, loads the 62 Synthea bundles of ../shared/testdata plus 600 people
# from carebundle (seed 7) through `concord import` and over HTTP, then measures reads and typical
# searches under concurrent load with wrk. Figures go to target/bench/results.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=target/bench
mkdir -p "$out"
duration=${BENCH_SECONDS:-10}
connections=${BENCH_CONNECTIONS:-16}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }
if [ ! -d "$out/carebundle-600" ]; then
  [ -d "$out/venv" ] || python3 -m venv "$out/venv"
  "$out/venv/bin/pip" install -q carebundle==0.5.0
  "$out/venv/bin/carebundle" generate --profile mixed --count 600 --seed 7 --out "$out/carebundle-600"
fi
if [ -z "${CONCORD_BIN:-}" ]; then
  cargo build --release -p concord --locked
fi
bin="${CONCORD_BIN:-$root/target/release/concord}"
synthea="$root/../shared/testdata/synthea"
results="$out/results.txt"
: > "$results"
say() { echo "$*" | tee -a "$results"; }

say "== concord import (CLI), $(nproc) cores"
rm -rf "$out/data-cli"
/usr/bin/time -f "peak RSS %M KiB" -o "$out/import-time.txt" "$bin" import --quiet --data "$out/data-cli" "$synthea" "$out/carebundle-600" | tee -a "$results"
say "cli-import $(cat "$out/import-time.txt")"

say "== HTTP import and load"
rm -rf "$out/data-http"
port=18480
# The bench node is run by organisation A81001 and its clinician reads as one of its staff: every
# read and search is decided and audited as in use (docs/access.md).
CONCORD__ACCESS__ORGANIZATION=A81001 "$bin" serve --data "$out/data-http" --listen 127.0.0.1:$port 2> "$out/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:$port/readyz >/dev/null && break; sleep 0.2; done
# Loading is an integrator's system job (Synthea bundles carry Organizations and Practitioners,
# which only administrators, data stewards and systems write); reading is a clinician's.
loader=$("$bin" token issue --data "$out/data-http" --sub loader --system --scope 'system/*.*' --ttl-minutes 120)
token=$("$bin" token issue --data "$out/data-http" --sub bench --role clinician --org A81001 --ttl-minutes 120)
python3 tools/bench/post_bundles.py "http://127.0.0.1:$port/fhir" "$loader" 2 "$synthea"/*.json "$out"/carebundle-600/*.json | tee -a "$results"
memory() { awk '/VmHWM|RssAnon|RssFile/ {printf "%s %s %s; ", $1, $2, $3}' /proc/$pid/status; }
say "server memory after HTTP import: $(memory)"
# The import leaves hundreds of megabytes for the kernel to write back, which it does some 30 s
# later, in the middle of the first load phase, slowing every audit commit's fsync there. Flush
# it first, so each workload is measured on a settled machine.
sync
python3 tools/bench/make_paths.py "http://127.0.0.1:$port/fhir" "$token" "$out/paths" | tee -a "$results"

# The server's CPU time (user + system, from /proc) per request is printed too: on a shared host
# whose speed drifts it is the figure least disturbed by other tenants, so builds compare by it.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for workload in read identifier patient_name obs_code_date encounter_sorted chained; do
  ticks=$(cpu_ticks $pid)
  PATHS_FILE="$out/paths/$workload.txt" wrk -t2 -c"$connections" -d"${duration}s" --latency \
    -H "Authorization: Bearer $token" -s tools/bench/paths.lua "http://127.0.0.1:$port" > "$out/wrk-$workload.txt"
  ticks=$(( $(cpu_ticks $pid) - ticks ))
  rps=$(awk '/Requests\/sec/ {print $2}' "$out/wrk-$workload.txt")
  p50=$(awk '$1=="50%" {print $2}' "$out/wrk-$workload.txt")
  p99=$(awk '$1=="99%" {print $2}' "$out/wrk-$workload.txt")
  requests=$(awk '/requests in/ {print $1}' "$out/wrk-$workload.txt")
  cpu=$(python3 -c 'import sys; t, n, hz = map(float, sys.argv[1:]); print(f"{t / hz / n * 1e6:.0f}")' "$ticks" "$requests" "$(getconf CLK_TCK)")
  errors=$(grep -E "Non-2xx|Socket errors" "$out/wrk-$workload.txt" || true)
  say "$workload: $rps req/s, p50 $p50, p99 $p99, server CPU $cpu us/req ${errors}"
done
# RssFile is the database file mapped by each SQLite connection (mmap), counted once per mapping;
# RssAnon is the server's own memory.
say "server memory after load: $(memory)"
kill -TERM $pid; wait $pid || true
