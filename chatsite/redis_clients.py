"""The process's Redis clients for state shared across processes (rate limits, presence, the cache).

Named for what it holds, not `redis`, so it never shadows the library.
"""

from __future__ import annotations

import functools

import redis
import redis.asyncio
from django.conf import settings

from chatsite.loops import per_loop


@functools.cache
def get_redis() -> redis.Redis:
    """A thread-safe pooled client for sync code (services run in worker threads)."""
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2)


@per_loop
def get_async_redis() -> redis.asyncio.Redis:
    """A client bound to the running event loop (an asyncio client must not cross loops)."""
    # A blocking pool waits for a free connection instead of failing a burst of calls
    # (thousands of sockets joining at once) with "Too many connections".
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2, max_connections=64, timeout=20
    )
    return redis.asyncio.Redis(connection_pool=pool)
