#!/usr/bin/env python
"""GET /api/v1/rooms/?joined=1 for a user in 200 rooms holding 100,000 messages (issue 10).

Fills a PostgreSQL database of its own (DATABASE_URL; it must exist and be dedicated to this:
the script migrates it and replaces its chat rows), then times the endpoint through Django's
test client (the whole view: authentication, the one page query, serialisation) and counts its
queries. Run (docs/benchmarks.md "Room list with read state"):

    psql -h 127.0.0.1 -U postgres -c 'create database reads_bench'
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/reads_bench REDIS_URL= DEBUG=1 \\
        .venv/bin/python bench/joined_rooms_bench.py [--rooms 200] [--messages 100000] [--repeat 30]

The history: messages spread over the rooms (a few busy, most quiet: a power law), by the user
and 20 others, 2% deleted; unread notifications in a tenth of the rooms. Each fill (10,000,
then 100,000 messages) is measured twice: with the user's marker anywhere in each room's history
(unread counts from 0 to thousands: the count walks the index entries above the marker, so it
grows with the unread messages), then with at most 20 unread per room (the same unread over 10x
the history: the cost must not grow).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")


def fill(*, rooms: int, messages: int, seed: int = 10) -> tuple[object, list[int]]:
    """Replace the chat rows with the history described above; the user and the room ids."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from rooms.models import Membership, Message, Notification, Room

    rng = random.Random(seed)
    User = get_user_model()
    with transaction.atomic():
        Notification.objects.all().delete()
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {Message._meta.db_table} CASCADE")
        Room.objects.all().delete()
        User.objects.filter(username__startswith="bench_").delete()
        reader = User.objects.create_user(username="bench_reader", password="x-Bench-pass-1")
        others = [User.objects.create_user(username=f"bench_u{n}", password="x-Bench-pass-1") for n in range(20)]
        room_rows = Room.objects.bulk_create(
            [Room(slug=f"bench-{n}", name=f"Bench {n}", owner=others[n % len(others)]) for n in range(rooms)]
        )
        Membership.objects.bulk_create(
            [Membership(room=room, user=reader) for room in room_rows]
            + [Membership(room=room, user=other) for room in room_rows for other in others[:5]]
        )
        # A power law: room i gets a share proportional to 1/(i+1).
        weights = [1 / (index + 1) for index in range(rooms)]
        room_of = rng.choices(room_rows, weights=weights, k=messages)
        now = timezone.now()
        batch: list[Message] = []
        last_by_room: dict[int, int] = {}
        authors = [reader, *others]
        for number, room in enumerate(room_of):
            author = authors[0] if rng.random() < 0.1 else rng.choice(others)
            batch.append(
                Message(
                    room=room,
                    author=author,
                    body=f"message {number}",
                    body_raw=f"message {number}",
                    created=now,
                    deleted=now if rng.random() < 0.02 else None,
                )
            )
            if len(batch) == 5000 or number == messages - 1:
                for stored in Message.objects.bulk_create(batch):
                    last_by_room[stored.room_id] = max(last_by_room.get(stored.room_id, 0), stored.id)
                batch = []
        for room_id, last_id in last_by_room.items():
            Room.objects.filter(pk=room_id).update(last_message_id=last_id)
    return reader, [room.id for room in room_rows]


