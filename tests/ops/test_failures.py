"""Failure drills (issue 6): Redis restarts and PostgreSQL outages, with real processes and real clients."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from django.conf import settings

from tests.ops.conftest import wait_until
from tests.ops.support import ResumingClient, TcpProxy, token_for, wait_for
from tests.support import servers

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


def _ready(server) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(server.http_url + "/readyz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_delivery_resumes_after_redis_restart(daphne_factory, redis_server, user_factory, room_factory):
    """Redis killed and restarted under two processes: they reconnect by themselves and messages cross again."""
    alice, bob = user_factory(), user_factory()
    room = room_factory(members=[alice, bob])
    env = {"REDIS_URL": redis_server.url, "RATE_LIMIT_MESSAGES": "1000/1s"}
    first, second = daphne_factory(env=env), daphne_factory(env=env)
    tokens = token_for(alice), token_for(bob)

    async def scenario():
        stop = asyncio.Event()
        sender = ResumingClient(first.ws_url, tokens[0], room.slug)
        receiver = ResumingClient(second.ws_url, tokens[1], room.slug)
        tasks = [asyncio.create_task(client.run(stop)) for client in (sender, receiver)]
        assert await wait_for(lambda: sender.joined.is_set() and receiver.joined.is_set(), 10)
        before = await sender.send("before the restart")
        assert await wait_for(lambda: len(receiver.messages) == 1, 5)

        await asyncio.to_thread(redis_server.stop)
        await asyncio.sleep(1)
        await asyncio.to_thread(redis_server.start)
        for server in (first, second):
            status = await asyncio.to_thread(wait_until, lambda s=server: _ready(s)[0] == 200, timeout=20)
            assert status, f"/readyz of {server.port} never recovered"

        after = await sender.send("after the restart")
        delivered = await wait_for(lambda: [m["client_id"] for m in receiver.messages] == [before, after], 15)
        stop.set()
        for client in (sender, receiver):
            if client.ws is not None:
                await client.ws.close()
        await asyncio.gather(*tasks)
        return sender, receiver, before, after, delivered

    sender, receiver, _before, _after, delivered = asyncio.run(scenario())
    assert delivered, f"receiver got {[m['body'] for m in receiver.messages]}"
    assert not sender.outbox


def _postgres_outage(daphne_factory, user_factory, room_factory) -> dict:
    """One client posts while PostgreSQL is unreachable, then the database comes back; what it saw."""
    alice = user_factory()
    room = room_factory(members=[alice])
    db = settings.DATABASES["default"]
    proxy = TcpProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))).start()
    url = servers.test_database_url().replace(f":{db.get('PORT') or 5432}/", f":{proxy.port}/")
    server = daphne_factory(env={"DATABASE_URL": url, "RATE_LIMIT_MESSAGES": "1000/1s"})
    token = token_for(alice)

    async def scenario() -> dict:
        stop = asyncio.Event()
        client = ResumingClient(server.ws_url, token, room.slug)
        task = asyncio.create_task(client.run(stop))
        assert await wait_for(client.joined.is_set, 10)

        await asyncio.to_thread(proxy.stop)
        client_id = await client.send("while the database is down")
        answered = await wait_for(
            lambda: any(e.get("client_id") == client_id for e in client.errors) or client.close_codes, 10
        )
        seen = {
            "client_id": client_id,
            "answered": bool(answered),
            "errors": list(client.errors),
            "close_codes": list(client.close_codes),
            "messages": list(client.messages),
            "ready": await asyncio.to_thread(_ready, server),
        }

        await asyncio.to_thread(proxy.start)
        refused = any(e.get("client_id") == client_id for e in client.errors)
        if refused and client.ws is not None and client.joined.is_set():
            # Answered by an error on a socket that stayed open: resend it once the database is
            # back, as a client does after retry_after (the same client_id, so never stored twice).
            assert await asyncio.to_thread(wait_until, lambda: _ready(server)[0] == 200, timeout=20)
            await client.ws.send(client._message_frame(client_id))
        stored = await wait_for(lambda: [m["client_id"] for m in client.messages] == [client_id], 20)
        stop.set()
        if client.ws is not None:
            await client.ws.close()
        await task
        seen.update(stored=stored, final_messages=list(client.messages))
        return seen

    try:
        return asyncio.run(scenario())
    finally:
        proxy.stop()


def test_postgres_outage_never_drops_a_message(daphne_factory, user_factory, room_factory):
    """PostgreSQL unreachable: a post is answered, never silently dropped; /readyz names the database;
    after recovery the same client_id is stored exactly once."""
    seen = _postgres_outage(daphne_factory, user_factory, room_factory)
    assert seen["answered"], "the message sent during the outage was neither answered nor the socket closed"
    assert not seen["messages"], "a message was acknowledged while the database was unreachable"
    assert seen["ready"][0] == 503 and seen["ready"][1]["failing"] == ["database"]
    assert seen["stored"], f"not accepted after recovery: {seen}"
    assert [m["client_id"] for m in seen["final_messages"]] == [seen["client_id"]]


def test_postgres_outage_answers_an_error_frame(daphne_factory, user_factory, room_factory):
    """During a PostgreSQL outage a post is answered by an error frame with its client_id and a
    retry_after; the socket stays open."""
    seen = _postgres_outage(daphne_factory, user_factory, room_factory)
    errors = [e for e in seen["errors"] if e.get("client_id") == seen["client_id"]]
    assert len(errors) == 1
    assert errors[0]["code"] == "rate_limited" and errors[0]["retry_after"] > 0
    assert seen["close_codes"] == []


def _post(server, token: str, slug: str, body: str) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        f"{server.http_url}/api/v1/rooms/{slug}/messages/",
        data=json.dumps({"body": body}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def test_rest_post_while_postgres_is_down_answers_503_then_201(daphne_factory, user_factory, room_factory):
    """A REST post during a PostgreSQL outage answers 503 JSON with Retry-After (never a 500), and 201 once it is back."""
    alice = user_factory()
    room = room_factory(members=[alice])
    db = settings.DATABASES["default"]
    proxy = TcpProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))).start()
    try:
        url = servers.test_database_url().replace(f":{db.get('PORT') or 5432}/", f":{proxy.port}/")
        server = daphne_factory(env={"DATABASE_URL": url, "RATE_LIMIT_MESSAGES": "1000/1s"})
        token = token_for(alice)
        proxy.stop()
        status, body, headers = _post(server, token, room.slug, "during the outage")
        proxy.start()
        assert (status, body["code"]) == (503, "unavailable")
        assert int(headers["Retry-After"]) > 0
        assert wait_until(lambda: _post(server, token, room.slug, "after the outage")[0] == 201, timeout=10)
    finally:
        proxy.stop()


def test_rest_post_while_redis_is_down_answers_503(daphne_factory, redis_server, user_factory, room_factory):
    """A REST post while Redis (rate limits, broadcast) is down answers 503 JSON, and 201 after it restarts."""
    alice = user_factory()
    room = room_factory(members=[alice])
    server = daphne_factory(env={"REDIS_URL": redis_server.url, "RATE_LIMIT_MESSAGES": "1000/1s"})
    token = token_for(alice)
    assert _post(server, token, room.slug, "before")[0] == 201
    redis_server.stop()
    status, body, headers = _post(server, token, room.slug, "during the outage")
    redis_server.start()
    assert (status, body["code"]) == (503, "unavailable")
    assert "Retry-After" in headers
    from rooms.models import Message

    assert not Message.objects.filter(body="during the outage").exists(), (
        "answered 503 but stored: a retry would duplicate it"
    )
    assert wait_until(lambda: _post(server, token, room.slug, "after")[0] == 201, timeout=15)
