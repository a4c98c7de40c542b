"""Several processes behind nginx behave as one (CONTRACT §4), started exactly as `make cluster` does.

The cluster is deploy/cluster.py on free ports and a temporary run directory, against the test
database and Redis; nginx answers with X-Chat-Upstream, so a test can see which process holds a socket.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import websockets

from tests.ops.conftest import CLUSTER
from tests.support.servers import ROOT


def _token(user) -> str:
    from rest_framework_simplejwt.tokens import AccessToken

    return str(AccessToken.for_user(user))


class ResumingClient:
    """A native client as the contract asks: reconnects with backoff, rejoins after its last id, resends its outbox."""

    def __init__(self, url: str, token: str, room: str):
        self.url, self.token, self.room = url, token, room
        self.last_id: int | None = None
        self.messages: list[dict] = []
        self.errors: list[dict] = []
        self.close_codes: list[int | None] = []
        self.upstreams: list[str] = []
        self.outbox: dict[str, str] = {}  # client_id -> body, until its broadcast comes back
        self.ws = None
        self.joined = asyncio.Event()

    def _message_frame(self, client_id: str) -> str:
        return json.dumps({"type": "message", "room": self.room, "body": self.outbox[client_id], "client_id": client_id})

    async def send(self, body: str) -> str:
        client_id = str(uuid.uuid4())
        self.outbox[client_id] = body
        if self.ws is not None and self.joined.is_set():
            try:
                await self.ws.send(self._message_frame(client_id))
            except websockets.ConnectionClosed:
                pass  # resent after the reconnect
        return client_id

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with websockets.connect(
                    self.url, additional_headers={"Authorization": f"Bearer {self.token}"}, open_timeout=5
                ) as ws:
                    self.ws = ws
                    self.upstreams.append(ws.response.headers.get("X-Chat-Upstream", ""))
                    join = {"type": "join", "room": self.room}
                    if self.last_id is not None:
                        join["after"] = self.last_id
                    await ws.send(json.dumps(join))
                    async for raw in ws:
                        self._on_frame(json.loads(raw))
                        if self.joined.is_set() and json.loads(raw)["type"] == "joined":
                            for client_id in list(self.outbox):
                                await ws.send(self._message_frame(client_id))
                    self.close_codes.append(ws.close_code)
            except websockets.ConnectionClosed as closed:
                self.close_codes.append(closed.rcvd.code if closed.rcvd else None)
            except (OSError, websockets.InvalidHandshake, asyncio.TimeoutError):
                pass
            self.ws = None
            self.joined.clear()
            await asyncio.sleep(0.2)

    def _on_frame(self, frame: dict) -> None:
        kind = frame["type"]
        if kind == "joined" and frame["room"] == self.room:
            if self.last_id is None:
                self.last_id = frame["last_id"]
            self.joined.set()
        elif kind == "message" and frame["message"]["room"] == self.room:
            message = frame["message"]
            self.messages.append(message)
            self.last_id = max(self.last_id or 0, message["id"])
            self.outbox.pop(message["client_id"], None)
        elif kind == "error":
            self.errors.append(frame)


async def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_message_crosses_processes_behind_nginx(cluster, user_factory, room_factory):
    """Two sockets through nginx land on different processes; a message sent on one reaches the other."""
    alice, bob = user_factory(), user_factory()
    room = room_factory(members=[alice, bob])
    tokens = _token(alice), _token(bob)

    async def scenario():
        stop = asyncio.Event()
        sender = ResumingClient(cluster.ws_url, tokens[0], room.slug)
        receiver = ResumingClient(cluster.ws_url, tokens[1], room.slug)
        tasks = [asyncio.create_task(sender.run(stop))]
        assert await _wait_for(sender.joined.is_set, 10)
        tasks.append(asyncio.create_task(receiver.run(stop)))
        assert await _wait_for(receiver.joined.is_set, 10)
        client_id = await sender.send("across processes")
        assert await _wait_for(lambda: receiver.messages, 5), "the message never reached the other process"
        stop.set()
        for client in (sender, receiver):
            await client.ws.close()
        await asyncio.gather(*tasks)
        return sender, receiver, client_id

    sender, receiver, client_id = asyncio.run(scenario())
    assert sender.upstreams[0] != receiver.upstreams[0], "nginx put both sockets on one process"
    assert [m["client_id"] for m in receiver.messages] == [client_id]
    assert receiver.messages[0]["id"] == sender.messages[0]["id"]
    assert receiver.messages[0]["author"]["username"] == alice.username


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_metrics_sum_over_the_cluster(cluster, user_factory, room_factory):
    """A scrape of either process reports the sockets open on both."""
    users = [user_factory(), user_factory()]
    room = room_factory(members=users)
    tokens = [_token(user) for user in users]

    def open_sockets(port: int) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith("chat_ws_connections "):
                    return float(line.split()[1])
        raise AssertionError("chat_ws_connections missing")

    async def scenario():
        stop = asyncio.Event()
        clients = [ResumingClient(cluster.ws_url, token, room.slug) for token in tokens]
        tasks = []
        for client in clients:
            tasks.append(asyncio.create_task(client.run(stop)))
            assert await _wait_for(client.joined.is_set, 10)
        seen = [await asyncio.to_thread(open_sockets, port) for port in cluster.backend_ports]
        stop.set()
        for client in clients:
            await client.ws.close()
        await asyncio.gather(*tasks)
        return clients, seen

    clients, seen = asyncio.run(scenario())
    assert len({client.upstreams[0] for client in clients}) == 2
    assert seen == [2, 2]


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_sigterm_on_one_process_loses_nothing(cluster, user_factory, room_factory):
    """SIGTERM on the sender's process mid-chat: 4012, reconnect through nginx, every message arrives once, in order."""
    alice, bob = user_factory(), user_factory()
    room = room_factory(members=[alice, bob])
    tokens = _token(alice), _token(bob)
    total = 30

    async def scenario():
        stop = asyncio.Event()
        sender = ResumingClient(cluster.ws_url, tokens[0], room.slug)
        receiver = ResumingClient(cluster.ws_url, tokens[1], room.slug)
        tasks = [asyncio.create_task(sender.run(stop))]
        assert await _wait_for(sender.joined.is_set, 10)
        tasks.append(asyncio.create_task(receiver.run(stop)))
        assert await _wait_for(receiver.joined.is_set, 10)
        victim = cluster.pid_of_backend(sender.upstreams[0])
        sent, stopped_at = [], None
        for n in range(total):
            sent.append(await sender.send(f"message {n}"))
            if n == total // 3:
                os.kill(victim, signal.SIGTERM)
                stopped_at = time.monotonic()
            await asyncio.sleep(0.08)
        delivered = await _wait_for(lambda: len({m["client_id"] for m in receiver.messages}) >= total, 20)
        exited = await _wait_for(lambda: not _alive(victim), max(0.0, 10 - (time.monotonic() - stopped_at)))
        stop.set()
        for client in (sender, receiver):
            if client.ws is not None:
                await client.ws.close()
        await asyncio.gather(*tasks)
        return sender, receiver, sent, delivered, exited

    sender, receiver, sent, delivered, exited = asyncio.run(scenario())
    assert exited, "the process did not exit within 10 s of SIGTERM"
    assert 4012 in sender.close_codes
    assert len(sender.upstreams) >= 2 and sender.upstreams[-1] != sender.upstreams[0]
    assert delivered, f"receiver got {len(receiver.messages)} of {total}"
    ids = [m["id"] for m in receiver.messages]
    assert ids == sorted(set(ids)), "duplicates or out of order on the receiving socket"
    assert [m["client_id"] for m in receiver.messages] == sent
    assert not sender.outbox, "some messages were never acknowledged"
    assert not [e for e in sender.errors + receiver.errors if e.get("code") != "rate_limited"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def test_cluster_refuses_to_start_without_redis_and_postgres(tmp_path):
    """`make cluster` without REDIS_URL and DATABASE_URL fails at once, naming both and how to set them."""
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
    result = subprocess.run(
        [sys.executable, str(CLUSTER), "start", "--run-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "REDIS_URL=redis://" in result.stderr
    assert "DATABASE_URL=postgres://" in result.stderr
    assert not list(tmp_path.glob("*.pid"))


def test_cluster_stop_with_nothing_running_is_harmless(tmp_path):
    """`make cluster-stop` when nothing runs says so and succeeds."""
    result = subprocess.run(
        [sys.executable, str(CLUSTER), "stop", "--run-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0
    assert "nothing running" in result.stdout
