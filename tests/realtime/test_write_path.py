"""The batched write path end to end, against a real daphne process, PostgreSQL and Redis:
concurrent markup posts, bad Unicode, a ban whose layer event was lost."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from rooms.models import Message, RoomBan
from rooms.sanitize import sanitize_body
from tests.support.ws import access_token, connect, join, recv_type, recv_until, send

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def markup(writer: int, number: int) -> str:
    """A markup-heavy body unique to its writer and number (links, tags to keep and to escape)."""
    tag = f"w{writer}n{number}"
    return (
        f"<b>{tag}</b> <i>see</i> https://example.com/{tag} <a href='javascript:x'>{tag}</a> "
        f"<script>{tag}</script> <em>{tag}</em> mail {tag}@example.com <pre>{'<' * 5}{tag}</pre>"
    ) * 3


async def test_concurrent_markup_posts_each_keep_their_own_sanitised_text(daphne_factory, user_factory, room_factory):
    """Six writers posting markup at once: every stored and broadcast body is its own text,
    sanitised exactly as alone (bleach's Cleaner is not shared between threads)."""
    writers = [await sync_to_async(user_factory)() for _ in range(6)]
    room = await sync_to_async(room_factory)("markup", members=writers)
    server = daphne_factory(env={"RATE_LIMIT_MESSAGES": "1000/1s"})
    sockets = []
    for user in writers:
        ws = await connect(server, token=await sync_to_async(access_token)(user))
        await join(ws, "markup")
        sockets.append(ws)
    per_writer = 8

    async def write(index: int) -> None:
        for number in range(per_writer):
            body = markup(index, number)
            await send(
                sockets[index], {"type": "message", "room": "markup", "body": body, "client_id": f"{index}-{number}"}
            )

    async def read(ws) -> dict[str, str]:
        received: dict[str, str] = {}
        while len(received) < len(sockets) * per_writer:
            frame = await recv_type(ws, "message", timeout=10)
            received[frame["message"]["client_id"]] = frame["message"]["body"]
        return received

    readers = [asyncio.create_task(read(ws)) for ws in sockets]
    await asyncio.gather(*(write(index) for index in range(len(sockets))))
    everyone = await asyncio.gather(*readers)
    received = everyone[0]
    assert all(seen == received for seen in everyone)  # every socket got the same frames
    for index in range(len(sockets)):
        for number in range(per_writer):
            assert received[f"{index}-{number}"] == sanitize_body(markup(index, number))
    stored = await sync_to_async(dict)(Message.objects.filter(room=room).values_list("client_id", "body"))
    assert stored == received
    for ws in sockets:
        await ws.close()


@pytest.mark.parametrize(
    "body",
    ['"x\\ud800y"', '"x\\udfff"', '"nul\\u0000byte"', '"\\u0000"'],
    ids=["lone high surrogate", "lone low surrogate", "NUL inside", "NUL alone"],
)
async def test_bad_unicode_bodies_answer_bad_request_and_leave_no_ghost(world, body):
    """A lone surrogate or a NUL byte in a body answers bad_request with the client_id, not
    'database unavailable', not 1011; the socket works after and leaves no stale presence."""
    alice = await connect(world.server, token=world.tokens["alice"])
    await join(alice, "lobby")
    await send(alice, '{"type":"message","room":"lobby","client_id":"u-1","body":' + body + "}")
    error = await recv_type(alice, "error")
    assert (error["code"], error["client_id"]) == ("bad_request", "u-1")
    await send(alice, {"type": "message", "room": "lobby", "body": "still fine", "client_id": "u-2"})
    message = await recv_type(alice, "message")
    assert message["message"]["client_id"] == "u-2"
    await alice.close()
    assert not await sync_to_async(Message.objects.filter(client_id="u-1").exists)()
    bob = await connect(world.server, token=world.tokens["bob"])
    joined = await join(bob, "lobby")
    for _ in range(50):  # the leave is applied by the hub's presence task: wait for it, briefly
        if "alice" not in joined["online"]:
            break
        await asyncio.sleep(0.05)
        joined = await join(bob, "lobby")
    assert joined["online"] == ["bob"]
    await bob.close()


async def test_bidi_controls_are_stored_like_any_text(world):
    """Bidi controls (U+202E, U+2066) are valid text: stored and broadcast, not an outage."""
    alice = await connect(world.server, token=world.tokens["alice"])
    await join(alice, "lobby")
    await send(alice, {"type": "message", "room": "lobby", "body": "abc\u202edef\u2066x\u2069", "client_id": "bidi"})
    message = await recv_type(alice, "message")
    assert message["message"]["body"] == "abc\u202edef\u2066x\u2069"
    await alice.close()


async def test_a_ban_whose_event_was_lost_stops_the_socket_within_a_heartbeat(
    daphne_factory, user_factory, room_factory
):
    """A ban stored without its layer event (as if the layer lost it): the next post is refused at
    once by the batch's re-check, and the socket is taken out of the room by the next heartbeat."""
    owner, bob = await sync_to_async(user_factory)(), await sync_to_async(user_factory)()
    room = await sync_to_async(room_factory)("quiet", owner=owner, members=[bob])
    server = daphne_factory(env={"CHAT_HEARTBEAT_SECONDS": "1"})
    ws = await connect(server, token=await sync_to_async(access_token)(bob))
    await join(ws, "quiet")
    await sync_to_async(RoomBan.objects.create)(room=room, user=bob, created_by=owner)  # no event sent
    await send(ws, {"type": "message", "room": "quiet", "body": "after the ban", "client_id": "b-1"})
    error = await recv_type(ws, "error")
    assert (error["code"], error["client_id"]) == ("forbidden", "b-1")
    left = await recv_until(ws, lambda frame: frame.get("type") == "left", timeout=5)
    assert left == {"type": "left", "room": "quiet", "reason": "banned"}
    await send(ws, {"type": "message", "room": "quiet", "body": "again", "client_id": "b-2"})
    error = await recv_type(ws, "error")
    assert error["code"] == "forbidden"
    assert not await sync_to_async(Message.objects.filter(room=room).exists)()
    await ws.close()
