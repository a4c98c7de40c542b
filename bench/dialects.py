"""The two wire dialects the load tool speaks: chatsite's /ws/chat/ frames and Socket.IO v5 over
Engine.IO v4 on a raw WebSocket (no long-polling), as bench/socketio/server.js serves them.

Both carry the same chat frames; only the envelope differs:

  chatsite   {"type":"message","message":{...}}      {"type":"joined",...}
  socketio   42["message",{...}]                      42["joined",{...}]

Engine.IO's own packets on the socket.io side: the server opens with `0{"sid":..,"pingInterval":..}`,
the client connects to the main namespace with `40` and is answered `40{"sid":..}` (or
`44{"message":..}` when refused), the server pings with `2` and expects `3`, `1` closes.

`delivery_matcher(cid_prefix)` is the receive hot path: a function that recognises a broadcast
of one of the tool's own messages and returns (message id, the tool's sequence number) with one
regular expression instead of a json.loads per frame; anything it is not sure of returns None,
and the caller parses that frame in full with `decode`. tests/bench/test_dialects.py checks that
both agree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

CID_KEY = b'"client_id":'


def delivery_pattern(prefix: bytes, suffix: bytes, cid_prefix: bytes) -> re.Pattern[bytes]:
    """`<prefix><id>,...,"client_id":"<cid_prefix><sequence>"...<suffix>`: groups (id, sequence)."""
    pattern = re.escape(prefix) + rb"(\d+),.*" + re.escape(CID_KEY + b'"' + cid_prefix) + rb'(\d+)".*'
    return re.compile(pattern + re.escape(suffix) + rb"\Z", re.S)


def delivery_matcher(pattern: re.Pattern[bytes]) -> Callable[[bytes], tuple[int, int] | None]:
    """A function: payload -> (id, sequence) of a broadcast of the tool's message, or None.

    A match of `pattern` (one regular expression, a fraction of a json.loads) in a frame where
    `"client_id":` occurs exactly once. That is exact on frames as CONTRACT §3 writes them: in
    valid JSON `"client_id":` can only be an object key (a quote inside a string is escaped), and
    every message object has that key, so the only occurrence is the message's own; `id` is the
    message object's first key. A frame written otherwise (another key order, spaces after
    separators) returns None and the caller parses it in full: correct, only slower.
    LoadTool.on_text inlines this function (a call less per frame).
    """
    match = pattern.match

    def delivery(payload: bytes) -> tuple[int, int] | None:
        m = match(payload)
        if m is None or payload.count(CID_KEY) != 1:
            return None
        mid, number = m.groups()
        return int(mid), int(number)

    return delivery


class Chatsite:
    """chatsite's /ws/chat/ (CONTRACT §3): one JSON object per frame, its kind in "type"."""

    name = "chatsite"
    default_path = "/ws/chat/"
    handshake_steps = False  # joined straight after the WebSocket handshake
    message_prefix = b'{"type":"message","message":{"id":'
    message_suffix = b"}}"

    def delivery_pattern(self, cid_prefix: bytes) -> re.Pattern[bytes]:
        return delivery_pattern(self.message_prefix, self.message_suffix, cid_prefix)

    def delivery_matcher(self, cid_prefix: bytes) -> Callable[[bytes], tuple[int, int] | None]:
        return delivery_matcher(self.delivery_pattern(cid_prefix))

    @staticmethod
    def decode(payload: bytes) -> tuple[str, dict[str, Any]] | None:
        """(kind, frame) with frame["message"] the message object for kind "message"; None if unparsable."""
        try:
            f = json.loads(payload)
            return f["type"], f
        except (ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def encode(kind: str, fields: str) -> bytes:
        """A client frame; `fields` is the JSON text of the other members, without braces."""
        return b'{"type":"%s",%s}' % (kind.encode(), fields.encode())

    @staticmethod
    def control(payload: bytes) -> tuple[str, bytes | None] | None:
        return None


class SocketIO:
    """Socket.IO v5 packets over Engine.IO v4, websocket transport, main namespace."""

    name = "socketio"
    default_path = "/socket.io/?EIO=4&transport=websocket"
    handshake_steps = True  # open packet, then namespace connect, before the join
    message_prefix = b'42["message",{"id":'
    message_suffix = b"}]"

    def delivery_pattern(self, cid_prefix: bytes) -> re.Pattern[bytes]:
        return delivery_pattern(self.message_prefix, self.message_suffix, cid_prefix)

    def delivery_matcher(self, cid_prefix: bytes) -> Callable[[bytes], tuple[int, int] | None]:
        return delivery_matcher(self.delivery_pattern(cid_prefix))

    @staticmethod
    def decode(payload: bytes) -> tuple[str, dict[str, Any]] | None:
        """The event `42["kind",data]` as chatsite's (kind, frame); None for anything else."""
        if not payload.startswith(b"42"):
            return None
        try:
            event = json.loads(payload[2:])
            kind, data = event[0], event[1] if len(event) > 1 else {}
        except (ValueError, IndexError, TypeError, KeyError):
            return None
        if not isinstance(kind, str):
            return None
        if kind == "message":
            return kind, {"type": kind, "message": data}
        frame = dict(data) if isinstance(data, dict) else {"data": data}
        frame["type"] = kind
        return kind, frame

    @staticmethod
    def encode(kind: str, fields: str) -> bytes:
        return b'42["%s",{%s}]' % (kind.encode(), fields.encode())

    @staticmethod
    def control(payload: bytes) -> tuple[str, bytes | None] | None:
        """Engine.IO / Socket.IO packets that are not events: (what, the answer to send or None)."""
        if payload == b"2":
            return "ping", b"3"
        if payload.startswith(b"0{"):
            return "open", b"40"  # connect to the main namespace
        if payload.startswith(b"40"):
            return "connected", None
        if payload.startswith(b"44"):
            return "connect_error", None
        if payload == b"1" or payload == b"41":
            return "closing", None
        return None


DIALECTS = {"chatsite": Chatsite, "socketio": SocketIO}
