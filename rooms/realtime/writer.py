"""The daphne adapter: every daphne, Twisted and autobahn internal chatsite relies on, in one module.

What it does with them:

* **Writing** (`SocketWriter`): frames go to a socket synchronously, built once per frame for
  every socket (`Frame`), several frames queued for one socket in the same event-loop tick merged
  into one write, straight to the socket when Twisted holds nothing for it. A socket with more
  than `CHAT_SLOW_READER_BYTES` (1 MiB) waiting for it is closed with 4009 (CONTRACT §6).
* **Reading**: daphne queues every inbound frame for the application without bound; the socket's
  transport is paused while `INBOUND_QUEUE_LIMIT` frames wait and resumed when they drain.
* **Heartbeats**: daphne restarts its ping timer on every inbound frame and autobahn forgives a
  missing pong on any inbound data, so a client that sends but never reads was never timed out.
  Here pings go out every `CHAT_WS_PING_INTERVAL` whatever the client sends, and only a pong ends
  the wait for it.
* **Event streams** (rooms/stream.py): the daphne request behind a stream's ASGI `send`, exempt
  from `http_timeout`, its bytes waiting in Twisted, and an abort for a stream that does not read.
* **Header deadline**: a request whose headers are not complete `HEADER_DEADLINE_SECONDS` after
  connecting is dropped (Twisted restarts its idle timer on every byte: slowloris).
* **Shutdown**: a Twisted "before shutdown" trigger stops listening, closes every socket with
  4012, lets the registered hooks (the hubs) forget their sockets, and waits up to
  `SHUTDOWN_GRACE_SECONDS` for the close handshakes.

`install()` is called once by chatsite/asgi.py when the application is imported, which is how
both `daphne chatsite.asgi:application` and `python -m chatsite.serve` start. It checks every
internal once; if one is missing (another daphne or autobahn version), the fast path is disabled
with one warning and each socket uses the plain ASGI `send`, decided before anything is written.
Outside daphne (Channels' test communicator, another ASGI server) the ASGI `send` is used too.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from rooms.protocol import CLOSE_SHUTTING_DOWN, CLOSE_SLOW_READER

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 3.0
EXIT_WATCHDOG_SECONDS = 1.5
HEADER_DEADLINE_SECONDS = 10.0
# Inbound frames a socket may have waiting for its consumer before its transport stops reading.
INBOUND_QUEUE_LIMIT = 64
INBOUND_POLL_SECONDS = 0.02
LISTEN_BACKLOG = 1024

# The attributes, per class, that this module uses; checked once by `check_internals()`.
_REQUIRED = {
    "daphne.server:Server": ("handle_reply", "run"),
    "daphne.ws_protocol:WebSocketProtocol": ("onMessage", "check_timeouts", "sendClose", "STATE_OPEN"),
    "daphne.http_protocol:HTTPFactory": ("buildProtocol",),
    "daphne.http_protocol:WebRequest": ("process", "check_timeouts"),
    "twisted.internet.abstract:FileDescriptor": ("dataBuffer", "offset", "write", "pauseProducing"),
}
# Instance attributes, checked on the first socket (they do not exist on the classes).
_REQUIRED_ON_PROTOCOL = ("state", "transport", "_perMessageCompress", "application_queue", "last_ping")
_REQUIRED_ON_TRANSPORT = ("_tempDataLen", "dataBuffer", "offset", "connected", "disconnecting")


class _State:
    installed = False
    fast_path = False  # decided by install(); False outside daphne
    instance_checked = False
    shutdown_hooks: list[Callable[[], Awaitable[None]]] = []
    writers: set[SocketWriter] = set()
    dirty: list[SocketWriter] = []
    flush_scheduled = False
    closing = False
    server: Any = None  # daphne's Server, found behind the listening ports once running


def _resolve(dotted: str) -> Any:
    module_name, _, attr = dotted.partition(":")
    module = sys.modules.get(module_name) or __import__(module_name, fromlist=[attr])
    return getattr(module, attr)


def check_internals() -> list[str]:
    """What this module needs from daphne, Twisted and autobahn and cannot find (empty: all there)."""
    missing = []
    for dotted, attrs in _REQUIRED.items():
        try:
            owner = _resolve(dotted)
        except (ImportError, AttributeError):
            missing.append(dotted)
            continue
        missing += [f"{dotted}.{attr}" for attr in attrs if not hasattr(owner, attr)]
    return missing


def _disable_fast_path(reason: str) -> None:
    if _State.fast_path:
        logger.warning("daphne fast path disabled, using the ASGI send for every socket: %s", reason)
    _State.fast_path = False


# ----- frames -------------------------------------------------------------------------------


def ws_text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented RFC 6455 text frame (what a server sends), header and payload."""
    length = len(payload)
    if length < 126:
        header = bytes((0x81, length))
    elif length < 65536:
        header = bytes((0x81, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + length.to_bytes(8, "big")
    return header + payload


class Frame:
    """One outgoing text frame: encoded and WebSocket-framed at most once, for every socket it goes to."""

    __slots__ = ("_wire", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = ws_text_frame(self.text.encode("utf-8"))
        return self._wire


# ----- writing ------------------------------------------------------------------------------


def _daphne_protocol(send: Any) -> Any | None:
    """The autobahn protocol behind daphne's ASGI `send` (`functools.partial(Server.handle_reply, protocol)`)."""
    args = getattr(send, "args", ())
    protocol = args[0] if args else None
    return protocol if protocol is not None and hasattr(protocol, "sendClose") else None


def _protocol_usable(protocol: Any) -> bool:
    """The first socket's protocol and transport have everything the fast path touches (checked once)."""
    if _State.instance_checked:
        return _State.fast_path
    _State.instance_checked = True
    missing = [attr for attr in _REQUIRED_ON_PROTOCOL if not hasattr(protocol, attr)]
    transport = getattr(protocol, "transport", None)
    missing += [f"transport.{attr}" for attr in _REQUIRED_ON_TRANSPORT if not hasattr(transport, attr)]
    if missing:
        _disable_fast_path("missing " + ", ".join(missing))
    return _State.fast_path


def waiting_bytes(transport: Any) -> int:
    """Bytes Twisted holds for a transport that the kernel has not taken yet."""
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


class SocketWriter:
    """Writes one socket's frames in call order, synchronously; falls back to the ASGI `send`.

    Build it right after `websocket.accept` with the consumer's `send` (its `base_send`).
    `on_closed` is called once when the writer closes the socket itself (slow reader).
    """

    __slots__ = ("_fallback", "_fallback_task", "_limit", "_pending", "_pending_bytes", "closed", "protocol", "send")

    def __init__(self, send: Callable[[dict], Awaitable[None]]) -> None:
        self.send = send
        self.closed = False
        # Read once: a Django setting costs a LazyObject lookup, and write() runs per delivery.
        self._limit: int = settings.CHAT_SLOW_READER_BYTES
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._fallback: list[dict] = []
        self._fallback_task: asyncio.Task | None = None
        protocol = _daphne_protocol(send) if _State.fast_path else None
        self.protocol = protocol if protocol is not None and _protocol_usable(protocol) else None
        if self.protocol is not None:
            _State.writers.add(self)

    @property
    def is_fast(self) -> bool:
        return self.protocol is not None

    def write(self, frame: Frame) -> None:
        """Queue a shared frame; it is written at the end of this event-loop tick."""
        if self.closed:
            return
        if self.protocol is None:
            self._queue_asgi({"type": "websocket.send", "text": frame.text})
            return
        data = frame.wire
        self._pending.append(data)
        self._pending_bytes += len(data)
        if len(self._pending) == 1:
            _State.dirty.append(self)
            if not _State.flush_scheduled:
                _State.flush_scheduled = True
                asyncio.get_running_loop().call_soon(_flush_dirty)
        if self._pending_bytes > self._limit:
            self._flush()  # the kernel may take it; if not, this closes the slow reader

    def write_text(self, text: str) -> None:
        """Queue a frame for this socket alone (answers, replay)."""
        self.write(Frame(text))

    def close(self, code: int) -> None:
        """Close the socket with `code` after what is already queued for it."""
        if self.closed:
            return
        if self.protocol is None:
            self._queue_asgi({"type": "websocket.close", "code": code})
            self.closed = True
            return
        self._flush()
        if not self.closed:
            self._close_protocol(code)

    def forget(self) -> None:
        """The socket is gone (its consumer disconnected): drop anything still queued."""
        self.closed = True
        self._pending.clear()
        self._pending_bytes = 0
        _State.writers.discard(self)

    # --- the daphne fast path ---

    def _close_protocol(self, code: int) -> None:
        self.closed = True
        self._pending.clear()
        self._pending_bytes = 0
        _State.writers.discard(self)
        protocol: Any = self.protocol
        if protocol.state == protocol.STATE_OPEN:
            protocol.sendClose(code=code)

    def _flush(self) -> None:
        if not self._pending or self.closed:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        protocol: Any = self.protocol
        transport = protocol.transport
        if protocol.state != protocol.STATE_OPEN or transport is None or transport.disconnecting:
            return  # closing or closed: the client resumes after its last id
        waiting = waiting_bytes(transport)
        sock = getattr(transport, "socket", None)
        if waiting == 0 and sock is not None and transport.connected:
            # Nothing queued in Twisted: hand the bytes to the kernel now rather than registering
            # for writability and writing on a later loop iteration (most of a delivery's cost).
            try:
                sent = sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # Twisted meets the same error on its own write and reports the loss
            if sent == len(data):
                return
            data = data[sent:]
        if waiting + len(data) > self._limit:
            logger.info("closing a slow reader: %d bytes waiting for it", waiting + len(data))
            self._close_protocol(CLOSE_SLOW_READER)
            return
        transport.write(data)

    # --- the ASGI fallback ---

    def _queue_asgi(self, message: dict) -> None:
        self._fallback.append(message)
        if self._fallback_task is None or self._fallback_task.done():
            self._fallback_task = asyncio.get_running_loop().create_task(self._drain_asgi())

    async def _drain_asgi(self) -> None:
        while self._fallback:
            message = self._fallback.pop(0)
            try:
                await self.send(message)
            except Exception:  # the peer is gone; the server reports the disconnect separately
                self._fallback.clear()
                self.closed = True
                return

    async def drained(self) -> None:
        """Wait until the ASGI fallback has sent everything queued (tests, shutdown)."""
        while self._fallback_task is not None and not self._fallback_task.done():
            await asyncio.shield(self._fallback_task)


def _flush_dirty() -> None:
    """Write every socket's frames of this tick, one write per socket."""
    _State.flush_scheduled = False
    dirty, _State.dirty = _State.dirty, []
    for writer in dirty:
        writer._flush()


# ----- event streams (long HTTP responses) --------------------------------------------------


def daphne_request(send: Any) -> Any | None:
    """The daphne `WebRequest` behind an HTTP ASGI `send`, or None outside daphne (or without the fast path)."""
    if not _State.fast_path:
        return None
    args = getattr(send, "args", ())
    request = args[0] if args else None
    return request if hasattr(request, "check_timeouts") and hasattr(request, "channel") else None


def _request_transport(request: Any) -> Any | None:
    channel = getattr(request, "channel", None)
    return getattr(channel, "transport", None) if channel is not None else None


def keep_open(request: Any) -> None:
    """Exempt this response from daphne's `http_timeout`: a stream is meant to last."""
    request.check_timeouts = _never_times_out


def _never_times_out() -> None:
    return None


def pending_bytes(request: Any) -> int:
    """Bytes written to this response that the client has not read yet (Twisted's write buffer)."""
    transport = _request_transport(request)
    if transport is None or not hasattr(transport, "_tempDataLen"):
        return 0
    return waiting_bytes(transport)


def abort(request: Any) -> None:
    """Drop the connection now, discarding what is queued (a client that does not read)."""
    transport = _request_transport(request)
    if transport is not None:
        transport.abortConnection()


# ----- daphne hooks -------------------------------------------------------------------------


def _patch_header_deadline(reactor: Any) -> None:
    from daphne.http_protocol import HTTPFactory, WebRequest

    original_process = WebRequest.process
    original_build = HTTPFactory.buildProtocol

    def process(request: Any) -> Any:
        request.channel.chatsite_request_seen = True
        return original_process(request)

    def build_protocol(factory: Any, addr: Any) -> Any:
        protocol = original_build(factory, addr)
        if protocol is None:
            return protocol
        # Twisted wraps the HTTPChannel (which requests know as .channel) in a protocol proxy.
        channel = getattr(protocol, "_channel", protocol)

        def enforce_deadline() -> None:
            transport = getattr(channel, "transport", None)
            if not getattr(channel, "chatsite_request_seen", False) and transport is not None:
                logger.info("dropping %s: request headers not complete after %ss", addr, HEADER_DEADLINE_SECONDS)
                transport.abortConnection()

        deadline = reactor.callLater(HEADER_DEADLINE_SECONDS, enforce_deadline)
        original_lost = protocol.connectionLost

        def connection_lost(reason: Any) -> Any:
            if deadline.active():
                deadline.cancel()
            return original_lost(reason)

        protocol.connectionLost = connection_lost
        return protocol

    WebRequest.process = process
    HTTPFactory.buildProtocol = build_protocol


def _patch_inbound(reactor: Any) -> None:
    from daphne.ws_protocol import WebSocketProtocol

    original_on_message = WebSocketProtocol.onMessage

    def resume_when_drained(protocol: Any) -> None:
        queue = getattr(protocol, "application_queue", None)
        if queue is None or protocol.transport is None or protocol.state == protocol.STATE_CLOSED:
            return
        if queue.qsize() <= INBOUND_QUEUE_LIMIT // 2:
            protocol.chatsite_paused = False
            protocol.transport.resumeProducing()
        else:
            reactor.callLater(INBOUND_POLL_SECONDS, resume_when_drained, protocol)

    def on_message(protocol: Any, payload: bytes, is_binary: bool) -> None:
        # daphne restarts its ping timer on every inbound frame: a client that sends but never
        # reads would never be pinged, so never time out. Keep the timer where it was.
        last_ping = protocol.last_ping
        original_on_message(protocol, payload, is_binary)
        protocol.last_ping = last_ping
        queue = getattr(protocol, "application_queue", None)
        if (
            queue is not None
            and queue.qsize() >= INBOUND_QUEUE_LIMIT
            and not getattr(protocol, "chatsite_paused", False)
        ):
            protocol.chatsite_paused = True
            protocol.transport.pauseProducing()
            reactor.callLater(INBOUND_POLL_SECONDS, resume_when_drained, protocol)

    WebSocketProtocol.onMessage = on_message


def _configure_server(reactor: Any) -> None:
    """Once listening: the project's WebSocket settings on daphne's factory, whatever the command line said."""
    server = _find_server(reactor)
    if server is None:
        _disable_fast_path("daphne's server object was not found behind the listening ports")
        return
    _State.server = server
    for port in _listening_ports(reactor):
        # Twisted listens with a backlog of 50: a burst of reconnecting clients overflows it.
        port.socket.listen(LISTEN_BACKLOG)
    server.ping_interval = settings.CHAT_WS_PING_INTERVAL
    server.ping_timeout = settings.CHAT_WS_PING_TIMEOUT
    # Clients resume after their last id, so a daily forced reconnect is harmless and bounds how
    # long one socket can pin a process across deploys.
    server.websocket_timeout = 86400
    server.application_close_timeout = min(server.application_close_timeout, 5)
    if server.action_logger is not None:
        server.action_logger = _redacting(server.action_logger)
    server.ws_factory.setProtocolOptions(
        # The WebSocket library enforces the 64 KiB limit and answers 1009 itself (an application
        # cannot send 1009); failByDrop=False makes it send that close frame instead of dropping.
        maxMessagePayloadSize=settings.CHAT_MAX_FRAME_BYTES,
        maxFramePayloadSize=settings.CHAT_MAX_FRAME_BYTES,
        failByDrop=False,
        autoPingTimeout=settings.CHAT_WS_PING_TIMEOUT,
        # Only a pong answers a ping: inbound data proves the client sends, not that it reads.
        autoPingRestartOnAnyTraffic=False,
    )


def _redacting(action_logger: Callable[[Any, str, dict], None]) -> Callable[[Any, str, dict], None]:
    """daphne's access log (plain `daphne` at verbosity 1) writes request paths with their query:
    no ticket or token may reach it (CONTRACT §7)."""
    from chatsite.logs import redact

    def log_action(protocol: Any, action: str, details: dict) -> None:
        if isinstance(details.get("path"), str):
            details = {**details, "path": redact(details["path"])}
        action_logger(protocol, action, details)

    return log_action


def _listening_ports(reactor: Any) -> list[Any]:
    from twisted.internet.interfaces import IListeningPort

    return [reader for reader in reactor.getReaders() if IListeningPort.providedBy(reader)]


def _find_server(reactor: Any) -> Any | None:
    for port in _listening_ports(reactor):
        server = getattr(getattr(port, "factory", None), "server", None)
        if server is not None and hasattr(server, "ws_factory"):
            return server
    return None


def _open_protocols() -> list[Any]:
    server = _State.server
    connections = getattr(server, "connections", {}) if server is not None else {}
    return [protocol for protocol in list(connections) if hasattr(protocol, "sendClose")]


def on_shutdown(hook: Callable[[], Awaitable[None]]) -> None:
    """Run `hook` (e.g. a hub forgetting its sockets) when the server shuts down, after the 4012 closes."""
    _State.shutdown_hooks.append(hook)


def is_closing() -> bool:
    """True once the server started shutting down: refuse new handshakes."""
    return _State.closing


async def _shut_down(reactor: Any) -> None:
    deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
    try:
        await asyncio.wait_for(
            asyncio.gather(*(hook() for hook in _State.shutdown_hooks), return_exceptions=True),
            timeout=SHUTDOWN_GRACE_SECONDS,
        )
    except TimeoutError:
        logger.warning("shutdown hooks did not finish in %ss", SHUTDOWN_GRACE_SECONDS)
    # Give the clients' close replies time to arrive; autobahn then closes each TCP connection.
    while time.monotonic() < deadline and any(
        protocol.state != protocol.STATE_CLOSED for protocol in _open_protocols()
    ):
        await asyncio.sleep(0.05)
    from chatsite import metrics

    metrics.mark_this_process_dead()


def _before_shutdown(reactor: Any) -> Any:
    """Stop listening, close every socket with 4012, and hold the reactor until they are closed."""
    from twisted.internet.defer import Deferred

    _State.closing = True
    logger.info("shutting down: closing sockets with %d", CLOSE_SHUTTING_DOWN)
    for port in _listening_ports(reactor):
        port.stopListening()
    # Synchronously, before daphne's own trigger cancels the application instances.
    for protocol in _open_protocols():
        if protocol.state == protocol.STATE_OPEN:
            protocol.sendClose(code=CLOSE_SHUTTING_DOWN)
    for writer in list(_State.writers):
        writer.closed = True
    return Deferred.fromFuture(asyncio.ensure_future(_shut_down(reactor)))


def _mark_dead_at_exit() -> None:
    from chatsite import metrics

    metrics.mark_this_process_dead()


def _exit_watchdog() -> None:
    """After the reactor stopped: a database thread still waiting on the stopped event loop (an
    `async_to_sync` inside a worker thread) would hold the interpreter's exit forever, as
    concurrent.futures joins its threads. Exit anyway, EXIT_WATCHDOG_SECONDS later."""

    def force_exit() -> None:
        logger.warning("threads still running %ss after shutdown; exiting", EXIT_WATCHDOG_SECONDS)
        logging.shutdown()
        os._exit(0)

    timer = threading.Timer(EXIT_WATCHDOG_SECONDS, force_exit)
    timer.daemon = True
    timer.start()


def install() -> bool:
    """Hook into daphne if this process runs under it; True if the fast path is on. Idempotent."""
    if _State.installed:
        return _State.fast_path
    _State.installed = True
    atexit.register(_mark_dead_at_exit)
    if "daphne.server" not in sys.modules:
        return False  # not under daphne (tests' communicator, another ASGI server)
    from twisted.internet import asyncioreactor

    reactor = sys.modules.get("twisted.internet.reactor")
    if not isinstance(reactor, asyncioreactor.AsyncioSelectorReactor):
        return False
    missing = check_internals()
    if missing:
        _State.fast_path = True  # so that the warning is logged once
        _disable_fast_path("missing " + ", ".join(missing))
        return False
    _State.fast_path = True
    _patch_header_deadline(reactor)
    _patch_inbound(reactor)
    reactor.callWhenRunning(_configure_server, reactor)
    # Registered now, before daphne's Server.run registers its own trigger (which cancels every
    # application instance): triggers of one phase run in the order they were added.
    reactor.addSystemEventTrigger("before", "shutdown", _before_shutdown, reactor)
    reactor.addSystemEventTrigger("after", "shutdown", _exit_watchdog)
    from chatsite import metrics

    metrics.prepare_multiprocess_dir()
    return True
