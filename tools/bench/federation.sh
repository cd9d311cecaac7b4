#!/usr/bin/env bash
# The federated view benchmark (issue 5): `concord demo` with all seven of the hub's sources (six
# organisations and the neighbouring region, whose hospital is slowed too) answering 20 ms late,
# then `view_load` asks for one person's `$summary`: views per second under concurrent load,
# latency, and the hub's overhead (each view's time minus its slowest source's time). Then the
# same with one source hanging: the view must return within that source's deadline plus 50 ms.
#
#   tools/bench/federation.sh                              builds, then measures
#   CONCORD_BIN=... LOAD_BIN=... tools/bench/federation.sh reuse binaries you built
#   CONCURRENCY=32 SECONDS=15 DELAY_MS=20
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
if [ -z "${CONCORD_BIN:-}" ] || [ -z "${LOAD_BIN:-}" ]; then
  cargo build --release --locked -p concord --bin concord --example view_load
fi
concord=${CONCORD_BIN:-$target/release/concord}
load=${LOAD_BIN:-$target/release/examples/view_load}
concurrency=${CONCURRENCY:-32}
seconds=${SECONDS_EACH:-15}
delay=${DELAY_MS:-20}
work=${WORK:-$(mktemp -d)}
export CONCORD__LOG__LEVEL=warn

run_demo() { # extra flags...
  "$concord" demo --listen 127.0.0.1:18580 --data "$work/demo" --people "${PEOPLE:-62}" "$@" \
    >"$work/demo.out" 2>"$work/demo.log" &
  demo=$!
  for _ in $(seq 1200); do
    grep -q "Concord demo is running" "$work/demo.out" 2>/dev/null && return 0
    kill -0 "$demo" 2>/dev/null || { cat "$work/demo.log"; exit 1; }
    sleep 0.25
  done
  echo "the demo did not start"; exit 1
}
stop_demo() { kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; }
trap 'stop_demo; [ -n "${WORK:-}" ] || rm -rf "$work"' EXIT

slow=()
for org in gp acute mental-health community ambulance social-care neighbour-acute; do
  slow+=(--slow "$org=$delay")
done
run_demo "${slow[@]}"
token=$("$concord" token issue --data "$work/demo/hub" --sub bench --role clinician --org BENCH --scope 'user/*.read')
hub=http://127.0.0.1:18580/fhir
# The person held by the most organisations.
nhs=$(python3 - "$work/demo/people.txt" <<'PY'
import sys
best = max(open(sys.argv[1]), key=lambda l: l.count(","))
print(best.split()[0])
PY
)
id=$(curl -fs -H "Authorization: Bearer $token" "$hub/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|$nhs" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["entry"][0]["resource"]["id"])')
echo "$(nproc) cores; every source answers ${delay} ms late; one person at $(grep "^$nhs" "$work/demo/people.txt" | sed 's/.* at //')"
echo "== \$summary, 1 client"
"$load" "$hub/Patient/$id/\$summary" "$token" 1 "$seconds"
echo "== \$summary, $concurrency clients"
"$load" "$hub/Patient/$id/\$summary" "$token" "$concurrency" "$seconds"
echo "== \$everything, $concurrency clients"
"$load" "$hub/Patient/$id/\$everything?_count=1000" "$token" "$concurrency" "$seconds"
stop_demo

echo "== one source hanging (community answers after 60 s; deadline 2500 ms)"
run_demo "${slow[@]/community=$delay/community=60000}"
start=$(date +%s%N)
curl -fs -o "$work/hanging.json" -H "Authorization: Bearer $token" "$hub/Patient/$id/\$summary"
end=$(date +%s%N)
echo "view returned in $(( (end - start) / 1000000 )) ms; the hanging source is named:"
python3 - "$work/hanging.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for e in doc["entry"]:
    r = e["resource"]
    if r["resourceType"] == "OperationOutcome":
        for i in r["issue"]:
            print("  ", i["details"]["coding"][0]["code"], "-", i["diagnostics"])
PY
