"""Writing the same frame to many sockets cheaply under daphne.

The ASGI path (`websocket.send` -> daphne -> autobahn) encodes and frames the text once per
socket, and Twisted registers each socket with epoll for every write: 55-95 µs per delivery in
docs/benchmarks.md. A room broadcast is the same frame for every socket, so it is framed once
(autobahn's broadcast API, `prepareMessage`) and written straight to each socket whose Twisted
write buffer is empty; a socket with data still queued gets it through Twisted, behind that data,
so order is kept. Anything that is not a daphne WebSocket (Channels' test communicator, another
ASGI server) falls back to the ordinary ASGI send.
"""

from __future__ import annotations

from typing import Any


class Frame:
    """One outgoing text frame, framed at most once for all the sockets it goes to."""

    __slots__ = ("_prepared", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._prepared = None

    def prepared_for(self, protocol: Any):
        if self._prepared is None:
            self._prepared = protocol.factory.prepareMessage(self.text.encode("utf-8"))
        return self._prepared


def daphne_protocol(send: Any) -> Any | None:
    """The autobahn protocol behind a daphne ASGI `send` (`partial(Server.handle_reply, protocol)`)."""
    args = getattr(send, "args", ())
    protocol = args[0] if args else None
    return protocol if hasattr(protocol, "sendPreparedMessage") and hasattr(protocol, "factory") else None


def write_frame(protocol: Any, frame: Frame) -> bool:
    """Write `frame` to an open daphne WebSocket; False if the socket is not open (caller falls back)."""
    if protocol.state != protocol.STATE_OPEN:
        return False
    prepared = frame.prepared_for(protocol)
    transport = protocol.transport
    sock = getattr(transport, "socket", None)
    if (
        protocol._perMessageCompress is not None
        or sock is None
        or transport.dataBuffer
        or transport._tempDataBuffer
        or not transport.connected
        or transport.disconnecting
    ):
        protocol.sendPreparedMessage(prepared)
        return True
    data = prepared.payloadHybi
    try:
        sent = sock.send(data)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        protocol.sendPreparedMessage(prepared)  # let Twisted meet the error and report the loss
        return True
    if sent < len(data):
        transport.write(data[sent:])
    return True
