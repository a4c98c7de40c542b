#!/usr/bin/env bash
# Interleaved repeats of one scenario with each channel layer, so that the machine's varying load
# (it is shared) falls on both alike. Results: bench/out/compare/<scenario>-<layer>-<i>.json
#   bench/compare_layers.sh big 3        one room of 500 members at 20 msg/s, 15 s, 3 rounds
#   bench/compare_layers.sh cap30 3      10 rooms x 20 members at 30 msg/s, 15 s, 3 rounds
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-big}; rounds=${2:-3}; PORT=${BENCH_PORT:-18100}
mkdir -p bench/out/compare
for i in $(seq 1 "$rounds"); do
  for layer in core pubsub; do
    pid=$(BENCH_LOG="bench/out/logs/server-compare-$scenario-$layer-$i.log" bench/run_server.sh start "$layer" "$PORT")
    trap 'bench/run_server.sh stop $pid' EXIT
    case $scenario in
      big)   args=(--tokens bench/out/tokens/big.json --rate 20) ;;
      cap30) args=(--tokens bench/out/tokens/cap.json --rate 30) ;;
    esac
    taskset -c 1 .venv/bin/python bench/loadtest.py run --port "$PORT" --server-pid "$pid" "${args[@]}" \
      --duration 15 --grace 10 --meta "layer=$layer" --meta "server_commit=$(git rev-parse --short HEAD)" \
      --meta "server_uncommitted=$(git status --porcelain -- rooms accounts chatsite | awk '{print $2}' | tr '\n' ',')" \
      --json "bench/out/compare/$scenario-$layer-$i.json" > /dev/null 2>&1 || echo "run failed: $layer $i"
    bench/run_server.sh stop "$pid"; trap - EXIT
    .venv/bin/python - "bench/out/compare/$scenario-$layer-$i.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1])); c, s = r["connect"], r["result"]
print(f"{sys.argv[1].split('/')[-1]:24} connect {c['connect_all_s']:6.1f}s failed {c['failed_handshakes']:3} "
      f"p50 {s['latency_p50_ms']} p99 {s['latency_p99_ms']} lost {s['lost']} unanswered {s['unanswered']} "
      f"srv cpu {s.get('server_cpu_pct')}% runq {s.get('server_runqueue_wait_pct')}% "
      f"others {s.get('other_processes_cpu_pct')}% cpu/delivery {s.get('server_cpu_us_per_delivery')}us")
PYEOF
  done
done
