"""The /ws/chat/ frames (CONTRACT §3): one schema per inbound type, one builder per outbound type.

`message_dict` is shared with the REST serializer so web and mobile see the same JSON.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.html import strip_tags

from rooms.exceptions import BadRequest, TooLarge

# WebSocket close codes (CONTRACT §3, §6, §7; docs/contract-notes.md).
CLOSE_UNAUTHENTICATED = 4001  # no valid credentials, or they ended (logout, password change)
CLOSE_BANNED = 4003  # banned site-wide
CLOSE_FLOOD = 4008  # too many bad frames
CLOSE_SLOW_READER = 4009  # too much waiting to be read; reconnect and resume with `after`
CLOSE_SHUTTING_DOWN = 4012  # the process is stopping; reconnect (elsewhere) and resume
CLOSE_TOO_MANY_CONNECTIONS = 4029  # the user already holds CHAT_MAX_SOCKETS_PER_USER sockets here

SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
CLIENT_ID_MAX = 64


def iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


EXCERPT_CHARS = 100


def message_text(body: str) -> str:
    """A stored (sanitised) body as plain text: tags dropped, entities decoded."""
    return html.unescape(strip_tags(body))


def reply_dict(message) -> dict[str, Any] | None:
    """The `reply_to` of a message object (CONTRACT §5): null, or the replied message's id,
    author and the first 100 characters of its text, the excerpt null once it is deleted."""
    if message.reply_to_id is None:
        return None
    replied = message.reply_to
    if replied is None:  # the replied row itself is gone (only a hard delete does that)
        return None
    return {
        "id": replied.id,
        "author": {"id": replied.author_id, "username": replied.author.username},
        "excerpt": None if replied.deleted is not None else message_text(replied.body)[:EXCERPT_CHARS],
    }


def message_dict(message, *, room_slug: str | None = None, author_username: str | None = None) -> dict[str, Any]:
    """The `message` object of CONTRACT §2/§3/§5, for REST answers and WebSocket frames alike.

    Nothing in it depends on who reads it (no per-recipient data), so a frame is encoded once.
    Load `reply_to__author` with the message to keep this free of queries.
    """
    return {
        "id": message.id,
        "room": room_slug if room_slug is not None else message.room.slug,
        "author": {
            "id": message.author_id,
            "username": author_username if author_username is not None else message.author.username,
        },
        "body": message.body,
        "created": iso(message.created),
        "edited": iso(message.edited),
        "client_id": message.client_id,
        "reply_to": reply_dict(message),
        "mentions": message.mentions or [],
        "reactions": message.reactions or [],
        "version": message.version,
    }


# ----- inbound -----------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinFrame:
    room: str
    after: int | None = None


@dataclass(frozen=True)
class LeaveFrame:
    room: str


@dataclass(frozen=True)
class MessageFrame:
    room: str
    body: str
    client_id: str | None = None
    reply_to: int | None = None


@dataclass(frozen=True)
class TypingFrame:
    room: str


@dataclass(frozen=True)
class PingFrame:
    pass


@dataclass(frozen=True)
class ReadFrame:
    """Move the read marker (CONTRACT §5); `last_read_id` is checked by the service."""

    room: str
    last_read_id: int


@dataclass(frozen=True)
class ReactFrame:
    """Add (or with `remove`, take back) a reaction (CONTRACT §5); `emoji` is checked by the service."""

    room: str
    message_id: int
    emoji: str
    remove: bool = False


InboundFrame = JoinFrame | LeaveFrame | MessageFrame | TypingFrame | PingFrame | ReadFrame | ReactFrame


class FrameError(BadRequest):
    """A frame that cannot be acted on; carries the client_id when one could be read."""

    def __init__(self, detail: str, *, client_id: str | None = None, too_large: bool = False):
        super().__init__(detail)
        self.client_id = client_id
        if too_large:
            self.code = TooLarge.code


def _room(data: dict) -> str:
    room = data.get("room")
    if not isinstance(room, str) or not SLUG_RE.match(room):
        raise BadRequest('"room" must be a room slug: 1-64 letters, digits, "-" or "_".')
    return room


def _client_id(data: dict) -> str | None:
    client_id = data.get("client_id")
    if client_id is None:
        return None
    if not isinstance(client_id, str) or not 1 <= len(client_id) <= CLIENT_ID_MAX:
        raise BadRequest(f'"client_id" must be a string of 1-{CLIENT_ID_MAX} characters when given.')
    return storable_text_check(client_id, field="client_id")


def storable_text_check(text: str, *, field: str) -> str:
    """`text` if a database can store it: no NUL character (PostgreSQL text cannot hold one) and
    no lone surrogate (`"\\ud800"` in JSON decodes to one; it has no UTF-8 form). BadRequest else."""
    if "\x00" in text:
        raise BadRequest(f'"{field}" must not contain NUL characters (U+0000).')
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(
            f'"{field}" contains a lone UTF-16 surrogate (such as "\\ud800" without its pair); send valid Unicode.'
        ) from None
    return text


def _parse_join(data: dict) -> JoinFrame:
    after = data.get("after")
    if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 0):
        raise BadRequest('"after" must be a non-negative integer message id when given.')
    return JoinFrame(room=_room(data), after=after)


def message_body_check(body: Any) -> str:
    """The one rule for a message body, on the socket and REST alike: a string, not blank, at most
    CHAT_MAX_BODY_CHARS characters. BadRequest or TooLarge otherwise."""
    if not isinstance(body, str):
        raise BadRequest('"body" must be a string.')
    if len(body) > settings.CHAT_MAX_BODY_CHARS:
        raise TooLarge(f"Message body is {len(body)} characters; the limit is {settings.CHAT_MAX_BODY_CHARS}.")
    if not body.strip():
        raise BadRequest('"body" must not be empty.')
    return storable_text_check(body, field="body")


# PostgreSQL bigint: the largest id a row can have (chatsite.api.fields.MAX_ID is the same).
MAX_MESSAGE_ID = 2**63 - 1


def message_id_check(value: Any, *, field: str) -> int:
    """A message id as JSON gives it: an integer 1..2**63-1, not a bool, float or string."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_MESSAGE_ID:
        raise BadRequest(f'"{field}" must be a message id: a positive integer.')
    return value


