"""Several daphne processes sharing PostgreSQL and Redis behave as one server (CONTRACT §3, §4)."""

from __future__ import annotations

import asyncio
import signal

import pytest
import websockets
from asgiref.sync import sync_to_async

from rooms import services
from rooms.models import Message, Room
from tests.support.ws import close_code, connect, drain, join, recv, recv_type, recv_until, send

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

FAST_PRESENCE = {"CHAT_PRESENCE_TTL_SECONDS": "3", "CHAT_HEARTBEAT_SECONDS": "1"}
FAST_RATE = {"RATE_LIMIT_MESSAGES": "1000/1s"}


def insert_without_broadcast(room, author, body: str) -> int:
    """What the channel layer dropping a broadcast looks like: a committed row, no event."""
    room = Room.objects.get(pk=room.pk)
    message = Message.objects.create(room=room, author=author, body=body, body_raw=body, prev_id=room.last_message_id)
    Room.objects.filter(pk=room.pk).update(last_message_id=message.id)
    return message.id


@pytest.fixture
def second_server(daphne_factory):
    return daphne_factory(env=FAST_PRESENCE)


async def test_message_sent_on_one_process_reaches_a_socket_on_another(world, second_server):
    """A message accepted by process A reaches a subscriber on process B."""
    alice = await connect(world.server, token=world.tokens["alice"])
    bob = await connect(second_server, token=world.tokens["bob"])
    await join(alice, "lobby")
    await join(bob, "lobby")
    await send(alice, {"type": "message", "room": "lobby", "body": "across", "client_id": "x1"})
    assert (await recv_type(bob, "message"))["message"]["body"] == "across"
    assert (await recv_type(alice, "message"))["message"]["client_id"] == "x1"
    await alice.close()
    await bob.close()


async def test_presence_is_global_across_processes(world, second_server):
    """joined.online and presence frames include users connected to the other process."""
    alice = await connect(world.server, token=world.tokens["alice"])
    await join(alice, "lobby")
    bob = await connect(second_server, token=world.tokens["bob"])
    assert (await join(bob, "lobby"))["online"] == ["alice", "bob"]
    assert await recv_until(alice, lambda f: f["type"] == "presence" and f["user"] == "bob") == {
        "type": "presence",
        "room": "lobby",
        "user": "bob",
        "online": True,
    }
    await bob.close()
    assert (await recv_until(alice, lambda f: f["type"] == "presence" and f["user"] == "bob"))["online"] is False
    await alice.close()


async def test_resume_while_another_client_sends_has_no_gap_and_no_duplicate(world, daphne_factory):
    """A client resuming with `after` while another sends on the other process sees every id once, in order."""
    first_server, second_server = daphne_factory(env=FAST_RATE), daphne_factory(env=FAST_RATE)
    alice = await connect(first_server, token=world.tokens["alice"])
    await join(alice, "lobby")
    sent_ids: list[int] = []
    acked = asyncio.Condition()

    async def sender():
        # Paced by acknowledgements (at most 4 in flight), so the sends span bob's resume.
        for number in range(40):
            async with acked:
                await acked.wait_for(lambda n=number: len(sent_ids) >= n - 4)
            await send(alice, {"type": "message", "room": "lobby", "body": f"s{number}", "client_id": f"s{number}"})

    async def collect_sent():
        while len(sent_ids) < 40:
            frame = await recv(alice, timeout=10)
            if frame["type"] == "message" and frame["message"]["author"]["username"] == "alice":
                async with acked:
                    sent_ids.append(frame["message"]["id"])
                    acked.notify_all()
            elif frame["type"] == "error":
                raise AssertionError(frame)

    first, _ = await sync_to_async(services.message_post)(user=world.bob, room=world.room, body="before")
    sending = asyncio.gather(sender(), collect_sent())
    async with acked:  # bob resumes once alice is well into sending
        await asyncio.wait_for(acked.wait_for(lambda: len(sent_ids) >= 5), timeout=10)
    bob = await connect(second_server, token=world.tokens["bob"])
    await send(bob, {"type": "join", "room": "lobby", "after": first.id})
    await sending
    received = []
    frames = []
    while len(received) < 40:
        frame = await recv(bob, timeout=10)
        frames.append(frame)
        if frame["type"] == "message":
            received.append(frame["message"]["id"])
    assert received == sent_ids, [(f["type"], f.get("message", {}).get("id", f.get("last_id"))) for f in frames]
    assert [f for f in await drain(bob, 0.5) if f["type"] == "message"] == []
    await alice.close()
    await bob.close()


