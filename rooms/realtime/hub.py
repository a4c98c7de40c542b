"""The process's hub: connection lifecycle and layer-event dispatch, one per event loop.

The hub reads one channel-layer channel for the whole process; for every room that has local
connections it is in that room's group (one subscription per room per process, not per socket),
and it is in `events.SITE_GROUP` for per-user events. Each room's ordering and gap filling is
its `RoomFeed` (rooms/realtime/feed.py); each event type has one small handler here. Connections
are anything that implements rooms/realtime/connection.py: the hub never reaches into them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from accounts.credentials import Credential, credentials_ended
from chatsite import metrics
from chatsite.loops import per_loop
from rooms.presence import make_presence
from rooms.protocol import (
    CLOSE_SHUTTING_DOWN,
    CLOSE_UNAUTHENTICATED,
    dumps,
    message_deleted_frame,
    message_dict,
    message_edited_frame,
    presence_frame,
    typing_frame,
)
from rooms.realtime import events
from rooms.realtime.batcher import Batcher
from rooms.realtime.connection import Connection
from rooms.realtime.db import run_in_db_thread
from rooms.realtime.feed import FeedMessage, RoomFeed
from rooms.realtime.writer import Frame

logger = logging.getLogger(__name__)

TAIL_CHECK_SECONDS = 2.0
GROUP_REFRESH_SECONDS = 600


@run_in_db_thread
def _room_last_ids(room_ids: list[int]) -> dict[int, int]:
    from rooms.models import Room

    return {
        room_id: last_id or 0
        for room_id, last_id in Room.objects.filter(id__in=room_ids).values_list("id", "last_message_id")
    }


@dataclass
class RoomRules:
    """What a room's standing cache holds, read from the database."""

    last_id: int = 0
    slow_mode_seconds: int = 0
    muted_user_ids: set[int] = field(default_factory=set)
    banned_user_ids: set[int] = field(default_factory=set)


@run_in_db_thread
def _room_rules(room_ids: list[int]) -> dict[int, RoomRules]:
    """Last id, slow mode, active mutes and bans of the rooms: three small queries for them all."""
    from rooms.models import Room, RoomBan, RoomMute

    rules = {
        room_id: RoomRules(last_id=last_id or 0, slow_mode_seconds=slow_mode or 0)
        for room_id, last_id, slow_mode in Room.objects.filter(id__in=room_ids).values_list(
            "id", "last_message_id", "slow_mode_seconds"
        )
    }
    for room_id, user_id in RoomMute.objects.active().filter(room_id__in=room_ids).values_list("room_id", "user_id"):
        rules[room_id].muted_user_ids.add(user_id)
    for room_id, user_id in RoomBan.objects.active().filter(room_id__in=room_ids).values_list("room_id", "user_id"):
        rules[room_id].banned_user_ids.add(user_id)
    return rules


@run_in_db_thread
def _credentials_ended(credentials: set[Credential]) -> dict[Credential, int]:
    """Which of the local connections' credentials ended, with the close code (two queries)."""
    return credentials_ended(credentials)


@run_in_db_thread
def _messages_after(room_id: int, after: int, limit: int) -> list[FeedMessage]:
    from rooms.selectors import messages_after

    return [
        FeedMessage(id=row.id, prev_id=row.prev_id or 0, payload=None if row.deleted is not None else message_dict(row))
        for row in messages_after(room_id=room_id, after=after, limit=limit)
    ]


def feed_messages(event: events.MessagesCreated) -> list[FeedMessage]:
    return [
        FeedMessage(id=message["id"], prev_id=prev_id or 0, payload=message, accepted_at=event.accepted_at)
        for message, prev_id in zip(event.messages, event.prev_ids, strict=True)
    ]


