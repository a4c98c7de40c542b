"""Additions to the generated OpenAPI schema for what is served outside DRF.

`GET /api/v1/stream/` (CONTRACT §6) is a plain ASGI application (rooms/stream.py) routed before
Django, so drf-spectacular cannot see it; this postprocessing hook (SPECTACULAR_SETTINGS) adds it,
so the schema lists every path of the API a client may call.
"""

from __future__ import annotations

from typing import Any

STREAM_PATH = "/api/v1/stream/"

_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"code": {"type": "string"}, "detail": {"type": "string"}},
    "required": ["code", "detail"],
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_SCHEMA}}}


def _query(name: str, description: str, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": {"type": "string"}, "description": description}


STREAM_OPERATION: dict[str, Any] = {
    "operationId": "stream_open",
    "summary": "Server-Sent Events stream of rooms (the fallback when WebSockets are refused)",
    "description": (
        "Served outside DRF (rooms/stream.py); docs/realtime.md, 'Event stream (SSE)'. Each event is one "
        "WebSocket frame: `event:` its type, `data:` its JSON on one line. It starts with `retry: 2000` and "
        "a `joined` event per room (or an `error` event carrying the room; the others go on), then the "
        "rooms' live frames. `message` events (and `joined`, `resync`) carry an `id:` cursor "
        "`S1:N1,S2:N2`; reconnecting with `Last-Event-ID` (which wins over `?after=`) replays the missed "
        "messages like `join` with `after` (at most 500, else `resync`). A `: ping` comment comes every "
        '15 s. A site ban sends `event: close` with `data: {"code":4003}` and ends the stream. Post, type '
        "and read by REST while streaming."
    ),
    "tags": ["stream"],
    "parameters": [
        _query("rooms", "1 to 20 room slugs, comma-separated.", required=True),
        _query("after", "A cursor `S1:N1,S2:N2` to resume after (ignored when Last-Event-ID is sent)."),
        _query("ticket", "A single-use ticket from auth/ws-ticket/, for clients that cannot send headers."),
        {
            "name": "Last-Event-ID",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "The `id:` of the last event received (browsers send it when they reconnect).",
        },
    ],
    "responses": {
        "200": {
            "description": "`text/event-stream`, with `Cache-Control: no-cache` and `X-Accel-Buffering: no`.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        "400": _error("Bad `rooms` (none, over 20, not slugs) or a malformed cursor."),
        "401": _error("No valid credentials (session cookie from this site, Bearer JWT or ticket)."),
        "403": _error("An Origin that is not allowed, or a user banned site-wide."),
        "405": _error("Not GET."),
        "429": _error("The user already holds CHAT_MAX_SOCKETS_PER_USER sockets and streams here; Retry-After."),
        "503": _error("The process is shutting down: reconnect (possibly elsewhere) and resume."),
    },
}


def add_stream_path(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document the event stream beside the DRF endpoints."""
    operation = dict(STREAM_OPERATION)
    me = result.get("paths", {}).get("/api/v1/me/", {}).get("get", {})
    if "security" in me:
        operation["security"] = me["security"]  # the same schemes as every authenticated endpoint
    result.setdefault("paths", {})[STREAM_PATH] = {"get": operation}
    return result
