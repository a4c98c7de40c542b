#!/usr/bin/env bash
# Every scenario of issue 9 against chatsite and the Socket.IO 4.8 peer in the same run: each
# server pinned to core 0 (fresh for every scenario), the load tool on core 1, PostgreSQL and Redis
# real. Scenarios run in turn for every target, so each scenario sees every server under similar
# machine load. Raw results go to bench/out/<UTC time>/ (gitignored); at the end summarize.py
# prints the comparison table.
#   bench/run_all.sh                         all targets, all scenarios
#   bench/run_all.sh chatsite socketio-pg    some targets
#   SCENARIOS="capacity big" bench/run_all.sh
# Targets: chatsite (python -m chatsite.serve, layer $BENCH_LAYER [pubsub]), socketio (the peer, in
# memory), socketio-pg (the peer, every message persisted to PostgreSQL by group commit),
# socketio-pg-each (one INSERT per message; not in the default set).
# Scenarios (docs/benchmarks.md, Method):
#   capacity  10 rooms x 20, one sender per room, ramp x1.5 per 8-s step, then 2 bisecting steps;
#             passes while p99 <= 200 ms and nothing is lost, unanswered, doubled or reordered
#   big       one room of 500 at 20 msg/s for 30 s
#   idle      10,000 sockets (100 rooms x 100) joined, held, all closed at once; Redis checked after
#   overload  10 rooms x 20 for 10 s at OVERLOAD_FACTOR [1.5] x the rate that, at the CPU cost per
#             message of the highest passing capacity step of this run, takes the server's whole core
#             (or OVERLOAD_RATE)
#   solo      200 rooms of one member at SOLO_RATE [50] msg/s for 20 s: the cost of a message
#             with a single delivery (its sender's acknowledgement)
# Environment: BENCH_PORT [18100] (each target uses BENCH_PORT + its index), BENCH_OUT, BENCH_REDIS_URL,
# BENCH_DATABASE_URL, BENCH_SERVER_CMD (see run_server.sh), CAP_START_RATE_<target> (chatsite 20,
# socketio* 1000), BENCH_QUIET_PCT [40] and BENCH_QUIET_WAIT [120] for the quiet-machine wait,
# LOAD_CPU [1] the core of the load tool, BENCH_NICE [-10] the niceness of server and tool.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# server and tool at the same raised priority (BENCH_NICE, run_server.sh): the machine is shared
LT="nice -n ${BENCH_NICE:--10} taskset -c ${LOAD_CPU:-1} $PY bench/loadtest.py"
BASE_PORT=${BENCH_PORT:-18100}
SCENARIOS=${SCENARIOS:-"capacity big idle overload solo"}
REDIS=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/5}
LAYER=${BENCH_LAYER:-pubsub}
OUT=${BENCH_OUT:-bench/out/$(date -u +%Y%m%dT%H%M%SZ)}
TOK=bench/out/tokens
mkdir -p "$OUT" "$TOK" bench/out/logs
# the tool runs in this shell's session: its autogroup gets the niceness too (see run_server.sh)
echo "${BENCH_NICE:--10}" > "/proc/$$/autogroup" 2>/dev/null || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(chatsite socketio socketio-pg)

bench/run_server.sh migrate
$PY -c "import uvloop" 2>/dev/null || $PY -m pip install --quiet -r bench/requirements.txt
[ -d bench/socketio/node_modules ] || (cd bench/socketio && npm ci --no-audit --no-fund > /dev/null)
[ -f $TOK/cap.json ] || bench/run_server.sh setup --users 200 --rooms 10 --room-prefix bench10x20 --out $TOK/cap.json
[ -f $TOK/big.json ] || bench/run_server.sh setup --users 500 --rooms 1 --room-prefix bench1x500 --out $TOK/big.json
[ -f $TOK/idle.json ] || bench/run_server.sh setup --users 10000 --rooms 100 --room-prefix benchidle --out $TOK/idle.json
[ -f $TOK/solo.json ] || bench/run_server.sh setup --users 200 --rooms 200 --room-prefix benchsolo --user-prefix benchsolo --out $TOK/solo.json

# The machine is shared: wait (bounded) until the other processes leave most of both cores idle.
wait_quiet() {
  local limit=${BENCH_QUIET_WAIT:-120} waited=0 busy
  while :; do
    read -r _ u n s i w q sq st _ < /proc/stat; b0=$((u+n+s+q+sq+st)); t0=$((b0+i+w)); sleep 2
    read -r _ u n s i w q sq st _ < /proc/stat; b1=$((u+n+s+q+sq+st)); t1=$((b1+i+w))
    busy=$(( 200 * (b1-b0) / (t1-t0) ))
    if [ "$busy" -le "${BENCH_QUIET_PCT:-40}" ] || [ "$waited" -ge "$limit" ]; then
      QUIET_NOTE="busy=${busy}%/200% waited=${waited}s"; echo "machine $QUIET_NOTE before the run"; return 0; fi
    sleep 3; waited=$((waited+5))
  done
}

