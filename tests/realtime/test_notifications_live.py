"""`notification` frames end to end (CONTRACT §5): from the socket's batch path and from REST, to
every socket and stream of the notified user on two daphne processes within one second, joined to
the room or not. The two servers are shared by the module (each test makes its own users)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from rooms import services
from rooms.models import Notification
from tests.support.servers import DaphneProcess
from tests.support.sse import open_stream
from tests.support.ws import access_token, connect, join, recv_type, recv_until, send

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SERVER_ENV = {"RATE_LIMIT_MESSAGES": "1000/1s"}
WITHIN = 1.0  # seconds, from the sender's acknowledgement (the commit) to the notified user's frame


@pytest.fixture(scope="module")
def servers(django_db_setup, django_db_blocker):
    started = []
    try:
        started = [DaphneProcess(env=SERVER_ENV).start(), DaphneProcess(env=SERVER_ENV).start()]
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def people(servers, user_factory, room_factory):
    alice, bob, carol = user_factory("alice"), user_factory("bob"), user_factory("carol")
    lobby = room_factory("lobby", owner=alice, members=[bob])
    return {
        "alice": alice,
        "bob": bob,
        "carol": carol,
        "lobby": lobby,
        "tokens": {user.username: access_token(user) for user in (alice, bob, carol)},
    }


def is_notification_of(message_id: int):
    return lambda frame: frame["type"] == "notification" and frame["notification"]["message"]["id"] == message_id


async def test_a_mention_sent_on_a_socket_reaches_every_socket_and_stream_of_the_user(servers, people):
    """alice posts "@bob" on process A: bob's socket on A (joined), his socket on B (joined to
    nothing) and his stream on B all get the same `notification` within a second."""
    tokens = people["tokens"]
    alice = await connect(servers[0], token=tokens["alice"])
    await join(alice, "lobby")
    bob_joined = await connect(servers[0], token=tokens["bob"])
    await join(bob_joined, "lobby")
    bob_elsewhere = await connect(servers[1], token=tokens["bob"])
    # Nothing joined on this socket: a ping's answer shows its hub knows it before the post.
    await send(bob_elsewhere, {"type": "ping"})
    await recv_type(bob_elsewhere, "pong")
    stream = await open_stream(servers[1], rooms="lobby", token=tokens["bob"])
    await stream.event_of_type("joined")

    await send(alice, {"type": "message", "room": "lobby", "body": "look @Bob!", "client_id": "n1"})
    ack = await recv_until(alice, lambda f: f["type"] == "message" and f["message"]["client_id"] == "n1")
    message = ack["message"]
    assert message["mentions"] == ["bob"]
    row = await sync_to_async(Notification.objects.get)(message_id=message["id"])
    expected = {
        "type": "notification",
        "notification": {
            "id": row.id,
            "kind": "mention",
            "room": "lobby",
            "message": message,
            "created": message["created"],
            "read": False,
        },
    }
    frames = await asyncio.gather(
        recv_until(bob_joined, is_notification_of(message["id"]), timeout=WITHIN),
        recv_until(bob_elsewhere, is_notification_of(message["id"]), timeout=WITHIN),
        stream.event_until(lambda event: event.type == "notification", timeout=WITHIN),
    )
    assert frames[0] == expected and frames[1] == expected
    assert frames[2].data == expected
    # alice (the author) is not notified; her socket saw only her message.
    await send(alice, {"type": "ping"})
    assert (await recv_until(alice, lambda f: f["type"] in ("pong", "notification")))["type"] == "pong"
    for socket in (alice, bob_joined, bob_elsewhere):
        await socket.close()
    await stream.close()


async def test_a_reply_posted_by_rest_notifies_the_replied_user_on_both_processes(servers, people):
    """services.message_post (the REST path, sent on commit): bob gets `reply` on both of his
    sockets, neither of them joined to the room."""
    tokens = people["tokens"]
    sockets = [await connect(server, token=tokens["bob"]) for server in servers]
    for socket in sockets:
        await send(socket, {"type": "ping"})
        await recv_type(socket, "pong")
    original, _ = await sync_to_async(services.message_post)(user=people["bob"], room=people["lobby"], body="q?")
    reply, _ = await sync_to_async(services.message_post)(
        user=people["alice"], room=people["lobby"], body="a!", reply_to=original.id
    )
    frames = await asyncio.gather(
        *(recv_until(socket, is_notification_of(reply.id), timeout=WITHIN) for socket in sockets)
    )
    assert [frame["notification"]["kind"] for frame in frames] == ["reply", "reply"]
    assert frames[0]["notification"]["message"]["reply_to"]["id"] == original.id
    for socket in sockets:
        await socket.close()
