#!/usr/bin/env bash
# The load tool's own ceiling: how many deliveries per second it receives and accounts on one core.
# The server is bench/fake_server.py --batch-writes on core 0 (frames built once, one write per
# socket per loop tick: cheaper per delivery than the tool), 10 rooms x 20 sockets as in the
# capacity scenario, fixed rates; the tool on core 1 in both dialects.
#   bench/tool_ceiling.sh [RATE ...]        (default 3000 6000 9000 12000 msg/s, x20 deliveries)
# Raw results: bench/out/ceiling-<UTC time>/; the figure to read is client_cpu_us_per_delivery
# (1e6 / it = deliveries per second of a whole core), with client_cpu_pct and delivered_per_s.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT=${BENCH_PORT:-18100}
OUT=${BENCH_OUT:-bench/out/ceiling-$(date -u +%Y%m%dT%H%M%SZ)}
rates=("$@"); [ ${#rates[@]} -gt 0 ] || rates=(3000 6000 9000 12000)
mkdir -p "$OUT"
echo "${BENCH_NICE:--10}" > "/proc/$$/autogroup" 2>/dev/null || true  # see run_server.sh
$PY bench/loadtest.py fake-setup --users 200 --rooms 10 --room-prefix bench10x20 --out "$OUT/tokens.json"
for proto in chatsite socketio; do
  nice -n "${BENCH_NICE:--10}" taskset -c "${BENCH_CPU:-0}" $PY bench/fake_server.py --port "$PORT" --batch-writes --protocol "$proto" \
    > "$OUT/fake-$proto.log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 50); do (echo > /dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.2; done
  for rate in "${rates[@]}"; do
    nice -n "${BENCH_NICE:--10}" taskset -c "${LOAD_CPU:-1}" $PY bench/loadtest.py run --protocol "$proto" --port "$PORT" --server-pid "$pid" \
      --tokens "$OUT/tokens.json" --rate "$rate" --duration 6 --grace 5 --warmup 1 \
      --json "$OUT/$proto-$rate.json" > "$OUT/$proto-$rate.txt" 2>&1
    $PY - "$OUT/$proto-$rate.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["result"]
print(f"{r['protocol']:9} offered {s['offered_msgs_per_s']:7.0f} msg/s: delivered {s['delivered_per_s']:9,.0f}/s "
      f"lost {s['lost']} p99 {s['latency_p99_ms']} ms | tool {s['client_cpu_pct']}% of its core, "
      f"{s['client_cpu_us_per_delivery']} us/delivery -> {1e6 / s['client_cpu_us_per_delivery']:,.0f}/s per core | "
      f"server {s.get('server_cpu_pct')}%, others {s.get('other_processes_cpu_pct')}% of 200")
PYEOF
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  trap - EXIT
done
