"""Faults under plain `daphne chatsite.asgi:application`, as the Channels docs deploy it (issue 9):
SIGTERM closes with 4012 and exits quickly, trickled headers are cut, a client that sends but never
reads is timed out. Two workers started the standard way, real clients from outside."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time

import pytest

from tests.ops.support import token_for
from tests.support import ws

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


def test_sigterm_closes_sockets_with_4012_and_exits_within_seconds(daphne_factory, user_factory, room_factory):
    """SIGTERM on one of two plain daphne workers: its sockets close with 4012 at once, it exits in a
    few seconds, and the other worker's clients see its users go offline (no presence left behind)."""
    alice, bob = user_factory(), user_factory()
    room = room_factory(members=[alice, bob])
    stopping, staying = daphne_factory(plain=True), daphne_factory(plain=True)
    tokens = token_for(alice), token_for(bob)

    async def scenario() -> tuple[list, float, dict]:
        alices = [await ws.connect(stopping, token=tokens[0]) for _ in range(3)]
        for socket_ in alices:
            await ws.join(socket_, room.slug)
        bobs = await ws.connect(staying, token=tokens[1])
        await ws.join(bobs, room.slug)
        started = time.monotonic()
        stopping.signal(15)
        codes = [await ws.close_code(socket_, timeout=5) for socket_ in alices]
        offline = await ws.recv_until(
            bobs, lambda f: f["type"] == "presence" and f["user"] == alice.username and not f["online"], timeout=5
        )
        exited = await asyncio.to_thread(stopping.proc.wait, 10)
        elapsed = time.monotonic() - started
        await ws.send(bobs, {"type": "ping"})
        pong = await ws.recv_type(bobs, "pong")
        await bobs.close()
        return codes, elapsed, {"offline": offline, "exit": exited, "pong": pong}

    codes, elapsed, seen = asyncio.run(scenario())
    assert codes == [4012, 4012, 4012]
    assert seen["exit"] == 0
    assert elapsed < 5, f"the worker took {elapsed:.1f}s to exit"


def _trickle(port: int, count: int, limit: float) -> list[float | None]:
    """`count` upgrade requests sending one header line a second; seconds until each was dropped."""

    async def one() -> float | None:
        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /ws/chat/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
        line = 0
        try:
            while time.monotonic() - started < limit:
                writer.write(b"X-Trickle-%d: x\r\n" % line)
                line += 1
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1024), 1) == b"":
                        return time.monotonic() - started
                except TimeoutError:
                    continue
            return None
        except OSError:
            return time.monotonic() - started
        finally:
            writer.close()

    async def many() -> list[float | None]:
        return await asyncio.gather(*(one() for _ in range(count)))

    return asyncio.run(many())


def test_two_hundred_trickled_upgrades_are_dropped_by_the_header_deadline(daphne_factory):
    """200 upgrades trickled a header line a second to plain daphne are all dropped ~10 s after connecting."""
    server = daphne_factory(plain=True)
    elapsed = _trickle(server.port, 200, limit=30)
    assert None not in elapsed, f"{elapsed.count(None)} trickling clients were kept for 30 s"
    assert min(elapsed) >= 8 and max(elapsed) <= 16, (min(elapsed), max(elapsed))


class RawSocket:
    """A WebSocket client on a bare socket that sends what it is told and never reads."""

    def __init__(self, port: int, token: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /ws/chat/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(1)
        assert response.startswith(b"HTTP/1.1 101"), response

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        assert len(payload) < 126
        self.sock.sendall(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked)

    def close(self) -> None:
        self.sock.close()


def test_client_that_sends_pings_but_never_reads_is_timed_out(daphne_factory, user_factory):
    """A client sending a `ping` frame every 200 ms but never reading is dropped after the
    WebSocket ping interval and timeout (1 s and 2 s here), like a silent one."""
    server = daphne_factory(plain=True, env={"CHAT_WS_PING_INTERVAL": "1", "CHAT_WS_PING_TIMEOUT": "2"})
    client = RawSocket(server.port, token_for(user_factory()))
    started = time.monotonic()
    dropped_after = None
    try:
        while time.monotonic() - started < 20:
            try:
                client.send_text(json.dumps({"type": "ping"}))
            except OSError:
                dropped_after = time.monotonic() - started
                break
            time.sleep(0.2)
    finally:
        client.close()
    assert dropped_after is not None, "a client that never reads was kept for 20 s"
    assert dropped_after < 10
