"""Every event that crosses the channel layer, declared once, and the only caller of `group_send`.

Each event is a frozen dataclass with a `type` (the layer's dispatch key); `event.to_layer()`
builds the dict the layer carries and `parse(dict)` turns a received dict back into its class,
so no module reads layer dicts by string keys. The senders below schedule every broadcast with
`transaction.on_commit`, so no frame ever announces a row that could still roll back. Group names
are built from ids, never from user text. The layer is only a hint that something is new: ids,
replay and `resync` (rooms/realtime/feed.py) make delivery exact.

Two groups exist: one per room (`room_group_name`), which a process's hub is in while it has
local connections in that room, and `SITE_GROUP`, which every hub is in (per-user events).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from chatsite import metrics
from chatsite.logs import log_event
from rooms.protocol import message_dict

if TYPE_CHECKING:
    from rooms.posting import PostOutcome

logger = logging.getLogger(__name__)

SITE_GROUP = "chat.site"


def room_group_name(room_id: int) -> str:
    return f"chat.room.{room_id}"


# ----- the declarations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Base of the layer events; subclasses set `type` and are registered for `parse`."""

    type: ClassVar[str]

    def to_layer(self) -> dict[str, Any]:
        # Shallow on purpose: dataclasses.asdict deep-copies every message dict of a batch, a
        # measurable share of the post path's CPU; the layer serialises the values anyway.
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        data["type"] = self.type
        return data


@dataclass(frozen=True)
class RoomEvent(Event):
    """An event for the connections joined to one room (sent to `room_group_name(room_id)`)."""

    room_id: int


@dataclass(frozen=True)
class MessagesCreated(RoomEvent):
    """Messages of one room stored by one batch, in id order; `prev_ids[i]` is the room's message
    before `messages[i]`, assigned under the room's lock (one layer message per room per batch)."""

    type: ClassVar[str] = "chat.messages"
    messages: list[dict[str, Any]]
    prev_ids: list[int]
    accepted_at: float | None = None
    origin: str = ""  # the sending hub's channel: it delivered these already and skips its copy


@dataclass(frozen=True)
class MessageEdited(RoomEvent):
    type: ClassVar[str] = "chat.message_edited"
    message: dict[str, Any]


@dataclass(frozen=True)
class MessageDeleted(RoomEvent):
    type: ClassVar[str] = "chat.message_deleted"
    slug: str
    id: int
    version: int = 0  # the room's version the delete took (0 from a process not yet upgraded)


@dataclass(frozen=True)
class ReactionChanged(RoomEvent):
    """A reaction added or taken back: `frame` is the `reaction` frame (rooms/protocol.py)."""

    type: ClassVar[str] = "chat.reaction"
    frame: dict[str, Any]


@dataclass(frozen=True)
class Typing(RoomEvent):
    type: ClassVar[str] = "chat.typing"
    user_id: int
    username: str


@dataclass(frozen=True)
class Presence(RoomEvent):
    type: ClassVar[str] = "chat.presence"
    username: str
    online: bool


@dataclass(frozen=True)
class RoomBanned(RoomEvent):
    """The user's connections leave the room with reason `banned`."""

    type: ClassVar[str] = "chat.room_ban"
    user_id: int


@dataclass(frozen=True)
class RoomRemoved(RoomEvent):
    """The user left or was removed from the room: their connections leave it (`removed`)."""

    type: ClassVar[str] = "chat.room_removed"
    user_id: int


@dataclass(frozen=True)
class RoomUpdated(RoomEvent):
    """The room's settings changed (slow mode); standing caches re-read them."""

    type: ClassVar[str] = "chat.room_updated"
    slow_mode_seconds: int


@dataclass(frozen=True)
class RoomMuted(RoomEvent):
    """A mute of the user in the room was set or lifted; standing caches re-read it."""

    type: ClassVar[str] = "chat.room_mute"
    user_id: int
    is_muted: bool


@dataclass(frozen=True)
class UserFrame(Event):
    """A frame for every connection of one user on every process (sent to `SITE_GROUP`)."""

    type: ClassVar[str] = "chat.user_frame"
    user_id: int
    frame: dict[str, Any]


@dataclass(frozen=True)
class UserFrames(Event):
    """Frames for several users in one layer message (a batch's notifications): each
    `[user_id, frame]` of `frames` goes to every connection of that user, on every process, like
    a `UserFrame` of its own."""

    type: ClassVar[str] = "chat.user_frames"
    frames: list[list[Any]]


@dataclass(frozen=True)
class UserClose(Event):
    """Close the user's connections with `code`: all of them, or those one web session opened."""

    type: ClassVar[str] = "chat.user_close"
    user_id: int
    code: int
    session_key: str | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        MessagesCreated,
        MessageEdited,
        MessageDeleted,
        ReactionChanged,
        Typing,
        Presence,
        RoomBanned,
        RoomRemoved,
        RoomUpdated,
        RoomMuted,
        UserFrame,
        UserFrames,
        UserClose,
    )
}


class UnknownEvent(ValueError):
    """A layer message no declaration matches (another version of the code, or garbage)."""


