"""Admin actions take effect live, across processes (CONTRACT §4, issue 5).

Two real daphne processes share PostgreSQL and Redis. The moderator works in the admin of
process A over real HTTP (session login, CSRF, forms); users hold real WebSocket connections to
process B (and A). Every effect must reach the sockets within one second of the admin's answer.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import pytest
import websockets
from asgiref.sync import sync_to_async

from rooms.models import AuditLog, Message
from rooms.services import message_post, message_report
from tests.support.ws import access_token, close_code, connect, drain, join, recv_until, send

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

LIVE_SECONDS = 1.0  # CONTRACT: "within one second"


class AdminSession:
    """A moderator's browser on the admin of one daphne process: cookies, CSRF, form posts."""

    def __init__(self, server):
        self.base = server.http_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def _open(self, request) -> tuple[int, str, str]:
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.read().decode(), response.url
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace"), error.url

    def get(self, path: str) -> tuple[int, str, str]:
        return self._open(urllib.request.Request(self.base + path))

    def post(self, path: str, data: list[tuple[str, str]] | dict) -> tuple[int, str, str]:
        items = list(data.items()) if isinstance(data, dict) else list(data)
        token = next(cookie.value for cookie in self.jar if cookie.name == "csrftoken")
        body = urllib.parse.urlencode([("csrfmiddlewaretoken", token), *items]).encode()
        return self._open(urllib.request.Request(self.base + path, data=body, method="POST"))

    def login(self, username: str, password: str) -> None:
        self.get("/admin/login/")
        status, _page, url = self.post("/admin/login/?next=/admin/", {"username": username, "password": password})
        assert status == 200 and url.endswith("/admin/"), f"admin login failed: {status} {url}"

    def action(self, changelist: str, name: str, ids: list[int], **extra: str) -> tuple[int, str, str]:
        data = [("action", name), *[("_selected_action", str(pk)) for pk in ids], *extra.items()]
        return self.post(changelist, data)


@dataclass
class Cluster:
    a: object
    b: object
    moderator: object
    alice: object
    bob: object
    room: object
    tokens: dict
    password: str

    async def admin(self) -> AdminSession:
        session = AdminSession(self.a)
        await asyncio.to_thread(session.login, self.moderator.username, self.password)
        return session


@pytest.fixture
def cluster(daphne_factory, user_factory, moderator_factory, room_factory, password) -> Cluster:
    """Processes A and B; `mod` moderates; alice and bob are members of public room `lobby` (owned by carol)."""
    moderator = moderator_factory("mod")
    alice, bob, carol = user_factory("alice"), user_factory("bob"), user_factory("carol")
    room = room_factory("lobby", owner=carol, members=[alice, bob])
    a, b = daphne_factory(), daphne_factory()
    tokens = {user.username: access_token(user) for user in (alice, bob, carol)}
    return Cluster(a=a, b=b, moderator=moderator, alice=alice, bob=bob, room=room, tokens=tokens, password=password)


async def post_message(user, room, body: str) -> Message:
    return (await sync_to_async(message_post)(user=user, room=room, body=body))[0]


async def assert_closed_with(ws, code: int) -> None:
    assert await close_code(ws, timeout=LIVE_SECONDS) == code


async def test_admin_delete_reaches_open_sockets_on_another_process(cluster):
    """Deleting a message in A's admin sends message_deleted to a reader on B within a second."""
    bob = await connect(cluster.b, token=cluster.tokens["bob"])
    await join(bob, "lobby")
    message = await post_message(cluster.alice, cluster.room, "something nasty")
    await recv_until(bob, lambda frame: frame.get("type") == "message")
    admin = await cluster.admin()

    status, _, _ = await asyncio.to_thread(admin.post, f"/admin/rooms/message/{message.pk}/delete/", {"post": "yes"})
    assert status == 200
    frame = await recv_until(bob, lambda frame: frame.get("type") == "message_deleted", timeout=LIVE_SECONDS)
    version = await sync_to_async(lambda: Message.objects.get(pk=message.pk).version)()
    assert frame == {"type": "message_deleted", "room": "lobby", "id": message.pk, "version": version}
    assert await sync_to_async(AuditLog.objects.filter(action="message_delete", message_id=message.pk).count)() == 1
    await bob.close()


async def test_admin_room_ban_sends_left_and_stops_the_room(cluster):
    """A room ban added in A's admin sends `left`/banned to the user's socket on B; the room's frames stop."""
    alice = await connect(cluster.b, token=cluster.tokens["alice"])
    bob = await connect(cluster.b, token=cluster.tokens["bob"])
    await join(alice, "lobby")
    await join(bob, "lobby")
    admin = await cluster.admin()

    status, _, _ = await asyncio.to_thread(
        admin.post, "/admin/rooms/roomban/add/", {"room": cluster.room.pk, "user": cluster.alice.pk, "reason": "spam"}
    )
    assert status == 200
    left = await recv_until(alice, lambda frame: frame.get("type") == "left", timeout=LIVE_SECONDS)
    assert left == {"type": "left", "room": "lobby", "reason": "banned"}

    await send(bob, {"type": "message", "room": "lobby", "body": "after the ban"})
    await recv_until(bob, lambda frame: frame.get("type") == "message")
    assert [
        frame
        for frame in await drain(alice, 0.5)
        if frame.get("room") == "lobby" or frame.get("message", {}).get("room") == "lobby"
    ] == []
    await alice.close()
    await bob.close()


