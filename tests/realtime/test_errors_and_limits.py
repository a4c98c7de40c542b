"""Bad frames, error codes and limits of CONTRACT §3, against a real daphne process."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from rooms import services
from rooms.models import Message
from tests.support.ws import close_code, connect, drain, join, recv, recv_type, send

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

BAD_FRAMES = [
    ("not json", "{nope"),
    ("json array", "[1, 2]"),
    ("json string", '"join"'),
    ("json number", "42"),
    ("json null", "null"),
    ("no type", json.dumps({"room": "lobby"})),
    ("unknown type", json.dumps({"type": "shout", "room": "lobby"})),
    ("type not a string", json.dumps({"type": 7})),
    ("join without room", json.dumps({"type": "join"})),
    ("join with numeric room", json.dumps({"type": "join", "room": 12})),
    ("join with bad slug", json.dumps({"type": "join", "room": "../etc"})),
    ("join with negative after", json.dumps({"type": "join", "room": "lobby", "after": -1})),
    ("join with string after", json.dumps({"type": "join", "room": "lobby", "after": "5"})),
    ("join with boolean after", json.dumps({"type": "join", "room": "lobby", "after": True})),
    ("message without body", json.dumps({"type": "message", "room": "lobby"})),
    ("message with numeric body", json.dumps({"type": "message", "room": "lobby", "body": 5})),
    ("message with empty body", json.dumps({"type": "message", "room": "lobby", "body": "   "})),
    ("message with object client_id", json.dumps({"type": "message", "room": "lobby", "body": "x", "client_id": {}})),
    (
        "message with long client_id",
        json.dumps({"type": "message", "room": "lobby", "body": "x", "client_id": "c" * 65}),
    ),
    ("typing without room", json.dumps({"type": "typing"})),
    ("leave with list room", json.dumps({"type": "leave", "room": ["lobby"]})),
    ("deeply nested", "[" * 5000 + "]" * 5000),
]


async def test_each_kind_of_bad_frame_answers_bad_request_and_the_connection_survives(world):
    """Each of 22 kinds of bad frame answers a bad_request error; the socket still works after."""
    for label, text in BAD_FRAMES:
        alice = await connect(world.server, token=world.tokens["alice"])
        await join(alice, "lobby")
        await send(alice, text)
        frame = await recv_type(alice, "error")
        assert frame["code"] == "bad_request" and frame["detail"], (label, frame)
        await send(alice, {"type": "ping"})
        assert await recv_type(alice, "pong") == {"type": "pong"}, label
        await alice.close()


async def test_binary_frame_answers_bad_request(world):
    """A binary frame is a bad_request, and the connection survives."""
    alice = await connect(world.server, token=world.tokens["alice"])
    await alice.send(b"\x00\x01binary")
    frame = await recv(alice)
    assert frame["code"] == "bad_request"
    await send(alice, {"type": "ping"})
    assert await recv(alice) == {"type": "pong"}
    await alice.close()


async def test_bad_message_frame_error_carries_its_client_id(world):
    """An error answering a message frame carries that frame's client_id."""
    alice = await connect(world.server, token=world.tokens["alice"])
    await join(alice, "lobby")
    await send(alice, {"type": "message", "room": "lobby", "body": 12, "client_id": "bad-1"})
    frame = await recv_type(alice, "error")
    assert frame["code"] == "bad_request" and frame["client_id"] == "bad-1"
    await alice.close()


async def test_body_over_4000_characters_is_too_large(world):
    """A body over 4,000 characters answers too_large with the client_id; nothing is stored."""
    alice = await connect(world.server, token=world.tokens["alice"])
    await join(alice, "lobby")
    await send(alice, {"type": "message", "room": "lobby", "body": "x" * 4001, "client_id": "big"})
    frame = await recv_type(alice, "error")
    assert frame["code"] == "too_large" and frame["client_id"] == "big"
    await send(alice, {"type": "message", "room": "lobby", "body": "y" * 4000, "client_id": "ok"})
    assert (await recv_type(alice, "message"))["message"]["client_id"] == "ok"
    assert await sync_to_async(Message.objects.count)() == 1
    await alice.close()


