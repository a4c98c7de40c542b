"""One room's live feed on this process: exact, ordered delivery on top of a lossy layer.

Delivery rests on the database, not on the channel layer (which drops, and may reorder or
duplicate): every message carries `prev_id`, the room's previous message id, assigned under the
room's row lock. A feed delivers a message only when its `prev_id` is the last id it delivered.
A message that arrives early is parked; after a short grace the missing ones are read from the
database (`load_after`) and delivered in id order. A dropped *last* message is caught by the tail
check: the hub compares every feed's last id with the room's `last_message_id` periodically, and a
gap seen twice in a row is filled. Duplicates are dropped by id.

The feed knows nothing of Django or the layer: it is driven by `offer` and `tail_check` and reads
the database through the `load_after` callable it was given (tests pass a fake).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from chatsite import metrics
from rooms.protocol import dumps, message_frame
from rooms.realtime.connection import Connection
from rooms.realtime.writer import Frame

logger = logging.getLogger(__name__)

GAP_GRACE_SECONDS = 0.05
FILL_BATCH = 200


@dataclass(frozen=True)
class FeedMessage:
    """A message as a feed orders it; `payload` None for a deleted row (skipped, but counted)."""

    id: int
    prev_id: int
    payload: dict[str, Any] | None
    accepted_at: float | None = None


# (room_id, after, limit) -> up to `limit` messages with id > after, in id order.
LoadAfter = Callable[[int, int, int], Awaitable[list[FeedMessage]]]


class RoomFeed:
    """This process's view of one room: its local connections and the last message id delivered."""

    def __init__(self, *, room_id: int, slug: str, load_after: LoadAfter) -> None:
        self.room_id = room_id
        self.slug = slug
        self._load_after = load_after
        # Each join gets its own presence entry, so a leave still queued for a connection's earlier
        # join of the room can never remove its rejoin.
        self.connections: dict[Connection, str] = {}  # connection -> presence entry id
        self.last_id = 0
        # The room's rules as this process last saw them: the sockets' standing cache. Refreshed by
        # layer events and each heartbeat; the batch statement re-checks them under the room lock.
        self.slow_mode_seconds = 0
        self.muted_user_ids: set[int] = set()
        # Who is online in the room (global, from presence), cached so a join costs no Redis read:
        # loaded at the first join, kept by presence events, re-read every heartbeat.
        self.online: set[str] | None = None
        self.is_ready = False
        self._early: list[FeedMessage] = []  # arrived while subscribing, before last_id was read
        self._pending: dict[int, FeedMessage] = {}  # prev_id -> message, waiting for the gap to close
        self._fill_task: asyncio.Task | None = None
        self._suspect_last_id = 0
        self.is_closed = False

    # ----- driven by the hub --------------------------------------------------------------------

    def start(self, last_id: int) -> None:
        """Subscribed and the room's last id read: deliver from here on."""
        self.last_id = last_id
        self.is_ready = True
        early, self._early = self._early, []
        for message in early:
            self.offer(message)

    def offer(self, message: FeedMessage) -> None:
        """A message from the layer or from this process's own batch, in any order, maybe twice."""
        if self.is_closed:
            return
        if not self.is_ready:
            self._early.append(message)
            return
        if message.id <= self.last_id:
            return  # already delivered (local fast path, gap fill, or a duplicate)
        if message.prev_id != self.last_id:
            self._pending[message.prev_id] = message
            self._start_fill()
            return
        self._deliver(message)
        self._deliver_pending()

    def tail_check(self, db_last_id: int) -> None:
        """The room's last id in the database; a gap seen at two checks in a row is filled."""
        if not self.is_ready or self.is_closed:
            return
        if db_last_id > self.last_id and self._suspect_last_id and self._fill_task is None:
            self._start_fill()
        self._suspect_last_id = db_last_id if db_last_id > self.last_id else 0

    def broadcast(self, frame: dict[str, Any], *, skip_user: int | None = None) -> None:
        """A non-message frame to every local connection of the room (encoded once)."""
        shared = Frame(dumps(frame))
        for connection in list(self.connections):
            if connection.user_id != skip_user:
                connection.deliver_event(self.room_id, shared)

    def close(self) -> None:
        """The last local connection left: stop filling."""
        self.is_closed = True
        if self._fill_task is not None:
            self._fill_task.cancel()

    async def wait_filled(self) -> None:
        """Until no gap fill runs (tests)."""
        while self._fill_task is not None:
            await asyncio.shield(self._fill_task)

    # ----- inside ---------------------------------------------------------------------------------

    def _deliver(self, message: FeedMessage) -> None:
        self.last_id = message.id
        if message.payload is None:
            return
        # One synchronous loop per message, the frame encoded once for all connections.
        frame = Frame(dumps(message_frame(message.payload)))
        for connection in list(self.connections):
            connection.deliver_message(self.room_id, message.id, frame)
        if message.accepted_at:
            metrics.DELIVERY_LATENCY.observe(max(0.0, time.time() - message.accepted_at))

    def _deliver_pending(self) -> None:
        for prev_id in [p for p, m in self._pending.items() if m.id <= self.last_id]:
            del self._pending[prev_id]
        while self.last_id in self._pending:
            self._deliver(self._pending.pop(self.last_id))

    def _start_fill(self) -> None:
        if self._fill_task is None and not self.is_closed:
            self._fill_task = asyncio.create_task(self._fill(), name=f"feed-fill-{self.room_id}")

    async def _fill(self) -> None:
        """Read the missing messages from the database and deliver them in id order."""
        try:
            await self._fill_once()
        except asyncio.CancelledError:
            raise
        except Exception:  # the database is away: the tail check tries again
            logger.warning("filling a gap in room %s failed", self.room_id, exc_info=True)
        finally:
            self._fill_task = None

    async def _fill_once(self) -> None:
        await asyncio.sleep(GAP_GRACE_SECONDS)  # a reordered event may simply still be on its way
        while (self._pending or self._suspect_last_id > self.last_id) and not self.is_closed:
            rows = await self._load_after(self.room_id, self.last_id, FILL_BATCH)
            for row in rows:
                if row.id > self.last_id:
                    self._deliver(row)
            self._deliver_pending()
            if len(rows) < FILL_BATCH:
                self._suspect_last_id = 0
                if self._pending:
                    # The database has not shown the missing rows yet; look again shortly.
                    await asyncio.sleep(GAP_GRACE_SECONDS)
                    continue
                break
