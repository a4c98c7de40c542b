#!/usr/bin/env bash
# Start one benchmark server pinned to core 0, on a dedicated database and Redis DB; print its pid.
#   bench/run_server.sh start LAYER PORT          chatsite (`python -m chatsite.serve`), LAYER core|pubsub
#   bench/run_server.sh start-socketio MODE PORT  the Socket.IO 4.8 peer (`node bench/socketio/server.js`),
#                                                 MODE none (in memory) | batch (group commit) | each
#   bench/run_server.sh stop PID                  SIGTERM that pid, SIGKILL after 10 s
#   bench/run_server.sh setup ARGS...             loadtest.py setup against the same database/secret
#   bench/run_server.sh migrate                   manage.py migrate on the benchmark database
# Logs: bench/out/logs/server-PORT.log (or $BENCH_LOG). Environment (defaults in brackets):
#   BENCH_DATABASE_URL [postgres://postgres@127.0.0.1:5432/chatsite_bench]
#   BENCH_REDIS_URL    [redis://127.0.0.1:6379/5]   flushed at every chatsite start
#   BENCH_SECRET_KEY   signs the tokens setup mints; the Socket.IO peer verifies them with it
#   BENCH_SERVER_CMD   a command line to run instead of `python -m chatsite.serve` (e.g. to measure
#                      daphne or uvicorn directly); --bind 127.0.0.1 --port PORT are appended
#   BENCH_SERVER_MODULE a Python file to run instead of -m chatsite.serve (older name, kept)
#   BENCH_CPU          the core the server is pinned to [0]
#   BENCH_NICE         the server's niceness [-10], also of its session's autogroup: on a shared
#                      machine it keeps other work from taking its core (without the privilege,
#                      nice says so and runs it at 0)
# The message rate limit is lifted (RATE_LIMIT_MESSAGES) so the benchmark measures fan-out, not the
# limiter; the limiter itself still runs (one Redis call per message).
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/chatsite_bench}"
export REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379/5}"
export SECRET_KEY="${BENCH_SECRET_KEY:-bench-secret-key-0123456789-0123456789-abcdef}"
export DEBUG=0
export RATE_LIMIT_MESSAGES="${BENCH_RATE_LIMIT:-1000000/1s}"
PY=.venv/bin/python
CPU=${BENCH_CPU:-0}
NICE=${BENCH_NICE:--10}
mkdir -p bench/out/logs bench/out/tokens

# Linux groups the processes of each session (setsid) into an "autogroup" and shares the CPU
# between autogroups first, so a niceness counts only against the group's own processes: give
# the server's group the niceness too, so it counts against the other sessions on the machine.
prioritise() {  # pid (once it runs: before its setsid the autogroup would still be ours)
  echo "$NICE" > "/proc/$1/autogroup" 2>/dev/null || true
}

wait_healthy() {  # pid port log
  for _ in $(seq 1 100); do
    if curl -fs "http://127.0.0.1:$2/healthz" > /dev/null 2>&1; then echo "$1"; return 0; fi
    if ! kill -0 "$1" 2>/dev/null; then echo "server died; log:" >&2; tail -20 "$3" >&2; return 1; fi
    sleep 0.2
  done
  echo "server did not answer /healthz in 20 s" >&2; kill "$1"; return 1
}

case "${1:-}" in
  start)
    layer="$2"; port="$3"; log="${BENCH_LOG:-bench/out/logs/server-$port.log}"
    case "$REDIS_URL" in redis://127.0.0.1:*|redis://localhost:*) ;; *) echo "loopback Redis only" >&2; exit 2;; esac
    # A clean Redis DB for every server start: no presence or group left from an earlier run.
    $PY - "$REDIS_URL" <<'PYEOF'
import sys, redis
redis.Redis.from_url(sys.argv[1]).flushdb()
PYEOF
    # shellcheck disable=SC2086
    CHAT_CHANNEL_LAYER="$layer" PORT="$port" ALLOWED_ORIGINS="http://127.0.0.1:$port" \
      setsid nice -n "$NICE" taskset -c "$CPU" ${BENCH_SERVER_CMD:-$PY ${BENCH_SERVER_MODULE:--m chatsite.serve}} --bind 127.0.0.1 --port "$port" \
      > "$log" 2>&1 < /dev/null &
    wait_healthy $! "$port" "$log" && prioritise $!
    ;;
  start-socketio)
    mode="$2"; port="$3"; log="${BENCH_LOG:-bench/out/logs/socketio-$port.log}"
    [ -d bench/socketio/node_modules ] || (cd bench/socketio && npm ci --no-audit --no-fund > /dev/null)
    SECRET_KEY="$SECRET_KEY" setsid nice -n "$NICE" taskset -c "$CPU" node bench/socketio/server.js --port "$port" \
      --persist "$mode" --database-url "$DATABASE_URL" > "$log" 2>&1 < /dev/null &
    wait_healthy $! "$port" "$log" && prioritise $!
    ;;
  stop)
    pid="$2"
    kill -TERM "$pid" 2>/dev/null || exit 0
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    ;;
  setup)
    shift
    $PY bench/loadtest.py setup "$@"
    ;;
  migrate)
    $PY manage.py migrate --noinput -v0
    ;;
  *)
    echo "usage: $0 start LAYER PORT | start-socketio none|batch|each PORT | stop PID | setup ARGS... | migrate" >&2; exit 2;;
esac