async def test_frame_over_64_kib_closes_with_1009(world):
    """A frame over 64 KiB closes the connection with 1009."""
    alice = await connect(world.server, token=world.tokens["alice"])
    await send(alice, {"type": "message", "room": "lobby", "body": "z" * (65 * 1024)})
    assert await close_code(alice) == 1009


async def test_more_than_20_bad_frames_in_10_seconds_close_with_4008(world):
    """A connection that keeps sending bad frames is closed with 4008 after the 21st."""
    alice = await connect(world.server, token=world.tokens["alice"])
    for _ in range(20):
        await send(alice, "garbage")
        assert (await recv(alice))["code"] == "bad_request"
    await send(alice, {"type": "ping"})
    assert await recv(alice) == {"type": "pong"}
    await send(alice, "garbage")
    assert await close_code(alice) == 4008


async def test_other_errors_never_close_the_connection(world):
    """Thirty forbidden/not_found errors leave the connection open."""
    bob = await connect(world.server, token=world.tokens["bob"])
    for number in range(30):
        await send(bob, {"type": "message", "room": "elsewhere", "body": "x", "client_id": f"f{number}"})
        assert (await recv(bob))["code"] == "forbidden"
    await send(bob, {"type": "ping"})
    assert await recv(bob) == {"type": "pong"}
    await bob.close()


async def test_rate_limit_answers_exactly_once_per_frame(world):
    """60 fast messages: broadcasts + rate_limited errors = 60, and every broadcast one is in history."""
    alice = await connect(world.server, token=world.tokens["alice"])
    await join(alice, "lobby")
    for number in range(60):
        await send(alice, {"type": "message", "room": "lobby", "body": f"n{number}", "client_id": f"rl-{number}"})
    answered: dict[str, str] = {}
    while len(answered) < 60:
        frame = await recv(alice, timeout=5)
        if frame["type"] == "message":
            client_id = frame["message"]["client_id"]
        elif frame["type"] == "error":
            assert frame["code"] == "rate_limited" and frame["retry_after"] > 0
            client_id = frame["client_id"]
        else:
            continue
        assert client_id not in answered, f"{client_id} answered twice"
        answered[client_id] = frame["type"]
    assert [f for f in await drain(alice, 0.5) if f["type"] in ("message", "error")] == []
    broadcast = {cid for cid, kind in answered.items() if kind == "message"}
    assert 10 <= len(broadcast) < 60
    stored = set(await sync_to_async(lambda: list(Message.objects.values_list("client_id", flat=True)))())
    assert stored == broadcast
    await alice.close()


async def test_slow_mode_answers_slow_mode_with_retry_after(world):
    """In slow mode a second message within the interval answers slow_mode with retry_after."""
    await sync_to_async(services.room_update)(actor=world.alice, room=world.room, slow_mode_seconds=30)
    bob = await connect(world.server, token=world.tokens["bob"])
    await join(bob, "lobby")
    await send(bob, {"type": "message", "room": "lobby", "body": "first", "client_id": "s1"})
    await recv_type(bob, "message")
    await send(bob, {"type": "message", "room": "lobby", "body": "second", "client_id": "s2"})
    frame = await recv_type(bob, "error")
    assert frame["code"] == "slow_mode" and frame["client_id"] == "s2" and 0 < frame["retry_after"] <= 30
    await bob.close()


async def test_muted_user_reads_but_every_message_is_forbidden(world):
    """A muted user still receives messages, and each of theirs answers forbidden."""
    bob = await connect(world.server, token=world.tokens["bob"])
    await join(bob, "lobby")
    await sync_to_async(services.room_mute)(actor=world.alice, room=world.room, username="bob")
    await send(bob, {"type": "message", "room": "lobby", "body": "let me talk", "client_id": "m1"})
    frame = await recv_type(bob, "error")
    assert frame["code"] == "forbidden" and frame["client_id"] == "m1"
    await sync_to_async(services.message_post)(user=world.alice, room=world.room, body="you can read")
    assert (await recv_type(bob, "message"))["message"]["body"] == "you can read"
    await bob.close()