def place_markers(reader, *, unread_cap: int | None, seed: int = 10) -> None:
    """The reader's marker in each room: anywhere in its history (`unread_cap` None: unread counts
    grow with the history), or at most `unread_cap` messages from its end; unread notifications
    (the room's last three messages above the marker) in a tenth of the rooms."""
    from django.db import connection, transaction

    from rooms.models import Membership, Message, Notification

    rng = random.Random(seed)
    ids_by_room: dict[int, list[int]] = {}
    for room_id, message_id in Message.objects.order_by("id").values_list("room_id", "id"):
        ids_by_room.setdefault(room_id, []).append(message_id)
    with transaction.atomic():
        Notification.objects.filter(user=reader).delete()
        for room_id, ids in ids_by_room.items():
            if unread_cap is None:
                position = int(len(ids) * rng.random()) if rng.random() < 0.8 else len(ids) - 1
            else:
                position = max(0, len(ids) - 1 - rng.randint(0, unread_cap))
            marker = ids[position]
            Membership.objects.filter(room_id=room_id, user=reader).update(last_read_id=marker)
            if rng.random() < 0.1:
                Notification.objects.bulk_create(
                    [
                        Notification(user=reader, kind=Notification.Kind.MENTION, room_id=room_id, message_id=mid)
                        for mid in ids[-3:]
                        if mid > marker
                    ]
                )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # as autovacuum would: index-only scans need the visibility map


def measure(reader, *, repeat: int, limit: int) -> dict[str, float]:
    """Median and p95 wall time (ms) of the first page, its query count, and the pages of all rooms."""
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework_simplejwt.tokens import AccessToken

    client = Client(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(reader)}")
    url = f"/api/v1/rooms/?joined=1&limit={limit}"
    client.get(url)  # warm: connection, caches, plans
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.content
    reset_queries()  # each request resets the log at its start; begin the capture from an empty one
    with CaptureQueriesContext(connection) as queries:
        body = client.get(url).json()
    pages, walked, next_url = 0, 0, url
    started = time.perf_counter()
    while next_url:
        page = client.get(next_url).json()
        pages, walked, next_url = pages + 1, walked + len(page["results"]), page["next"]
    all_pages_ms = (time.perf_counter() - started) * 1000
    # The page query alone, on the database (what grows, if anything, with the history).
    from rooms.selectors import room_list_for_user

    sql, params = room_list_for_user(user=reader, joined_only=True)[:limit].query.sql_with_params()
    db_times = []
    with connection.cursor() as cursor:
        for _ in range(repeat):
            started = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            db_times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "db_median_ms": statistics.median(db_times),
        "median_ms": statistics.median(times),
        "p95_ms": times[int(len(times) * 0.95) - 1],
        "queries": len(queries),
        "page_rooms": len(body["results"]),
        "unread_total": sum(room["unread_count"] for room in body["results"]),
        "pages": pages,
        "rooms_walked": walked,
        "all_pages_ms": all_pages_ms,
    }


def explain(reader, *, limit: int) -> str:
    """EXPLAIN ANALYZE of the page query (PostgreSQL), to see the index-only counts."""
    from django.db import connection

    from rooms.selectors import room_list_for_user

    queryset = room_list_for_user(user=reader, joined_only=True)[:limit]
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--limit", type=int, default=50, help="page size (the API's default is 50, at most 100)")
    parser.add_argument("--explain", action="store_true", help="print the page query's EXPLAIN ANALYZE")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("Run against PostgreSQL: DATABASE_URL=postgres://.../reads_bench (see the docstring).")
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0, interactive=False)
    for messages in (args.messages // 10, args.messages):
        started = time.perf_counter()
        reader, _ = fill(rooms=args.rooms, messages=messages)
        filled = time.perf_counter() - started
        for unread_cap in (None, 20):
            place_markers(reader, unread_cap=unread_cap)
            result = measure(reader, repeat=args.repeat, limit=args.limit)
            markers = "anywhere in the history" if unread_cap is None else f"at most {unread_cap} unread per room"
            print(
                f"rooms={args.rooms} messages={messages} (filled in {filled:.1f} s), markers {markers}; "
                f"page of {result['page_rooms']} rooms (unread on it {result['unread_total']}): "
                f"median {result['median_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms, {result['queries']} queries; "
                f"the page query alone: median {result['db_median_ms']:.1f} ms; all {result['rooms_walked']} rooms "
                f"in {result['pages']} pages: {result['all_pages_ms']:.1f} ms",
                flush=True,
            )
            if args.explain and messages == args.messages and unread_cap is None:
                print(explain(reader, limit=args.limit))


if __name__ == "__main__":
    main()
