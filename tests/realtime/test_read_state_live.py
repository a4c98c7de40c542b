"""The `read` frame and per-user `read_state` delivery on real daphne processes (CONTRACT §5)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from rooms.models import Message, Room
from tests.support.http import http_json
from tests.support.sse import open_stream
from tests.support.ws import connect, join, recv_type, recv_until, send

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

ONE_SECOND = 1.0


def store_messages(room: Room, author, count: int) -> list[int]:
    """Committed rows as posts_store leaves them (the unread counts only need the rows)."""
    ids = []
    for number in range(count):
        room.refresh_from_db()
        message = Message.objects.create(
            room=room, author=author, body=str(number), body_raw=str(number), prev_id=room.last_message_id
        )
        Room.objects.filter(pk=room.pk).update(last_message_id=message.id)
        ids.append(message.id)
    return ids


async def test_read_state_reaches_every_socket_of_the_user_on_both_processes(world, daphne_factory):
    """A `read` frame on one process, and a REST read, reach each of the user's sockets on two
    processes, and their SSE stream, within one second with the same numbers, including a socket
    that never joined the room."""
    second = daphne_factory()
    ids = await sync_to_async(store_messages)(world.room, world.alice, 3)
    joined_here = await connect(world.server, token=world.tokens["bob"])
    not_joined_there = await connect(second, token=world.tokens["bob"])
    other_user = await connect(second, token=world.tokens["alice"])
    await join(joined_here, "lobby")
    await send(not_joined_there, {"type": "ping"})
    await recv_type(not_joined_there, "pong")  # the socket is registered with its hub
    stream = await open_stream(second, rooms="lobby", token=world.tokens["bob"])
    await stream.event_of_type("joined")

    await send(joined_here, {"type": "read", "room": "lobby", "last_read_id": ids[0]})
    expected = {"type": "read_state", "room": "lobby", "last_read_id": ids[0], "unread_count": 2, "mention_count": 0}
    frames = await asyncio.gather(
        recv_type(joined_here, "read_state", ONE_SECOND),
        recv_type(not_joined_there, "read_state", ONE_SECOND),
        stream.event_of_type("read_state", ONE_SECOND),
    )
    assert frames[:2] == [expected, expected] and frames[2].data == expected

    status, body = await sync_to_async(http_json)(
        "POST", f"{second.http_url}/api/v1/rooms/lobby/read/", world.tokens["bob"], {"last_read_id": ids[2]}
    )
    assert (status, body["unread_count"]) == (200, 0)
    expected = {"type": "read_state", "room": "lobby", "last_read_id": ids[2], "unread_count": 0, "mention_count": 0}
    frames = await asyncio.gather(
        recv_type(joined_here, "read_state", ONE_SECOND), recv_type(not_joined_there, "read_state", ONE_SECOND)
    )
    assert frames == [expected, expected]

    # Another user's socket gets none of bob's read state: it answers its own ping first.
    await send(other_user, {"type": "ping"})
    assert (await recv_until(other_user, lambda f: f["type"] in ("pong", "read_state")))["type"] == "pong"
    for ws in (joined_here, not_joined_there, other_user):
        await ws.close()
    await stream.close()


BAD_READS = [
    ({"type": "read", "room": "lobby"}, "bad_request"),
    ({"type": "read", "room": "lobby", "last_read_id": "5"}, "bad_request"),
    ({"type": "read", "room": "lobby", "last_read_id": -1}, "bad_request"),
    ({"type": "read", "room": "lobby", "last_read_id": True}, "bad_request"),
    ({"type": "read", "room": "lobby", "last_read_id": 1.5}, "bad_request"),
    ({"type": "read", "room": "lobby", "last_read_id": None}, "bad_request"),
    ({"type": "read", "room": "lobby", "last_read_id": "\ud800"}, "bad_request"),
    ({"type": "read", "room": "lobby", "last_read_id": [1]}, "bad_request"),
    ({"type": "read", "room": "lob\x00by", "last_read_id": 1}, "bad_request"),
    ({"type": "read", "room": 7, "last_read_id": 1}, "bad_request"),
    ({"type": "read", "last_read_id": 1}, "bad_request"),
    ({"type": "read", "room": "nowhere", "last_read_id": 1}, "not_found"),
    ({"type": "read", "room": "vault", "last_read_id": 1}, "not_found"),  # private, carol not in it
    ({"type": "read", "room": "lobby", "last_read_id": 1}, "forbidden"),  # public, carol not a member
]


async def test_bad_read_frames_are_error_frames_and_the_socket_stays(world, room_factory):
    """Each bad `read` frame answers one `error` with the contract's code, in order; the socket
    keeps working (one socket for all cases: a daphne start per case would cost the CI budget)."""
    await sync_to_async(room_factory)("vault", owner=world.alice, is_private=True)
    ws = await connect(world.server, token=world.tokens["carol"])
    for frame, code in BAD_READS:
        await send(ws, frame)
        error = await recv_until(ws, lambda f: f["type"] in ("error", "read_state"))
        assert (error["type"], error["code"]) == ("error", code), frame
    await send(ws, {"type": "ping"})
    assert (await recv_type(ws, "pong"))["type"] == "pong"
    await ws.close()


async def test_a_huge_read_id_clamps_on_the_socket(world):
    """A last_read_id past bigint is the room's last message (read_state, not an error)."""
    ids = await sync_to_async(store_messages)(world.room, world.alice, 2)
    ws = await connect(world.server, token=world.tokens["bob"])
    await send(ws, {"type": "read", "room": "lobby", "last_read_id": 10**30})
    state = await recv_type(ws, "read_state")
    assert (state["last_read_id"], state["unread_count"]) == (ids[-1], 0)
    await ws.close()
