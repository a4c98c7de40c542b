"""The per-process fan-out: one channel-layer subscription per room per process, not per socket.

Each process (event loop) has one `Hub`. The hub reads one layer channel; for every room that has
local sockets it is in that room's group. An event arrives once per process, its frame is encoded
once, and written to each local socket of the room.

Delivery is exact because it rests on the database, not on the layer (which drops silently):
every message event carries `prev_id`, the room's previous message id, assigned under the room's
row lock. A feed delivers a message only when its `prev_id` is the last id it delivered; a gap
(the layer dropped or reordered something) is filled from the database, and a periodic tail
check catches a dropped last message. Each socket also tracks the last id it was sent, so replay
and live never overlap.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from channels.layers import get_channel_layer
from django.conf import settings

from chatsite import metrics
from rooms import events
from rooms.db import run_in_db_thread
from rooms.fanout import Frame
from rooms.presence import make_presence
from rooms.protocol import (
    dumps,
    message_deleted_frame,
    message_dict,
    message_edited_frame,
    message_frame,
    presence_frame,
    typing_frame,
)

if TYPE_CHECKING:
    from rooms.consumers import ChatConsumer

logger = logging.getLogger(__name__)

TAIL_CHECK_SECONDS = 2.0
GAP_GRACE_SECONDS = 0.05
FILL_BATCH = 200
GROUP_REFRESH_SECONDS = 600


@dataclass
class RoomFeed:
    """This process's view of one room: its local sockets and the last message id delivered."""

    room: Any
    sockets: set = field(default_factory=set)
    last_id: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    early: list = field(default_factory=list)  # events that arrived while subscribing
    pending: dict = field(default_factory=dict)  # prev_id -> event, waiting for the gap to close
    # Each join gets its own presence entry, so a leave still queued for a socket's earlier join
    # of the room can never remove its rejoin.
    presence_conns: dict = field(default_factory=dict)  # socket -> presence entry id
    filling: bool = False
    suspect_last_id: int = 0


@run_in_db_thread
def _room_last_ids(room_ids: list[int]) -> dict[int, int]:
    from rooms.models import Room

    return dict(Room.objects.filter(id__in=room_ids).values_list("id", "last_message_id"))


@run_in_db_thread
def _messages_after(room_id: int, after: int, limit: int) -> list:
    from rooms.selectors import messages_after

    return messages_after(room_id=room_id, after=after, limit=limit)


