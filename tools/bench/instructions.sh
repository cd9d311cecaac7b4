#!/usr/bin/env bash
# Instructions per unit of work, counted by valgrind's callgrind: repeatable to a percent or two
# for the same binary and workload whatever else the shared host is doing, where CPU time and
# throughput move by 20% between runs of one build. Use it to compare builds; the wall-clock
# benchmarks (federation.sh, mllp.sh) remain the measure of the issues' targets.
#
#   tools/bench/instructions.sh federation WORK CONCORD_BIN [SECONDS=40]
#       The hub of federation.sh part 1 (run federation.sh with WORK=... first: it leaves the
#       recorded sources and the hub's store there), one client asking for $summary for SECONDS.
#       Prints instructions per view.
#   tools/bench/instructions.sh mllp CONCORD_BIN [MESSAGES_PER_CONNECTION=50]
#       A fresh edge; 8 MLLP connections send ADT^A04 messages. Prints instructions per message,
#       in all and inside the store's writer (what bounds the feed's throughput).
#
# LOAD_BIN / RECORDED_BIN: the view_load / mllp_load and recorded_sources examples (default: beside
# CONCORD_BIN's target directory). Output files: WORK_DIR/callgrind.out.* (federation) or a
# temporary directory (mllp); `callgrind_annotate --inclusive=yes FILE` shows where they went.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
mode=${1:?federation or mllp}
shift
export CONCORD__LOG__LEVEL=warn

# callgrind takes commands only while the process runs, so a trickle of readiness probes keeps an
# idle server awake while instrumentation is switched (a few probes land in the count; they cost
# nothing next to a view or a message).
control() { # PID "COMMAND"... (port in $port)
  local pid=$1; shift
  (while true; do curl -s -o /dev/null "http://127.0.0.1:$port/readyz"; sleep 0.05; done) &
  local awake=$!
  for command in "$@"; do
    # shellcheck disable=SC2086 # a command is its option and its argument: "-i on".
    timeout 120 callgrind_control $command "$pid" >/dev/null
  done
  kill "$awake"; wait "$awake" 2>/dev/null || true
}
wait_ready() { for _ in $(seq 600); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return; sleep 0.2; done; exit 1; }
total() { cat "$@" | awk '/^totals:/ {s += $2} END {print s}'; }

case "$mode" in
federation)
  work=${1:?WORK directory of federation.sh}; concord=${2:?concord binary}; seconds=${3:-40}
  bin_dir=$(dirname "$concord")/examples
  load=${LOAD_BIN:-$bin_dir/view_load}; recorded=${RECORDED_BIN:-$bin_dir/recorded_sources}
  port=18590
  "$recorded" 20 "$work"/recorded/*.json >"$work/recorded.out" &
  replay=$!
  for _ in $(seq 100); do [ "$(wc -l <"$work/recorded.out")" -ge 7 ] && break; sleep 0.1; done
  # The recorded sources listen on new ports: point the hub's registry at them.
  python3 - "$work" <<'PY'
import re, sys
work = sys.argv[1]
urls = dict(line.split() for line in open(f"{work}/recorded.out"))
out, name = [], None
for line in open(f"{work}/hub.toml").read().split("\n"):
    m = re.match(r'name = "(.*)"', line)
    if m:
        name = m.group(1)
    if line.startswith("base_url"):
        line = f'base_url = "{urls[name]}"'
    out.append(line)
open(f"{work}/hub-callgrind.toml", "w").write("\n".join(out))
PY
  rm -f "$work"/callgrind.out*
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.out" \
    "$concord" serve --listen 127.0.0.1:$port --data "$work/hub" --config "$work/hub-callgrind.toml" 2>"$work/callgrind.log" &
  hub=$!
  trap 'kill $hub $replay 2>/dev/null || true' EXIT
  wait_ready
  token=$("$concord" token issue --data "$work/hub" --sub bench --role clinician --org BENCH --scope 'user/*.*')
  id=$(curl -fs -H "Authorization: Bearer $token" "http://127.0.0.1:$port/fhir/Patient?_count=1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["entry"][0]["resource"]["id"])')
  url="http://127.0.0.1:$port/fhir/Patient/$id/\$summary"
  "$load" "$url" "$token" 1 3 >/dev/null
  control "$hub" "-i on"
  "$load" "$url" "$token" 1 "$seconds" >"$work/callgrind-load.out"
  head -1 "$work/callgrind-load.out"
  control "$hub" "-i off" "-d"
  # Every view the hub answered while counting: view_load's measured ones and its warm-up.
  views=$(awk '/^views answered in all/ {print $NF}' "$work/callgrind-load.out")
  python3 -c "import sys; t, v = map(int, sys.argv[1:]); print(f'{v} views, {t / v / 1e6:.2f} M instructions per view')" \
    "$(total "$work"/callgrind.out*)" "$views"
  ;;
mllp)
  concord=${1:?concord binary}; per_connection=${2:-50}
  load=${LOAD_BIN:-$(dirname "$concord")/examples/mllp_load}
  port=18480
  work=$(mktemp -d)
  export CONCORD__STORE__SYNCHRONOUS=full CONCORD__IDENTITY__MASTER_INDEX=false
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.out" \
    "$concord" serve --listen 127.0.0.1:$port --mllp 127.0.0.1:18481 --data "$work/data" 2>"$work/server.log" &
  server=$!
  trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
  wait_ready
  sample=$root/../shared/testdata/hl7v2/messages/ADT-A04-01.hl7
  "$load" 127.0.0.1:18481 8 5 "$sample" >/dev/null
  control "$server" "-i on"
  "$load" 127.0.0.1:18481 8 "$per_connection" "$sample" | head -1
  control "$server" "-i off" "-d"
  messages=$((8 * per_connection))
  # The writer's unit of work; with whole-program optimisation (the release profile's LTO) it is
  # inlined into the store's `write_repeatable`, which does nothing else, so the larger of the two
  # is the writer's count.
  writer=$(callgrind_annotate --inclusive=yes "$work"/callgrind.out.* 2>/dev/null |
    awk '/store-sqlite\/src\/group.rs:concord_store_sqlite::group::GroupWriter::unit$/ || /ResourceStore>::write_repeatable \[/ {
      gsub(",", "", $1); if ($1 + 0 > max) max = $1 + 0 } END { print max + 0 }')
  python3 -c "import sys; t, w, m = map(int, sys.argv[1:]); print(f'{m} messages, {t / m / 1e6:.2f} M instructions per message, {w / m / 1e6:.2f} M inside the store writer')" \
    "$(total "$work"/callgrind.out*)" "${writer:-0}" "$messages"
  ;;
*) echo "usage: $0 federation WORK CONCORD_BIN [SECONDS] | mllp CONCORD_BIN [MESSAGES]"; exit 2 ;;
esac
