"""The Server-Sent Events stream of CONTRACT §6, end to end: real HTTP clients (httpx) against two
daphne processes sharing PostgreSQL and Redis, beside real WebSocket clients.

The two servers are started once for the module (each test makes its own users and rooms in the
flushed test database): a stream is one more connection of the same hub, so everything here runs
across processes, a stream on one and a socket or a sender on the other.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from rooms import services
from rooms.models import Message, Room
from tests.support.http import http_json
from tests.support.servers import DaphneProcess
from tests.support.sse import open_stream, refused
from tests.support.ws import access_token, connect, join, recv_type, recv_until, send

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SERVER_ENV = {
    "CHAT_SSE_PING_SECONDS": "0.5",
    "RATE_LIMIT_MESSAGES": "1000/1s",
    "CHAT_PRESENCE_TTL_SECONDS": "3",
    "CHAT_HEARTBEAT_SECONDS": "1",
    "CHAT_MAX_SOCKETS_PER_USER": "6",
}


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


class People:
    """alice owns public room `lobby` with member bob; carol is in no room; `mod` is a moderator."""

    def __init__(self, user_factory, moderator_factory, room_factory) -> None:
        self.alice, self.bob, self.carol = user_factory("alice"), user_factory("bob"), user_factory("carol")
        self.mod = moderator_factory("mod")
        self.lobby = room_factory("lobby", owner=self.alice, members=[self.bob])
        self.tokens = {user.username: access_token(user) for user in (self.alice, self.bob, self.carol, self.mod)}


@pytest.fixture
def people(servers, user_factory, moderator_factory, room_factory) -> People:
    return People(user_factory, moderator_factory, room_factory)


def bulk_messages(room, author, count: int) -> list[int]:
    """`count` committed messages in `room` with no broadcast (history made while nobody listened)."""
    room = Room.objects.get(pk=room.pk)
    prev = room.last_message_id
    ids = []
    for number in range(count):
        message = Message.objects.create(
            room=room, author=author, body=f"old {number}", body_raw=f"old {number}", prev_id=prev
        )
        prev = message.id
        ids.append(message.id)
    Room.objects.filter(pk=room.pk).update(last_message_id=prev)
    return ids


async def test_stream_starts_with_joined_events_and_the_headers(servers, people):
    """200 text/event-stream, no-cache, X-Accel-Buffering: no; a joined event per room, in order, with a cursor."""
    await sync_to_async(services.room_create)(user=people.alice, name="Second", slug="second")
    stream = await open_stream(servers[0], rooms="lobby,second", token=people.tokens["alice"])
    assert stream.status == 200
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert stream.response.headers["cache-control"] == "no-cache"
    assert stream.response.headers["x-accel-buffering"] == "no"
    first, second = await stream.event_of_type("joined"), await stream.event_of_type("joined")
    assert first.data == {"type": "joined", "room": "lobby", "last_id": 0, "online": ["alice"], "version": 0}
    assert (second.data["room"], second.id) == ("second", "lobby:0,second:0")
    await stream.close()


async def test_a_room_that_cannot_be_joined_is_an_error_event_and_the_others_go_on(servers, people):
    """Unknown or private rooms answer an `error` event naming the room; the joinable ones stream."""
    await sync_to_async(services.room_create)(user=people.bob, name="Secret", slug="secret", is_private=True)
    stream = await open_stream(servers[0], rooms="nope,secret,lobby", token=people.tokens["carol"])
    for slug in ("nope", "secret"):
        error = await stream.next_event()
        assert (error.type, error.data["code"], error.data["room"]) == ("error", "not_found", slug)
    assert (await stream.next_event()).data["room"] == "lobby"
    await stream.close()


async def test_frames_from_a_socket_on_the_other_process_arrive_as_events(servers, people):
    """message, message_edited and message_deleted reach a stream exactly as a joined socket gets them."""
    stream = await open_stream(servers[0], rooms="lobby", token=people.tokens["alice"])
    await stream.event_of_type("joined")
    bob = await connect(servers[1], token=people.tokens["bob"])
    await join(bob, "lobby")
    await send(bob, {"type": "message", "room": "lobby", "body": "hello <script>x</script>", "client_id": "b1"})
    message = await stream.event_of_type("message")
    assert message.data["message"]["client_id"] == "b1"
    assert "<script>" not in message.data["message"]["body"]
    assert message.id == f"lobby:{message.data['message']['id']}"
    stored = await sync_to_async(Message.objects.get)(pk=message.data["message"]["id"])
    await sync_to_async(services.message_edit)(user=people.bob, message=stored, body="edited")
    assert (await stream.event_of_type("message_edited")).data["message"]["body"] == "edited"
    await sync_to_async(services.message_delete)(actor=people.bob, message=stored)
    deleted = await stream.event_of_type("message_deleted")
    assert deleted.data == {"type": "message_deleted", "room": "lobby", "id": stored.id, "version": stored.version}
    assert stored.version == 3  # posted 1, edited 2, deleted 3
    assert deleted.id is None
    await bob.close()
    await stream.close()


async def test_reconnect_with_last_event_id_while_a_sender_runs_has_no_gap_and_no_duplicate(servers, people):
    """A stream dropped mid-flow and resumed with Last-Event-ID on the other process sees every id once, in order."""
    bob = await connect(servers[1], token=people.tokens["bob"])
    await join(bob, "lobby")
    total = 60

    async def sender():
        for number in range(total):
            await send(bob, {"type": "message", "room": "lobby", "body": f"m{number}", "client_id": f"m{number}"})
            await asyncio.sleep(0.01)

    seen: list[int] = []
    stream = await open_stream(servers[0], rooms="lobby", token=people.tokens["alice"])
    await stream.event_of_type("joined")
    sending = asyncio.create_task(sender())
    while len(seen) < total // 3:
        event = await stream.event_of_type("message", timeout=10)
        seen.append(event.data["message"]["id"])
    # The id of the last event consumed (the client may already have parsed later ones that
    # arrived in the same read, which a browser would also have dispatched).
    cursor = event.id
    await stream.close()  # the client goes away while bob keeps sending
    resumed = await open_stream(
        servers[1], rooms="lobby", token=people.tokens["alice"], headers={"Last-Event-ID": cursor}
    )
    while len(seen) < total:
        seen.append((await resumed.event_of_type("message", timeout=10)).data["message"]["id"])
    await sending
    stored = await sync_to_async(list)(
        Message.objects.filter(room=people.lobby).order_by("id").values_list("id", flat=True)
    )
    assert (cursor, seen) == (cursor, stored)
    await resumed.close()
    await bob.close()


async def test_after_replays_like_join_and_more_than_500_missed_answers_resync(servers, people):
    """?after= within 500 replays the missed messages in order; beyond 500, `resync` alone, then live."""
    ids = await sync_to_async(bulk_messages)(people.lobby, people.bob, 503)
    stream = await open_stream(servers[0], rooms="lobby", token=people.tokens["alice"], query=f"after=lobby:{ids[-4]}")
    joined = await stream.event_of_type("joined")
    assert joined.data["last_id"] == ids[-1]
    replayed = [await stream.next_event() for _ in range(3)]
    assert [(event.type, event.data["message"]["id"], event.id) for event in replayed] == [
        ("message", message_id, f"lobby:{message_id}") for message_id in ids[-3:]
    ]
    await stream.close()

    stream = await open_stream(
        servers[1], rooms="lobby", token=people.tokens["alice"], headers={"Last-Event-ID": "lobby:0"}
    )
    await stream.event_of_type("joined")
    resync = await stream.next_event()
    assert (resync.type, resync.data, resync.id) == ("resync", {"type": "resync", "room": "lobby"}, f"lobby:{ids[-1]}")
    live, _ = await sync_to_async(services.message_post)(user=people.bob, room=people.lobby, body="after resync")
    message = await stream.event_of_type("message")
    assert (message.data["message"]["id"], message.id) == (live.id, f"lobby:{live.id}")
    await stream.close()


async def test_ping_comments_keep_the_stream_alive(servers, people):
    """A `: ping` comment comes every CHAT_SSE_PING_SECONDS (0.5 s here, 15 s by default)."""
    stream = await open_stream(servers[0], rooms="lobby", token=people.tokens["alice"])
    pings = []
    while len(pings) < 2:
        event = await stream.next_event(timeout=2, comments=True)
        if event.type == "comment":
            pings.append(event.raw)
    assert pings == [": ping", ": ping"]
    await stream.close()


async def test_presence_counts_a_stream_like_a_socket(servers, people):
    """A stream joining goes online for the room's sockets on the other process; closing it goes offline."""
    alice = await connect(servers[1], token=people.tokens["alice"])
    await join(alice, "lobby")
    stream = await open_stream(servers[0], rooms="lobby", token=people.tokens["bob"])
    assert (await stream.event_of_type("joined")).data["online"] == ["alice", "bob"]
    assert (await recv_until(alice, lambda f: f["type"] == "presence" and f["user"] == "bob"))["online"] is True
    await stream.close()
    offline = await recv_until(alice, lambda f: f["type"] == "presence" and f["user"] == "bob", timeout=5)
    assert offline["online"] is False
    await alice.close()


