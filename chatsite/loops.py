"""One object per running event loop, for things an asyncio loop must not share (clients, hubs).

Daphne runs one loop per process; tests start a loop per test. A new loop may even reuse a dead
one's `id()`, so the cache checks the loop's identity, not only its id.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """`factory()` once per running event loop: call it for the running loop's instance.

    Call only from a coroutine (it needs `asyncio.get_running_loop()`). Entries of closed loops
    are dropped when a new loop asks, so a long test run does not accumulate them.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        functools.update_wrapper(self, factory)
        self._factory = factory
        self._instances: dict[int, tuple[asyncio.AbstractEventLoop, T]] = {}

    def __call__(self) -> T:
        loop = asyncio.get_running_loop()
        entry = self._instances.get(id(loop))
        if entry is None or entry[0] is not loop:
            for key, (other, _) in list(self._instances.items()):
                if other.is_closed():
                    del self._instances[key]
            entry = self._instances[id(loop)] = (loop, self._factory())
        return entry[1]

    def all(self) -> list[T]:
        """Every instance made so far whose loop is not closed (e.g. for shutting them down)."""
        return [instance for loop, instance in self._instances.values() if not loop.is_closed()]


def per_loop(factory: Callable[[], T]) -> PerLoop[T]:
    """Decorator: `factory` becomes a per-event-loop singleton (see PerLoop)."""
    return PerLoop(factory)
