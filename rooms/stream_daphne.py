"""What the event stream needs from daphne and Twisted beyond ASGI, in one place.

ASGI has no way to ask how much of a response is still queued for a client, nor to exempt one
long response from daphne's `http_timeout` (which would end every stream after 60 s). Under
daphne the ASGI `send` is `partial(Server.handle_reply, request)`, so the Twisted request, its
channel and its transport are reachable; `check()` verifies at start-up that they still look the
way this module expects, so a daphne or Twisted upgrade fails loudly instead of silently
buffering streams. Outside daphne (another ASGI server, in-process tests) every function here
degrades to a no-op and the stream still works, without the slow-reader bound.
"""

from __future__ import annotations

from typing import Any


def daphne_request(send: Any) -> Any | None:
    """The daphne `WebRequest` behind an ASGI `send`, or None outside daphne."""
    args = getattr(send, "args", ())
    request = args[0] if args else None
    return request if hasattr(request, "check_timeouts") and hasattr(request, "channel") else None


def _transport(request: Any) -> Any | None:
    channel = getattr(request, "channel", None)
    return getattr(channel, "transport", None) if channel is not None else None


def keep_open(request: Any) -> None:
    """Exempt this response from daphne's `http_timeout`: a stream is meant to last."""
    request.check_timeouts = _never_times_out


def _never_times_out() -> None:
    return None


def pending_bytes(request: Any) -> int:
    """Bytes written to this response that the client has not read yet (Twisted's write buffer)."""
    transport = _transport(request)
    if transport is None:
        return 0
    buffered = len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
    return buffered + getattr(transport, "_tempDataLen", 0)


def abort(request: Any) -> None:
    """Drop the connection now, discarding what is queued (a client that does not read)."""
    transport = _transport(request)
    if transport is not None:
        transport.abortConnection()


def check() -> None:
    """Fail at start-up if daphne's request or Twisted's transport changed shape."""
    from daphne.http_protocol import WebRequest
    from twisted.internet.abstract import FileDescriptor

    if not callable(getattr(WebRequest, "check_timeouts", None)):
        raise RuntimeError("daphne's WebRequest has no check_timeouts(): rooms/stream_daphne.py needs updating")
    descriptor = FileDescriptor(reactor=_NoReactor())  # type: ignore[arg-type]  # any truthy object: the global reactor stays untouched
    for name in ("dataBuffer", "offset", "_tempDataLen"):
        if not hasattr(descriptor, name):
            raise RuntimeError(f"Twisted's transports have no {name}: rooms/stream_daphne.py needs updating")


class _NoReactor:
    """Stands in for a reactor when building a FileDescriptor only to look at its attributes."""