async def test_a_site_ban_sends_close_4003_and_ends_the_stream_within_a_second(servers, people):
    """Banned site-wide while streaming: `event: close` {"code":4003}, the response ends; new streams 403."""
    stream = await open_stream(servers[0], rooms="lobby", token=people.tokens["bob"])
    await stream.event_of_type("joined")
    await sync_to_async(services.site_ban)(actor=people.mod, username="bob")
    close = await stream.event_of_type("close", timeout=1)
    assert close.data == {"code": 4003}
    await stream.wait_ended(timeout=1)
    await stream.close()
    assert await refused(servers[1], rooms="lobby", token=people.tokens["bob"]) == (
        403,
        {"code": "forbidden", "detail": "This account is banned site-wide."},
    )


async def test_a_room_ban_sends_left_banned_and_nothing_more_of_that_room(servers, people):
    """A room ban: `left` with reason banned; the room's later messages do not reach the stream."""
    await sync_to_async(services.room_create)(user=people.alice, name="Other", slug="other")
    await sync_to_async(services.room_join)(user=people.bob, room=await sync_to_async(Room.objects.get)(slug="other"))
    stream = await open_stream(servers[0], rooms="lobby,other", token=people.tokens["bob"])
    await stream.event_of_type("joined")
    await stream.event_of_type("joined")
    await sync_to_async(services.room_ban)(actor=people.alice, room=people.lobby, username="bob")
    left = await stream.event_of_type("left", timeout=1)
    assert left.data == {"type": "left", "room": "lobby", "reason": "banned"}
    await sync_to_async(services.message_post)(user=people.alice, room=people.lobby, body="not for bob")
    other = await sync_to_async(Room.objects.get)(slug="other")
    await sync_to_async(services.message_post)(user=people.alice, room=other, body="for bob")
    message = await stream.event_of_type("message")
    assert message.data["message"]["body"] == "for bob"
    assert message.id == f"other:{message.data['message']['id']}"  # lobby left the cursor
    await stream.close()


