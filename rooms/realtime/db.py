"""Running ORM work from async code without serialising it all on one thread.

`database_sync_to_async` is thread-sensitive by default, so every query of a process waits in
one queue behind the others. Chat requests are independent short transactions, so they run on a
small pool of threads instead, each keeping its own connection (CONN_MAX_AGE); row locks in
the database, not the thread, order what must be ordered (message ids per room).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any, TypeVar

from channels.db import DatabaseSyncToAsync
from django.conf import settings

T = TypeVar("T")


@cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=settings.CHAT_DB_THREADS, thread_name_prefix="chat-db")


def run_in_db_thread(func: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """`func` as an awaitable run on the chat database pool, with Django's connection hygiene."""
    return DatabaseSyncToAsync(func, thread_sensitive=False, executor=_executor())


async def db_call(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    return await run_in_db_thread(func)(*args, **kwargs)
