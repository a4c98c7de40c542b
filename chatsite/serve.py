"""Run chatsite under daphne with the project's WebSocket settings and a graceful shutdown.

`python -m chatsite.serve --bind HOST --port PORT` is what `make run` and `make cluster` start.
On SIGTERM or SIGINT the process stops listening, closes every socket with 4012 (daphne alone
would just drop them, and its WebSocket library cannot send 1001 or 1012), waits briefly for the
close handshakes, and exits: clients reconnect, possibly elsewhere, and resume after their last id.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

logger = logging.getLogger("chatsite.serve")

SHUTDOWN_GRACE_SECONDS = 3.0
# A client must finish sending its request headers (an HTTP request or a WebSocket upgrade) within
# this time. Twisted restarts its idle timer on every byte, so a slowloris client trickling one byte
# at a time would otherwise hold a socket forever.
HEADER_DEADLINE_SECONDS = 10.0


def _install_header_deadline(reactor) -> None:
    """Abort connections whose first request is not complete HEADER_DEADLINE_SECONDS after connect."""
    from daphne.http_protocol import HTTPFactory, WebRequest

    original_process = WebRequest.process
    original_build = HTTPFactory.buildProtocol

    def process(request):
        request.channel.chatsite_request_seen = True
        return original_process(request)

    def build_protocol(factory, addr):
        protocol = original_build(factory, addr)
        if protocol is None:
            return protocol

        # Twisted wraps the HTTPChannel (which requests know as .channel) in a protocol proxy.
        channel = getattr(protocol, "_channel", protocol)

        def enforce_deadline():
            transport = getattr(channel, "transport", None)
            if not getattr(channel, "chatsite_request_seen", False) and transport is not None:
                logger.info("dropping %s: request headers not complete after %ss", addr, HEADER_DEADLINE_SECONDS)
                transport.abortConnection()

        deadline = reactor.callLater(HEADER_DEADLINE_SECONDS, enforce_deadline)
        original_lost = protocol.connectionLost

        def connection_lost(reason):
            if deadline.active():
                deadline.cancel()
            return original_lost(reason)

        protocol.connectionLost = connection_lost
        return protocol

    WebRequest.process = process
    HTTPFactory.buildProtocol = build_protocol


def _prepare_metrics_dir() -> None:
    """prometheus-client reads PROMETHEUS_MULTIPROC_DIR at import: it must exist first."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)


def _mark_metrics_dead() -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("-v", "--verbosity", type=int, default=1)
    args = parser.parse_args(argv)
    _prepare_metrics_dir()

    # daphne's asyncio reactor must be installed before anything imports twisted.internet.reactor.
    import django
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server

    django.setup()
    from django.conf import settings
    from twisted.internet import reactor

    from chatsite.asgi import application
    from rooms.realtime.hub import running_hubs

    _install_header_deadline(reactor)
    server: Server  # named before it exists: ready_callable below refers to it
    server = Server(
        application=application,
        # Twisted's default listen backlog of 50 overflows when thousands of clients reconnect at once.
        endpoints=[
            f"{endpoint}:backlog=1024"
            for endpoint in build_endpoint_description_strings(host=args.bind, port=args.port)
        ],
        signal_handlers=False,
        ping_interval=settings.CHAT_WS_PING_INTERVAL,
        ping_timeout=settings.CHAT_WS_PING_TIMEOUT,
        # Clients reconnect and resume after their last id, so a daily forced reconnect is harmless
        # and bounds how long one socket can pin a process (docs/realtime.md).
        websocket_timeout=86400,
        websocket_connect_timeout=5,
        websocket_handshake_timeout=5,
        # The WebSocket library enforces the 64 KiB limit itself and answers 1009 (an application
        # cannot: autobahn only lets it send 1000 or 3000-4999).
        websocket_max_message_size=settings.CHAT_MAX_FRAME_BYTES,
        websocket_max_frame_size=settings.CHAT_MAX_FRAME_BYTES,
        # A request (or a trickled upgrade) that has not finished in this time is dropped.
        http_timeout=60,
        application_close_timeout=5,
        verbosity=args.verbosity,
        ready_callable=lambda: server.ws_factory.setProtocolOptions(failByDrop=False),
    )
    shutting_down = False

    async def close_sockets_then_stop() -> None:
        for listener in server.listeners:
            port = listener.result if hasattr(listener, "result") else None
            if port is not None and hasattr(port, "stopListening"):
                port.stopListening()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(hub.shutdown(code=4012) for hub in running_hubs())),
                timeout=SHUTDOWN_GRACE_SECONDS + 2,
            )
        except Exception:
            logger.warning("graceful shutdown did not finish cleanly", exc_info=True)
        await asyncio.sleep(0.3)  # let the close frames reach the wire
        reactor.stop()  # type: ignore[misc]  # twisted's global reactor is typed as its base module

    def on_signal(signum, frame) -> None:
        nonlocal shutting_down
        if shutting_down:
            reactor.callFromThread(reactor.stop)  # type: ignore[misc]  # as above
            return
        shutting_down = True
        logger.info("signal %s: closing sockets with 4012 and stopping", signum)
        loop = reactor._asyncioEventloop
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(close_sockets_then_stop()))

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logger.info("chatsite listening on http://%s:%s", args.bind, args.port)
    try:
        server.run()
    finally:
        _mark_metrics_dead()


if __name__ == "__main__":
    main(sys.argv[1:])