async def test_joined_carries_the_rooms_version_and_changes_catch_up_from_it(servers, people):
    """`joined` (stream and socket) carries the room's version with last_id; `changes` since an
    older version lists what happened while away, and frames after the join carry higher versions."""
    first, _ = await sync_to_async(services.message_post)(user=people.bob, room=people.lobby, body="one")
    second, _ = await sync_to_async(services.message_post)(user=people.bob, room=people.lobby, body="two")
    await sync_to_async(services.message_edit)(user=people.bob, message=first, body="one, edited")
    stream = await open_stream(servers[0], rooms="lobby", token=people.tokens["alice"])
    joined = (await stream.event_of_type("joined")).data
    assert (joined["last_id"], joined["version"]) == (second.id, 3)
    socket = await connect(servers[1], token=people.tokens["alice"])
    assert (await join(socket, "lobby"))["version"] == 3
    status, caught_up = await sync_to_async(http_json)(
        "GET", servers[1].http_url + "/api/v1/rooms/lobby/changes/?since=1", token=people.tokens["alice"]
    )
    assert status == 200
    assert ([m["id"] for m in caught_up["updated"]], caught_up["version"]) == ([second.id, first.id], 3)
    await sync_to_async(services.message_delete)(actor=people.bob, message=second)
    deleted = await stream.event_of_type("message_deleted")
    assert deleted.data["version"] == 4
    assert (await recv_type(socket, "message_deleted"))["version"] == 4
    await socket.close()
    await stream.close()