async def chat_until_killed(world, servers, kill, *, messages_before=30, messages_after=30):
    """alice sends on servers[0]; bob listens on servers[0]; servers[0] is killed mid-chat.

    Both reconnect to servers[1], resume after their last id, and alice sends the rest. Returns
    the ids bob received and the ids stored in the database.
    """
    alice = await connect(servers[0], token=world.tokens["alice"])
    bob = await connect(servers[0], token=world.tokens["bob"])
    await join(alice, "lobby")
    await join(bob, "lobby")
    bob_ids: list[int] = []
    for number in range(messages_before):
        await send(alice, {"type": "message", "room": "lobby", "body": f"a{number}", "client_id": f"a{number}"})
    # Kill while frames are in flight: once bob has the first, before he has them all.
    first = await recv_until(bob, lambda f: f["type"] == "message")
    bob_ids.append(first["message"]["id"])
    close_codes = await kill()
    for ws in (alice, bob):
        try:
            while True:
                frame = await recv(ws, timeout=5)
                if ws is bob and frame["type"] == "message":
                    bob_ids.append(frame["message"]["id"])
        except (TimeoutError, websockets.ConnectionClosed):
            pass
    # Reconnect elsewhere and resume after the last id seen; alice re-sends unacknowledged client_ids.
    alice = await connect(servers[1], token=world.tokens["alice"])
    bob = await connect(servers[1], token=world.tokens["bob"])
    await join(bob, "lobby", after=bob_ids[-1] if bob_ids else 0)
    await join(alice, "lobby")
    for number in range(messages_before):
        await send(alice, {"type": "message", "room": "lobby", "body": f"a{number}", "client_id": f"a{number}"})
    for number in range(messages_after):
        await send(alice, {"type": "message", "room": "lobby", "body": f"b{number}", "client_id": f"b{number}"})
    stored = await sync_to_async(lambda: list(Message.objects.order_by("id").values_list("id", flat=True)))()
    deadline = asyncio.get_running_loop().time() + 15
    while asyncio.get_running_loop().time() < deadline:
        stored = await sync_to_async(lambda: list(Message.objects.order_by("id").values_list("id", flat=True)))()
        if len(stored) == messages_before + messages_after and (bob_ids and bob_ids[-1] == stored[-1]):
            break
        try:
            frame = await recv(bob, timeout=1)
        except TimeoutError:
            continue
        if frame["type"] == "message":
            bob_ids.append(frame["message"]["id"])
    await alice.close()
    await bob.close()
    return bob_ids, stored, close_codes


async def test_sigkill_of_a_process_loses_nothing_after_resume(world, daphne_factory):
    """A process killed with SIGKILL mid-chat: clients resume on the other process and miss nothing."""
    servers = [daphne_factory(env=FAST_RATE), daphne_factory(env=FAST_RATE)]

    async def kill():
        servers[0].kill()
        return None

    bob_ids, stored, _ = await chat_until_killed(world, servers, kill)
    assert len(stored) == 60, "every client_id stored exactly once"
    assert bob_ids == stored, "bob saw every stored message once, in order"


async def test_sigterm_closes_sockets_with_4012_and_nothing_is_lost(world, daphne_factory):
    """SIGTERM closes every socket with 4012; after resuming elsewhere nothing is lost or doubled."""
    servers = [daphne_factory(env=FAST_RATE), daphne_factory(env=FAST_RATE)]
    watcher = await connect(servers[0], token=world.tokens["carol"])

    async def terminate():
        servers[0].signal(signal.SIGTERM)
        return await close_code(watcher, timeout=5)

    bob_ids, stored, code = await chat_until_killed(world, servers, terminate)
    assert code == 4012
    assert servers[0].proc.wait(timeout=10) is not None
    assert len(stored) == 60
    assert bob_ids == stored


async def test_crashed_process_users_go_offline_within_the_presence_ttl(world, daphne_factory):
    """When a process dies, its users' presence turns offline on the others within the TTL."""
    doomed = daphne_factory(env=FAST_PRESENCE)
    survivor = daphne_factory(env=FAST_PRESENCE)
    alice = await connect(survivor, token=world.tokens["alice"])
    await join(alice, "lobby")
    bob = await connect(doomed, token=world.tokens["bob"])
    await join(bob, "lobby")
    await recv_until(alice, lambda f: f["type"] == "presence" and f["user"] == "bob" and f["online"])
    doomed.kill()
    frame = await recv_until(alice, lambda f: f["type"] == "presence" and f["user"] == "bob", timeout=8)
    assert frame["online"] is False
    await alice.close()


async def test_a_dropped_broadcast_is_filled_from_the_database(world):
    """A message whose broadcast never came is delivered, in order, before the next one."""
    bob = await connect(world.server, token=world.tokens["bob"])
    await join(bob, "lobby")

    silent_id = await sync_to_async(insert_without_broadcast)(world.room, world.alice, "silent")
    loud, _ = await sync_to_async(services.message_post)(user=world.alice, room=world.room, body="loud")
    first = (await recv_type(bob, "message"))["message"]
    second = (await recv_type(bob, "message"))["message"]
    assert [first["id"], second["id"]] == [silent_id, loud.id]
    await bob.close()


async def test_a_dropped_last_broadcast_arrives_by_the_tail_check(world):
    """Even with no later message, a dropped broadcast reaches sockets within a few seconds."""
    bob = await connect(world.server, token=world.tokens["bob"])
    await join(bob, "lobby")

    silent_id = await sync_to_async(insert_without_broadcast)(world.room, world.alice, "quiet")
    frame = await recv_type(bob, "message", timeout=8)
    assert frame["message"]["id"] == silent_id
    await bob.close()
