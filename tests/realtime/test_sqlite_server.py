"""The default setup (`make run`: SQLite, no Redis) under concurrent posting, against a real daphne
process: ten users posting at once all get answers (the batcher serialises the socket's writes;
transactions are IMMEDIATE with a busy timeout), and bad Unicode is bad input there too."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

from tests.support.servers import ROOT, DaphneProcess
from tests.support.ws import connect, join, recv_type, send

# `postgres`: DaphneProcess builds its default DATABASE_URL from the test database (this one overrides it).
pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

USERS = 10

_SETUP = f"""
import json
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken
from rooms.models import Membership, Room
from rooms.services import room_create
User = get_user_model()
users = [User.objects.get_or_create(username=f"writer{{n}}")[0] for n in range({USERS})]
room = Room.objects.filter(slug="lobby").first() or room_create(user=users[0], name="Lobby", slug="lobby")
for user in users:
    Membership.objects.get_or_create(room=room, user=user)
print(json.dumps([str(AccessToken.for_user(user)) for user in users]))
"""


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory):
    """One daphne process on a fresh SQLite file, without Redis, as `make run` serves."""
    database = tmp_path_factory.mktemp("sqlite") / "chat.sqlite3"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": "",
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "0",
        "RATE_LIMIT_MESSAGES": "1000/1s",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    made = subprocess.run(
        [*manage, "shell", "-c", _SETUP], cwd=ROOT, env=env, check=True, timeout=60, capture_output=True, text=True
    )
    tokens = json.loads(made.stdout.strip().splitlines()[-1])
    server = DaphneProcess(env={"DATABASE_URL": env["DATABASE_URL"], "REDIS_URL": "", "RATE_LIMIT_MESSAGES": "1000/1s"})
    server.start()
    yield server, tokens
    server.stop()


async def test_ten_users_posting_at_once_on_sqlite_all_get_their_messages(sqlite_server):
    """Ten sockets each send five messages at once: every one is stored and broadcast, none
    answered 'database unavailable'."""
    server, tokens = sqlite_server
    sockets = []
    for token in tokens:
        ws = await connect(server, token=token)
        await join(ws, "lobby")
        sockets.append(ws)

    async def write(index: int) -> None:
        for number in range(5):
            frame = {"type": "message", "room": "lobby", "body": f"{index}/{number}", "client_id": f"s{index}-{number}"}
            await send(sockets[index], frame)

    async def read(ws) -> set[str]:
        seen: set[str] = set()
        while len(seen) < USERS * 5:
            frame = await recv_type(ws, "message", timeout=15)
            seen.add(frame["message"]["client_id"])
        return seen

    readers = [asyncio.create_task(read(ws)) for ws in sockets]
    await asyncio.gather(*(write(index) for index in range(USERS)))
    expected = {f"s{index}-{number}" for index in range(USERS) for number in range(5)}
    assert all(seen == expected for seen in await asyncio.gather(*readers))
    for ws in sockets:
        await ws.close()


@pytest.mark.parametrize("body", ['"x\\ud800y"', '"nul\\u0000"'], ids=["lone surrogate", "NUL"])
async def test_bad_unicode_on_sqlite_answers_bad_request(sqlite_server, body):
    """A lone surrogate or NUL body on SQLite answers bad_request; the socket goes on working."""
    server, tokens = sqlite_server
    ws = await connect(server, token=tokens[0])
    await join(ws, "lobby")
    await send(ws, '{"type":"message","room":"lobby","client_id":"bad-1","body":' + body + "}")
    error = await recv_type(ws, "error")
    assert (error["code"], error["client_id"]) == ("bad_request", "bad-1")
    await send(ws, {"type": "ping"})
    assert await recv_type(ws, "pong") == {"type": "pong"}
    await ws.close()


async def test_replies_and_reactions_on_sqlite(sqlite_server):
    """On the default setup a reply carries its quote and a `react` reaches every joined socket,
    with a count and a version; a bad emoji answers bad_request."""
    server, tokens = sqlite_server
    first, second = await connect(server, token=tokens[1]), await connect(server, token=tokens[2])
    for ws in (first, second):
        await join(ws, "lobby")
    await send(first, {"type": "message", "room": "lobby", "body": "<b>quote</b> me", "client_id": "sq-1"})
    original = (await recv_type(second, "message"))["message"]
    await send(
        second, {"type": "message", "room": "lobby", "body": "ok", "client_id": "sq-2", "reply_to": original["id"]}
    )
    reply = (await recv_type(first, "message", timeout=5))["message"]
    while reply["client_id"] != "sq-2":
        reply = (await recv_type(first, "message", timeout=5))["message"]
    assert reply["reply_to"]["id"] == original["id"] and reply["reply_to"]["excerpt"] == "quote me"
    await send(first, {"type": "react", "room": "lobby", "message_id": reply["id"], "emoji": "🇫🇷"})
    for ws in (first, second):
        frame = await recv_type(ws, "reaction", timeout=5)
        assert (frame["message_id"], frame["emoji"], frame["added"], frame["count"]) == (reply["id"], "🇫🇷", True, 1)
        assert frame["version"] > reply["version"]
    await send(first, {"type": "react", "room": "lobby", "message_id": reply["id"], "emoji": "two words"})
    assert (await recv_type(first, "error"))["code"] == "bad_request"
    for ws in (first, second):
        await ws.close()


async def test_a_mention_notifies_on_sqlite_without_redis(sqlite_server):
    """The in-memory layer path: writer1's socket that joined nothing gets the `notification`."""
    server, tokens = sqlite_server
    author = await connect(server, token=tokens[0])
    await join(author, "lobby")
    mentioned = await connect(server, token=tokens[1])
    await send(mentioned, {"type": "ping"})
    await recv_type(mentioned, "pong")
    await send(author, {"type": "message", "room": "lobby", "body": "hi @Writer1.", "client_id": "mention-1"})
    frame = await recv_type(mentioned, "notification", timeout=1.0)
    assert frame["notification"]["kind"] == "mention"
    assert frame["notification"]["message"]["mentions"] == ["writer1"]
    assert frame["notification"]["message"]["client_id"] == "mention-1"
    await author.close()
    await mentioned.close()