def _parse_message(data: dict) -> MessageFrame:
    client_id = None
    try:
        client_id = _client_id(data)
        room = _room(data)
        body = message_body_check(data.get("body"))
        reply_to = data.get("reply_to")
        if reply_to is not None:
            reply_to = message_id_check(reply_to, field="reply_to")
    except (BadRequest, TooLarge) as error:
        raise FrameError(error.detail, client_id=client_id, too_large=isinstance(error, TooLarge)) from None
    return MessageFrame(room=room, body=body, client_id=client_id, reply_to=reply_to)


def read_marker_check(value: Any) -> int:
    """A `last_read_id` as a client gives it (socket and REST alike): a non-negative JSON integer;
    a huge one is only 'beyond the last message' and clamps like any other. BadRequest otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest('"last_read_id" must be a non-negative integer message id.')
    return min(value, MAX_MESSAGE_ID)


def _parse_read(data: dict) -> ReadFrame:
    room = _room(data)
    if "last_read_id" not in data:
        raise BadRequest('"last_read_id" is required: the id of the last message the user has seen.')
    return ReadFrame(room=room, last_read_id=read_marker_check(data["last_read_id"]))


def _parse_react(data: dict) -> ReactFrame:
    room = _room(data)
    message_id = message_id_check(data.get("message_id"), field="message_id")
    emoji = data.get("emoji")
    if not isinstance(emoji, str):
        raise BadRequest('"emoji" must be a string: one emoji or a :short_code:.')
    remove = data.get("remove", False)
    if remove is None:
        remove = False
    if not isinstance(remove, bool):
        raise BadRequest('"remove" must be true or false when given.')
    return ReactFrame(room=room, message_id=message_id, emoji=emoji, remove=remove)


_PARSERS: dict[str, Callable[[dict], InboundFrame]] = {
    "join": _parse_join,
    "leave": lambda data: LeaveFrame(room=_room(data)),
    "message": _parse_message,
    "typing": lambda data: TypingFrame(room=_room(data)),
    "ping": lambda data: PingFrame(),
    "read": _parse_read,
    "react": _parse_react,
}


def parse_frame(text: str) -> InboundFrame:
    """Validate one text frame into its dataclass, or raise FrameError (bad_request/too_large)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise FrameError("Frame is not valid JSON.") from None
    if not isinstance(data, dict):
        raise FrameError('Frame must be a JSON object with a "type".')
    frame_type = data.get("type")
    parser = _PARSERS.get(frame_type) if isinstance(frame_type, str) else None
    if parser is None:
        known = ", ".join(sorted(_PARSERS))
        raise FrameError(f"Unknown frame type {frame_type!r}; expected one of: {known}.")
    try:
        return parser(data)
    except FrameError:
        raise
    except BadRequest as error:
        raise FrameError(error.detail) from None