async def test_room_ban_sends_left_banned_within_a_second_and_nothing_more(world):
    """A room ban sends left/banned within 1 s, then no frame of that room; rejoining is forbidden."""
    bob = await connect(world.server, token=world.tokens["bob"])
    await join(bob, "lobby")
    await sync_to_async(services.room_ban)(actor=world.alice, room=world.room, username="bob", reason="spam")
    assert await recv_type(bob, "left", timeout=1.0) == {"type": "left", "room": "lobby", "reason": "banned"}
    await sync_to_async(services.message_post)(user=world.alice, room=world.room, body="after the ban")
    assert [f for f in await drain(bob, 0.5) if f.get("room") == "lobby" or f["type"] == "message"] == []
    await send(bob, {"type": "join", "room": "lobby"})
    assert (await recv(bob))["code"] == "forbidden"
    await bob.close()


async def test_site_ban_closes_every_socket_with_4003_within_a_second(world, moderator_factory):
    """A site-wide ban closes all the user's sockets with 4003 within one second."""
    moderator = await sync_to_async(moderator_factory)("modder")
    first = await connect(world.server, token=world.tokens["bob"])
    second = await connect(world.server, token=world.tokens["bob"])
    await join(first, "lobby")
    await sync_to_async(services.site_ban)(actor=moderator, username="bob")
    codes = await asyncio.gather(close_code(first, 1.0), close_code(second, 1.0))
    assert codes == [4003, 4003]


async def test_expired_mute_lets_the_user_post_again(world):
    """A mute whose `until` has passed no longer applies."""
    from rooms.models import RoomMute

    await sync_to_async(RoomMute.objects.create)(
        room=world.room, user=world.bob, until=timezone.now() - timedelta(seconds=1)
    )
    bob = await connect(world.server, token=world.tokens["bob"])
    await join(bob, "lobby")
    await send(bob, {"type": "message", "room": "lobby", "body": "free again", "client_id": "e1"})
    assert (await recv_type(bob, "message"))["message"]["client_id"] == "e1"
    await bob.close()


async def test_overload_answers_rate_limited_and_loses_nothing(daphne_factory, world):
    """Beyond the posts a process lets wait for the database, senders get rate_limited, never silence."""
    server = daphne_factory(env={"CHAT_MAX_POSTS_IN_FLIGHT": "1", "RATE_LIMIT_MESSAGES": "1000/1s"})
    sockets = [await connect(server, token=world.tokens["alice"]) for _ in range(6)]
    for ws in sockets:
        await join(ws, "lobby")
    for number in range(5):
        for index, ws in enumerate(sockets):
            await send(ws, {"type": "message", "room": "lobby", "body": "x", "client_id": f"o{index}-{number}"})
    answers: dict[str, str] = {}
    for index, ws in enumerate(sockets):
        mine = {f"o{index}-{number}" for number in range(5)}
        while not mine <= set(answers):
            frame = await recv(ws, timeout=10)
            if frame["type"] == "error":
                assert frame["code"] == "rate_limited" and frame["retry_after"] > 0
                answers[frame["client_id"]] = "error"
            elif frame["type"] == "message" and frame["message"]["client_id"] in mine:
                assert frame["message"]["client_id"] not in answers
                answers[frame["message"]["client_id"]] = "message"
    assert len(answers) == 30
    assert "error" in answers.values(), "no sender was told to back off"
    stored = set(await sync_to_async(lambda: list(Message.objects.values_list("client_id", flat=True)))())
    assert stored == {cid for cid, kind in answers.items() if kind == "message"}
    for ws in sockets:
        await ws.close()