async def test_typing_over_rest_reaches_the_rooms_sockets_and_streams_but_not_the_typer(servers, people):
    """POST rooms/lobby/typing/ by a streaming bob: 204; alice's socket on the other process and her
    stream get `typing`; bob's own stream does not."""
    alice_socket = await connect(servers[1], token=people.tokens["alice"])
    await join(alice_socket, "lobby")
    alice_stream = await open_stream(servers[1], rooms="lobby", token=people.tokens["alice"])
    await alice_stream.event_of_type("joined")
    bob_stream = await open_stream(servers[0], rooms="lobby", token=people.tokens["bob"])
    await bob_stream.event_of_type("joined")
    status, body = await sync_to_async(http_json)(
        "POST", servers[0].http_url + "/api/v1/rooms/lobby/typing/", token=people.tokens["bob"]
    )
    assert (status, body) == (204, None)
    expected = {"type": "typing", "room": "lobby", "user": "bob"}
    assert await recv_type(alice_socket, "typing") == expected
    assert (await alice_stream.event_of_type("typing")).data == expected
    # bob's stream: the next frame of the room after his typing is alice's message, not his typing.
    await sync_to_async(services.message_post)(user=people.alice, room=people.lobby, body="sentinel")
    event = await bob_stream.event_until(lambda event: event.type in {"typing", "message"})
    assert (event.type, event.data["message"]["body"]) == ("message", "sentinel")
    await alice_socket.close()
    await alice_stream.close()
    await bob_stream.close()


async def test_streams_and_sockets_share_the_per_user_cap(servers, people):
    """CHAT_MAX_SOCKETS_PER_USER (6 here) counts a user's sockets and streams on a process together:
    beyond it a stream is refused with 429 JSON and Retry-After before it starts; other users and
    other processes are unaffected."""
    socket = await connect(servers[0], token=people.tokens["carol"])
    await join(socket, "lobby")
    streams = []
    for _ in range(5):
        streams.append(await open_stream(servers[0], rooms="lobby", token=people.tokens["carol"]))
        await streams[-1].event_of_type("joined")
    refused_stream = await open_stream(servers[0], rooms="lobby", token=people.tokens["carol"])
    assert refused_stream.status == 429
    assert refused_stream.response.headers["retry-after"] == "5"
    body = refused_stream.response.json()
    assert (body["code"], body["retry_after"]) == ("rate_limited", 5.0)
    assert "At most 6 open connections" in body["detail"]
    await refused_stream.close()
    for other in (
        await open_stream(servers[1], rooms="lobby", token=people.tokens["carol"]),
        await open_stream(servers[0], rooms="lobby", token=people.tokens["alice"]),
    ):
        assert (await other.event_of_type("joined")).data["room"] == "lobby"
        await other.close()
    for stream in streams:
        await stream.close()
    await socket.close()


async def test_a_ticket_authenticates_once(servers, people):
    """?ticket= from auth/ws-ticket/ opens a stream; the same ticket again is refused with 401."""
    status, body = await sync_to_async(http_json)(
        "POST", servers[0].http_url + "/api/v1/auth/ws-ticket/", token=people.tokens["alice"]
    )
    assert status == 200
    stream = await open_stream(servers[1], rooms="lobby", query=f"ticket={body['ticket']}")
    assert (await stream.event_of_type("joined")).data["room"] == "lobby"
    await stream.close()
    status, error = await refused(servers[0], rooms="lobby", query=f"ticket={body['ticket']}")
    assert (status, error["code"]) == (401, "not_authenticated")
    assert "auth/ws-ticket/" in error["detail"]