async def test_admin_site_ban_closes_every_socket_with_4003(cluster):
    """A site ban from A's admin closes the user's sockets on A and B with 4003 within a second."""
    on_a = await connect(cluster.a, token=cluster.tokens["alice"])
    on_b = await connect(cluster.b, token=cluster.tokens["alice"])
    await join(on_a, "lobby")
    admin = await cluster.admin()

    status, _, _ = await asyncio.to_thread(
        admin.post, "/admin/rooms/siteban/add/", {"user": cluster.alice.pk, "reason": "abuse"}
    )
    assert status == 200
    await asyncio.gather(assert_closed_with(on_a, 4003), assert_closed_with(on_b, 4003))


async def test_site_banned_user_handshake_is_refused(cluster):
    """After an admin site ban a new handshake of the user is refused (no 101, or closed with 4001)."""
    admin = await cluster.admin()
    await asyncio.to_thread(admin.post, "/admin/rooms/siteban/add/", {"user": cluster.alice.pk})
    try:
        ws = await connect(cluster.b, token=cluster.tokens["alice"])
    except websockets.InvalidStatus as refused:
        assert refused.response.status_code == 403
    else:
        assert await close_code(ws) == 4001


async def test_admin_mute_answers_forbidden_to_the_next_message(cluster):
    """After a mute in A's admin, the user's next message on B answers `forbidden` with its client_id."""
    alice = await connect(cluster.b, token=cluster.tokens["alice"])
    await join(alice, "lobby")
    admin = await cluster.admin()

    await asyncio.to_thread(
        admin.post, "/admin/rooms/roommute/add/", {"room": cluster.room.pk, "user": cluster.alice.pk}
    )
    await send(alice, {"type": "message", "room": "lobby", "body": "can I talk?", "client_id": "m-1"})
    error = await recv_until(alice, lambda frame: frame.get("type") == "error", timeout=LIVE_SECONDS)
    assert (error["code"], error["client_id"]) == ("forbidden", "m-1")
    await alice.close()


async def test_admin_slow_mode_answers_slow_mode_with_retry_after(cluster):
    """Slow mode set in A's admin makes a quick second message on B answer `slow_mode` with retry_after."""
    alice = await connect(cluster.b, token=cluster.tokens["alice"])
    await join(alice, "lobby")
    admin = await cluster.admin()

    status, _, _ = await asyncio.to_thread(
        admin.post,
        f"/admin/rooms/room/{cluster.room.pk}/change/",
        {"name": cluster.room.name, "topic": "", "slow_mode_seconds": "30"},
    )
    assert status == 200
    await send(alice, {"type": "message", "room": "lobby", "body": "one", "client_id": "s-1"})
    await recv_until(alice, lambda frame: frame.get("type") == "message", timeout=LIVE_SECONDS)
    await send(alice, {"type": "message", "room": "lobby", "body": "two", "client_id": "s-2"})
    error = await recv_until(alice, lambda frame: frame.get("type") == "error", timeout=LIVE_SECONDS)
    assert (error["code"], error["client_id"]) == ("slow_mode", "s-2")
    assert 0 < error["retry_after"] <= 30
    await alice.close()


async def test_moderator_handles_a_report_from_the_queue(cluster):
    """From the report queue: delete the reported message and ban its author; both are live within a second."""
    alice = await connect(cluster.b, token=cluster.tokens["alice"])
    bob = await connect(cluster.b, token=cluster.tokens["bob"])
    await join(alice, "lobby")
    await join(bob, "lobby")
    message = await post_message(cluster.alice, cluster.room, "buy followers now")
    report, _ = await sync_to_async(message_report)(user=cluster.bob, message=message, reason="spam")
    admin = await cluster.admin()

    status, queue, _ = await asyncio.to_thread(admin.get, "/admin/rooms/report/")
    assert status == 200 and "buy followers now" in queue
    status, page, _ = await asyncio.to_thread(admin.get, f"/admin/rooms/report/{report.pk}/change/")
    assert status == 200 and "buy followers now" in page

    started = time.monotonic()
    await asyncio.to_thread(admin.action, "/admin/rooms/report/", "delete_reported_messages", [report.pk])
    deleted = await recv_until(bob, lambda frame: frame.get("type") == "message_deleted", timeout=LIVE_SECONDS)
    assert deleted["id"] == message.pk
    await asyncio.to_thread(
        admin.action, "/admin/rooms/report/", "ban_authors_from_room", [report.pk], apply="1", reason="spam", until=""
    )
    left = await recv_until(alice, lambda frame: frame.get("type") == "left", timeout=LIVE_SECONDS)
    assert left["reason"] == "banned"
    await asyncio.to_thread(admin.action, "/admin/rooms/report/", "resolve_selected", [report.pk])
    actions = await sync_to_async(lambda: sorted(AuditLog.objects.values_list("action", flat=True)))()
    assert actions == ["message_delete", "report_resolve", "room_ban"]
    assert time.monotonic() - started < 10
    await alice.close()
    await bob.close()
