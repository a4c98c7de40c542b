"""chatsite/loops.py: one instance per running event loop, never shared across loops."""

from __future__ import annotations

import asyncio
import itertools

from chatsite.loops import per_loop


def test_one_instance_per_loop_and_none_shared():
    """Within a loop every call answers the same object; another loop gets its own."""
    counter = itertools.count()

    @per_loop
    def thing() -> int:
        return next(counter)

    async def twice() -> tuple[int, int]:
        return thing(), thing()

    first = asyncio.run(twice())
    second = asyncio.run(twice())
    assert first == (0, 0)
    assert second == (1, 1)


def test_all_lists_only_instances_of_open_loops():
    """`all()` answers the instances whose loop still runs; closed loops' entries are dropped."""

    @per_loop
    def thing() -> object:
        return object()

    async def make() -> object:
        made = thing()
        assert thing.all() == [made]
        return made

    asyncio.run(make())
    assert thing.all() == []  # asyncio.run closed that loop
    loop = asyncio.new_event_loop()
    try:
        made = loop.run_until_complete(make())
        assert thing.all() == [made]
    finally:
        loop.close()
