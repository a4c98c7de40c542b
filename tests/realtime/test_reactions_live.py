"""Replies and reactions end to end (CONTRACT §5): real WebSocket and HTTP clients against two
daphne processes sharing PostgreSQL and Redis. The servers are started once for the module."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from asgiref.sync import sync_to_async

from rooms import services
from rooms.models import Message, RoomMute
from tests.support.http import http_json
from tests.support.servers import DaphneProcess
from tests.support.sse import open_stream
from tests.support.ws import access_token, connect, join, recv_type, recv_until, send

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SERVER_ENV = {"RATE_LIMIT_MESSAGES": "1000/1s", "CHAT_REACTION_RATE": "1000/1s"}


@pytest.fixture(scope="module")
def servers(django_db_setup, django_db_blocker):
    """Two daphne processes for the whole module, on the test database and Redis."""
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
    lobby = room_factory("lobby", owner=alice, members=[bob, carol])
    tokens = {user.username: access_token(user) for user in (alice, bob, carol)}
    return {"alice": alice, "bob": bob, "carol": carol, "lobby": lobby, "tokens": tokens}


async def test_reaction_frames_reach_sockets_and_streams_on_both_processes(servers, people):
    """A `react` on process A and a REST reaction on process B reach every socket and stream joined
    to the room on both processes, with the count and the message's new version."""
    tokens = people["tokens"]
    target, _ = await sync_to_async(services.message_post)(user=people["alice"], room=people["lobby"], body="vote")
    alice = await connect(servers[0], token=tokens["alice"])
    bob = await connect(servers[1], token=tokens["bob"])
    for ws in (alice, bob):
        await join(ws, "lobby")
    stream = await open_stream(servers[1], rooms="lobby", token=tokens["carol"])
    await stream.event_of_type("joined")
    await send(alice, {"type": "react", "room": "lobby", "message_id": target.id, "emoji": "👍"})
    frames = [
        await recv_type(alice, "reaction"),
        await recv_type(bob, "reaction"),
        (await stream.event_of_type("reaction")).data,
    ]
    version = (await sync_to_async(Message.objects.get)(pk=target.pk)).version
    for frame in frames:
        assert frame == {
            "type": "reaction",
            "room": "lobby",
            "message_id": target.id,
            "emoji": "👍",
            "user": "alice",
            "added": True,
            "count": 1,
            "version": version,
        }
    status, body = await sync_to_async(http_json)(
        "POST", f"{servers[1].http_url}/api/v1/messages/{target.id}/reactions/", tokens["bob"], {"emoji": "👍"}
    )
    assert status == 201 and body["reactions"] == [{"emoji": "👍", "count": 2, "users": ["alice", "bob"]}]
    for ws in (alice, bob):
        frame = await recv_type(ws, "reaction")
        assert (frame["user"], frame["count"], frame["version"]) == ("bob", 2, body["version"])
    assert (await stream.event_of_type("reaction")).data["count"] == 2
    status, _ = await sync_to_async(http_json)(
        "DELETE",
        f"{servers[0].http_url}/api/v1/messages/{target.id}/reactions/{quote('👍', safe='')}/",
        tokens["bob"],
    )
    assert status == 204
    frame = await recv_type(bob, "reaction")
    assert (frame["added"], frame["count"], frame["version"]) == (False, 1, body["version"] + 1)
    await stream.close()
    await alice.close()
    await bob.close()


async def test_refused_reacts_are_error_frames_and_the_socket_stays(servers, people):
    """A muted user's react, a bad emoji, an unknown message, wrong types: `error` frames, the socket answers ping."""
    target, _ = await sync_to_async(services.message_post)(user=people["alice"], room=people["lobby"], body="x")
    await sync_to_async(RoomMute.objects.create)(room=people["lobby"], user=people["carol"])
    carol = await connect(servers[0], token=people["tokens"]["carol"])
    await join(carol, "lobby")
    cases = [
        ({"message_id": target.id, "emoji": "👍"}, "forbidden"),
        ({"message_id": target.id, "emoji": "<b>"}, "bad_request"),
        ({"message_id": target.id, "emoji": "\ud83d"}, "bad_request"),
        ({"message_id": target.id + 10_000, "emoji": "👍"}, "not_found"),
        ({"message_id": [target.id], "emoji": "👍"}, "bad_request"),
        ({"message_id": target.id, "emoji": "👍", "remove": "no"}, "bad_request"),
    ]
    for fields, code in cases:
        await send(carol, {"type": "react", "room": "lobby", **fields})
        error = await recv_type(carol, "error")
        assert error["code"] == code, (fields, error)
    await send(carol, {"type": "ping"})
    await recv_type(carol, "pong")
    await carol.close()


async def test_reply_over_a_real_socket_reaches_the_other_process(servers, people):
    """A `message` frame with reply_to is broadcast with its reply object on both processes; a bad
    one answers `bad_request` with the client_id."""
    original, _ = await sync_to_async(services.message_post)(user=people["bob"], room=people["lobby"], body="q?")
    alice = await connect(servers[0], token=people["tokens"]["alice"])
    bob = await connect(servers[1], token=people["tokens"]["bob"])
    for ws in (alice, bob):
        await join(ws, "lobby")
    await send(alice, {"type": "message", "room": "lobby", "body": "a!", "client_id": "r1", "reply_to": original.id})
    for ws in (alice, bob):
        message = (await recv_until(ws, lambda f: f["type"] == "message"))["message"]
        assert message["reply_to"] == {
            "id": original.id,
            "author": {"id": people["bob"].id, "username": "bob"},
            "excerpt": "q?",
        }
    await send(alice, {"type": "message", "room": "lobby", "body": "no", "client_id": "r2", "reply_to": "1"})
    error = await recv_type(alice, "error")
    assert (error["code"], error["client_id"]) == ("bad_request", "r2")
    await alice.close()
    await bob.close()
