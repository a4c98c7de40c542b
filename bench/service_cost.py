#!/usr/bin/env python
"""CPU and wall cost of the per-message write path, outside any server: where one message's time goes.

Calls rooms.services.message_post N times in this process (same DATABASE_URL / REDIS_URL as the
benchmark server, which must have run `loadtest.py setup`), and reports per call: wall time, CPU
time, number of SQL queries, and the same for the pieces (sanitiser, rate limiter, group_send) timed
alone. Run it pinned: `taskset -c 0 bench/service_cost.py --room bench10x20-0 --user benchuser0`.
With a channel layer the broadcast runs as in the server (async_to_sync from a worker thread).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(fn, n: int) -> tuple[float, float]:
    """(wall µs, CPU µs) per call of fn over n calls."""
    w0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i)
    return 1e6 * (time.perf_counter() - w0) / n, 1e6 * (time.process_time() - c0) / n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--room", default="bench10x20-0")
    p.add_argument("--user", default="benchuser0")
    p.add_argument("-n", type=int, default=300)
    args = p.parse_args(argv)
    n = max(1, min(args.n, 5000))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.contrib.auth import get_user_model
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    from rooms import ratelimit, services
    from rooms.models import Room
    from rooms.sanitize import sanitize_body

    user = get_user_model().objects.get(username=args.user)
    room = Room.objects.get(slug=args.room)
    run = secrets.token_hex(3)
    out = {}

    with CaptureQueriesContext(connection) as ctx:
        services.message_post(user=user, room=room, body="warm up", client_id=f"sc{run}-w")
    out["queries_per_message"] = len(ctx.captured_queries)
    out["queries"] = [q["sql"][:90] for q in ctx.captured_queries]
    reset_queries()

    out["message_post_wall_us"], out["message_post_cpu_us"] = timed(
        lambda i: services.message_post(user=user, room=room, body=f"t={i} c=sc{run}-{i}", client_id=f"sc{run}-{i}"), n)
    out["sanitize_wall_us"], out["sanitize_cpu_us"] = timed(lambda i: sanitize_body(f"t={i} c=sc{run}-{i}"), n)
    out["ratelimit_wall_us"], out["ratelimit_cpu_us"] = timed(
        lambda i: ratelimit.consume(user_id=user.id, action="message"), n)
    layer = get_channel_layer()
    event = {"type": "chat.noop", "room_id": 0, "message": {"id": 1}, "prev_id": 0}
    out["group_send_wall_us"], out["group_send_cpu_us"] = timed(
        lambda i: async_to_sync(layer.group_send)("chat.bench.nobody", event), n)
    out["select1_wall_us"], out["select1_cpu_us"] = timed(lambda i: connection.cursor().execute("SELECT 1"), n)
    for k, v in out.items():
        if isinstance(v, float):
            out[k] = round(v, 1)
    import json

    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
