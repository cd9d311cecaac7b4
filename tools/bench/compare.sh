#!/usr/bin/env bash
# Compares two builds on one workload of tools/bench.sh by alternating runs, A B A B ..., each a
# fresh `concord serve` on its own copy of the store tools/bench.sh imported over HTTP (its audit
# trail emptied, so both builds start alike). Prints requests/s, p99 and the server's CPU time per
# request (read from /proc), the figure least disturbed by other tenants of a shared host.
#
#   tools/bench.sh                                   once, for the store and its request lists
#   tools/bench/compare.sh WORKLOAD BIN_A BIN_B [ROUNDS] [SECONDS]
#
# WORKLOAD is one of read identifier patient_name obs_code_date encounter_sorted chained.
# A build whose store schema is older than the store's cannot open the copy; compare builds that
# read the store tools/bench.sh made (or rerun it with the older build).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 3 ] || { sed -n '2,12p' "$0"; exit 2; }
workload=$1; rounds=${4:-3}; seconds=${5:-8}
bins=("$2" "$3")
out=$root/target/bench
paths=$out/paths/$workload.txt
[ -d "$out/data-http" ] && [ -f "$paths" ] || { echo "run tools/bench.sh first"; exit 1; }
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
pid=
for side in 0 1; do
  cp -r "$out/data-http" "$work/data-$side"
  rm -f "$work/data-$side"/audit*
done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
port=18482
for round in $(seq "$rounds"); do
  for side in 0 1; do
    bin=${bins[$side]}
    data=$work/data-$side
    CONCORD__LOG__LEVEL=warn CONCORD__ACCESS__ORGANIZATION=A81001 "$bin" serve --data "$data" \
      --listen 127.0.0.1:$port 2>"$work/serve.log" &
    pid=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/readyz >/dev/null && break; sleep 0.1; done
    token=$("$bin" token issue --data "$data" --sub bench --role clinician --org A81001 --ttl-minutes 30)
    # A short warm-up, so both builds are measured with the store's pages in memory.
    PATHS_FILE=$paths wrk -t2 -c16 -d2s -H "Authorization: Bearer $token" -s "$root/tools/bench/paths.lua" \
      "http://127.0.0.1:$port" >/dev/null
    ticks=$(cpu_ticks $pid)
    PATHS_FILE=$paths wrk -t2 -c16 -d"${seconds}s" --latency -H "Authorization: Bearer $token" \
      -s "$root/tools/bench/paths.lua" "http://127.0.0.1:$port" >"$work/wrk.txt"
    ticks=$(( $(cpu_ticks $pid) - ticks ))
    kill $pid; wait $pid 2>/dev/null || true
    python3 - "$work/wrk.txt" "$ticks" "$(getconf CLK_TCK)" "$round" "$([ $side = 0 ] && echo A || echo B)" "$bin" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
ticks, hz = float(sys.argv[2]), float(sys.argv[3])
requests = int(re.search(r"(\d+) requests in", text).group(1))
rps = re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)
p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1)
errors = "; ".join(l.strip() for l in text.splitlines() if "Non-2xx" in l or "Socket errors" in l)
print(f"round {sys.argv[4]} {sys.argv[5]}: {float(rps):8.0f} req/s  p99 {p99:>8}  server CPU {ticks / hz / requests * 1e6:4.0f} us/req  {errors}  ({sys.argv[6]})")
PY
  done
done
