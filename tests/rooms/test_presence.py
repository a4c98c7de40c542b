"""rooms/presence.py on both backends (Redis when the run has it, the in-memory one always):
first-in and last-out transitions seen exactly once, batched leaves, expiry of a crashed
process's sockets and the heartbeat's refresh."""

from __future__ import annotations

import asyncio

import pytest

from rooms import presence as presence_module
from rooms.presence import LocalPresence, RedisPresence


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def presence(request):
    return LocalPresence() if request.param == "local" else RedisPresence()


@pytest.fixture
def redis_presence() -> RedisPresence:
    """Expiry lives in Redis scores: the in-memory backend serves one process and never expires."""
    return RedisPresence()


async def test_first_socket_in_and_last_socket_out_are_the_transitions(presence):
    """join answers True only for a user's first socket; leave True only for the last."""
    assert await presence.join(room_id=1, username="alice", conn="a1") is True
    assert await presence.join(room_id=1, username="alice", conn="a2") is False
    assert await presence.join(room_id=1, username="bob", conn="b1") is True
    assert await presence.online(room_id=1) == ["alice", "bob"]
    assert await presence.leave(room_id=1, username="alice", conn="a1") is False
    assert await presence.online(room_id=1) == ["alice", "bob"]
    assert await presence.leave(room_id=1, username="alice", conn="a2") is True
    assert await presence.online(room_id=1) == ["bob"]


async def test_rooms_are_separate_and_an_unknown_socket_leaves_nothing(presence):
    """A user online in two rooms leaves one without the other; leaving twice or an unknown socket is False."""
    await presence.join(room_id=1, username="alice", conn="a1")
    await presence.join(room_id=2, username="alice", conn="a1")
    assert await presence.leave(room_id=2, username="alice", conn="a1") is True
    assert await presence.leave(room_id=2, username="alice", conn="a1") is False
    assert await presence.leave(room_id=1, username="alice", conn="nope") is False
    assert (await presence.online(room_id=1), await presence.online(room_id=2)) == (["alice"], [])


async def test_leave_many_answers_each_entry_in_order(presence):
    """A batch of leaves (a mass disconnect) says, entry by entry, who went offline."""
    for conn in ("a1", "a2"):
        await presence.join(room_id=1, username="alice", conn=conn)
    await presence.join(room_id=2, username="bob", conn="b1")
    went = await presence.leave_many([(1, "alice", "a1"), (2, "bob", "b1"), (1, "alice", "a2"), (1, "carol", "c1")])
    assert went == [False, True, True, False]
    assert await presence.online(room_id=1) == [] and await presence.online(room_id=2) == []


async def test_concurrent_joins_and_leaves_see_one_transition(presence):
    """Ten sockets of one user joining at once: one True; all leaving at once: one True."""
    joined = await asyncio.gather(*(presence.join(room_id=3, username="ann", conn=f"c{n}") for n in range(10)))
    assert sorted(joined) == [False] * 9 + [True]
    left = await asyncio.gather(*(presence.leave(room_id=3, username="ann", conn=f"c{n}") for n in range(10)))
    assert sorted(left) == [False] * 9 + [True]


@pytest.mark.redis
async def test_a_crashed_processs_sockets_expire_and_are_reaped_once(redis_presence, monkeypatch, settings):
    """Sockets not refreshed for a TTL drop out of `online`; `reap` names each such user once."""
    settings.CHAT_PRESENCE_TTL_SECONDS = 30
    now = [1_000_000.0]
    monkeypatch.setattr(presence_module.time, "time", lambda: now[0])
    await redis_presence.join(room_id=5, username="alice", conn="a1")
    await redis_presence.join(room_id=5, username="bob", conn="b1")
    now[0] += 20
    await redis_presence.refresh([(5, "bob", "b1")])  # bob's process is alive; alice's crashed
    now[0] += 15
    assert await redis_presence.online(room_id=5) == ["bob"]
    assert await redis_presence.reap(room_id=5) == ["alice"]
    assert await redis_presence.reap(room_id=5) == []
    now[0] += 40
    assert await redis_presence.reap(room_id=5) == ["bob"]


@pytest.mark.redis
async def test_a_user_with_one_live_socket_is_not_reaped(redis_presence, monkeypatch, settings):
    """One socket expired, another refreshed: the user stays online and is not announced offline."""
    settings.CHAT_PRESENCE_TTL_SECONDS = 30
    now = [2_000_000.0]
    monkeypatch.setattr(presence_module.time, "time", lambda: now[0])
    await redis_presence.join(room_id=6, username="alice", conn="dead")
    await redis_presence.join(room_id=6, username="alice", conn="live")
    now[0] += 20
    await redis_presence.refresh([(6, "alice", "live")])
    now[0] += 15
    assert await redis_presence.reap(room_id=6) == []
    assert await redis_presence.online(room_id=6) == ["alice"]
    assert await redis_presence.leave(room_id=6, username="alice", conn="live") is True
