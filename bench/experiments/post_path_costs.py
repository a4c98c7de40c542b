#!/usr/bin/env python
"""Experiment: CPU and wall time of each piece of the message write path, in one process, no server.

Same DATABASE_URL / REDIS_URL / SECRET_KEY as the benchmark server (after `loadtest.py setup`):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatsite_bench REDIS_URL=redis://127.0.0.1:6379/5 \\
      SECRET_KEY=bench-secret-key-0123456789-0123456789-abcdef RATE_LIMIT_MESSAGES=1000000/1s \\
      taskset -c 0 .venv/bin/python bench/experiments/post_path_costs.py

Prints, per call: the ORM access query (`selectors.post_access`) and the same SQL run raw; the
token bucket; the sanitiser; the ORM transaction (lock, insert, update) and the same as one raw
statement (checked to keep ids increasing and the prev_id chain intact); `message_post` without
the broadcast. Rows are written to the bench room `bench10x20-0` by `benchuser0`.
"""

from __future__ import annotations

import itertools
import os
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

RAW_POST = """
WITH locked AS (SELECT last_message_id FROM rooms_room WHERE id = %(room)s FOR UPDATE),
     ins AS (INSERT INTO rooms_message (room_id, author_id, body, body_raw, created, client_id, prev_id)
             SELECT %(room)s, %(author)s, %(body)s, %(body)s, now(), %(cid)s, locked.last_message_id FROM locked
             RETURNING id, prev_id, created)
UPDATE rooms_room SET last_message_id = ins.id FROM ins WHERE rooms_room.id = %(room)s
RETURNING ins.id, ins.prev_id, ins.created
"""


def main() -> int:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from rooms import events, ratelimit, selectors, services
    from rooms.models import Message, Room
    from rooms.sanitize import sanitize_body

    user = get_user_model().objects.get(username="benchuser0")
    room = Room.objects.get(slug="bench10x20-0")
    run, n = secrets.token_hex(3), 300

    def timed(name, fn):
        w0, c0 = time.perf_counter(), time.process_time()
        out = [fn(i) for i in range(n)]
        print(
            f"{name:44} wall {1e6 * (time.perf_counter() - w0) / n:7.0f} µs   "
            f"cpu {1e6 * (time.process_time() - c0) / n:7.0f} µs"
        )
        return out

    timed(
        "post_access, ORM (1 query)",
        lambda i: selectors.post_access(user_id=user.id, room_id=room.id, client_id=f"x{run}-{i}"),
    )
    with CaptureQueriesContext(connection) as ctx:
        selectors.post_access(user_id=user.id, room_id=room.id, client_id=f"x{run}")
    sql = ctx.captured_queries[0]["sql"]
    cursor = connection.cursor()
    timed("post_access, same SQL raw", lambda i: (cursor.execute(sql), cursor.fetchall()))
    timed("ratelimit.consume (Redis Lua)", lambda i: ratelimit.consume(user_id=user.id, action="message"))
    timed("sanitize_body", lambda i: sanitize_body(f"t={i} c=abc"))

    def orm_tx(i):
        with transaction.atomic():
            last_id = Room.objects.select_for_update().values_list("last_message_id", flat=True).get(pk=room.pk)
            message = Message.objects.create(
                room=room, author=user, body="b", body_raw="b", client_id=f"y{run}-{i}", prev_id=last_id
            )
            Room.objects.filter(pk=room.pk).update(last_message_id=message.id)

    timed("transaction, ORM (lock, insert, update)", orm_tx)

    def raw_tx(i):
        with transaction.atomic():
            cursor.execute(RAW_POST, {"room": room.id, "author": user.id, "body": f"t={i}", "cid": f"r{run}-{i}"})
            return cursor.fetchone()

    rows = timed("transaction, one raw statement", raw_tx)
    ids = [row[0] for row in rows]
    print(
        "  raw: ids increasing",
        all(b > a for a, b in itertools.pairwise(ids)),
        "| prev_id chain intact",
        all(row[1] == prev for row, prev in zip(rows[1:], ids, strict=False)),
    )
    original = events._send
    events._send = lambda group, event: None
    try:
        timed(
            "message_post without the broadcast",
            lambda i: services.message_post(user=user, room=room, body=f"t={i}", client_id=f"z{run}-{i}"),
        )
    finally:
        events._send = original
    return 0


if __name__ == "__main__":
    sys.exit(main())
