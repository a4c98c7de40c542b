"""One object per running event loop, for things an asyncio loop must not share (clients, hubs).

Daphne runs one loop per process; tests start a loop per test. A new loop may even reuse a dead
one's `id()`, so the cache checks the loop's identity, not only its id.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def per_loop(factory: Callable[[], T]) -> Callable[[], T]:
    """Wrap `factory` so each running event loop gets, and keeps, its own result.

    Call the wrapper only from a coroutine (it needs `asyncio.get_running_loop()`). Entries of
    closed loops are dropped when a new loop asks, so a long test run does not accumulate them.
    """
    instances: dict[int, tuple[asyncio.AbstractEventLoop, T]] = {}

    @functools.wraps(factory)
    def get() -> T:
        loop = asyncio.get_running_loop()
        entry = instances.get(id(loop))
        if entry is None or entry[0] is not loop:
            for key, (other, _) in list(instances.items()):
                if other.is_closed():
                    del instances[key]
            entry = instances[id(loop)] = (loop, factory())
        return entry[1]

    get.instances = instances  # type: ignore[attr-defined]  # for tests and for resetting
    return get
