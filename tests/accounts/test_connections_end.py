"""Connections end with their credentials (CONTRACT §7), end to end across daphne processes.

For each kind of credential (session cookie, Bearer JWT, ticket) and each transport (WebSocket,
event stream): web logout closes with 4001 the connections of that session only; a password change
(REST) and a deactivation (admin) close all of the user's, on every process, within one second. The
layer event is what closes them there: those two servers re-check credentials only every 30 s. A
third server with a one-second heartbeat shows the re-check alone closing them when the event is
lost. The servers are started once for the module; each test makes its own users.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async
from django.test import Client

from accounts import services as account_services
from rooms.realtime import events
from tests.support.http import http_json
from tests.support.servers import DaphneProcess
from tests.support.sse import Stream, open_stream
from tests.support.ws import access_token, connect, join, recv_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# Events only: a heartbeat re-check this rare cannot be what closes a connection within a second.
# The streams' ping stays at its 15 s default: a stream the server ended must leave at once, not
# when its serving loop would next ping.
EVENT_ENV = {"CHAT_HEARTBEAT_SECONDS": "30", "CHAT_PRESENCE_TTL_SECONDS": "90"}
HEARTBEAT_ENV = {"CHAT_HEARTBEAT_SECONDS": "1", "CHAT_PRESENCE_TTL_SECONDS": "3", "CHAT_SSE_PING_SECONDS": "0.5"}
NEW_PASSWORD = "n-Other-pass-9164"


@pytest.fixture(scope="module")
def servers(django_db_setup, django_db_blocker):
    """Two servers closing on events, and one re-checking every second (the last)."""
    started: list[DaphneProcess] = []
    try:
        for env in (EVENT_ENV, EVENT_ENV, HEARTBEAT_ENV):
            started.append(DaphneProcess(env=env).start())
        yield started
    finally:
        for server in started:
            server.stop()


def web_session(username: str, password: str) -> str:
    """A real web session (a row in the shared database), as the login page makes it."""
    client = Client()
    assert client.login(username=username, password=password)
    return client.cookies["sessionid"].value


async def ticket_for(server, token: str) -> str:
    status, body = await asyncio.to_thread(http_json, "POST", f"{server.http_url}/api/v1/auth/ws-ticket/", token)
    assert status == 201 or status == 200, body
    return body["ticket"]


async def web_logout(server, session: str) -> None:
    """POST /accounts/logout/ as the page's form does (CSRF token from the confirmation page)."""
    async with httpx.AsyncClient(base_url=server.http_url, cookies={"sessionid": session}) as client:
        page = await client.get("/accounts/logout/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert page.status_code == 200 and token, page.text[:500]
        answer = await client.post(
            "/accounts/logout/", data={"csrfmiddlewaretoken": token.group(1)}, headers={"Origin": server.origin}
        )
        assert answer.status_code == 302, answer.text[:500]


@dataclass
class Opened:
    """One open connection of a test: a socket or a stream, and how it authenticated."""

    name: str
    ws: websockets.ClientConnection | None = None
    stream: Stream | None = None

    async def close_code(self, timeout: float) -> int | None:
        """The close code the server sends within `timeout` (a stream: its `close` event's code)."""
        if self.ws is not None:
            try:
                while True:
                    await asyncio.wait_for(self.ws.recv(), timeout)
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
            except TimeoutError:
                return None
        assert self.stream is not None
        try:
            event = await self.stream.event_of_type("close", timeout)
        except AssertionError:
            return None
        await self.stream.wait_ended(1)
        return event.data["code"]

    async def gets(self, body: str) -> bool:
        """Still served: the room's next message, `body`, reaches it."""
        if self.ws is not None:
            try:
                frame = await recv_until(self.ws, lambda f: f["type"] == "message")
            except websockets.ConnectionClosed:
                return False
            return frame["message"]["body"] == body
        assert self.stream is not None
        try:
            event = await self.stream.event_of_type("message")
        except AssertionError:
            return False
        return event.data["message"]["body"] == body

    async def shut(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.stream is not None:
            await self.stream.close()


async def open_socket(name: str, server, **kwargs) -> Opened:
    ws = await connect(server, **kwargs)
    await join(ws, "lobby")
    return Opened(name, ws=ws)


async def open_sse(name: str, server, **kwargs) -> Opened:
    stream = await open_stream(server, rooms="lobby", **kwargs)
    assert stream.status == 200, stream.response.text
    await stream.event_of_type("joined")
    return Opened(name, stream=stream)


async def open_every_kind(user, password: str, servers) -> tuple[str, list[Opened]]:
    """A socket and a stream of each credential kind, spread over the two servers; the session key."""
    first, second = servers
    session = await sync_to_async(web_session)(user.username, password)
    cookie = {"sessionid": session}
    token = await sync_to_async(access_token)(user)
    opened = [
        await open_socket("cookie ws", first, origin=first.origin, headers={"Cookie": f"sessionid={session}"}),
        await open_sse("cookie sse", second, cookies=cookie, headers={"Origin": second.origin}),
        await open_socket("jwt ws", second, token=token),
        await open_sse("jwt sse", first, token=token),
        await open_socket("ticket ws", first, query=f"ticket={await ticket_for(first, token)}"),
        await open_sse("ticket sse", second, query=f"ticket={await ticket_for(second, token)}"),
    ]
    return session, opened


async def close_codes(opened: list[Opened], timeout: float) -> dict[str, int | None]:
    codes = await asyncio.gather(*(connection.close_code(timeout) for connection in opened))
    return {connection.name: code for connection, code in zip(opened, codes, strict=True)}


@pytest.fixture
def member(user_factory, room_factory):
    """A member of public room `lobby`, owned by someone else."""
    user = user_factory("member")
    room_factory("lobby", owner=user_factory("owner"), members=[user])
    return user


def post_in_lobby(body: str) -> None:
    """The lobby's owner posts `body` (every connection still open gets it)."""
    from rooms import services
    from rooms.models import Room

    room = Room.objects.get(slug="lobby")
    services.message_post(user=room.owner, room=room, body=body)


async def test_web_logout_closes_only_that_sessions_connections(servers, member, password):
    """Logging out of one web session closes its socket and stream (4001) on both processes; the
    user's other session, JWT and ticket connections stay open."""
    session, opened = await open_every_kind(member, password, servers[:2])
    other_session = await sync_to_async(web_session)(member.username, password)
    other = await open_socket(
        "other session ws", servers[1], origin=servers[1].origin, headers={"Cookie": f"sessionid={other_session}"}
    )
    await web_logout(servers[0], session)
    ended = [connection for connection in opened if connection.name.startswith("cookie")]
    assert await close_codes(ended, timeout=1.0) == {"cookie ws": 4001, "cookie sse": 4001}
    await sync_to_async(post_in_lobby)("still here")
    for connection in [*opened, other]:
        if connection not in ended:
            assert await connection.gets("still here"), connection.name
    for connection in [*opened, other]:
        await connection.shut()


async def test_a_password_change_closes_every_connection_of_the_user(servers, member, password, user_factory):
    """POST auth/password/: every socket and stream of the user, of every kind, on both processes,
    closes with 4001 within one second; another user's socket stays open."""
    _, opened = await open_every_kind(member, password, servers[:2])
    bystander_user = await sync_to_async(user_factory)()
    bystander = await open_socket("bystander", servers[0], token=await sync_to_async(access_token)(bystander_user))
    token = await sync_to_async(access_token)(member)
    status, body = await asyncio.to_thread(
        http_json,
        "POST",
        f"{servers[1].http_url}/api/v1/auth/password/",
        token,
        {"old_password": password, "new_password": NEW_PASSWORD},
    )
    assert status == 200 and set(body) == {"access", "refresh"}
    assert await close_codes(opened, timeout=1.0) == {connection.name: 4001 for connection in opened}
    # Streams included, every connection left the hubs at once: the user went offline.
    gone = await recv_until(bystander.ws, lambda f: f["type"] == "presence" and f["user"] == "member", timeout=1.0)
    assert gone["online"] is False
    await sync_to_async(post_in_lobby)("still here")
    assert await bystander.gets("still here")
    await bystander.shut()


async def test_deactivation_in_the_admin_closes_every_connection_of_the_user(servers, member, password, user_factory):
    """A superuser unticks "active" in the admin: all of the user's connections close with 4001
    within one second, on both processes."""
    _, opened = await open_every_kind(member, password, servers[:2])
    root = await sync_to_async(user_factory)("root", is_superuser=True, is_staff=True)
    admin = Client()
    await sync_to_async(admin.force_login)(root)
    answer = await sync_to_async(admin.post)(
        "/admin/accounts/user/", {"action": "deactivate_selected", "_selected_action": [member.pk]}
    )
    assert answer.status_code == 302
    assert await close_codes(opened, timeout=1.0) == {connection.name: 4001 for connection in opened}


@pytest.fixture
def lost_close_events(monkeypatch):
    """This process's per-user close events never reach the layer (as if Redis dropped them)."""
    original = events._send

    def send_unless_close(event):
        if not isinstance(event, events.UserClose):
            original(event)

    monkeypatch.setattr(events, "_send", send_unless_close)


async def open_on_heartbeat_server(user, password: str, server) -> tuple[str, list[Opened]]:
    session = await sync_to_async(web_session)(user.username, password)
    token = await sync_to_async(access_token)(user)
    return session, [
        await open_socket("cookie ws", server, origin=server.origin, headers={"Cookie": f"sessionid={session}"}),
        await open_sse("cookie sse", server, cookies={"sessionid": session}, headers={"Origin": server.origin}),
        await open_socket("jwt ws", server, token=token),
        await open_sse("ticket sse", server, query=f"ticket={await ticket_for(server, token)}"),
    ]


async def test_the_heartbeat_closes_a_logged_out_sessions_connections_when_the_event_is_lost(
    servers, member, password, lost_close_events
):
    """Logout's close event lost: within a heartbeat the session's socket and stream close with
    4001 (its session row is gone); the JWT and ticket connections stay."""
    session, opened = await open_on_heartbeat_server(member, password, servers[2])
    web = Client()
    web.cookies["sessionid"] = session
    await sync_to_async(web.post)("/accounts/logout/")
    by_session = [connection for connection in opened if connection.name.startswith("cookie")]
    assert await close_codes(by_session, timeout=3.0) == {"cookie ws": 4001, "cookie sse": 4001}
    await sync_to_async(post_in_lobby)("still here")
    for connection in opened:
        if connection not in by_session:
            assert await connection.gets("still here"), connection.name
            await connection.shut()


async def test_the_heartbeat_closes_everything_after_a_password_change_whose_event_is_lost(
    servers, member, password, lost_close_events
):
    """Password changed with the event lost: every connection of the user closes within a
    heartbeat, 4001 (the token epoch moved on)."""
    _, opened = await open_on_heartbeat_server(member, password, servers[2])
    await sync_to_async(account_services.password_set)(user=member, new_password=NEW_PASSWORD)
    assert await close_codes(opened, timeout=3.0) == {connection.name: 4001 for connection in opened}


async def test_the_heartbeat_closes_a_user_deactivated_behind_its_back(servers, member, password):
    """`is_active` turned off straight in the database (no service, no event): closed within a heartbeat."""
    from django.contrib.auth import get_user_model

    _, opened = await open_on_heartbeat_server(member, password, servers[2])
    await sync_to_async(get_user_model().objects.filter(pk=member.pk).update)(is_active=False)
    assert await close_codes(opened, timeout=3.0) == {connection.name: 4001 for connection in opened}
