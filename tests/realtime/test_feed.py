"""RoomFeed (rooms/realtime/feed.py) against a fake lossy layer: drops, duplicates, reorders.

Unit tests with fakes: the feed is driven by `offer` (the layer) and `tail_check` (the hub's
periodic query), and reads the "database" through the `load_after` it is given.
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from accounts.credentials import Credential
from rooms.realtime import feed as feed_module
from rooms.realtime.feed import FeedMessage, RoomFeed
from rooms.realtime.writer import Frame


@pytest.fixture(autouse=True)
def short_grace(monkeypatch):
    monkeypatch.setattr(feed_module, "GAP_GRACE_SECONDS", 0.001)


class FakeDatabase:
    """The room's committed messages, ids 1..n, each with its prev_id; some deleted."""

    def __init__(self, count: int = 0, deleted: frozenset[int] = frozenset()) -> None:
        self.rows: list[FeedMessage] = []
        self.loads = 0
        self.deleted = deleted
        for _ in range(count):
            self.commit()

    def commit(self) -> FeedMessage:
        message_id = len(self.rows) + 1
        payload = None if message_id in self.deleted else {"id": message_id, "body": f"m{message_id}"}
        row = FeedMessage(id=message_id, prev_id=message_id - 1, payload=payload)
        self.rows.append(row)
        return row

    @property
    def last_id(self) -> int:
        return len(self.rows)

    async def load_after(self, room_id: int, after: int, limit: int) -> list[FeedMessage]:
        self.loads += 1
        return [row for row in self.rows if row.id > after][:limit]


class FakeConnection:
    """Records the message ids it is handed, like a socket that skips ids it already sent."""

    def __init__(self, user_id: int = 1) -> None:
        self.user_id = user_id
        self.username = f"user{user_id}"
        self.conn_id = f"conn{user_id}"
        self.session_key = None
        self.credential = Credential(user_id=user_id, token_epoch=0)
        self.ids: list[int] = []
        self.events: list[str] = []

    def deliver_message(self, room_id: int, message_id: int, frame: Frame) -> None:
        assert json.loads(frame.text)["message"]["id"] == message_id
        self.ids.append(message_id)

    def deliver_event(self, room_id: int, frame: Frame) -> None:
        self.events.append(frame.text)

    def deliver_user_frame(self, frame: Frame) -> None:
        self.events.append(frame.text)

    async def leave_room(self, room_id: int, *, reason: str | None = None) -> None:
        return None

    async def close_with(self, code: int) -> None:
        return None


def make_feed(database: FakeDatabase, *, last_id: int = 0) -> tuple[RoomFeed, FakeConnection]:
    feed = RoomFeed(room_id=7, slug="lobby", load_after=database.load_after)
    connection = FakeConnection()
    feed.connections[connection] = "entry"
    feed.start(last_id)
    return feed, connection


def live_ids(database: FakeDatabase, after: int = 0) -> list[int]:
    return [row.id for row in database.rows if row.id > after and row.payload is not None]


async def test_in_order_events_are_delivered_without_reading_the_database():
    """Events whose prev_id chains on are delivered at once; nothing is read."""
    database = FakeDatabase()
    feed, connection = make_feed(database)
    for _ in range(5):
        feed.offer(database.commit())
    assert connection.ids == [1, 2, 3, 4, 5]
    assert database.loads == 0


async def test_duplicates_are_dropped():
    """A message offered twice (local fast path and the layer's copy) is delivered once."""
    database = FakeDatabase()
    feed, connection = make_feed(database)
    first, second = database.commit(), database.commit()
    for message in (first, first, second, first, second):
        feed.offer(message)
    assert connection.ids == [1, 2]


async def test_reordered_events_are_delivered_in_id_order():
    """An early event waits for its predecessor; both go out in id order."""
    database = FakeDatabase()
    feed, connection = make_feed(database)
    first, second, third = database.commit(), database.commit(), database.commit()
    feed.offer(third)
    feed.offer(second)
    assert connection.ids == []
    feed.offer(first)
    assert connection.ids == [1, 2, 3]


async def test_a_dropped_event_is_filled_from_the_database():
    """The layer lost message 2: when 3 arrives, the gap is read from the database."""
    database = FakeDatabase()
    feed, connection = make_feed(database)
    first, _lost, third = database.commit(), database.commit(), database.commit()
    feed.offer(first)
    feed.offer(third)
    await feed.wait_filled()
    assert connection.ids == [1, 2, 3]
    assert database.loads >= 1


