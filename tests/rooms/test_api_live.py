"""The REST API over real HTTP against real daphne processes, and its live effects on WebSockets.

CONTRACT §2: REST writes are broadcast "exactly as if sent over the socket"; bans take effect
on open sockets within one second; AUTH_THROTTLE is one budget across processes (Redis).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.http import http_json
from tests.support.ws import access_token, close_code, connect, drain, join, recv_type, recv_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

LIVE_SECONDS = 1.0


@pytest.fixture
def live(daphne_factory, user_factory, moderator_factory, room_factory):
    """One daphne process; alice owns public room `live` where bob is a member; mod moderates."""
    alice, bob, mod = user_factory("alice"), user_factory("bob"), moderator_factory("mod")
    room_factory("live", owner=alice, members=[bob])
    server = daphne_factory()
    tokens = {user.username: access_token(user) for user in (alice, bob, mod)}
    return server, tokens


def api(server, method: str, path: str, token: str | None = None, body=None):
    return http_json(method, f"{server.http_url}/api/v1/{path}", token, body)


async def api_async(*args, **kwargs):
    return await asyncio.to_thread(api, *args, **kwargs)


async def test_rest_post_reaches_sockets_identically(live):
    """A message posted over REST reaches joined sockets as the same message object."""
    server, tokens = live
    ws = await connect(server, token=tokens["bob"])
    try:
        await join(ws, "live")
        status, message = await api_async(
            server, "POST", "rooms/live/messages/", tokens["alice"], {"body": "hi <b>all</b>", "client_id": "r1"}
        )
        assert status == 201
        frame = await recv_type(ws, "message")
        assert frame["message"] == message
    finally:
        await ws.close()


async def test_rest_resend_is_not_broadcast_again(live):
    """A REST resend with the same client_id answers 200 and sends no second frame."""
    server, tokens = live
    ws = await connect(server, token=tokens["bob"])
    try:
        await join(ws, "live")
        first = await api_async(
            server, "POST", "rooms/live/messages/", tokens["alice"], {"body": "once", "client_id": "dup"}
        )
        await recv_type(ws, "message")
        again = await api_async(
            server, "POST", "rooms/live/messages/", tokens["alice"], {"body": "once", "client_id": "dup"}
        )
        assert (first[0], again[0], again[1]) == (201, 200, first[1])
        assert not [frame for frame in await drain(ws, 0.5) if frame.get("type") == "message"]
    finally:
        await ws.close()


async def test_rest_edit_and_delete_broadcast(live):
    """PATCH broadcasts message_edited; DELETE broadcasts message_deleted."""
    server, tokens = live
    ws = await connect(server, token=tokens["bob"])
    try:
        await join(ws, "live")
        _, message = await api_async(server, "POST", "rooms/live/messages/", tokens["alice"], {"body": "v1"})
        status, edited = await api_async(server, "PATCH", f"messages/{message['id']}/", tokens["alice"], {"body": "v2"})
        assert status == 200
        frame = await recv_type(ws, "message_edited")
        assert frame["message"] == edited
        status, _ = await api_async(server, "DELETE", f"messages/{message['id']}/", tokens["alice"])
        assert status == 204
        assert await recv_type(ws, "message_deleted") == {
            "type": "message_deleted",
            "room": "live",
            "id": message["id"],
            "version": edited["version"] + 1,
        }
    finally:
        await ws.close()


async def test_rest_room_ban_removes_socket_within_a_second(live):
    """POST rooms/{slug}/bans/ gives the user's socket `left`/`banned` within one second, then nothing of the room."""
    server, tokens = live
    ws = await connect(server, token=tokens["bob"])
    try:
        await join(ws, "live")
        started = time.monotonic()
        status, _ = await api_async(server, "POST", "rooms/live/bans/", tokens["alice"], {"username": "bob"})
        assert status == 201
        frame = await recv_until(ws, lambda f: f.get("type") == "left", timeout=LIVE_SECONDS)
        assert frame == {"type": "left", "room": "live", "reason": "banned"}
        assert time.monotonic() - started < LIVE_SECONDS + 0.5
        await api_async(server, "POST", "rooms/live/messages/", tokens["alice"], {"body": "after the ban"})
        assert not [frame for frame in await drain(ws, 0.5) if frame.get("room") == "live" or "message" in frame]
    finally:
        await ws.close()


