"""`GET /api/v1/stream/?rooms=S1,S2`: the Server-Sent Events fallback transport (CONTRACT §6).

A stream is one more kind of local connection of the process's hub (rooms/realtime/hub.py), beside the
WebSocket consumer: it is registered in the same room feeds, gets the same shared frames in the
same order, counts in presence, and is kicked or closed by the same room-ban, site-ban and
credential events. Only the framing differs (rooms/sse.py): each frame becomes one event, and
message events carry a cursor `id:` so a reconnect with `Last-Event-ID` (or `?after=`) replays
exactly what was missed, like `join` with `after`.

A plain ASGI application, routed in chatsite/asgi.py before Django, behind the same origin check
and authentication middleware as the socket (accounts/ws_auth.py). It answers bad requests with
REST-style JSON errors before the stream starts; after that, per-room problems are `error` events.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from accounts.ws_auth import header, refuse_http
from chatsite.logs import log_event
from rooms import selectors, services, sse
from rooms.exceptions import BadRequest, ChatError
from rooms.protocol import (
    dumps,
    error_frame,
    joined_frame,
    left_frame,
    message_dict,
    message_frame,
    resync_frame,
)
from rooms.realtime.consumer import Subscription
from rooms.realtime.db import db_call
from rooms.realtime.hub import get_hub
from rooms.realtime.replay import replay_plan
from rooms.realtime.writer import Frame, abort, daphne_request, keep_open, pending_bytes

logger = logging.getLogger("chatsite.sse")

UNAVAILABLE_RETRY_SECONDS = 1.0
OVERLOAD_CONNECT_RETRY_SECONDS = 5.0  # as the socket's (rooms/realtime/consumer.py)
RECONNECT_MILLISECONDS = 2000


def frame_type(text: str) -> str:
    """The `type` of an encoded frame: rooms/protocol.py builders put it first."""
    prefix = '{"type":"'
    if text.startswith(prefix):
        end = text.find('"', len(prefix))
        if end > 0:
            return text[len(prefix) : end]
    import json

    return str(json.loads(text).get("type", "message"))


class EventStream:
    """One open stream: the hub's connection interface (user, rooms, offer/leave/close), as SSE."""

    def __init__(self, *, scope: dict[str, Any], send: Any, hub: Any) -> None:
        user = scope["user"]
        self.user = user
        self.user_id: int = user.id
        self.username: str = user.username
        credential = scope.get("credential")
        self.session_key: str | None = getattr(credential, "session_key", None)
        self.credential = credential
        self.conn_id = uuid.uuid4().hex
        self.subscriptions: dict[int, Subscription] = {}
        self.room_ids: dict[str, int] = {}
        self.hub = hub
        self.closed = False
        self._send = send
        self._request = daphne_request(send)
        # The hub delivers synchronously; what it hands over is written in order by one task.
        self._outbox: deque[bytes] = deque()
        self._drain_task: asyncio.Task | None = None

    # ----- writing ----------------------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            await self._send({"type": "http.response.body", "body": data, "more_body": True})
        except Exception:  # the peer is gone; daphne reports the disconnect separately
            self.closed = True
            return
        if self._request is not None and pending_bytes(self._request) > settings.CHAT_SLOW_READER_BYTES:
            # A client that does not read: stop writing, free what is queued (CONTRACT §6 slow readers).
            log_event(logger, "sse_slow_reader", user=self.username, conn=self.conn_id)
            self.closed = True
            abort(self._request)

    def _write_soon(self, data: bytes) -> None:
        if self.closed:
            return
        self._outbox.append(data)
        if self._drain_task is None:
            self._drain_task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._outbox and not self.closed:
                await self._write(self._outbox.popleft())
        finally:
            self._drain_task = None

    def cursor(self) -> str:
        return sse.format_cursor({sub.room.slug: sub.last_sent for sub in self.subscriptions.values()})

    async def send_frame(self, frame: dict[str, Any], *, with_id: bool = False) -> None:
        event_id = self.cursor() if with_id else None
        data = sse.event_bytes(frame["type"], dumps(frame), event_id=event_id)
        if self._drain_task is not None:
            self._write_soon(data)  # behind what the hub already handed over
        else:
            await self._write(data)

    def _send_shared(self, frame: Frame, *, with_id: bool) -> None:
        text = frame.text
        self._write_soon(sse.event_bytes(frame_type(text), text, event_id=self.cursor() if with_id else None))

    # ----- the hub's connection interface -----------------------------------------------------

    def deliver_message(self, room_id: int, message_id: int, frame: Frame) -> None:
        """From the hub: a message of a joined room, sent once and in id order."""
        subscription = self.subscriptions.get(room_id)
        if subscription is None:
            return
        if subscription.buffer is not None:
            subscription.buffer.append((message_id, frame))
        elif message_id > subscription.last_sent:
            subscription.last_sent = message_id
            self._send_shared(frame, with_id=True)

    def deliver_event(self, room_id: int, frame: Frame) -> None:
        """From the hub: any other frame of a joined room (edits, deletes, typing, presence)."""
        subscription = self.subscriptions.get(room_id)
        if subscription is None:
            return
        if subscription.buffer is not None:
            subscription.buffer.append((None, frame))
        else:
            self._send_shared(frame, with_id=False)

    def deliver_user_frame(self, frame: Frame) -> None:
        self._send_shared(frame, with_id=False)

    async def leave_room(self, room_id: int, *, reason: str | None = None) -> None:
        subscription = self.subscriptions.pop(room_id, None)
        if subscription is None:
            return
        self.room_ids.pop(subscription.room.slug, None)
        await self.hub.unsubscribe(self, room_id)
        await self.send_frame(left_frame(room=subscription.room.slug, reason=reason))

    async def close_with(self, code: int) -> None:
        """`event: close` with the code a socket would get, then the end of the response."""
        if self.closed:
            return
        await self._write(sse.event_bytes("close", dumps({"code": code})))
        await self.end()

    async def end(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception:
            pass

    # ----- joining ----------------------------------------------------------------------------

    async def join(self, slug: str, after: int | None) -> bool:
        """Join one room like the socket's `join` with `after`; False (after an `error` event) if it cannot."""
        try:
            room = await db_call(services.room_join_by_slug, user=self.user, slug=slug)
            subscription = self.subscriptions[room.id] = Subscription(room=room)
            self.room_ids[room.slug] = room.id
            try:
                await self.hub.subscribe(self, room_id=room.id, slug=room.slug)
            except BaseException:
                self.subscriptions.pop(room.id, None)
                self.room_ids.pop(room.slug, None)
                raise
            limit = settings.CHAT_REPLAY_LIMIT
            last_id, version, replay = await db_call(
                selectors.room_replay, room_id=room.id, after=after, limit=limit + 1
            )
            online = await self.hub.online(room.id)
        except ChatError as error:
            await self.send_frame({**error_frame(code=error.code, detail=error.detail), "room": slug})
            return False
        plan = replay_plan(after=after, last_id=last_id, messages=replay, limit=limit)
        subscription.last_sent = plan.start
        # The joined event's id already covers this room, so a reconnect right after it resumes here.
        await self.send_frame(
            joined_frame(room=room.slug, last_id=last_id, online=online, version=version), with_id=not plan.resync
        )
        if plan.resync:
            await self.send_frame(resync_frame(room=room.slug), with_id=True)
        for message in plan.messages:
            subscription.last_sent = message.id
            await self.send_frame(message_frame(message_dict(message)), with_id=True)
        subscription.last_sent = plan.last_sent
        for shared, is_message in subscription.drain():
            self._send_shared(shared, with_id=is_message)
        return True


def stream_request(scope: dict[str, Any]) -> tuple[list[str], dict[str, int]]:
    """(rooms, cursor) of a stream request; BadRequest for a bad `rooms`, `after` or Last-Event-ID."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    slugs = sse.parse_rooms(",".join(query["rooms"]) if "rooms" in query else None)
    # The browser's automatic reconnect sends Last-Event-ID while the URL keeps its first ?after=.
    last_event_id = header(scope, b"last-event-id")
    if last_event_id is not None:
        return slugs, sse.parse_cursor(last_event_id)
    if "after" in query:
        return slugs, sse.parse_cursor(query["after"][-1])
    return slugs, {}


class StreamApp:
    """The ASGI application of the stream endpoint (after FullOriginValidator and authentication)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError("the stream endpoint serves HTTP only")
        message = await receive()
        while message["type"] == "http.request" and message.get("more_body"):
            message = await receive()
        if message["type"] == "http.disconnect":
            return
        if scope["method"] != "GET":
            await refuse_http(
                send, status=405, code="method_not_allowed", detail="The stream answers GET only (EventSource)."
            )
            return
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse_unauthenticated(scope, send)
            return
        try:
            slugs, cursor = stream_request(scope)
        except BadRequest as error:
            await refuse_http(send, status=400, code=error.code, detail=error.detail)
            return
        hub = get_hub()
        if hub.is_closing:
            await refuse_http(
                send, status=503, code="unavailable", detail="This process is shutting down; reconnect and resume."
            )
            return
        limit = settings.CHAT_MAX_SOCKETS_PER_USER
        if len(hub.connections_by_user.get(user.id, ())) >= limit:
            # The socket's cap, counting sockets and streams together: refused before the stream.
            await refuse_http(
                send,
                status=429,
                code="rate_limited",
                detail=f"At most {limit} open connections (sockets and streams) per user on a server; "
                "close one (another tab?) and retry.",
                retry_after=OVERLOAD_CONNECT_RETRY_SECONDS,
            )
            return
        await hub.start()
        await send({"type": "http.response.start", "status": 200, "headers": sse.STREAM_HEADERS})
        stream = EventStream(scope=scope, send=send, hub=hub)
        if stream._request is not None:
            keep_open(stream._request)
        hub.add(stream)
        log_event(logger, "sse_open", user=stream.username, conn=stream.conn_id, auth=scope.get("auth_method"))
        try:
            await stream._write(sse.retry_bytes(RECONNECT_MILLISECONDS))
            for slug in slugs:
                await stream.join(slug, cursor.get(slug))
            await self._serve(stream, receive)
        except (DatabaseError, RedisError):
            # Storage is away: end the stream (no close event), the browser reconnects with its
            # Last-Event-ID after `retry` and resumes.
            log_event(logger, "sse_storage_unavailable", level=logging.WARNING, exc_info=True, user=stream.username)
            await stream.send_frame(
                error_frame(
                    code="rate_limited",
                    detail="The server cannot reach its storage right now; reconnect and resume.",
                    retry_after=UNAVAILABLE_RETRY_SECONDS,
                )
            )
            await stream.end()
        finally:
            stream.closed = True
            rooms = sorted(sub.room.slug for sub in stream.subscriptions.values())
            await hub.remove(stream)
            log_event(logger, "sse_close", user=stream.username, conn=stream.conn_id, rooms=rooms)

    async def _serve(self, stream: EventStream, receive: Any) -> None:
        """Ping until the client goes away or the stream is ended (close event, slow reader)."""
        interval = settings.CHAT_SSE_PING_SECONDS
        while not stream.closed:
            try:
                message = await asyncio.wait_for(receive(), timeout=interval)
            except TimeoutError:
                await stream._write(sse.PING)
                continue
            if message["type"] == "http.disconnect":
                return

    async def _refuse_unauthenticated(self, scope: dict[str, Any], send: Any) -> None:
        how = scope.get("auth_method", "no_credentials")
        log_event(logger, "sse_refused", reason=how, client=scope.get("client"))
        if how == "site_banned":
            await refuse_http(send, status=403, code="forbidden", detail="This account is banned site-wide.")
            return
        detail = {
            "bad_ticket": "The ticket is unknown, expired or already used; get a new one from auth/ws-ticket/.",
            "revoked": "These credentials ended (password change, logout or deactivation); sign in again.",
            "bad_token": "The access token is invalid or expired; refresh it at auth/token/refresh/.",
            "bad_header": "Send Authorization: Bearer <access JWT>.",
            "bad_session": "The session has ended; sign in again.",
            "inactive": "This account is inactive.",
        }.get(
            how,
            "Authenticate with Authorization: Bearer <access JWT>, ?ticket= from auth/ws-ticket/, or the "
            "session cookie of a page of this site.",
        )
        await refuse_http(send, status=401, code="not_authenticated", detail=detail)
