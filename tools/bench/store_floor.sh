#!/usr/bin/env bash
# The floor a PostgreSQL store would put under the HL7 v2 feed: PostgreSQL's own CPU time to store
# what an edge stores for one ADT^A04 message, in two store shapes (tools/bench/store_floor.py
# says which). Feeds a fresh edge 500 messages with tools/bench/mllp.sh, keeps its store, and
# replays it into PostgreSQL. Compare the result with the "server CPU a message" that mllp.sh
# prints: on 2 cores, 2,000 messages a second leaves 1 ms of CPU a message for everything.
#
#   CONCORD_BIN=... LOAD_BIN=... tools/bench/store_floor.sh    reuse binaries you built
#   PG_DSN (default "host=127.0.0.1 user=postgres dbname=test"; PostgreSQL must run on this
#   machine, as its CPU time is read from /proc), REPLAY=4000 (messages replayed per shape)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
dsn=${PG_DSN:-host=127.0.0.1 user=postgres dbname=test}
replay=${REPLAY:-4000}
venv=$target/bench-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import psycopg' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'psycopg[binary]==3.3.*'
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
MESSAGES=400 KEEP_STORE="$work/edge" "$root/tools/bench/mllp.sh"
for shape in rows jsonb; do
  "$venv/bin/python" "$root/tools/bench/store_floor.py" "$dsn" "$shape" "$work/edge/concord.db" "$replay"
done