async def test_rest_site_ban_closes_sockets_4003_and_refuses_rest(live):
    """POST bans/ closes the user's sockets with 4003 within a second; their REST calls answer 403."""
    server, tokens = live
    ws = await connect(server, token=tokens["bob"])
    status, pair = await api_async(
        server, "POST", "auth/token/", None, {"username": "bob", "password": "a-Strong-pass-4821"}
    )
    assert status == 200
    status, _ = await api_async(server, "POST", "bans/", tokens["mod"], {"username": "bob", "reason": "abuse"})
    assert status == 201
    assert await close_code(ws, timeout=LIVE_SECONDS + 0.5) == 4003
    assert (await api_async(server, "GET", "me/", tokens["bob"]))[0] == 403
    assert (await api_async(server, "POST", "auth/ws-ticket/", tokens["bob"]))[0] == 403
    assert (await api_async(server, "POST", "auth/token/refresh/", None, {"refresh": pair["refresh"]}))[0] == 403
    assert (
        await api_async(server, "POST", "auth/token/", None, {"username": "bob", "password": "a-Strong-pass-4821"})
    )[0] == 403


async def test_rest_full_flow_over_http(live):
    """register, token, ws-ticket, create, join, post, history: the mobile app's path, over real HTTP."""
    server, tokens = live
    status, created = await api_async(
        server, "POST", "auth/register/", None, {"username": "newbie", "password": "Tr1cky-horse-battery"}
    )
    assert status == 201
    status, pair = await api_async(
        server, "POST", "auth/token/", None, {"username": "newbie", "password": "Tr1cky-horse-battery"}
    )
    assert status == 200
    access = pair["access"]
    assert (await api_async(server, "GET", "me/", access))[1] == {
        "id": created["id"],
        "username": "newbie",
        "is_moderator": False,
    }
    status, room = await api_async(server, "POST", "rooms/", access, {"name": "Newbie Room", "is_private": True})
    assert (status, room["slug"]) == (201, "newbie-room")
    status, ticket = await api_async(server, "POST", "auth/ws-ticket/", access)
    ws = await connect(server, query=f"ticket={ticket['ticket']}")
    try:
        await join(ws, "newbie-room")
        status, message = await api_async(server, "POST", "rooms/newbie-room/messages/", access, {"body": "first"})
        assert status == 201
        assert (await recv_type(ws, "message"))["message"] == message
    finally:
        await ws.close()
    status, page = await api_async(server, "GET", "rooms/newbie-room/messages/?limit=10", access)
    assert (status, page) == (200, {"results": [message], "has_more": False})
    assert (await api_async(server, "GET", "rooms/newbie-room/", tokens["bob"]))[0] == 404


async def test_auth_throttle_shared_across_processes(daphne_factory):
    """AUTH_THROTTLE is one budget per address across every process (kept in Redis)."""
    a = daphne_factory(env={"AUTH_THROTTLE": "3/min"})
    b = daphne_factory(env={"AUTH_THROTTLE": "3/min"})
    statuses = [
        (await api_async(server, "POST", "auth/token/", None, {"username": "x", "password": "y"}))[0]
        for server in (a, b, a, b)
    ]
    assert statuses == [401, 401, 401, 429]


async def test_bad_input_over_http_is_json_4xx(live):
    """Malformed bodies over real HTTP answer JSON 4xx from daphne, never 500."""
    server, tokens = live
    assert await api_async(server, "POST", "rooms/live/messages/", tokens["bob"], ["not", "an", "object"]) == (
        400,
        {
            "code": "bad_request",
            "detail": "Some fields are invalid.",
            "non_field_errors": ["Invalid data. Expected a dictionary, but got list."],
            "errors": {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]},
        },
    )
    status, body = await api_async(server, "GET", "rooms/live/messages/?limit=101", tokens["bob"])
    assert status == 400 and body["code"] == "bad_request"
    status, body = await api_async(server, "DELETE", "messages/99999999999999999999/", tokens["bob"])
    assert (status, body["code"]) == (404, "not_found")  # past bigint: no such message, no database error
    status, body = await api_async(server, "GET", "messages/1/", tokens["bob"])
    assert (status, body["code"]) == (405, "method_not_allowed")  # a message is read through its room
    status, body = await api_async(server, "GET", "rooms/", None)
    assert (status, body["code"]) == (401, "not_authenticated")