async def session_cookie(username: str, password: str) -> dict[str, str]:
    from django.test import Client

    def login() -> dict[str, str]:
        client = Client()
        assert client.login(username=username, password=password)
        return {"sessionid": client.cookies["sessionid"].value}

    return await sync_to_async(login)()


async def test_the_session_cookie_follows_the_origin_rules_of_the_socket(servers, people, password):
    """Cookie: from an allowed Origin or a same-origin EventSource (no Origin, Sec-Fetch-Site: same-origin) only."""
    server = servers[0]
    cookies = await session_cookie("alice", password)
    for headers in ({"Origin": server.origin}, {"Sec-Fetch-Site": "same-origin"}):
        stream = await open_stream(server, rooms="lobby", cookies=cookies, headers=headers)
        assert (stream.status, (await stream.event_of_type("joined")).data["room"]) == (200, "lobby")
        await stream.close()
    for headers in ({}, {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "none"}):
        assert (await refused(server, rooms="lobby", cookies=cookies, headers=headers))[0] == 401
    status, error = await refused(server, rooms="lobby", cookies=cookies, headers={"Origin": "http://evil.example"})
    assert (status, error["code"]) == (403, "forbidden")


@pytest.mark.parametrize(
    ("query", "headers", "status", "detail_part"),
    [
        ("", {}, 400, "?rooms="),
        ("rooms=", {}, 400, "?rooms="),
        ("rooms=" + ",".join(f"r{n}" for n in range(21)), {}, 400, "at most 20"),
        ("rooms=lobby,,x", {}, 400, "not a room slug"),
        ("rooms=lob%00by", {}, 400, "not a room slug"),
        ("rooms=%ED%A0%80", {}, 400, "not a room slug"),
        ("rooms=" + "x" * 65, {}, 400, "not a room slug"),
        ("rooms=lobby&after=lobby", {}, 400, "not a cursor entry"),
        ("rooms=lobby&after=lobby:-1", {}, 400, "not a cursor entry"),
        ("rooms=lobby&after=lobby:1,lobby:2", {}, 400, "twice"),
        ("rooms=lobby&after=lobby:" + "9" * 30, {}, 400, "18 digits"),
        ("rooms=lobby", {"Last-Event-ID": "garbage"}, 400, "not a cursor entry"),
        ("rooms=lobby", {"Last-Event-ID": "x" * 3000}, 400, "longer than"),
    ],
)
async def test_bad_stream_requests_get_clear_errors(servers, people, query, headers, status, detail_part):
    """Missing, too many or malformed rooms and cursors answer 400 JSON that says what to send."""
    got_status, error = await refused(servers[0], query=query, token=people.tokens["alice"], headers=headers)
    assert (got_status, error["code"]) == (status, "bad_request")
    assert detail_part in error["detail"]


@pytest.mark.parametrize(
    ("credentials", "status"),
    [
        ({}, 401),
        ({"token": "not-a-jwt"}, 401),
        ({"headers": {"Authorization": "Basic YWxpY2U6eA=="}}, 401),
        ({"query": "ticket=" + "x" * 40}, 401),
        ({"query": "ticket=%00"}, 401),
    ],
)
async def test_a_stream_without_valid_credentials_is_refused(servers, people, credentials, status):
    """No, malformed or unknown credentials: 401 JSON before any event."""
    got_status, error = await refused(servers[0], rooms="lobby", **credentials)
    assert (got_status, error["code"]) == (status, "not_authenticated")


async def test_only_get_is_served(servers, people):
    """POST to the stream answers 405 JSON."""
    status, body = await sync_to_async(http_json)(
        "POST", servers[0].http_url + "/api/v1/stream/?rooms=lobby", token=people.tokens["alice"], body={}
    )
    assert (status, body["code"]) == (405, "method_not_allowed")