# ----- outbound ----------------------------------------------------------------------------


def dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def joined_frame(*, room: str, last_id: int, online: list[str], version: int) -> dict[str, Any]:
    """`version`: the room's change counter read with `last_id` (CONTRACT §6); changes above it
    arrive live, those up to it are for `GET rooms/{slug}/changes/?since=`."""
    return {"type": "joined", "room": room, "last_id": last_id, "online": online, "version": version}


def left_frame(*, room: str, reason: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "left", "room": room}
    if reason:
        frame["reason"] = reason
    return frame


def message_frame(message: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "message": message}


def message_edited_frame(message: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message_edited", "message": message}


def message_deleted_frame(*, room: str, message_id: int, version: int) -> dict[str, Any]:
    return {"type": "message_deleted", "room": room, "id": message_id, "version": version}


def notification_frame(notification: dict[str, Any]) -> dict[str, Any]:
    """To every socket of the notified user (CONTRACT §5); `notification` from notification_dict."""
    return {"type": "notification", "notification": notification}


def resync_frame(*, room: str) -> dict[str, Any]:
    return {"type": "resync", "room": room}


def typing_frame(*, room: str, user: str) -> dict[str, Any]:
    return {"type": "typing", "room": room, "user": user}


def presence_frame(*, room: str, user: str, online: bool) -> dict[str, Any]:
    return {"type": "presence", "room": room, "user": user, "online": online}


def read_state_frame(state: dict[str, Any]) -> dict[str, Any]:
    """`read_state` (CONTRACT §5) from `rooms.conversations.room_read_state`'s dict."""
    return {
        "type": "read_state",
        "room": state["room"],
        "last_read_id": state["last_read_id"],
        "unread_count": state["unread_count"],
        "mention_count": state["mention_count"],
    }


def reaction_frame(
    *, room: str, message_id: int, emoji: str, user: str, added: bool, count: int, version: int
) -> dict[str, Any]:
    """`reaction` (CONTRACT §5): `count` is that emoji's count after the change."""
    return {
        "type": "reaction",
        "room": room,
        "message_id": message_id,
        "emoji": emoji,
        "user": user,
        "added": added,
        "count": count,
        "version": version,
    }


def pong_frame() -> dict[str, Any]:
    return {"type": "pong"}


def error_frame(
    *, code: str, detail: str, client_id: str | None = None, retry_after: float | None = None
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
    if client_id is not None:
        frame["client_id"] = client_id
    if retry_after is not None:
        frame["retry_after"] = retry_after
    return frame
