#!/usr/bin/env bash
# Start one chatsite server for a benchmark, pinned to core 0, on a dedicated database and Redis DB.
#   bench/run_server.sh start LAYER PORT   -> prints the server pid (log in bench/logs/server-PORT.log)
#   bench/run_server.sh stop PID           -> SIGTERM that pid, SIGKILL after 10 s
#   bench/run_server.sh setup ARGS...      -> loadtest.py setup against the same database/secret
# BENCH_SERVER_MODULE=bench/experiments/X.py runs an experiment's entry point instead of chatsite.serve.
# LAYER is core (RedisChannelLayer) or pubsub (RedisPubSubChannelLayer); CHAT_CHANNEL_LAYER in settings.
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
mkdir -p bench/logs bench/tokens

case "${1:-}" in
  start)
    layer="$2"; port="$3"
    case "$REDIS_URL" in redis://127.0.0.1:*|redis://localhost:*) ;; *) echo "loopback Redis only" >&2; exit 2;; esac
    # A clean Redis DB for every server start: no presence or group left from an earlier run.
    $PY - "$REDIS_URL" <<'PYEOF'
import sys, redis
redis.Redis.from_url(sys.argv[1]).flushdb()
PYEOF
    CHAT_CHANNEL_LAYER="$layer" PORT="$port" ALLOWED_ORIGINS="http://127.0.0.1:$port" \
      setsid taskset -c 0 $PY ${BENCH_SERVER_MODULE:--m chatsite.serve} --bind 127.0.0.1 --port "$port" \
      > "${BENCH_LOG:-bench/logs/server-$port.log}" 2>&1 < /dev/null &
    pid=$!
    for _ in $(seq 1 100); do
      if curl -fs "http://127.0.0.1:$port/healthz" > /dev/null 2>&1; then echo "$pid"; exit 0; fi
      if ! kill -0 "$pid" 2>/dev/null; then echo "server died; log:" >&2; tail -20 "${BENCH_LOG:-bench/logs/server-$port.log}" >&2; exit 1; fi
      sleep 0.2
    done
    echo "server did not answer /healthz in 20 s" >&2; kill "$pid"; exit 1
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
  *)
    echo "usage: $0 start LAYER PORT | stop PID | setup ARGS..." >&2; exit 2;;
esac