start_target() {  # target port -> pid
  case $1 in
    chatsite) BENCH_LOG="$OUT/server-$1-$scenario.log" bench/run_server.sh start "$LAYER" "$2" ;;
    socketio) BENCH_LOG="$OUT/server-$1-$scenario.log" bench/run_server.sh start-socketio none "$2" ;;
    socketio-pg) BENCH_LOG="$OUT/server-$1-$scenario.log" bench/run_server.sh start-socketio batch "$2" ;;
    socketio-pg-each) BENCH_LOG="$OUT/server-$1-$scenario.log" bench/run_server.sh start-socketio each "$2" ;;
    *) echo "unknown target $1" >&2; return 2 ;;
  esac
}

# the server's code: the last commit that changed it (HEAD may only have changed bench/)
commit=$(git log -1 --format=%h -- rooms accounts chatsite requirements.txt)
dirty=$(git status --porcelain -- rooms accounts chatsite | awk '{print $2}' | tr '\n' ',')
echo "raw results in $OUT (server commit $commit${dirty:+, uncommitted: $dirty})"
for scenario in $SCENARIOS; do
  for idx in "${!targets[@]}"; do
    target=${targets[$idx]}; port=$((BASE_PORT + idx)); out="$OUT/$target-$scenario"
    case $target in chatsite) proto=chatsite ;; *) proto=socketio ;; esac
    wait_quiet
    pid=$(start_target "$target" "$port")
    trap 'bench/run_server.sh stop $pid' EXIT
    META=(--meta "target=$target" --meta "scenario=$scenario" --meta "server_commit=$commit"
          --meta "server_uncommitted=$dirty" --meta "layer=$LAYER" --meta "before_run=$QUIET_NOTE"
          --meta "server_cmd=${BENCH_SERVER_CMD:-}" --meta "nice=$(ps -o ni= -p "$pid" | tr -d ' ')")
    COMMON=(--protocol "$proto" --port "$port" --server-pid "$pid" "${META[@]}" --json "$out.json")
    echo "### $target $scenario (server pid $pid, loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
    start_var="CAP_START_RATE_${target//-/_}"
    case $target in chatsite) default_start=20 ;; *) default_start=1000 ;; esac
    case $scenario in
      capacity)
        $LT capacity "${COMMON[@]}" --tokens $TOK/cap.json --rate "${!start_var:-$default_start}" --factor 1.5 \
          --duration 8 --grace 5 --refine 2 --max-seconds 400 --idle-baseline 3 --warmup 3 > "$out.txt" 2>&1 ;;
      big)
        $LT run "${COMMON[@]}" --tokens $TOK/big.json --rate 20 --duration 30 --grace 10 --idle-baseline 5 --warmup 5 \
          > "$out.txt" 2>&1 ;;
      idle)
        redis_args=(); [ "$target" = chatsite ] && redis_args=(--redis-url "$REDIS" --recheck-after 35)
        $LT idle "${COMMON[@]}" --tokens $TOK/idle.json --connect-concurrency "${IDLE_CONCURRENCY:-200}" \
          --connect-timeout 30 --settle 2 --hold 5 --after-close 10 "${redis_args[@]}" > "$out.txt" 2>&1 ;;
      overload)
        rate=$($PY - "$OUT/$target-capacity.json" "${OVERLOAD_FACTOR:-1.5}" "${OVERLOAD_RATE:-}" <<'PYEOF'
import json, sys
path, factor, fixed = sys.argv[1], float(sys.argv[2]), sys.argv[3]
# Beyond what the server's core can do at all: FACTOR x the rate at which the CPU cost per message
# of its highest passing capacity step would take the whole core (a passing rate alone may be low
# because the machine was busy, and then twice it is not beyond capacity).
rate = None
if fixed:
    rate = float(fixed)
else:
    try:
        steps = [s for s in json.load(open(path))["steps"] if s["passed"]]
        best = max(steps, key=lambda s: s["offered_msgs_per_s"])
        rate = factor * max(1e6 / best["server_cpu_us_per_accepted_msg"], best["offered_msgs_per_s"])
    except (OSError, KeyError, ValueError, ZeroDivisionError):
        pass
print(round(rate or 200.0, 1))
PYEOF
)
        $LT run "${COMMON[@]}" --tokens $TOK/cap.json --rate "$rate" --duration 10 --grace 15 \
          --meta "overload_rate=$rate" > "$out.txt" 2>&1 ;;
      solo)
        $LT run "${COMMON[@]}" --tokens $TOK/solo.json --rate "${SOLO_RATE:-50}" --duration 20 --grace 5 --warmup 5 \
          --idle-baseline 5 > "$out.txt" 2>&1 ;;
      *) echo "unknown scenario $scenario" >&2 ;;
    esac || echo "!!! $target $scenario: the load tool failed, see $out.txt"
    grep -E "step |last_passing|connected  |failed_hand|connect_all|kib_per|latency_p|^  lost |left behind|still open" "$out.txt" | head -20 || true
    bench/run_server.sh stop "$pid"
    trap - EXIT
    sleep 2
  done
done
$PY bench/summarize.py "$OUT" | tee "$OUT/summary.md"
