"""The Server-Sent Events wire format of `/api/v1/stream/` (CONTRACT §6): query, cursor, events.

Pure functions, no I/O: what `rooms/protocol.py` is to the WebSocket, this is to the stream. An
event is one WebSocket frame: `event:` its type, `data:` its JSON on one line (JSON never contains
a raw line break), and for the events that move a room forward (`joined`, `message`, `resync`)
an `id:` cursor `S1:N1,S2:N2`, the last message id the stream has passed per room. The browser
sends that cursor back as `Last-Event-ID` when it reconnects.
"""

from __future__ import annotations

from rooms.exceptions import BadRequest
from rooms.protocol import SLUG_RE

MAX_ROOMS = 20
# 20 rooms of 64-character slugs with 19-digit ids fit well under this; anything longer is not ours.
MAX_CURSOR_CHARS = 2000
MAX_ID_DIGITS = 18  # message ids are PostgreSQL bigints: 18 digits always fit

PING = b": ping\n\n"
STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # nginx (and proxies that honour it) must pass each event through at once, not buffer them.
    (b"x-accel-buffering", b"no"),
]


def parse_rooms(value: str | None) -> list[str]:
    """The slugs of `?rooms=S1,S2`: 1 to 20, each a slug; repeats count once, order kept."""
    if value is None or not value.strip():
        raise BadRequest("Name the rooms to stream: ?rooms=S1,S2 (1 to 20 room slugs, comma-separated).")
    slugs: list[str] = []
    for slug in value.split(","):
        slug = slug.strip()
        if not SLUG_RE.match(slug):
            raise BadRequest(
                f"{_shown(slug)} is not a room slug (1-64 letters, digits, '-' or '_'); "
                "write ?rooms=S1,S2 with no empty entries."
            )
        if slug not in slugs:
            slugs.append(slug)
    if len(slugs) > MAX_ROOMS:
        raise BadRequest(f"A stream carries at most {MAX_ROOMS} rooms, {len(slugs)} were asked; open a second stream.")
    return slugs


def parse_cursor(value: str) -> dict[str, int]:
    """`S1:N1,S2:N2` (from `Last-Event-ID` or `?after=`) as {slug: last id}; BadRequest if malformed."""
    value = value.strip()
    if not value:
        return {}
    if len(value) > MAX_CURSOR_CHARS:
        raise BadRequest(f"The cursor is longer than {MAX_CURSOR_CHARS} characters; send back the id of an event.")
    cursor: dict[str, int] = {}
    for entry in value.split(","):
        slug, separator, number = entry.strip().partition(":")
        if (
            not separator
            or not SLUG_RE.match(slug)
            or not number.isascii()
            or not number.isdigit()
            or len(number) > MAX_ID_DIGITS
        ):
            raise BadRequest(
                f"{_shown(entry)} is not a cursor entry: a cursor is S1:N1,S2:N2 (room slug, colon, "
                f"last message id, at most {MAX_ID_DIGITS} digits), as sent in the events' id: field."
            )
        if slug in cursor:
            raise BadRequest(f"The cursor names {slug!r} twice; send back the id of an event unchanged.")
        cursor[slug] = int(number)
    return cursor


def format_cursor(last_ids: dict[str, int]) -> str:
    """{slug: last id} as the `id:` of an event, rooms in the order they were joined."""
    return ",".join(f"{slug}:{last_id}" for slug, last_id in last_ids.items())


def event_bytes(event_type: str, data: str, *, event_id: str | None = None) -> bytes:
    """One event: `event:`, optional `id:`, `data:` (`data` is JSON text: it has no line breaks)."""
    head = f"event: {event_type}\n"
    if event_id is not None:
        head += f"id: {event_id}\n"
    return f"{head}data: {data}\n\n".encode()


def retry_bytes(milliseconds: int) -> bytes:
    """The `retry:` field: how long a browser's EventSource waits before reconnecting."""
    return f"retry: {milliseconds}\n\n".encode()


def _shown(text: str) -> str:
    """User text quoted for an error message, cut short and with control characters escaped."""
    return repr(text[:40] + ("..." if len(text) > 40 else ""))
