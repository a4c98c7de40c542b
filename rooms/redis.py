"""The process's Redis clients for state shared across processes (rate limits, tickets, presence)."""

from __future__ import annotations

import functools

import redis
import redis.asyncio
from django.conf import settings


@functools.cache
def get_redis() -> redis.Redis:
    """A thread-safe pooled client for sync code (services run in worker threads)."""
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2)


_async_clients: dict[int, tuple[object, redis.asyncio.Redis]] = {}


def get_async_redis() -> redis.asyncio.Redis:
    """A client bound to the running event loop (an asyncio client must not cross loops; a new
    loop may even reuse a dead one's id, hence the identity check)."""
    import asyncio

    loop = asyncio.get_running_loop()
    entry = _async_clients.get(id(loop))
    if entry is None or entry[0] is not loop:
        # A blocking pool waits for a free connection instead of failing a burst of calls
        # (thousands of sockets joining at once) with "Too many connections".
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2, max_connections=64, timeout=20
        )
        entry = _async_clients[id(loop)] = (loop, redis.asyncio.Redis(connection_pool=pool))
    return entry[1]
