#!/usr/bin/env bash
# The server's CPU per message and per delivery at one fixed rate, below capacity: for before/after
# comparisons of a change on a busy machine, where a capacity ramp (a p99 criterion) is too noisy.
# Runs the server of the tree it is in (chatsite), fresh, pinned and prioritised as run_all.sh does.
#   bench/fixed_rate.sh TOKENS RATE [LABEL]     e.g. bench/fixed_rate.sh cap 300 before
# TOKENS: cap (10 rooms x 20), solo (200 rooms of one) or big (one room of 500), from run_all.sh.
# Writes bench/out/fixed/<UTC time>-<LABEL>-<TOKENS>-<RATE>.json; prints the CPU figures.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
tokens=${1:?usage: $0 cap|solo|big RATE [LABEL]}
rate=${2:?usage: $0 cap|solo|big RATE [LABEL]}
label=${3:-run}
port=${BENCH_PORT:-18100}
out=bench/out/fixed/$(date -u +%Y%m%dT%H%M%SZ)-$label-$tokens-$rate
mkdir -p bench/out/fixed
echo "${BENCH_NICE:--10}" > "/proc/$$/autogroup" 2>/dev/null || true
pid=$(BENCH_LOG="$out.server.log" bench/run_server.sh start "${BENCH_LAYER:-pubsub}" "$port")
trap 'bench/run_server.sh stop $pid' EXIT
nice -n "${BENCH_NICE:--10}" taskset -c "${LOAD_CPU:-1}" $PY bench/loadtest.py run --protocol chatsite --port "$port" \
  --server-pid "$pid" --tokens "bench/out/tokens/$tokens.json" --rate "$rate" --duration 20 --grace 5 --warmup 3 \
  --idle-baseline 3 --meta "label=$label" --meta "loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)" \
  --json "$out.json" > "$out.txt" 2>&1
grep -E "^  (accepted|rejected |lost |latency_p50|latency_p99|server_cpu_pct|server_runqueue|server_cpu_us_per_(accepted_msg|delivery)(_net)?|other_processes) " \
  "$out.txt" | sed "s/^/$label $tokens@$rate /"
echo "$label $tokens@$rate loadavg after $(cut -d' ' -f1-3 /proc/loadavg)"