async def test_a_dropped_last_event_is_caught_by_the_tail_check_seen_twice():
    """The layer lost the room's last message: the second tail check that sees it fills it."""
    database = FakeDatabase()
    feed, connection = make_feed(database)
    feed.offer(database.commit())
    database.commit()  # never offered
    feed.tail_check(database.last_id)
    assert feed._fill_task is None  # once may be an event still on its way
    feed.tail_check(database.last_id)
    await feed.wait_filled()
    assert connection.ids == [1, 2]


async def test_deleted_rows_in_a_gap_advance_the_feed_without_a_frame():
    """A gap fill skips rows deleted meanwhile but still continues after them."""
    database = FakeDatabase(deleted=frozenset({2}))
    feed, connection = make_feed(database)
    first, _deleted, _lost, fourth = (database.commit() for _ in range(4))
    feed.offer(first)
    feed.offer(fourth)
    await feed.wait_filled()
    assert connection.ids == [1, 3, 4]
    assert feed.last_id == 4


async def test_events_before_start_are_kept_and_delivered_after_it():
    """Events that arrive while the hub is still subscribing are delivered once it has the last id."""
    database = FakeDatabase(count=3)
    feed = RoomFeed(room_id=7, slug="lobby", load_after=database.load_after)
    connection = FakeConnection()
    feed.connections[connection] = "entry"
    fourth = database.commit()
    feed.offer(fourth)
    feed.offer(database.rows[1])  # an old duplicate
    assert connection.ids == []
    feed.start(3)
    assert connection.ids == [4]


async def test_a_failing_database_is_retried_by_the_next_tail_check():
    """A gap fill that fails (database away) is tried again by the tail check."""
    database = FakeDatabase()
    failing = True

    async def load_after(room_id: int, after: int, limit: int) -> list[FeedMessage]:
        if failing:
            raise OSError("database away")
        return await database.load_after(room_id, after, limit)

    feed = RoomFeed(room_id=7, slug="lobby", load_after=load_after)
    connection = FakeConnection()
    feed.connections[connection] = "entry"
    feed.start(0)
    first, _lost, third = database.commit(), database.commit(), database.commit()
    feed.offer(first)
    feed.offer(third)
    await feed.wait_filled()
    assert connection.ids == [1]
    failing = False
    feed.tail_check(database.last_id)
    feed.tail_check(database.last_id)
    await feed.wait_filled()
    assert connection.ids == [1, 2, 3]


async def test_more_missing_than_one_read_is_filled_in_several_reads(monkeypatch):
    """A gap longer than FILL_BATCH is read in batches until closed."""
    monkeypatch.setattr(feed_module, "FILL_BATCH", 4)
    database = FakeDatabase()
    feed, connection = make_feed(database)
    rows = [database.commit() for _ in range(11)]
    feed.offer(rows[-1])
    await feed.wait_filled()
    assert connection.ids == list(range(1, 12))
    assert database.loads >= 3


@pytest.mark.parametrize("seed", range(8))
async def test_a_lossy_layer_still_gives_every_message_once_in_order(seed):
    """Random drops, duplicates and reordering: every live message exactly once, in id order."""
    rng = random.Random(seed)
    database = FakeDatabase(deleted=frozenset(rng.sample(range(1, 60), 5)))
    feed, connection = make_feed(database)
    in_flight: list[FeedMessage] = []
    for _ in range(60):
        row = database.commit()
        if rng.random() > 0.2:  # 20% dropped
            in_flight.append(row)
        if rng.random() < 0.2:  # 20% duplicated
            in_flight.append(row)
        if rng.random() < 0.3:
            rng.shuffle(in_flight)
        while in_flight and rng.random() < 0.7:
            feed.offer(in_flight.pop(0))
        if rng.random() < 0.2:
            await asyncio.sleep(0)
    for message in in_flight:
        feed.offer(message)
    for _ in range(2):
        await feed.wait_filled()
        feed.tail_check(database.last_id)
    await feed.wait_filled()
    assert connection.ids == live_ids(database)


async def test_broadcast_skips_the_given_user_and_encodes_once():
    """A typing frame goes to everyone in the room but its sender, as one shared Frame."""
    database = FakeDatabase()
    feed = RoomFeed(room_id=7, slug="lobby", load_after=database.load_after)
    sender, reader = FakeConnection(1), FakeConnection(2)
    feed.connections.update({sender: "a", reader: "b"})
    feed.start(0)
    feed.broadcast({"type": "typing", "room": "lobby", "user": "user1"}, skip_user=1)
    assert sender.events == [] and json.loads(reader.events[0])["type"] == "typing"


async def test_a_closed_feed_stops_filling():
    """After the last connection left, the feed neither delivers nor reads."""
    database = FakeDatabase()
    feed, connection = make_feed(database)
    database.commit()
    feed.close()
    feed.offer(database.commit())
    await feed.wait_filled()
    assert connection.ids == [] and database.loads == 0
