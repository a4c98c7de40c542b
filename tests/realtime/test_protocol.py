"""Every row of CONTRACT §3 against a real daphne process with real WebSocket clients."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from rooms import services
from rooms.models import Membership, Message
from tests.support.http import http_json
from tests.support.ws import connect, drain, join, recv, recv_type, recv_until, send

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


async def post(ws, room: str, body: str, client_id: str | None = None) -> None:
    frame = {"type": "message", "room": room, "body": body}
    if client_id is not None:
        frame["client_id"] = client_id
    await send(ws, frame)


async def test_join_answers_joined_with_last_id_and_online(world):
    """join answers joined with the room's last id and who is online."""
    alice = await connect(world.server, token=world.tokens["alice"])
    joined = await join(alice, "lobby")
    assert joined == {"type": "joined", "room": "lobby", "last_id": 0, "online": ["alice"], "version": 0}
    bob = await connect(world.server, token=world.tokens["bob"])
    joined = await join(bob, "lobby")
    assert joined["online"] == ["alice", "bob"]
    await alice.close()
    await bob.close()


async def test_message_is_broadcast_to_every_joined_socket_including_sender(world):
    """A message reaches every socket joined to the room, the sender's own as acknowledgement."""
    alice = await connect(world.server, token=world.tokens["alice"])
    bob = await connect(world.server, token=world.tokens["bob"])
    await join(alice, "lobby")
    await join(bob, "lobby")
    await post(alice, "lobby", "hello <b>bob</b>", client_id="c-1")
    for ws in (alice, bob):
        frame = await recv_type(ws, "message")
        message = frame["message"]
        assert message["body"] == "hello <b>bob</b>"
        assert message["author"]["username"] == "alice"
        assert message["room"] == "lobby"
        assert message["client_id"] == "c-1"
        assert message["edited"] is None
        assert message["id"] > 0
    await alice.close()
    await bob.close()


async def test_body_is_sanitised_before_broadcast(world):
    """Script markup is escaped and bare links become safe links in the broadcast frame."""
    alice = await connect(world.server, token=world.tokens["alice"])
    await join(alice, "lobby")
    await post(alice, "lobby", "<script>alert(1)</script><img src=x onerror=alert(1)> see https://example.com")
    body = (await recv_type(alice, "message"))["message"]["body"]
    assert "<script" not in body and "<img" not in body
    assert '<a href="https://example.com" rel="nofollow noopener">https://example.com</a>' in body
    await alice.close()


async def test_joining_a_public_room_makes_the_user_a_member(world):
    """carol joins public lobby over the socket and becomes a member."""
    carol = await connect(world.server, token=world.tokens["carol"])
    await join(carol, "lobby")
    assert await sync_to_async(Membership.objects.filter(user=world.carol, room=world.room).exists)()
    await carol.close()


async def test_private_room_of_others_answers_not_found_like_a_missing_one(world, room_factory):
    """A private room the user is not in and a missing room both answer not_found."""
    await sync_to_async(room_factory)("secret", owner=world.alice, is_private=True)
    bob = await connect(world.server, token=world.tokens["bob"])
    for slug in ("secret", "no-such-room"):
        await send(bob, {"type": "join", "room": slug})
        frame = await recv(bob)
        assert frame["type"] == "error" and frame["code"] == "not_found"
    await bob.close()


async def test_message_to_a_room_not_joined_is_forbidden_whether_or_not_it_exists(world):
    """A socket that has not joined S is answered forbidden, with the client_id, for any S."""
    bob = await connect(world.server, token=world.tokens["bob"])
    for slug in ("lobby", "no-such-room"):
        await post(bob, slug, "hi", client_id=f"x-{slug}")
        frame = await recv(bob)
        assert frame["type"] == "error" and frame["code"] == "forbidden" and frame["client_id"] == f"x-{slug}"
    assert await sync_to_async(Message.objects.count)() == 0
    await bob.close()


async def test_resending_a_client_id_answers_the_sender_alone_with_the_stored_message(world):
    """The same client_id again gives the sender the stored message; others see one copy."""
    alice = await connect(world.server, token=world.tokens["alice"])
    bob = await connect(world.server, token=world.tokens["bob"])
    await join(alice, "lobby")
    await join(bob, "lobby")
    await post(alice, "lobby", "once", client_id="dup-1")
    first = (await recv_type(alice, "message"))["message"]
    await post(alice, "lobby", "once", client_id="dup-1")
    again = (await recv_type(alice, "message"))["message"]
    assert again == first
    bob_frames = [f for f in await drain(bob, 0.5) if f["type"] == "message"]
    assert [f["message"]["id"] for f in bob_frames] == [first["id"]]
    assert await sync_to_async(Message.objects.count)() == 1
    await alice.close()
    await bob.close()


async def test_leave_answers_left_and_stops_the_room_frames(world):
    """leave answers left; the socket gets no more frames of that room."""
    alice = await connect(world.server, token=world.tokens["alice"])
    bob = await connect(world.server, token=world.tokens["bob"])
    await join(alice, "lobby")
    await join(bob, "lobby")
    await send(bob, {"type": "leave", "room": "lobby"})
    assert await recv_type(bob, "left") == {"type": "left", "room": "lobby"}
    await post(alice, "lobby", "anyone?")
    await recv_type(alice, "message")
    assert [f for f in await drain(bob, 0.5) if f.get("room") == "lobby" or f["type"] == "message"] == []
    await alice.close()
    await bob.close()


