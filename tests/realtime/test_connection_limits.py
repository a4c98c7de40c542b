"""Connection caps, the join throttle and a join that fails half-way, in-process (Channels'
communicator, the in-memory layer, local presence): no daphne needed for these rules."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.db import OperationalError

from rooms import selectors
from rooms.realtime.hub import get_hub
from tests.rooms.test_consumer import communicator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def in_process_services(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REDIS_URL = ""


async def answer(ws, *types: str) -> dict:
    """The next frame of one of `types` (presence frames of our own joins are skipped)."""
    while True:
        frame = await ws.receive_json_from(timeout=3)
        if frame["type"] in types:
            return frame


async def joined(ws, room: str) -> dict:
    await ws.send_json_to({"type": "join", "room": room})
    return await answer(ws, "joined", "error")


async def test_sockets_per_user_beyond_the_cap_are_told_why_and_closed_with_4029(settings, user_factory):
    """With CHAT_MAX_SOCKETS_PER_USER=2, a third socket gets an error frame, then close 4029."""
    settings.CHAT_MAX_SOCKETS_PER_USER = 2
    user = await sync_to_async(user_factory)()
    first, second, third = communicator(user), communicator(user), communicator(user)
    assert (await first.connect())[0] and (await second.connect())[0]
    assert (await third.connect())[0]
    error = await third.receive_json_from(timeout=3)
    assert error["type"] == "error" and error["code"] == "rate_limited" and "2 open connections" in error["detail"]
    assert (await third.receive_output(timeout=3)) == {"type": "websocket.close", "code": 4029}
    await first.disconnect()
    fourth = communicator(user)  # room again once one closed
    assert (await fourth.connect())[0]
    await fourth.send_json_to({"type": "ping"})
    assert (await answer(fourth, "pong"))["type"] == "pong"
    for ws in (second, fourth):
        await ws.disconnect()


async def test_rooms_per_socket_beyond_the_cap_answer_forbidden(settings, user_factory, room_factory):
    """With CHAT_MAX_ROOMS_PER_SOCKET=2, a third room is refused (forbidden); rejoining a joined one is fine."""
    settings.CHAT_MAX_ROOMS_PER_SOCKET = 2
    user = await sync_to_async(user_factory)()
    for slug in ("one", "two", "three"):
        await sync_to_async(room_factory)(slug, owner=user)
    ws = communicator(user)
    await ws.connect()
    assert (await joined(ws, "one"))["type"] == "joined"
    assert (await joined(ws, "two"))["type"] == "joined"
    refused = await joined(ws, "three")
    assert refused["type"] == "error" and refused["code"] == "forbidden" and "At most 2 rooms" in refused["detail"]
    assert (await joined(ws, "one"))["type"] == "joined"
    await ws.disconnect()


async def test_join_churn_is_throttled_per_socket(settings, user_factory, room_factory):
    """Beyond CHAT_JOIN_RATE joins in its window, a join answers rate_limited with retry_after."""
    settings.CHAT_JOIN_RATE = (3, 60.0)
    user = await sync_to_async(user_factory)()
    await sync_to_async(room_factory)("churn", owner=user)
    ws = communicator(user)
    await ws.connect()
    for _ in range(3):
        assert (await joined(ws, "churn"))["type"] == "joined"
        await ws.send_json_to({"type": "leave", "room": "churn"})
        assert (await answer(ws, "left", "error"))["type"] == "left"
    refused = await joined(ws, "churn")
    assert refused["code"] == "rate_limited" and refused["retry_after"] > 0
    await ws.disconnect()


async def test_a_join_failing_half_way_leaves_nothing_and_a_retry_works(monkeypatch, user_factory, room_factory):
    """The database fails after the socket subscribed: the join is answered rate_limited, the
    socket is in no feed, and the next join delivers live messages (nothing stays buffered)."""
    user = await sync_to_async(user_factory)()
    await sync_to_async(room_factory)("shaky", owner=user)
    real_replay = selectors.room_replay
    calls = {"n": 0}

    def flaky_replay(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real_replay(**kwargs)

    monkeypatch.setattr(selectors, "room_replay", flaky_replay)
    ws = communicator(user)
    await ws.connect()
    failed = await joined(ws, "shaky")
    assert failed["type"] == "error" and failed["code"] == "rate_limited"
    hub = get_hub()
    assert not any(feed.connections for feed in hub.feeds.values())
    assert (await joined(ws, "shaky"))["type"] == "joined"
    await ws.send_json_to({"type": "message", "room": "shaky", "body": "live", "client_id": "l-1"})
    message = await answer(ws, "message", "error")
    assert message["type"] == "message" and message["message"]["client_id"] == "l-1"
    await ws.disconnect()
