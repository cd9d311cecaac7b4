#!/usr/bin/env bash
# HL7 v2 over MLLP: ADT messages per second, stored and acknowledged, with 1 and 8 connections,
# the send-to-ACK latency percentiles, the server's CPU time a message and the load generator's
# CPU time. Release build; a fresh data directory each run.
#
#   tools/bench/mllp.sh                     builds, then measures
#   CONCORD_BIN=... LOAD_BIN=... tools/bench/mllp.sh   reuse binaries you built
#   MESSAGES=2000 (per connection count below), SYNCHRONOUS=full|normal
#   MASTER_INDEX=false (default: the node is an edge whose Patients its hub links, as the issue's
#   deployment has it) or true (a node that is hub and edge at once links every Patient too)
#   KEEP_STORE=DIR: stop the server at the end and copy its store files into DIR
#   (tools/bench/store_floor.sh replays them)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
if [ -z "${CONCORD_BIN:-}" ] || [ -z "${LOAD_BIN:-}" ]; then
  cargo build --release --locked -p concord
  cargo build --release --locked -p concord-mllp --example mllp_load
fi
concord=${CONCORD_BIN:-$target/release/concord}
load=${LOAD_BIN:-$target/release/examples/mllp_load}
messages=${MESSAGES:-4000}
sample=$root/../shared/testdata/hl7v2/messages/ADT-A04-01.hl7
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
export CONCORD__STORE__SYNCHRONOUS=${SYNCHRONOUS:-full}
export CONCORD__IDENTITY__MASTER_INDEX=${MASTER_INDEX:-false}
export CONCORD__LOG__LEVEL=warn
"$concord" serve --listen 127.0.0.1:18480 --mllp 127.0.0.1:18481 --data "$work/data" 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do
  curl -fs http://127.0.0.1:18480/readyz >/dev/null 2>&1 && break
  sleep 0.1
done
echo "synchronous=$CONCORD__STORE__SYNCHRONOUS, master_index=$CONCORD__IDENTITY__MASTER_INDEX, $(nproc) cores"
# The server's CPU time (user and system, in clock ticks) from /proc: what a message costs the
# server, whichever part of it is the bottleneck.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
run() { # CONNECTIONS MESSAGES_PER_CONNECTION
  local before after
  before=$(cpu_ticks)
  # The load generator shares the two cores; its CPU time says how much of them it takes.
  local TIMEFORMAT="  load generator CPU: %3U s user + %3S s system"
  time "$load" 127.0.0.1:18481 "$1" "$2" "$sample"
  after=$(cpu_ticks)
  python3 -c "import os, sys; t, m = int(sys.argv[1]), int(sys.argv[2]); print(f'  server CPU a message: {t / os.sysconf(\"SC_CLK_TCK\") / m * 1e3:.2f} ms')" \
    "$((after - before))" "$(($1 * $2))"
}
run 1 $((messages / 4))
run 8 $((messages / 8))
if [ -n "${KEEP_STORE:-}" ]; then
  kill "$server"
  wait "$server" 2>/dev/null || true
  mkdir -p "$KEEP_STORE"
  cp "$work"/data/concord.db* "$KEEP_STORE"/
fi