class Hub:
    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.feeds: dict[int, RoomFeed] = {}
        self.sockets: set[ChatConsumer] = set()
        self.sockets_by_user: dict[int, set[ChatConsumer]] = defaultdict(set)
        self.presence = make_presence()
        self.closing = False
        self.posts_in_flight = 0  # message posts waiting for or in the database (backpressure)
        self._start_lock = asyncio.Lock()
        self._room_locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks: list[asyncio.Task] = []
        self._join_numbers = itertools.count(1)
        self._presence_leaves: asyncio.Queue[tuple[int, str, str]] = asyncio.Queue()

    # ----- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if self.channel is not None:
            return
        async with self._start_lock:
            if self.channel is not None:
                return
            channel = await self.layer.new_channel("chat.hub.")
            await self.layer.group_add(events.SITE_GROUP, channel)
            self.channel = channel
            self._tasks = [
                asyncio.create_task(self._read_loop(), name="hub-reader"),
                asyncio.create_task(self._tail_loop(), name="hub-tail"),
                asyncio.create_task(self._heartbeat_loop(), name="hub-heartbeat"),
                asyncio.create_task(self._presence_leave_loop(), name="hub-presence-leaves"),
            ]

    async def shutdown(self, *, code: int = 4012, timeout: float = 3.0) -> None:
        """Close every socket with `code` (clients reconnect elsewhere and resume), then stop."""
        self.closing = True
        for socket in list(self.sockets):
            await socket.close_with(code)
        deadline = time.monotonic() + timeout
        while (self.sockets or not self._presence_leaves.empty()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()

    # ----- sockets ----------------------------------------------------------------------------

    def add_socket(self, socket: ChatConsumer) -> None:
        self.sockets.add(socket)
        self.sockets_by_user[socket.user_id].add(socket)

    async def remove_socket(self, socket: ChatConsumer) -> None:
        """Forget a closed socket. Everything but the Redis group bookkeeping happens before the
        first await, so a handler cancelled by daphne still leaves no trace in feeds or presence."""
        self.sockets.discard(socket)
        user_sockets = self.sockets_by_user.get(socket.user_id)
        if user_sockets is not None:
            user_sockets.discard(socket)
            if not user_sockets:
                del self.sockets_by_user[socket.user_id]
        emptied = [room_id for room_id in list(socket.subscriptions) if self._detach(socket, room_id)]
        for room_id in emptied:
            await self._discard_empty_feed(room_id)

    async def subscribe(self, socket: ChatConsumer, room) -> RoomFeed:
        """Register the socket (buffering) in the room's feed, subscribing this process if needed."""
        async with self._room_locks[room.id]:
            feed = self.feeds.get(room.id)
            if feed is None:
                feed = self.feeds[room.id] = RoomFeed(room=room)
                try:
                    await self.layer.group_add(events.room_group_name(room.id), self.channel)
                    # Read after subscribing: anything committed later reaches us through the layer.
                    feed.last_id = (await _room_last_ids([room.id])).get(room.id, 0)
                except BaseException:
                    del self.feeds[room.id]
                    raise
                feed.ready.set()
                for event in feed.early:
                    await self._on_message(event)
                feed.early.clear()
            if socket not in feed.sockets:
                feed.sockets.add(socket)
                feed.presence_conns[socket] = f"{socket.conn_id}.{next(self._join_numbers)}"
                metrics.ROOMS_JOINED.inc()
            conn = feed.presence_conns[socket]
        presence_changed = await self.presence.join(room_id=room.id, username=socket.username, conn=conn)
        if presence_changed:
            await self.publish_presence(room_id=room.id, username=socket.username, online=True)
        return feed

    async def unsubscribe(self, socket: ChatConsumer, room_id: int) -> None:
        if self._detach(socket, room_id):
            await self._discard_empty_feed(room_id)

    def _detach(self, socket: ChatConsumer, room_id: int) -> bool:
        """Take the socket out of the room's feed at once; True if the feed is now empty."""
        socket.subscriptions.pop(room_id, None)
        feed = self.feeds.get(room_id)
        if feed is None or socket not in feed.sockets:
            return False
        feed.sockets.discard(socket)
        conn = feed.presence_conns.pop(socket, socket.conn_id)
        metrics.ROOMS_JOINED.dec()
        # Presence is forgotten in batches by one task: a mass disconnect costs a few pipelined
        # round trips, and a consumer's disconnect never waits on Redis.
        self._presence_leaves.put_nowait((room_id, socket.username, conn))
        return not feed.sockets

    async def _discard_empty_feed(self, room_id: int) -> None:
        async with self._room_locks[room_id]:
            feed = self.feeds.get(room_id)
            if feed is not None and not feed.sockets:
                del self.feeds[room_id]
                try:
                    await self.layer.group_discard(events.room_group_name(room_id), self.channel)
                except Exception:
                    logger.warning("group_discard failed for room %s", room_id, exc_info=True)

    async def online(self, room_id: int) -> list[str]:
        return await self.presence.online(room_id=room_id)

    # ----- publishing ephemeral events ------------------------------------------------------

    async def publish_presence(self, *, room_id: int, username: str, online: bool) -> None:
        await events.send_async(
            events.room_group_name(room_id),
            {"type": "chat.presence", "room_id": room_id, "username": username, "online": online},
        )

    async def publish_typing(self, *, room_id: int, user_id: int, username: str) -> None:
        await events.send_async(
            events.room_group_name(room_id),
            {"type": "chat.typing", "room_id": room_id, "user_id": user_id, "username": username},
        )

    async def accept_local(self, event: dict[str, Any]) -> None:
        """A message accepted by this process: deliver now, the layer's copy will be a duplicate."""
        await self._on_message(event)

    # ----- inbound layer events ---------------------------------------------------------------

    async def _read_loop(self) -> None:
        while True:
            try:
                event = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("channel layer receive failed; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            metrics.LAYER_MESSAGES.labels(direction="receive").inc()
            handler = self._handlers.get(event.get("type"))
            if handler is None:
                logger.warning("hub got an event of unknown type %r", event.get("type"))
                continue
            try:
                await handler(self, event)
            except Exception:
                logger.exception("hub failed to handle %s", event.get("type"))

    async def _on_message(self, event: dict[str, Any]) -> None:
        feed = self.feeds.get(event["room_id"])
        if feed is None:
            return
        if not feed.ready.is_set():
            feed.early.append(event)
            return
        message_id = event["message"]["id"]
        if message_id <= feed.last_id:
            return  # already delivered (local fast path, gap fill, or a duplicate)
        if event["prev_id"] != feed.last_id:
            feed.pending[event["prev_id"]] = event
            if not feed.filling:
                asyncio.create_task(self._fill_gap(feed))
            return
        await self._deliver_message(feed, event)
        while feed.last_id in feed.pending:
            await self._deliver_message(feed, feed.pending.pop(feed.last_id))

    async def _deliver_message(self, feed: RoomFeed, event: dict[str, Any]) -> None:
        message_id = event["message"]["id"]
        feed.last_id = message_id
        frame = Frame(dumps(message_frame(event["message"])))
        for socket in list(feed.sockets):
            await socket.offer_message(feed.room.id, message_id, frame)
        accepted_at = event.get("accepted_at")
        if accepted_at:
            metrics.DELIVERY_LATENCY.observe(max(0.0, time.time() - accepted_at))

    async def _fill_gap(self, feed: RoomFeed) -> None:
        """Read the missing messages from the database and deliver them in id order."""
        feed.filling = True
        try:
            await self._fill_gap_once(feed)
        except Exception:  # the database is away: the tail check tries again
            logger.warning("filling a gap in room %s failed", feed.room.id, exc_info=True)
        finally:
            feed.filling = False

    async def _fill_gap_once(self, feed: RoomFeed) -> None:
        await asyncio.sleep(GAP_GRACE_SECONDS)  # a reordered event may simply still be on its way
        while feed.pending or feed.suspect_last_id > feed.last_id:
            if self.feeds.get(feed.room.id) is not feed:
                return
            rows = await _messages_after(feed.room.id, feed.last_id, FILL_BATCH)
            for row in rows:
                if row.id <= feed.last_id:
                    continue
                if row.deleted is not None:
                    feed.last_id = row.id
                    continue
                await self._deliver_message(
                    feed, {"message": message_dict(row), "prev_id": feed.last_id, "accepted_at": None}
                )
            for prev_id in [p for p, e in feed.pending.items() if e["message"]["id"] <= feed.last_id]:
                del feed.pending[prev_id]
            while feed.last_id in feed.pending:
                await self._deliver_message(feed, feed.pending.pop(feed.last_id))
            if len(rows) < FILL_BATCH:
                feed.suspect_last_id = 0
                if feed.pending:
                    # The database has not shown the missing rows yet; look again shortly.
                    await asyncio.sleep(GAP_GRACE_SECONDS)
                    continue
                break

    async def _room_broadcast(self, room_id: int, frame: dict[str, Any], *, skip_user: int | None = None) -> None:
        feed = self.feeds.get(room_id)
        if feed is None:
            return
        shared = Frame(dumps(frame))
        for socket in list(feed.sockets):
            if socket.user_id != skip_user:
                await socket.offer_event(room_id, shared)

    async def _on_message_edited(self, event: dict[str, Any]) -> None:
        await self._room_broadcast(event["room_id"], message_edited_frame(event["message"]))

    async def _on_message_deleted(self, event: dict[str, Any]) -> None:
        await self._room_broadcast(event["room_id"], message_deleted_frame(room=event["slug"], message_id=event["id"]))

    async def _on_typing(self, event: dict[str, Any]) -> None:
        feed = self.feeds.get(event["room_id"])
        if feed is not None:
            frame = typing_frame(room=feed.room.slug, user=event["username"])
            await self._room_broadcast(event["room_id"], frame, skip_user=event["user_id"])

    async def _on_presence(self, event: dict[str, Any]) -> None:
        feed = self.feeds.get(event["room_id"])
        if feed is not None:
            frame = presence_frame(room=feed.room.slug, user=event["username"], online=event["online"])
            await self._room_broadcast(event["room_id"], frame)

    async def _kick(self, event: dict[str, Any], reason: str) -> None:
        feed = self.feeds.get(event["room_id"])
        if feed is None:
            return
        for socket in [s for s in feed.sockets if s.user_id == event["user_id"]]:
            await socket.leave_room(event["room_id"], reason=reason)

    async def _on_room_ban(self, event: dict[str, Any]) -> None:
        await self._kick(event, "banned")

    async def _on_room_removed(self, event: dict[str, Any]) -> None:
        await self._kick(event, "removed")

    async def _on_room_updated(self, event: dict[str, Any]) -> None:
        feed = self.feeds.get(event["room_id"])
        if feed is not None:
            feed.room.slow_mode_seconds = event["slow_mode_seconds"]

    async def _on_site_ban(self, event: dict[str, Any]) -> None:
        for socket in list(self.sockets_by_user.get(event["user_id"], ())):
            await socket.close_with(4003)

    _handlers = {
        "chat.message": _on_message,
        "chat.message_edited": _on_message_edited,
        "chat.message_deleted": _on_message_deleted,
        "chat.typing": _on_typing,
        "chat.presence": _on_presence,
        "chat.room_ban": _on_room_ban,
        "chat.room_removed": _on_room_removed,
        "chat.room_updated": _on_room_updated,
        "chat.site_ban": _on_site_ban,
    }

    # ----- periodic work ----------------------------------------------------------------------

    async def _tail_loop(self) -> None:
        """Catch a dropped *last* message: the database says there is more than we delivered."""
        while True:
            await asyncio.sleep(TAIL_CHECK_SECONDS)
            try:
                feeds = {room_id: feed for room_id, feed in self.feeds.items() if feed.ready.is_set()}
                if not feeds:
                    continue
                for room_id, last_id in (await _room_last_ids(list(feeds))).items():
                    feed = feeds[room_id]
                    # Only a gap seen twice in a row is real; once may be an event still in flight.
                    if last_id > feed.last_id and feed.suspect_last_id and not feed.filling:
                        asyncio.create_task(self._fill_gap(feed))
                    feed.suspect_last_id = last_id if last_id > feed.last_id else 0
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("tail check failed", exc_info=True)

    async def _presence_leave_loop(self) -> None:
        while True:
            batch = [await self._presence_leaves.get()]
            while not self._presence_leaves.empty() and len(batch) < 1000:
                batch.append(self._presence_leaves.get_nowait())
            try:
                went_offline = await self.presence.leave_many(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis away: the entries expire and `reap` announces them later
                logger.warning("presence leave of %d sockets failed", len(batch), exc_info=True)
                continue
            for (room_id, username, _conn), offline in zip(batch, went_offline, strict=False):
                if offline:
                    await self.publish_presence(room_id=room_id, username=username, online=False)

    async def _heartbeat_loop(self) -> None:
        """Keep this process's presence alive, announce crashed processes' users, refresh groups."""
        last_group_refresh = time.monotonic()
        while True:
            await asyncio.sleep(settings.CHAT_HEARTBEAT_SECONDS)
            try:
                entries = [
                    (room_id, socket.username, conn)
                    for room_id, feed in self.feeds.items()
                    for socket, conn in list(feed.presence_conns.items())
                ]
                await self.presence.refresh(entries)
                for room_id in list(self.feeds):
                    for username in await self.presence.reap(room_id=room_id):
                        await self.publish_presence(room_id=room_id, username=username, online=False)
                if time.monotonic() - last_group_refresh > GROUP_REFRESH_SECONDS:
                    last_group_refresh = time.monotonic()
                    await self.layer.group_add(events.SITE_GROUP, self.channel)
                    for room_id in list(self.feeds):
                        await self.layer.group_add(events.room_group_name(room_id), self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("hub heartbeat failed", exc_info=True)


_hubs: dict[int, Hub] = {}


def get_hub() -> Hub:
    """The hub of the running event loop (one per process under daphne; one per test loop)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(id(loop))
    if hub is None or hub._loop is not loop:
        hub = Hub()
        hub._loop = loop
        _hubs[id(loop)] = hub
    return hub


def running_hubs() -> list[Hub]:
    return list(_hubs.values())
