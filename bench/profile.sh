#!/usr/bin/env bash
# Where one chatsite server's CPU goes under load: py-spy samples the daphne process this script
# started (never another), while the load tool drives it; pyspy_top.py prints the shares.
#   bench/profile.sh capacity [RATE]   10 rooms x 20 at RATE msg/s [750] for 40 s, sampled 25 s
#   bench/profile.sh idle              10,000 sockets connecting and joining, sampled 25 s
#   bench/profile.sh solo [RATE]       200 rooms of one at RATE msg/s [50] for 40 s, sampled 25 s
# Environment: as run_all.sh (BENCH_PORT [18100], BENCH_DATABASE_URL, BENCH_REDIS_URL, LOAD_CPU,
# BENCH_NICE), BENCH_OUT [bench/out/profile-<UTC time>], PYSPY_ARGS (e.g. --native).
# Writes OUT/<scenario>.raw (collapsed stacks), OUT/<scenario>.top.txt, OUT/<scenario>-load.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
scenario=${1:?usage: $0 capacity [RATE] | solo [RATE] | idle}
rate=${2:-750}
port=${BENCH_PORT:-18100}
OUT=${BENCH_OUT:-bench/out/profile-$(date -u +%Y%m%dT%H%M%SZ)}
TOK=bench/out/tokens
LT="nice -n ${BENCH_NICE:--10} taskset -c ${LOAD_CPU:-1} $PY bench/loadtest.py"
mkdir -p "$OUT"
echo "${BENCH_NICE:--10}" > "/proc/$$/autogroup" 2>/dev/null || true
[ -f $TOK/cap.json ] && [ -f $TOK/idle.json ] || { echo "run bench/run_all.sh once first (tokens)" >&2; exit 2; }

pid=$(BENCH_LOG="$OUT/server-$scenario.log" bench/run_server.sh start "${BENCH_LAYER:-pubsub}" "$port")
trap 'bench/run_server.sh stop $pid' EXIT
echo "server pid $pid; $(uptime)" | tee "$OUT/$scenario.conditions.txt"
case $scenario in
  capacity)
    $LT run --protocol chatsite --port "$port" --server-pid "$pid" --tokens $TOK/cap.json --rate "$rate" \
      --duration 40 --grace 5 --json "$OUT/$scenario-load.json" > "$OUT/$scenario-load.txt" 2>&1 &
    load=$!; sleep 12 ;;  # connects, then sampling starts with the sending well under way
  solo)
    $LT run --protocol chatsite --port "$port" --server-pid "$pid" --tokens $TOK/solo.json --rate "${2:-50}" \
      --duration 40 --grace 5 --json "$OUT/$scenario-load.json" > "$OUT/$scenario-load.txt" 2>&1 &
    load=$!; sleep 12 ;;
  idle)
    $LT idle --protocol chatsite --port "$port" --server-pid "$pid" --tokens $TOK/idle.json --connect-concurrency 200 \
      --connect-timeout 30 --settle 2 --hold 5 --after-close 10 --json "$OUT/$scenario-load.json" \
      > "$OUT/$scenario-load.txt" 2>&1 &
    load=$!; sleep 1 ;;
  *) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086
.venv/bin/py-spy record -p "$pid" -d "${PYSPY_SECONDS:-25}" -r 100 --format raw ${PYSPY_ARGS:-} -o "$OUT/$scenario.raw" \
  > "$OUT/$scenario.pyspy.log" 2>&1 || echo "py-spy failed: see $OUT/$scenario.pyspy.log" >&2
wait "$load" || echo "the load tool failed: see $OUT/$scenario-load.txt" >&2
echo "after: $(uptime)" | tee -a "$OUT/$scenario.conditions.txt"
$PY bench/pyspy_top.py "$OUT/$scenario.raw" 50 | tee "$OUT/$scenario.top.txt"
