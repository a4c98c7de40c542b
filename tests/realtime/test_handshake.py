"""Handshake authentication and origin checks of CONTRACT §3, with real clients and a real server."""

from __future__ import annotations

from datetime import timedelta

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken

from rooms import services
from tests.support.http import http_json
from tests.support.ws import connect, join, recv, send

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


async def assert_refused(server, **kwargs) -> None:
    """No 101, or a close with 4001 before any other frame."""
    try:
        ws = await connect(server, **kwargs)
    except websockets.InvalidStatus as refused:
        assert 400 <= refused.response.status_code < 500
        return
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await recv(ws)
    assert closed.value.rcvd.code == 4001


async def login_session_cookie(server, username: str, password: str) -> str:
    """Log in through Django's test client against the shared database: a real session row."""
    from django.test import Client

    def login():
        client = Client()
        assert client.login(username=username, password=password)
        return client.cookies["sessionid"].value

    return await sync_to_async(login)()


async def test_bearer_jwt_opens_a_socket(world):
    """An Authorization: Bearer access JWT authenticates a native client without Origin."""
    ws = await connect(world.server, token=world.tokens["alice"])
    assert (await join(ws, "lobby"))["type"] == "joined"
    await ws.close()


async def test_missing_credentials_are_refused(world):
    """A handshake without credentials is refused."""
    await assert_refused(world.server)


async def test_invalid_jwt_is_refused(world):
    """Malformed, forged or wrongly-typed Authorization headers are refused."""
    forged = AccessToken.for_user(world.alice)
    forged_text = str(forged)[:-4] + "AAAA"
    for header in ["Bearer garbage", "Bearer a.b.c", "Bearer ", "Basic YWxpY2U6eA==", f"Bearer {forged_text}"]:
        await assert_refused(world.server, headers={"Authorization": header})


async def test_expired_jwt_is_refused(world):
    """An expired access token never opens a socket."""
    token = AccessToken.for_user(world.alice)
    token.set_exp(lifetime=-timedelta(seconds=1))
    await assert_refused(world.server, token=str(token))


async def test_inactive_user_is_refused(world):
    """A deactivated user's valid token is refused."""
    await sync_to_async(get_user_model().objects.filter(pk=world.bob.pk).update)(is_active=False)
    await assert_refused(world.server, token=world.tokens["bob"])


async def test_site_banned_user_is_refused(world, moderator_factory):
    """A site-banned user's valid token is refused."""
    moderator = await sync_to_async(moderator_factory)("modder")
    await sync_to_async(services.site_ban)(actor=moderator, username="bob")
    await assert_refused(world.server, token=world.tokens["bob"])


async def test_ticket_opens_one_socket_only(world):
    """A ws-ticket from the REST API opens one socket; the second use is refused."""
    status, body = await sync_to_async(http_json)(
        "POST", f"{world.server.http_url}/api/v1/auth/ws-ticket/", world.tokens["alice"]
    )
    assert status == 200 and 0 < body["expires_in"] <= 60
    ws = await connect(world.server, query=f"ticket={body['ticket']}")
    assert (await join(ws, "lobby"))["type"] == "joined"
    await ws.close()
    await assert_refused(world.server, query=f"ticket={body['ticket']}")


async def test_unknown_ticket_is_refused(world):
    """A made-up ticket is refused."""
    await assert_refused(world.server, query="ticket=" + "x" * 43)


async def test_session_cookie_with_allowed_origin_opens_a_socket(world, password):
    """The web page's session cookie with the allowed Origin authenticates."""
    session = await login_session_cookie(world.server, "alice", password)
    ws = await connect(world.server, origin=world.server.origin, headers={"Cookie": f"sessionid={session}"})
    assert (await join(ws, "lobby"))["type"] == "joined"
    await ws.close()


async def test_session_cookie_without_origin_is_refused(world, password):
    """A client sending no Origin may not authenticate by cookie."""
    session = await login_session_cookie(world.server, "alice", password)
    await assert_refused(world.server, headers={"Cookie": f"sessionid={session}"})


FOREIGN_ORIGINS = [
    "http://evil.example",
    "https://127.0.0.1:{port}",
    "http://127.0.0.1:{other}",
    "http://127.0.0.2:{port}",
    "null",
    "http://127.0.0.1:{port}.evil.example",
]


async def test_foreign_origin_is_refused_whatever_the_credentials(world, password):
    """Origins differing in scheme, host or port are refused, even with a valid JWT or cookie."""
    session = await login_session_cookie(world.server, "alice", password)
    for template in FOREIGN_ORIGINS:
        origin = template.format(port=world.server.port, other=world.server.port + 1)
        await assert_refused(world.server, origin=origin, token=world.tokens["alice"])
        await assert_refused(world.server, origin=origin, headers={"Cookie": f"sessionid={session}"})


async def test_localhost_origin_of_the_port_is_allowed(world):
    """http://localhost:PORT is an allowed origin by default."""
    ws = await connect(world.server, origin=f"http://localhost:{world.server.port}", token=world.tokens["bob"])
    await send(ws, {"type": "ping"})
    assert await recv(ws) == {"type": "pong"}
    await ws.close()
