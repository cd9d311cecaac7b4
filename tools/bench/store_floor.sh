#!/usr/bin/env bash
# The floor a PostgreSQL store would put under the HL7 v2 feed: PostgreSQL's own CPU time to store
# what an edge stores for one ADT^A04 message, in two store shapes (tools/bench/store_floor.py
# says which). Feeds a fresh edge 8 x 55 messages over MLLP as tools/bench/mllp.sh does, stops it,
# and replays its store into PostgreSQL. Compare the result with the "server CPU a message" that
# mllp.sh prints: on 2 cores, 2,000 messages a second leaves 1 ms of CPU a message for everything.
#
#   CONCORD_BIN=... LOAD_BIN=... tools/bench/store_floor.sh    reuse binaries you built
#   PG_DSN (default "host=127.0.0.1 user=postgres dbname=test"; PostgreSQL must run on this
#   machine, as its CPU time is read from /proc), REPLAY=4000 (messages replayed per shape)
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
dsn=${PG_DSN:-host=127.0.0.1 user=postgres dbname=test}
replay=${REPLAY:-4000}
venv=$target/bench-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import psycopg' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'psycopg[binary]==3.3.*'
fi
sample=$root/../shared/testdata/hl7v2/messages/ADT-A04-01.hl7
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
export CONCORD__STORE__SYNCHRONOUS=full CONCORD__IDENTITY__MASTER_INDEX=false CONCORD__LOG__LEVEL=warn
"$concord" serve --listen 127.0.0.1:18482 --mllp 127.0.0.1:18483 --data "$work/data" 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do
  curl -fs http://127.0.0.1:18482/readyz >/dev/null 2>&1 && break
  sleep 0.1
done
"$load" 127.0.0.1:18483 8 55 "$sample"
kill "$server"
wait "$server" 2>/dev/null || true
for shape in rows jsonb; do
  "$venv/bin/python" "$root/tools/bench/store_floor.py" "$dsn" "$shape" "$work/data/concord.db" "$replay"
done
