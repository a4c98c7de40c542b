#!/usr/bin/env python
"""Experiment, not product code: the hub's fan-out through autobahn's broadcast API.

Runs `chatsite.serve` with `rooms.hub.Hub._deliver_message` replaced by a version that builds the
WebSocket frame once per message (`factory.prepareMessage`) and writes it to each socket's autobahn
protocol (`sendPreparedMessage`), instead of one `websocket.send` ASGI call per socket (a coroutine
into daphne, a UTF-8 encode and a frame build per socket). Under daphne a consumer's `base_send`
is `functools.partial(Server.handle_reply, protocol)`, which is how the protocol is found; any
socket where that does not hold falls back to the normal path. Ordering and de-duplication
(`last_sent`, the replay buffer) are kept exactly as in ChatConsumer.offer_message.

    BENCH_SERVER_MODULE=bench/experiments/prepared_send.py bench/run_server.sh start pubsub 18100

With BENCH_DIRECT_WRITE=1 the prepared frame is also written straight to the socket when Twisted's
buffer for it is empty (`socket.send`, the rest through `transport.write`), skipping Twisted's
per-write epoll registration (`startWriting`/`stopWriting`), the largest remaining cost.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")


def install() -> None:
    from chatsite import metrics
    from rooms import hub as hub_module
    from rooms.protocol import dumps, message_frame

    async def _deliver_message(self, feed, event):
        message_id = event["message"]["id"]
        feed.last_id = message_id
        text = dumps(message_frame(event["message"]))
        prepared = None
        for socket in list(feed.sockets):
            subscription = socket.subscriptions.get(feed.room.id)
            if subscription is None or socket.closed:
                continue
            if subscription.buffer is not None:
                subscription.buffer.append((message_id, text))
                continue
            if message_id <= subscription.last_sent:
                continue
            subscription.last_sent = message_id
            args = getattr(socket.base_send, "args", ())
            protocol = args[0] if args else None
            if (
                protocol is None
                or not hasattr(protocol, "sendPreparedMessage")
                or protocol.state != protocol.STATE_OPEN
            ):
                await socket._send_text(text)
                continue
            if prepared is None:
                prepared = protocol.factory.prepareMessage(text.encode("utf-8"))
            protocol.sendPreparedMessage(prepared)
        accepted_at = event.get("accepted_at")
        if accepted_at:
            metrics.DELIVERY_LATENCY.observe(max(0.0, time.time() - accepted_at))

    direct = os.environ.get("BENCH_DIRECT_WRITE") == "1"

    def send_prepared(protocol, prepared) -> None:
        transport = protocol.transport
        sock = getattr(transport, "socket", None)
        if (
            not direct
            or sock is None
            or transport.dataBuffer
            or transport._tempDataBuffer
            or not transport.connected
            or transport.disconnecting
        ):
            protocol.sendPreparedMessage(prepared)
            return
        data = prepared.payloadHybi
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            protocol.sendPreparedMessage(prepared)  # let Twisted notice and report the failure
            return
        if sent < len(data):
            transport.write(data[sent:])

    async def _deliver_message_direct(self, feed, event):
        message_id = event["message"]["id"]
        feed.last_id = message_id
        text = dumps(message_frame(event["message"]))
        prepared = None
        for socket in list(feed.sockets):
            subscription = socket.subscriptions.get(feed.room.id)
            if subscription is None or socket.closed:
                continue
            if subscription.buffer is not None:
                subscription.buffer.append((message_id, text))
                continue
            if message_id <= subscription.last_sent:
                continue
            subscription.last_sent = message_id
            args = getattr(socket.base_send, "args", ())
            protocol = args[0] if args else None
            if (
                protocol is None
                or not hasattr(protocol, "sendPreparedMessage")
                or protocol.state != protocol.STATE_OPEN
            ):
                await socket._send_text(text)
                continue
            if prepared is None:
                prepared = protocol.factory.prepareMessage(text.encode("utf-8"))
            send_prepared(protocol, prepared)
        accepted_at = event.get("accepted_at")
        if accepted_at:
            metrics.DELIVERY_LATENCY.observe(max(0.0, time.time() - accepted_at))

    hub_module.Hub._deliver_message = _deliver_message_direct if direct else _deliver_message


if __name__ == "__main__":
    import django

    # chatsite.serve installs daphne's reactor before django.setup(); import it first, then patch.
    from chatsite import serve

    _main = serve.main

    def main(argv):
        import daphne.server  # noqa: F401  (installs the asyncio reactor)

        django.setup()
        install()
        _main(argv)

    main(sys.argv[1:])