async def test_typing_reaches_others_not_the_typist(world):
    """typing is relayed to other users in the room, not back to the sender."""
    alice = await connect(world.server, token=world.tokens["alice"])
    bob = await connect(world.server, token=world.tokens["bob"])
    await join(alice, "lobby")
    await join(bob, "lobby")
    await drain(alice, 0.2)
    await send(alice, {"type": "typing", "room": "lobby"})
    assert await recv_type(bob, "typing") == {"type": "typing", "room": "lobby", "user": "alice"}
    assert [f for f in await drain(alice, 0.4) if f["type"] == "typing"] == []
    await alice.close()
    await bob.close()


async def test_ping_answers_pong(world):
    """ping answers pong."""
    alice = await connect(world.server, token=world.tokens["alice"])
    await send(alice, {"type": "ping"})
    assert await recv(alice) == {"type": "pong"}
    await alice.close()


async def test_presence_online_on_first_socket_and_offline_when_last_leaves(world):
    """presence: online when a user's first socket joins, offline only when the last one goes."""
    alice = await connect(world.server, token=world.tokens["alice"])
    await join(alice, "lobby")
    bob1 = await connect(world.server, token=world.tokens["bob"])
    await join(bob1, "lobby")
    assert await recv_until(alice, lambda f: f["type"] == "presence" and f["user"] == "bob") == {
        "type": "presence",
        "room": "lobby",
        "user": "bob",
        "online": True,
    }
    bob2 = await connect(world.server, token=world.tokens["bob"])
    await join(bob2, "lobby")
    await bob1.close()
    assert [f for f in await drain(alice, 0.5) if f["type"] == "presence" and f["user"] == "bob"] == []
    await bob2.close()
    assert await recv_until(alice, lambda f: f["type"] == "presence" and f["user"] == "bob") == {
        "type": "presence",
        "room": "lobby",
        "user": "bob",
        "online": False,
    }
    await alice.close()


async def test_join_after_replays_missed_messages_in_order(world):
    """join with after=N sends every message with id > N in order, then live ones."""
    alice = await connect(world.server, token=world.tokens["alice"])
    await join(alice, "lobby")
    ids = []
    for number in range(5):
        await post(alice, "lobby", f"m{number}")
        ids.append((await recv_type(alice, "message"))["message"]["id"])
    bob = await connect(world.server, token=world.tokens["bob"])
    joined = await join(bob, "lobby", after=ids[1])
    assert joined["last_id"] == ids[-1]
    replayed = [(await recv_type(bob, "message"))["message"]["id"] for _ in range(3)]
    assert replayed == ids[2:]
    await post(alice, "lobby", "live")
    live = (await recv_type(bob, "message"))["message"]
    assert live["body"] == "live" and live["id"] > ids[-1]
    await alice.close()
    await bob.close()


async def test_join_after_skips_deleted_messages(world):
    """A deleted message is not replayed."""
    messages = []
    for number in range(3):
        message, _ = await sync_to_async(services.message_post)(user=world.alice, room=world.room, body=f"m{number}")
        messages.append(message)
    await sync_to_async(services.message_delete)(actor=world.alice, message=messages[1])
    bob = await connect(world.server, token=world.tokens["bob"])
    await join(bob, "lobby", after=0)
    frames = [f for f in await drain(bob, 0.5) if f["type"] == "message"]
    assert [f["message"]["id"] for f in frames] == [messages[0].id, messages[2].id]
    await bob.close()


async def test_more_than_500_missed_answers_resync_alone(world, settings):
    """Beyond 500 missed messages nothing is replayed: resync alone, then live messages."""
    from rooms.models import Room

    def bulk_insert():
        previous = 0
        for number in range(501):
            message = Message.objects.create(
                room=world.room, author=world.alice, body=f"b{number}", body_raw=f"b{number}", prev_id=previous
            )
            previous = message.id
        Room.objects.filter(pk=world.room.pk).update(last_message_id=previous)
        return previous

    last = await sync_to_async(bulk_insert)()
    bob = await connect(world.server, token=world.tokens["bob"])
    joined = await join(bob, "lobby", after=0)
    assert joined["last_id"] == last
    assert await recv(bob) == {"type": "resync", "room": "lobby"}
    assert [f for f in await drain(bob, 0.3) if f["type"] == "message"] == []
    await post(bob, "lobby", "after resync")
    assert (await recv_type(bob, "message"))["message"]["body"] == "after resync"
    await bob.close()


async def test_rest_posted_message_is_broadcast_like_a_socket_one(world):
    """A message posted by REST reaches sockets exactly as if sent over the socket."""
    bob = await connect(world.server, token=world.tokens["bob"])
    await join(bob, "lobby")
    status, body = await sync_to_async(http_json)(
        "POST",
        f"{world.server.http_url}/api/v1/rooms/lobby/messages/",
        world.tokens["alice"],
        {"body": "via rest", "client_id": "r-1"},
    )
    assert status == 201
    frame = await recv_type(bob, "message")
    assert frame == {"type": "message", "message": body}
    await bob.close()


async def test_edit_and_delete_are_broadcast(world):
    """message_edited and message_deleted reach the room's sockets."""
    bob = await connect(world.server, token=world.tokens["bob"])
    await join(bob, "lobby")
    message, _ = await sync_to_async(services.message_post)(user=world.alice, room=world.room, body="v1")
    assert (await recv_type(bob, "message"))["message"]["id"] == message.id
    await sync_to_async(services.message_edit)(user=world.alice, message=message, body="v2 <i>x</i>")
    edited = await recv_type(bob, "message_edited")
    assert edited["message"]["id"] == message.id and edited["message"]["body"] == "v2 <i>x</i>"
    assert edited["message"]["edited"] is not None
    await sync_to_async(services.message_delete)(actor=world.alice, message=message)
    deleted = await recv_type(bob, "message_deleted")
    assert deleted == {"type": "message_deleted", "room": "lobby", "id": message.id, "version": message.version}
    assert (edited["message"]["version"], message.version) == (2, 3)
    await bob.close()
