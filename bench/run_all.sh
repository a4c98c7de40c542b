#!/usr/bin/env bash
# The scenarios of issue 3, for one or more channel layers, each against a fresh server on core 0
# with the load tool on core 1. Results: bench/results/<layer>-<scenario>.json (+ .txt tables).
#   bench/run_all.sh [core|pubsub ...]        (default: core pubsub)
#   SCENARIOS="capacity big idle" bench/run_all.sh core
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
LT="taskset -c 1 $PY bench/loadtest.py"
PORT=${BENCH_PORT:-18100}
SCENARIOS=${SCENARIOS:-"capacity big idle"}
REDIS=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/5}
mkdir -p bench/results bench/tokens
[ -f bench/tokens/cap.json ] || bench/run_server.sh setup --users 200 --rooms 10 --room-prefix bench10x20 --out bench/tokens/cap.json
[ -f bench/tokens/big.json ] || bench/run_server.sh setup --users 500 --rooms 1 --room-prefix bench1x500 --out bench/tokens/big.json
[ -f bench/tokens/idle.json ] || bench/run_server.sh setup --users 10000 --rooms 100 --room-prefix benchidle --out bench/tokens/idle.json

layers=("$@"); [ ${#layers[@]} -gt 0 ] || layers=(core pubsub)
# The machine is shared: wait (bounded) until the other processes leave most of both cores idle.
wait_quiet() {
  local limit=${BENCH_QUIET_WAIT:-120} waited=0 busy
  while :; do
    read -r _ u n s i w q sq st _ < /proc/stat; b0=$((u+n+s+q+sq+st)); t0=$((b0+i+w)); sleep 2
    read -r _ u n s i w q sq st _ < /proc/stat; b1=$((u+n+s+q+sq+st)); t1=$((b1+i+w))
    busy=$(( 200 * (b1-b0) / (t1-t0) ))
    if [ "$busy" -le "${BENCH_QUIET_PCT:-40}" ] || [ "$waited" -ge "$limit" ]; then
      echo "machine busy ${busy}% of 200% before the run (waited ${waited}s)"; return 0; fi
    sleep 3; waited=$((waited+5))
  done
}

for layer in "${layers[@]}"; do
  for scenario in $SCENARIOS; do
    wait_quiet
    pid=$(BENCH_LOG="bench/logs/server-$layer-$scenario.log" bench/run_server.sh start "$layer" "$PORT")
    trap 'bench/run_server.sh stop $pid' EXIT
    out="bench/results/$layer-$scenario"
    commit=$(git rev-parse --short HEAD)
    dirty=$(git status --porcelain -- rooms accounts chatsite | awk '{print $2}' | tr '\n' ',')
    META=(--meta "layer=$layer" --meta "scenario=$scenario" --meta "server_commit=$commit" --meta "server_uncommitted=$dirty")
    echo "### $layer $scenario (server pid $pid, loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
    case $scenario in
      capacity)  # 10 rooms x 20 members, ramp x1.5 until p99 > 200 ms or anything lost
        $LT capacity --port "$PORT" --tokens bench/tokens/cap.json --server-pid "$pid" \
          --rate "${CAP_START_RATE:-20}" --factor 1.5 --duration 8 --grace 5 --max-seconds 150 \
          "${META[@]}" --json "$out.json" > "$out.txt" 2>&1 ;;
      big)       # one room of 500 members, 20 msg/s for 30 s
        $LT run --port "$PORT" --tokens bench/tokens/big.json --server-pid "$pid" \
          --rate 20 --duration 30 --grace 10 "${META[@]}" --json "$out.json" > "$out.txt" 2>&1 ;;
      idle)      # 10,000 idle sockets (100 rooms x 100), then all closed at once; Redis checked
        $LT idle --port "$PORT" --tokens bench/tokens/idle.json --server-pid "$pid" \
          --connect-concurrency "${IDLE_CONCURRENCY:-200}" --connect-timeout 30 --settle 2 --hold 5 \
          --after-close 10 --recheck-after 35 --redis-url "$REDIS" "${META[@]}" --json "$out.json" > "$out.txt" 2>&1 ;;
    esac
    grep -E "step |last_passing|connected|failed_hand|connect_all|kib_per|latency_p|lost|left behind|still open" "$out.txt" | head -30 || true
    bench/run_server.sh stop "$pid"
    trap - EXIT
    sleep 2
  done
done