def parse(data: dict[str, Any]) -> Event:
    """The event a layer dict carries; UnknownEvent if its type or fields do not match."""
    cls = EVENT_TYPES.get(data.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise UnknownEvent(f"unknown event type {data.get('type')!r}")
    try:
        return cls(**{field.name: data[field.name] for field in dataclasses.fields(cls) if field.name in data})
    except TypeError as error:
        raise UnknownEvent(f"{cls.type}: {error}") from None


# ----- sending -------------------------------------------------------------------------------


def _group_for(event: Event) -> str:
    return room_group_name(event.room_id) if isinstance(event, RoomEvent) else SITE_GROUP


def _send(event: Event) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(_group_for(event), event.to_layer())
    except Exception:  # the layer being down must not fail a committed write; clients resync
        logger.exception("group_send of %s failed", event.type)
        return
    metrics.LAYER_MESSAGES.labels(direction="send").inc()


def send_on_commit(event: Event) -> None:
    """Broadcast `event` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _send(event))


async def send_async(event: Event) -> None:
    """Broadcast from async code: ephemeral events (typing, presence) and batches already committed."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(_group_for(event), event.to_layer())
    except Exception:  # a lost hint is repaired by the feed's gap fill and tail check, or the next one
        logger.warning("group_send of %s failed", event.type, exc_info=True)
        return
    metrics.LAYER_MESSAGES.labels(direction="send").inc()


def messages_created_events(outcomes: Sequence[PostOutcome], *, origin: str = "") -> list[MessagesCreated]:
    """One event per room for the new messages of a batch (rooms/posting.py), in id order."""
    by_room: dict[int, list[PostOutcome]] = {}
    for outcome in outcomes:
        if outcome.created and outcome.message is not None and outcome.payload is not None:
            by_room.setdefault(outcome.message.room_id, []).append(outcome)
    accepted_at = time.time()
    return [
        MessagesCreated(
            room_id=room_id,
            messages=[outcome.payload for outcome in items if outcome.payload is not None],
            prev_ids=[outcome.message.prev_id for outcome in items if outcome.message is not None],
            accepted_at=accepted_at,
            origin=origin,
        )
        for room_id, items in by_room.items()
    ]


def notification_events(outcomes: Sequence[PostOutcome]) -> list[UserFrames]:
    """The `notification` frames of a batch's new messages as one per-user event (none without
    any), sent after the batch's message events: a client sees the message before the
    notification about it when it gets both. One layer message whatever the number of frames."""
    frames = [[user_id, frame] for outcome in outcomes if outcome.created for user_id, frame in outcome.notices]
    return [UserFrames(frames=frames)] if frames else []


def messages_created(outcomes: Sequence[PostOutcome]) -> None:
    """Broadcast a batch's new messages and its notifications on commit (the REST path; the
    socket's batcher sends the same events from the event loop, rooms/realtime/batcher.py)."""
    for event in [*messages_created_events(outcomes), *notification_events(outcomes)]:
        send_on_commit(event)


def message_edited(message) -> None:
    send_on_commit(MessageEdited(room_id=message.room_id, message=message_dict(message)))


def message_deleted(message) -> None:
    send_on_commit(
        MessageDeleted(room_id=message.room_id, slug=message.room.slug, id=message.id, version=message.version)
    )


def user_typing(*, room_id: int, user_id: int, username: str) -> None:
    """The others in the room get `typing` (the REST form; a socket's hub sends its own at once)."""
    send_on_commit(Typing(room_id=room_id, user_id=user_id, username=username))


def reaction_changed(*, message, frame: dict[str, Any]) -> None:
    """Every connection joined to the message's room, on every process, gets `frame` (a
    `reaction` frame) once the transaction commits."""
    send_on_commit(ReactionChanged(room_id=message.room_id, frame=frame))


def room_user_banned(*, room, user_id: int) -> None:
    """Sockets of that user in the room get `left` with reason `banned`."""
    send_on_commit(RoomBanned(room_id=room.id, user_id=user_id))


def room_user_removed(*, room, user_id: int) -> None:
    """A member left or was removed from a private room: their sockets leave it."""
    send_on_commit(RoomRemoved(room_id=room.id, user_id=user_id))


def room_user_muted(*, room, user_id: int, is_muted: bool) -> None:
    """A mute was set or lifted: the standing caches of every process see it at once."""
    send_on_commit(RoomMuted(room_id=room.id, user_id=user_id, is_muted=is_muted))


def room_updated(room) -> None:
    send_on_commit(RoomUpdated(room_id=room.id, slow_mode_seconds=room.slow_mode_seconds))


def user_frame(user_id: int, frame: dict[str, Any]) -> None:
    """Send `frame` (a rooms/protocol.py builder's dict) to every connection of the user, on
    every process, once the transaction commits."""
    send_on_commit(UserFrame(user_id=user_id, frame=frame))


def user_close(user_id: int, code: int, session_key: str | None = None) -> None:
    """Close every connection of the user (only those that web session authenticated, with
    `session_key`) with `code`, on every process, once the transaction commits."""
    send_on_commit(UserClose(user_id=user_id, code=code, session_key=session_key))


def user_site_banned(*, user_id: int) -> None:
    """Every socket of the user, on every process, closes with 4003."""
    from rooms.protocol import CLOSE_BANNED

    user_close(user_id, CLOSE_BANNED)


def user_credentials_ended(*, user_id: int, session_key: str | None = None) -> None:
    """A user's credentials ended: with `session_key`, the connections that web session
    authenticated (logout); without, all of the user's (password change, deactivation). They close
    with 4001 on every process once the transaction commits (CONTRACT §7), through the same
    per-user close as a site ban; the hub's heartbeat re-check (accounts/credentials.py) closes any
    a lost event left open. Called by accounts/services.py only."""
    from rooms.protocol import CLOSE_UNAUTHENTICATED

    user_close(user_id, CLOSE_UNAUTHENTICATED, session_key)
    scope = "session" if session_key else "all"
    # The session key itself is a credential: it is never logged.
    transaction.on_commit(lambda: log_event(logger, "credentials_ended", user_id=user_id, scope=scope))