class Hub:
    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.feeds: dict[int, RoomFeed] = {}
        self.connections: set[Connection] = set()
        self.connections_by_user: dict[int, set[Connection]] = defaultdict(set)
        self._rooms_of: dict[Connection, set[int]] = {}  # the hub's own record of who is where
        self.presence = make_presence()
        self.is_closing = False
        self._start_lock = asyncio.Lock()
        self._room_locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks: list[asyncio.Task] = []
        self._join_numbers = itertools.count(1)
        self._presence_leaves: asyncio.Queue[tuple[int, str, str]] = asyncio.Queue()
        self.batcher = Batcher(deliver_local=self.offer_local, origin=lambda: self.channel)
        self._leaves_in_flight = False  # a batch taken from the queue is not announced yet

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

    async def shutdown(self, *, code: int = CLOSE_SHUTTING_DOWN, timeout: float = 3.0) -> None:
        """Close every connection with `code` (clients reconnect elsewhere and resume), forget
        them, announce who went offline, then stop.

        The hub forgets the connections itself: at a server's shutdown daphne cancels the
        consumers before their disconnect runs (rooms/realtime/writer.py)."""
        self.is_closing = True
        connections = list(self.connections)
        for connection in connections:
            await connection.close_with(code)
        for connection in connections:
            await self.remove(connection)
        deadline = time.monotonic() + timeout
        while (not self._presence_leaves.empty() or self._leaves_in_flight) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for task in self._tasks:
            task.cancel()

    # ----- connections ----------------------------------------------------------------------------

    def add(self, connection: Connection) -> None:
        self.connections.add(connection)
        self.connections_by_user[connection.user_id].add(connection)
        self._rooms_of[connection] = set()

    async def remove(self, connection: Connection) -> None:
        """Forget a closed connection. Everything but the Redis group bookkeeping happens before the
        first await, so a handler cancelled by daphne still leaves no trace in feeds or presence."""
        self.connections.discard(connection)
        user_connections = self.connections_by_user.get(connection.user_id)
        if user_connections is not None:
            user_connections.discard(connection)
            if not user_connections:
                del self.connections_by_user[connection.user_id]
        room_ids = self._rooms_of.pop(connection, set())
        emptied = [room_id for room_id in room_ids if self._detach(connection, room_id)]
        for room_id in emptied:
            await self._discard_empty_feed(room_id)

    async def subscribe(self, connection: Connection, *, room_id: int, slug: str) -> None:
        """Register the connection in the room's feed, subscribing this process if needed.

        The connection must already buffer the room's frames (it replays before it goes live).
        On any failure nothing is left behind: not the feed entry, not the presence entry."""
        async with self._room_locks[room_id]:
            feed = self.feeds.get(room_id)
            if feed is None:
                feed = self.feeds[room_id] = RoomFeed(room_id=room_id, slug=slug, load_after=_messages_after)
                try:
                    await self.layer.group_add(events.room_group_name(room_id), self.channel)
                    # Read after subscribing: anything committed later reaches us through the layer.
                    rules = (await _room_rules([room_id])).get(room_id, RoomRules())
                except BaseException:
                    del self.feeds[room_id]
                    feed.close()
                    raise
                feed.slow_mode_seconds, feed.muted_user_ids = rules.slow_mode_seconds, rules.muted_user_ids
                feed.start(rules.last_id)
            if connection not in feed.connections:
                feed.connections[connection] = f"{connection.conn_id}.{next(self._join_numbers)}"
                self._rooms_of.setdefault(connection, set()).add(room_id)
                metrics.ROOMS_JOINED.inc()
            entry = feed.connections[connection]
        try:
            presence_changed = await self.presence.join(room_id=room_id, username=connection.username, conn=entry)
        except BaseException:
            await self.unsubscribe(connection, room_id)
            raise
        cached = self.feeds.get(room_id)
        if cached is not None and cached.online is not None:
            cached.online.add(connection.username)
        if presence_changed:
            await self.publish_presence(room_id=room_id, username=connection.username, online=True)

    async def unsubscribe(self, connection: Connection, room_id: int) -> None:
        self._rooms_of.get(connection, set()).discard(room_id)
        if self._detach(connection, room_id):
            await self._discard_empty_feed(room_id)

    def _detach(self, connection: Connection, room_id: int) -> bool:
        """Take the connection out of the room's feed at once; True if the feed is now empty."""
        feed = self.feeds.get(room_id)
        if feed is None or connection not in feed.connections:
            return False
        entry = feed.connections.pop(connection)
        metrics.ROOMS_JOINED.dec()
        # Presence is forgotten in batches by one task: a mass disconnect costs a few pipelined
        # round trips, and a consumer's disconnect never waits on Redis.
        self._presence_leaves.put_nowait((room_id, connection.username, entry))
        return not feed.connections

    async def _discard_empty_feed(self, room_id: int) -> None:
        async with self._room_locks[room_id]:
            feed = self.feeds.get(room_id)
            if feed is not None and not feed.connections:
                del self.feeds[room_id]
                feed.close()
                try:
                    await self.layer.group_discard(events.room_group_name(room_id), self.channel)
                except Exception:
                    logger.warning("group_discard failed for room %s", room_id, exc_info=True)

    async def online(self, room_id: int) -> list[str]:
        """Who is online in the room: the feed's cache, read from presence on its first use."""
        feed = self.feeds.get(room_id)
        if feed is not None and feed.online is not None:
            return sorted(feed.online)
        names = await self.presence.online(room_id=room_id)
        feed = self.feeds.get(room_id)
        if feed is not None and feed.online is None:
            feed.online = set(names)
        return names

    # ----- publishing ephemeral events ------------------------------------------------------

    async def publish_presence(self, *, room_id: int, username: str, online: bool) -> None:
        await events.send_async(events.Presence(room_id=room_id, username=username, online=online))

    async def publish_typing(self, *, room_id: int, user_id: int, username: str) -> None:
        await events.send_async(events.Typing(room_id=room_id, user_id=user_id, username=username))

    def feed(self, room_id: int) -> RoomFeed | None:
        """The room's feed on this process (read-only for connections: its rules are their cache)."""
        return self.feeds.get(room_id)

    def offer_local(self, room_id: int, message: FeedMessage) -> None:
        """A message stored by this process's batcher: deliver it now."""
        feed = self.feeds.get(room_id)
        if feed is not None:
            feed.offer(message)

    def accept_local(self, event: events.MessagesCreated) -> None:
        """Messages stored by this process: deliver now, the layer's copy will be a duplicate."""
        feed = self.feeds.get(event.room_id)
        if feed is not None:
            for message in feed_messages(event):
                feed.offer(message)

    # ----- inbound layer events ---------------------------------------------------------------

    async def _read_loop(self) -> None:
        while True:
            try:
                data = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("channel layer receive failed; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            metrics.LAYER_MESSAGES.labels(direction="receive").inc()
            await self.dispatch(data)

    async def dispatch(self, data: dict[str, Any]) -> None:
        """Handle one layer message; a bad or failing one is logged, never fatal."""
        if data.get("origin") and data.get("origin") == self.channel:
            return  # this hub's own batch, delivered here when it committed
        try:
            event = events.parse(data)
        except events.UnknownEvent:
            logger.warning("hub got an event it cannot read: %r", data.get("type"), exc_info=True)
            return
        handler = self._handlers[type(event)]
        try:
            await handler(self, event)
        except Exception:
            logger.exception("hub failed to handle %s", event.type)

    async def _on_messages(self, event: events.MessagesCreated) -> None:
        self.accept_local(event)

    async def _on_message_edited(self, event: events.MessageEdited) -> None:
        feed = self.feeds.get(event.room_id)
        if feed is not None:
            feed.broadcast(message_edited_frame(event.message))

    async def _on_message_deleted(self, event: events.MessageDeleted) -> None:
        feed = self.feeds.get(event.room_id)
        if feed is not None:
            feed.broadcast(message_deleted_frame(room=event.slug, message_id=event.id, version=event.version))

    async def _on_reaction(self, event: events.ReactionChanged) -> None:
        feed = self.feeds.get(event.room_id)
        if feed is not None:
            feed.broadcast(event.frame)

    async def _on_typing(self, event: events.Typing) -> None:
        feed = self.feeds.get(event.room_id)
        if feed is not None:
            feed.broadcast(typing_frame(room=feed.slug, user=event.username), skip_user=event.user_id)

    async def _on_presence(self, event: events.Presence) -> None:
        feed = self.feeds.get(event.room_id)
        if feed is not None:
            if feed.online is not None:
                if event.online:
                    feed.online.add(event.username)
                else:
                    feed.online.discard(event.username)
            feed.broadcast(presence_frame(room=feed.slug, user=event.username, online=event.online))

    async def _kick(self, room_id: int, user_id: int, reason: str) -> None:
        feed = self.feeds.get(room_id)
        if feed is None:
            return
        for connection in [c for c in feed.connections if c.user_id == user_id]:
            await connection.leave_room(room_id, reason=reason)

    async def _on_room_banned(self, event: events.RoomBanned) -> None:
        await self._kick(event.room_id, event.user_id, "banned")

    async def _on_room_removed(self, event: events.RoomRemoved) -> None:
        await self._kick(event.room_id, event.user_id, "removed")

    async def _on_room_updated(self, event: events.RoomUpdated) -> None:
        feed = self.feeds.get(event.room_id)
        if feed is not None:
            feed.slow_mode_seconds = event.slow_mode_seconds

    async def _on_room_muted(self, event: events.RoomMuted) -> None:
        feed = self.feeds.get(event.room_id)
        if feed is not None:
            if event.is_muted:
                feed.muted_user_ids.add(event.user_id)
            else:
                feed.muted_user_ids.discard(event.user_id)

    async def _on_user_frame(self, event: events.UserFrame) -> None:
        self._deliver_to_user(event.user_id, event.frame)

    async def _on_user_frames(self, event: events.UserFrames) -> None:
        for user_id, frame in event.frames:
            self._deliver_to_user(user_id, frame)

    def _deliver_to_user(self, user_id: int, frame: dict[str, Any]) -> None:
        connections = self.connections_by_user.get(user_id)
        if connections:
            shared = Frame(dumps(frame))
            for connection in list(connections):
                connection.deliver_user_frame(shared)

    async def _on_user_close(self, event: events.UserClose) -> None:
        for connection in list(self.connections_by_user.get(event.user_id, ())):
            if event.session_key is None or connection.session_key == event.session_key:
                await connection.close_with(event.code)

    _handlers: dict[type[events.Event], Callable[[Hub, Any], Awaitable[None]]] = {
        events.MessagesCreated: _on_messages,
        events.MessageEdited: _on_message_edited,
        events.MessageDeleted: _on_message_deleted,
        events.ReactionChanged: _on_reaction,
        events.Typing: _on_typing,
        events.Presence: _on_presence,
        events.RoomBanned: _on_room_banned,
        events.RoomRemoved: _on_room_removed,
        events.RoomUpdated: _on_room_updated,
        events.RoomMuted: _on_room_muted,
        events.UserFrame: _on_user_frame,
        events.UserFrames: _on_user_frames,
        events.UserClose: _on_user_close,
    }

    # ----- periodic work ----------------------------------------------------------------------

    async def _tail_loop(self) -> None:
        """Catch a dropped *last* message: the database says there is more than we delivered."""
        while True:
            await asyncio.sleep(TAIL_CHECK_SECONDS)
            try:
                await self.tail_check()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("tail check failed", exc_info=True)

    async def tail_check(self) -> None:
        """One query for every feed's room; each feed decides whether it has a gap to fill."""
        feeds = {room_id: feed for room_id, feed in self.feeds.items() if feed.is_ready}
        if not feeds:
            return
        for room_id, last_id in (await _room_last_ids(list(feeds))).items():
            feeds[room_id].tail_check(last_id)

    async def revalidate(self) -> None:
        """Re-read every local room's rules and every local connection's credential, and act on
        what a lost layer event left stale: a banned user's connections leave the room, mutes and
        slow mode are refreshed, connections whose credential ended close (4003 for a site ban,
        4001 for a logout, password change or deactivation). Runs every heartbeat, so nothing
        stale outlives one; a few queries for the whole process, not per connection."""
        room_ids = [room_id for room_id, feed in self.feeds.items() if feed.is_ready]
        if room_ids:
            for room_id, rules in (await _room_rules(room_ids)).items():
                feed = self.feeds.get(room_id)
                if feed is None:
                    continue
                feed.slow_mode_seconds, feed.muted_user_ids = rules.slow_mode_seconds, rules.muted_user_ids
                for connection in [c for c in feed.connections if c.user_id in rules.banned_user_ids]:
                    await connection.leave_room(room_id, reason="banned")
        held = {connection: connection.credential for connection in self.connections}
        if not held:
            return
        ended = await _credentials_ended({credential for credential in held.values() if credential is not None})
        for connection, credential in held.items():
            # No credential means no handshake vouched for it (accounts/ws_auth.py always records
            # one): fail closed.
            code = CLOSE_UNAUTHENTICATED if credential is None else ended.get(credential)
            if code is not None:
                await connection.close_with(code)

    async def _presence_leave_loop(self) -> None:
        while True:
            batch = [await self._presence_leaves.get()]
            while not self._presence_leaves.empty() and len(batch) < 1000:
                batch.append(self._presence_leaves.get_nowait())
            self._leaves_in_flight = True
            try:
                went_offline = await self.presence.leave_many(batch)
                for (room_id, username, _entry), offline in zip(batch, went_offline, strict=False):
                    if offline:
                        await self.publish_presence(room_id=room_id, username=username, online=False)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis away: the entries expire and `reap` announces them later
                logger.warning("presence leave of %d sockets failed", len(batch), exc_info=True)
            finally:
                self._leaves_in_flight = False

    async def _heartbeat_loop(self) -> None:
        last_group_refresh = time.monotonic()
        while True:
            await asyncio.sleep(settings.CHAT_HEARTBEAT_SECONDS)
            refresh_groups = time.monotonic() - last_group_refresh > GROUP_REFRESH_SECONDS
            if refresh_groups:
                last_group_refresh = time.monotonic()
            await self.heartbeat(refresh_groups=refresh_groups)

    async def heartbeat(self, *, refresh_groups: bool = False) -> None:
        """One beat: re-check rules and credentials (the database), then keep this process's presence
        alive, announce crashed processes' users, refresh groups (Redis). The two halves fail
        apart: a Redis outage, which also loses the layer's close events, must not stop the
        credential re-check that stands in for them."""
        try:
            await self.revalidate()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("hub revalidation failed", exc_info=True)
        try:
            entries = [
                (room_id, connection.username, entry)
                for room_id, feed in self.feeds.items()
                for connection, entry in list(feed.connections.items())
            ]
            await self.presence.refresh(entries)
            for room_id in list(self.feeds):
                for username in await self.presence.reap(room_id=room_id):
                    await self.publish_presence(room_id=room_id, username=username, online=False)
                feed = self.feeds.get(room_id)
                if feed is not None and feed.online is not None:
                    # Presence events are hints like any layer event: the cache is re-read.
                    feed.online = set(await self.presence.online(room_id=room_id))
            if refresh_groups:
                await self.layer.group_add(events.SITE_GROUP, self.channel)
                for room_id in list(self.feeds):
                    await self.layer.group_add(events.room_group_name(room_id), self.channel)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("hub heartbeat failed", exc_info=True)


@per_loop
def get_hub() -> Hub:
    """The hub of the running event loop (one per process under daphne; one per test loop)."""
    return Hub()


def running_hubs() -> list[Hub]:
    return get_hub.all()
