"""The /ws/chat/ consumer: frames in, service calls, frames out (CONTRACT §3).

No ORM and no rules here: frames are validated by rooms/protocol.py, actions are rooms/services.py
functions, and live traffic comes from the process's hub (rooms/realtime/hub.py), not from a
channel-layer channel per socket. The consumer is a `Connection` (rooms/realtime/connection.py):
it keeps its own per-room state, the hub keeps its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from accounts.credentials import Credential
from chatsite import metrics
from chatsite.logs import log_event
from rooms import conversations, selectors, services
from rooms.exceptions import ChatError, Forbidden, SlowMode
from rooms.posting import PostOutcome, PostRequest
from rooms.protocol import (
    CLOSE_FLOOD,
    CLOSE_SHUTTING_DOWN,
    CLOSE_TOO_MANY_CONNECTIONS,
    CLOSE_UNAUTHENTICATED,
    FrameError,
    JoinFrame,
    LeaveFrame,
    MessageFrame,
    PingFrame,
    ReactFrame,
    ReadFrame,
    TypingFrame,
    dumps,
    error_frame,
    joined_frame,
    left_frame,
    message_dict,
    message_frame,
    parse_frame,
    pong_frame,
    resync_frame,
)
from rooms.ratelimit import LocalBucket, rule_for
from rooms.realtime.db import db_call
from rooms.realtime.hub import Hub, get_hub
from rooms.realtime.replay import replay_plan
from rooms.realtime.writer import Frame, SocketWriter

if TYPE_CHECKING:
    from rooms.models import Room

logger = logging.getLogger("chatsite.ws")

FLOOD_CODES = {"bad_request", "too_large"}
UNAVAILABLE_RETRY_SECONDS = 1.0
OVERLOAD_CONNECT_RETRY_SECONDS = 5.0


@dataclass
class Subscription:
    """One joined room of one socket: what it was last sent, and a buffer while it replays."""

    room: Room
    last_sent: int = 0
    buffer: list[tuple[int | None, Frame]] | None = field(default_factory=list)
    last_typing: float = 0.0
    last_post_at: float | None = None  # this socket's last accepted post (the slow-mode cache)

    def drain(self) -> Iterator[tuple[Frame, bool]]:
        """What arrived live while the join replayed, in order, as (frame, is_message), skipping the
        messages the replay already sent; `last_sent` moves before each message is yielded. Live
        from the first step on: consume it whole without awaiting in between."""
        buffer, self.buffer = self.buffer or [], None
        for message_id, frame in buffer:
            if message_id is None:
                yield frame, False
            elif message_id > self.last_sent:
                self.last_sent = message_id
                yield frame, True


class ChatConsumer(AsyncWebsocketConsumer):
    """One WebSocket of /ws/chat/, and the hub's `Connection` for it."""

    # No layer channel per socket: the hub reads the layer once for the whole process.
    channel_layer_alias = "__hub_only__"

    async def dispatch(self, message: dict) -> None:
        # channels closes the sync thread's old database connections before every handler: a hop
        # through the process's single sync thread per frame, and at a mass disconnect the reason
        # daphne cancelled handlers before they ran. Our ORM work runs on rooms/realtime/db.py pool,
        # which does that hygiene itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        try:
            await handler(message)
        except StopConsumer:
            raise
        except BaseException:
            # Whatever ends this consumer (a bug, a cancellation by daphne) must not leave a ghost
            # in the hub's feeds and presence: disconnect's cleanup runs, then the error goes on.
            await asyncio.shield(self._forget())
            raise

    async def websocket_disconnect(self, message: dict) -> None:
        try:
            await self.disconnect(message.get("code", 1006))
        finally:
            await self._forget()
        raise StopConsumer()

    async def _forget(self) -> None:
        """Take this socket out of the hub (idempotent)."""
        self.closed = True
        writer = getattr(self, "writer", None)
        if writer is not None:
            writer.forget()
        if getattr(self, "is_registered", False):
            self.is_registered = False
            metrics.WS_CONNECTIONS.dec()
            await self.hub.remove(self)

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.closed = True
        self.hub: Hub = get_hub()
        self.is_registered = False  # in the hub: disconnect must take it out
        self.writer: SocketWriter | None = None  # every frame to the client, in call order
        if user is None or not user.is_authenticated:
            reason = self.scope.get("auth_method", "no_credentials")
            metrics.HANDSHAKES_REFUSED.labels(reason=reason).inc()
            log_event(logger, "ws_refused", reason=reason, client=self.scope.get("client"))
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        hub = self.hub
        if hub.is_closing:
            metrics.HANDSHAKES_REFUSED.labels(reason="shutting_down").inc()
            await self.close(code=CLOSE_SHUTTING_DOWN)
            return
        if len(hub.connections_by_user.get(user.id, ())) >= settings.CHAT_MAX_SOCKETS_PER_USER:
            # Accepted only to say why (a refused handshake shows the client nothing but 403).
            metrics.HANDSHAKES_REFUSED.labels(reason="too_many_connections").inc()
            await self.accept()
            limit = settings.CHAT_MAX_SOCKETS_PER_USER
            await self.send(
                text_data=dumps(
                    error_frame(
                        code="rate_limited",
                        detail=f"At most {limit} open connections per user; close one (another tab?) and retry.",
                        retry_after=OVERLOAD_CONNECT_RETRY_SECONDS,
                    )
                )
            )
            await self.close(code=CLOSE_TOO_MANY_CONNECTIONS)
            return
        await hub.start()
        self.user = user
        self.user_id = user.id
        self.username = user.username
        self.conn_id = uuid.uuid4().hex
        self.subscriptions: dict[int, Subscription] = {}
        self.room_ids: dict[str, int] = {}
        self.bad_frames: deque[float] = deque()
        self._posts_waiting = 0  # posts of this socket in the batcher
        self._joins = LocalBucket(rule_for("join"))
        await self.accept()
        self.writer = SocketWriter(self.base_send)
        self.closed = False
        hub.add(self)
        self.is_registered = True
        metrics.WS_CONNECTIONS.inc()
        log_event(logger, "ws_open", user=self.username, conn=self.conn_id, auth=self.scope.get("auth_method"))

    async def disconnect(self, code: int) -> None:
        self.closed = True
        if not self.is_registered:
            return
        rooms = sorted(subscription.room.slug for subscription in self.subscriptions.values())
        await self._forget()
        log_event(logger, "ws_close", user=self.username, conn=self.conn_id, code=code, rooms=rooms)

    # ----- inbound ----------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closed:
            return
        if text_data is None:
            await self.reject(code="bad_request", detail="Binary frames are not supported; send JSON text.")
            return
        max_bytes = settings.CHAT_MAX_FRAME_BYTES
        if len(text_data) * 4 > max_bytes and len(text_data.encode("utf-8")) > max_bytes:
            # daphne's WebSocket library closes such frames with 1009 before they get here
            # (chatsite/serve.py); under another server, refuse without reading it.
            await self.reject(code="too_large", detail=f"Frames are limited to {max_bytes} bytes.")
            return
        try:
            frame = parse_frame(text_data)
        except FrameError as error:
            await self.reject(code=error.code, detail=error.detail, client_id=error.client_id)
            return
        try:
            await self._handlers[type(frame)](self, frame)
        except ChatError as error:
            await self.reject(
                code=error.code,
                detail=error.detail,
                client_id=getattr(frame, "client_id", None),
                retry_after=error.retry_after,
                room=getattr(frame, "room", None),
            )
        except (DatabaseError, RedisError):
            # Every frame is answered, even when PostgreSQL or Redis is away. The contract has no
            # "unavailable" code; rate_limited with retry_after tells a client exactly what to do:
            # wait and resend the same client_id (docs/realtime.md).
            log_event(
                logger,
                "ws_storage_unavailable",
                level=logging.WARNING,
                exc_info=True,
                user=self.username,
                conn=self.conn_id,
                room=getattr(frame, "room", None),
            )
            await self.reject(
                code="rate_limited",
                detail="The server cannot store this right now (database or Redis unavailable); "
                "retry after retry_after seconds with the same client_id.",
                client_id=getattr(frame, "client_id", None),
                retry_after=UNAVAILABLE_RETRY_SECONDS,
                room=getattr(frame, "room", None),
            )
        except Exception:
            # A bug. The frame is still answered and the socket stays (closing it with 1011 would
            # make the client retry the same frame forever); the traceback goes to the logs.
            logger.exception(
                "handling a %s frame failed (user %s, conn %s)", type(frame).__name__, self.username, self.conn_id
            )
            await self.reject(
                code="rate_limited",
                detail="The server failed to handle this frame; retry after retry_after seconds.",
                client_id=getattr(frame, "client_id", None),
                retry_after=UNAVAILABLE_RETRY_SECONDS,
                room=getattr(frame, "room", None),
            )

    async def on_join(self, frame: JoinFrame) -> None:
        if frame.room not in self.room_ids and len(self.subscriptions) >= settings.CHAT_MAX_ROOMS_PER_SOCKET:
            limit = settings.CHAT_MAX_ROOMS_PER_SOCKET
            raise Forbidden(f"At most {limit} rooms per connection; leave one first (or open another connection).")
        self._joins.take("join")  # join/leave churn costs the server: throttled per socket
        room = await db_call(services.room_join_by_slug, user=self.user, slug=frame.room)
        subscription = self.subscriptions.get(room.id)
        if subscription is None:
            subscription = self.subscriptions[room.id] = Subscription(room=room)
            self.room_ids[room.slug] = room.id
            try:
                await self.hub.subscribe(self, room_id=room.id, slug=room.slug)
            except BaseException:
                self.subscriptions.pop(room.id, None)
                self.room_ids.pop(room.slug, None)
                raise
        else:
            subscription.buffer = []  # a second join re-answers and replays like the first
        limit = settings.CHAT_REPLAY_LIMIT
        try:
            last_id, version, replay = await db_call(
                selectors.room_replay, room_id=room.id, after=frame.after, limit=limit + 1
            )
            online = await self.hub.online(room.id)
        except BaseException:
            # A join that fails half-way leaves nothing behind: a subscription left buffering
            # would hold every later frame of the room forever. The client may join again.
            self.subscriptions.pop(room.id, None)
            self.room_ids.pop(room.slug, None)
            await asyncio.shield(self.hub.unsubscribe(self, room.id))
            raise
        plan = replay_plan(after=frame.after, last_id=last_id, messages=replay, limit=limit)
        await self.send_frame(joined_frame(room=room.slug, last_id=last_id, online=online, version=version))
        if plan.resync:
            await self.send_frame(resync_frame(room=room.slug))
        for message in plan.messages:
            await self.send_frame(message_frame(message_dict(message)))
        subscription.last_sent = plan.last_sent
        for shared, _is_message in subscription.drain():
            self.send_shared(shared)

    async def on_leave(self, frame: LeaveFrame) -> None:
        room_id = self.room_ids.get(frame.room)
        if room_id is not None:
            await self.leave_room(room_id)
        else:
            await self.send_frame(left_frame(room=frame.room))

    async def on_message(self, frame: MessageFrame) -> None:
        """Check the standing cache, hand the post to the batcher and return at once: the answer
        (the broadcast itself, the stored message of a resent client_id, or an error) comes when
        its batch is decided, in this socket's send order."""
        subscription = self._joined(frame.room)
        room = subscription.room
        can_moderate = room.owner_id == self.user_id or self.user.is_moderator
        if not self._posts_waiting:
            # A refusal from the cache is only sure to keep the send order while nothing of this
            # socket waits in the batcher; otherwise the batch statement refuses it in its turn.
            self._standing_check(subscription, can_moderate=can_moderate)
        post = PostRequest(
            user_id=self.user_id,
            username=self.username,
            room_id=room.id,
            room_slug=room.slug,
            body=frame.body,
            client_id=frame.client_id,
            reply_to_id=frame.reply_to,
            can_moderate=can_moderate,
        )
        self.hub.batcher.submit(post, partial(self._post_answered, frame, subscription))
        self._posts_waiting += 1

    def _standing_check(self, subscription: Subscription, *, can_moderate: bool) -> None:
        """Refuse at once what the cached standing already refuses (mute, slow mode)."""
        feed = self.hub.feed(subscription.room.id)
        if feed is None:
            return
        if self.user_id in feed.muted_user_ids:
            raise Forbidden(f"You are muted in {subscription.room.slug!r}: you may read but not post.")
        if feed.slow_mode_seconds and not can_moderate and subscription.last_post_at is not None:
            wait = subscription.last_post_at + feed.slow_mode_seconds - time.monotonic()
            if wait > 0:
                raise SlowMode(
                    f"Slow mode: one message every {feed.slow_mode_seconds} s in this room.", retry_after=round(wait, 3)
                )

    def _post_answered(self, frame: MessageFrame, subscription: Subscription, outcome: PostOutcome) -> None:
        """From the batcher, on the loop, in submission order (the broadcast was already delivered)."""
        self._posts_waiting -= 1
        if self.closed:
            return
        if outcome.error is not None:
            is_flooding = self._reject_now(
                code=outcome.error.code,
                detail=outcome.error.detail,
                client_id=frame.client_id,
                retry_after=outcome.error.retry_after,
                room=frame.room,
            )
            if is_flooding:
                asyncio.get_running_loop().create_task(self.close_with(CLOSE_FLOOD))
        elif outcome.created:
            subscription.last_post_at = time.monotonic()
        elif outcome.payload is not None:
            self.send_shared(Frame(dumps(message_frame(outcome.payload))))

    async def on_typing(self, frame: TypingFrame) -> None:
        subscription = self._joined(frame.room)
        now = time.monotonic()
        # Throttled per socket and room: extra notices within the interval are dropped, not errors.
        if now - subscription.last_typing < settings.CHAT_TYPING_INTERVAL_SECONDS:
            return
        subscription.last_typing = now
        await self.hub.publish_typing(room_id=subscription.room.id, user_id=self.user_id, username=self.username)

    async def on_ping(self, frame: PingFrame) -> None:
        await self.send_frame(pong_frame())

    async def on_react(self, frame: ReactFrame) -> None:
        """Like the REST reaction calls (no join needed). Answered once: by the `reaction`
        broadcast when this socket is joined to the room and something changed, else by the same
        frame sent to this socket alone (the state after it: a repeated add changes nothing)."""
        reaction, changed = await db_call(
            conversations.reaction_set,
            user=self.user,
            room_slug=frame.room,
            message_id=frame.message_id,
            emoji=frame.emoji,
            remove=frame.remove,
        )
        if not changed or frame.room not in self.room_ids:
            await self.send_frame(reaction)

    async def on_read(self, frame: ReadFrame) -> None:
        """Move the read marker; the answer is the `read_state` every socket of the user gets (this
        one included, joined to the room or not) through the hub's per-user delivery."""
        await db_call(conversations.room_read_by_slug, user=self.user, slug=frame.room, last_read_id=frame.last_read_id)

    _handlers: dict[type, Callable[[ChatConsumer, Any], Awaitable[None]]] = {
        JoinFrame: on_join,
        LeaveFrame: on_leave,
        MessageFrame: on_message,
        TypingFrame: on_typing,
        PingFrame: on_ping,
        ReactFrame: on_react,
        ReadFrame: on_read,
    }

    def _joined(self, slug: str) -> Subscription:
        room_id = self.room_ids.get(slug)
        if room_id is None:
            raise Forbidden(f'Join {slug!r} first: send {{"type":"join","room":"{slug}"}}.')
        return self.subscriptions[room_id]

    # ----- outbound ---------------------------------------------------------------------------

    async def reject(
        self,
        *,
        code: str,
        detail: str,
        client_id: str | None = None,
        retry_after: float | None = None,
        room: str | None = None,
    ) -> None:
        if self._reject_now(code=code, detail=detail, client_id=client_id, retry_after=retry_after, room=room):
            await self.close_with(CLOSE_FLOOD)

    def _reject_now(
        self,
        *,
        code: str,
        detail: str,
        client_id: str | None = None,
        retry_after: float | None = None,
        room: str | None = None,
    ) -> bool:
        """Send an `error` frame (in order with everything else this socket is sent); True when
        the socket sent too many bad frames and must be closed."""
        metrics.FRAMES_REJECTED.labels(code=code).inc()
        log_event(logger, "ws_error", user=self.username, conn=self.conn_id, room=room, code=code, reason=detail)
        frame = error_frame(code=code, detail=detail, client_id=client_id, retry_after=retry_after)
        self.send_shared(Frame(dumps(frame)))
        if code not in FLOOD_CODES:
            return False
        limit, window = settings.CHAT_ERROR_FLOOD
        now = time.monotonic()
        self.bad_frames.append(now)
        while self.bad_frames and self.bad_frames[0] < now - window:
            self.bad_frames.popleft()
        if len(self.bad_frames) <= limit:
            return False
        log_event(logger, "ws_flood", user=self.username, conn=self.conn_id, reason="over 20 bad frames in 10 s")
        return True

    async def send_frame(self, frame: dict) -> None:
        self.send_text(dumps(frame))

    def send_text(self, text: str) -> None:
        """A frame for this socket alone, behind everything already queued for it."""
        if self.writer is not None and not self.closed:
            self.writer.write_text(text)

    def send_shared(self, frame: Frame) -> None:
        """A frame many sockets get: built once, written synchronously (rooms/realtime/writer.py)."""
        if self.writer is not None and not self.closed:
            self.writer.write(frame)

    # ----- the hub's Connection interface -----------------------------------------------------

    @property
    def credential(self) -> Credential | None:
        return self.scope.get("credential")

    @property
    def session_key(self) -> str | None:
        return getattr(self.credential, "session_key", None)

    def deliver_message(self, room_id: int, message_id: int, frame: Frame) -> None:
        subscription = self.subscriptions.get(room_id)
        if subscription is None:
            return
        if subscription.buffer is not None:
            subscription.buffer.append((message_id, frame))
        elif message_id > subscription.last_sent:
            subscription.last_sent = message_id
            writer = self.writer  # send_shared, inlined: this runs once per delivery
            if writer is not None and not self.closed:
                writer.write(frame)

    def deliver_event(self, room_id: int, frame: Frame) -> None:
        subscription = self.subscriptions.get(room_id)
        if subscription is None:
            return
        if subscription.buffer is not None:
            subscription.buffer.append((None, frame))
        else:
            self.send_shared(frame)

    def deliver_user_frame(self, frame: Frame) -> None:
        self.send_shared(frame)

    async def leave_room(self, room_id: int, *, reason: str | None = None) -> None:
        subscription = self.subscriptions.pop(room_id, None)
        if subscription is None or not self.is_registered:
            return
        self.room_ids.pop(subscription.room.slug, None)
        await self.hub.unsubscribe(self, room_id)
        await self.send_frame(left_frame(room=subscription.room.slug, reason=reason))

    async def close_with(self, code: int) -> None:
        if self.closed:
            return
        self.closed = True
        if self.writer is not None:
            self.writer.close(code)  # after the frames already queued for it
        else:
            await self.close(code=code)
