#!/usr/bin/env python
"""Experiment, not product code: ChatConsumer without channels' per-frame `aclose_old_connections`.

channels 4.3 runs `await aclose_old_connections()` before every handler (AsyncConsumer.dispatch)
and again after `disconnect` (AsyncWebsocketConsumer.websocket_disconnect). It is
`sync_to_async(close_old_connections)` with thread_sensitive=True: every connect, every frame and
every disconnect of every socket hops through the process's one thread-sensitive executor. The
chat consumer does no ORM work on that thread (rooms/db.py runs it on its own pool, with Django's
connection hygiene per call), so the hop is pure cost, and a serial queue: when 10,000 sockets
close at once, their disconnect handlers wait behind each other for longer than daphne's
application_close_timeout (5 s) and are killed before `disconnect` runs (no cleanup at all).

This runs chatsite.serve with both calls made no-ops (process-wide; the consumer is the only
AsyncConsumer here). Combine with BENCH_DIRECT_WRITE / prepared_send.py by hand if wanted.

    BENCH_SERVER_MODULE=bench/experiments/skip_dispatch_close.py bench/run_server.sh start core 18100
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")


def install() -> None:
    import channels.consumer
    import channels.generic.websocket

    async def _no_op() -> None:
        return None

    channels.consumer.aclose_old_connections = _no_op
    channels.generic.websocket.aclose_old_connections = _no_op


if __name__ == "__main__":
    import daphne.server  # noqa: F401  (installs the asyncio reactor before Django imports Twisted)
    import django

    from chatsite import serve

    django.setup()
    install()
    if os.environ.get("BENCH_DIRECT_WRITE") == "1":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from prepared_send import install as install_direct

        install_direct()
    serve.main(sys.argv[1:])
