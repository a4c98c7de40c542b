"""Faults from outside on a real daphne (issue 9): a mass disconnect leaves nothing behind, and a
socket or event stream that stops reading is cut off (4009 or dropped, CONTRACT §6 slow readers)
without stalling its room.

One server for the module; each test makes its own users and rooms in the flushed database.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import struct
import urllib.request

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from rooms.models import Room
from tests.support.servers import DaphneProcess
from tests.support.ws import access_token, connect, join, recv, recv_type, recv_until, send

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SERVER_ENV = {"RATE_LIMIT_MESSAGES": "100000/1s", "CHAT_JOIN_BURST": "1000"}


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    started = DaphneProcess(env=SERVER_ENV).start()
    try:
        yield started
    finally:
        started.stop()


def make_users(prefix: str, count: int) -> list:
    """`count` users at once (no password: they connect with tokens)."""
    User = get_user_model()
    User.objects.bulk_create([User(username=f"{prefix}{number}", password="!") for number in range(count)])
    return list(User.objects.filter(username__startswith=prefix).order_by("id"))


def make_room(slug: str, owner) -> Room:
    from rooms.services import room_create

    return room_create(user=owner, name=slug.title(), slug=slug, is_private=False)


def gauges(server) -> dict[str, float]:
    """The unlabelled gauges of the server's /metrics (loopback needs no token)."""
    with urllib.request.urlopen(server.http_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return {name: float(value) for name, value in re.findall(r"^(chat_\w+) ([0-9.e+-]+)$", text, re.MULTILINE)}


async def gauges_become(server, expected: dict[str, float], timeout: float = 10.0) -> dict[str, float]:
    """Poll /metrics until the gauges read `expected` (the server's own bookkeeping settles after
    the last disconnect is handled); the last reading."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        seen = await asyncio.to_thread(gauges, server)
        if all(seen.get(name) == value for name, value in expected.items()) or loop.time() > deadline:
            return seen
        await asyncio.sleep(0.1)  # /metrics has no push: re-read it until it settles or the deadline


# ----- mass disconnect -------------------------------------------------------------------------


async def test_two_hundred_sockets_dropped_at_once_leave_nothing_behind(server):
    """200 sockets in 4 rooms go at once, half closing cleanly and half dropping TCP: every user's
    presence leave is published, the online lists hold only who is left, and the server's open
    socket and join gauges come back to what is left, then to 0."""
    watcher = (await sync_to_async(make_users)("watcher", 1))[0]
    users = await sync_to_async(make_users)("crowd", 200)
    slugs = [f"room{number}" for number in range(4)]
    for slug in slugs:
        await sync_to_async(make_room)(slug, watcher)
    watching = await connect(server, token=await sync_to_async(access_token)(watcher))
    for slug in slugs:
        await join(watching, slug)
    tokens = [await sync_to_async(access_token)(user) for user in users]

    async def open_and_join(number: int):
        # max_queue=None: a client that leaves presence frames unread must still read its close
        # reply (websockets stops reading past its queue limit, and close() then waits 10 s).
        ws = await websockets.connect(
            server.ws_url,
            additional_headers={"Authorization": f"Bearer {tokens[number]}"},
            max_queue=None,
            open_timeout=30,
        )
        await send(ws, {"type": "join", "room": slugs[number % 4]})
        await recv_type(ws, "joined", timeout=30)  # generous: a loaded CI machine, 25 at a time
        return ws

    crowd = []
    for start in range(0, 200, 25):
        crowd += await asyncio.gather(*(open_and_join(number) for number in range(start, start + 25)))
    online = set()
    while len(online) < 200:
        frame = await recv_until(watching, lambda f: f["type"] == "presence" and f["online"], timeout=10)
        online.add(frame["user"])

    for ws in crowd[1::2]:
        ws.transport.abort()  # TCP gone, no close frame
    await asyncio.gather(*(ws.close() for ws in crowd[0::2]))

    offline: dict[str, str] = {}
    while len(offline) < 200:
        frame = await recv_until(watching, lambda f: f["type"] == "presence" and not f["online"], timeout=15)
        offline[frame["user"]] = frame["room"]
    assert offline == {user.username: slugs[number % 4] for number, user in enumerate(users)}

    prober = (await sync_to_async(make_users)("prober", 1))[0]
    probe = await connect(server, token=await sync_to_async(access_token)(prober))
    for slug in slugs:
        assert (await join(probe, slug))["online"] == ["prober0", "watcher0"]
    left = await gauges_become(server, {"chat_ws_connections": 2, "chat_rooms_joined": 8})
    assert (left.get("chat_ws_connections"), left.get("chat_rooms_joined")) == (2, 8)
    await probe.close()
    await watching.close()
    gone = await gauges_become(server, {"chat_ws_connections": 0, "chat_rooms_joined": 0})
    assert (gone.get("chat_ws_connections"), gone.get("chat_rooms_joined")) == (0, 0)


# ----- a client that never reads ---------------------------------------------------------------


def client_frame(text: str) -> bytes:
    """A masked text frame, as a client must send it (RFC 6455 5.3)."""
    payload = text.encode()
    mask = os.urandom(4)
    length = len(payload)
    assert length < 65536, "join frames are short"
    header = bytes((0x81, 0x80 | length)) if length < 126 else bytes((0x81, 0x80 | 126)) + struct.pack("!H", length)
    return header + mask + bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


def server_frames(data: bytearray) -> list[tuple[int, bytes]]:
    """Complete unmasked frames at the start of `data` (consumed from it): (opcode, payload)."""
    frames = []
    while len(data) >= 2:
        length, offset = data[1] & 0x7F, 2
        if length == 126:
            if len(data) < 4:
                break
            length, offset = struct.unpack("!H", data[2:4])[0], 4
        elif length == 127:
            if len(data) < 10:
                break
            length, offset = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < offset + length:
            break
        frames.append((data[0] & 0x0F, bytes(data[offset : offset + length])))
        del data[: offset + length]
    return frames


class NonReader:
    """A socket client that joins a room and then never reads, with a small receive buffer."""

    def __init__(self, server, token: str, room: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", server.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ws/chat/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        self.buffer = bytearray()
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, _, rest = bytes(self.buffer).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        self.buffer = bytearray(rest)
        self.sock.sendall(client_frame(f'{{"type":"join","room":"{room}"}}'))
        while not any(b'"joined"' in payload for _, payload in self._read_some()):
            pass

    def _read_some(self) -> list[tuple[int, bytes]]:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buffer += chunk
        return server_frames(self.buffer)

    def read_to_the_end(self) -> tuple[list[int], int | None]:
        """Read on at last: the message ids that had reached it, and the close code (None if the
        connection was dropped without a close frame)."""
        ids: list[int] = []
        while True:
            try:
                frames = self._read_some()
            except (ConnectionError, OSError):
                return ids, None
            for opcode, payload in frames:
                if opcode == 0x8:
                    return ids, struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                if opcode == 0x1 and payload.startswith(b'{"type":"message"'):
                    ids.append(int(re.search(rb'"id":(\d+)', payload).group(1)))


async def test_a_socket_that_never_reads_is_closed_while_the_room_goes_on(server):
    """One member stops reading while another sends long messages: once over 1 MiB waits for it
    (beyond what the kernels buffer) it is closed with 4009 (or dropped, as it reads nothing), the
    reading members get every message in order before and after, and the slow one resumes after
    its last id when it reconnects."""
    users = await sync_to_async(make_users)("busy", 3)
    await sync_to_async(make_room)("busy", users[0])
    tokens = [await sync_to_async(access_token)(user) for user in users]
    slow = await asyncio.to_thread(NonReader, server, tokens[2], "busy")
    readers = [await connect(server, token=token) for token in tokens[:2]]
    for ws in readers:
        await join(ws, "busy")
    sender = readers[0]
    window, most, after_cut = 40, 3000, 20
    body = "x" * 3990
    acknowledged = asyncio.Event()
    received: list[list[int]] = [[] for _ in readers]
    sent = 0

    async def read_all(index: int, ws) -> None:
        while True:
            frame = await recv(ws, timeout=20)
            assert frame["type"] != "error", frame
            if frame["type"] == "message":
                received[index].append(frame["message"]["id"])
                if index == 0:
                    acknowledged.set()
                if frame["message"]["client_id"] == "last":
                    return

    async def send_all() -> None:
        nonlocal sent
        cut_at = None
        while cut_at is None or sent < cut_at + after_cut:
            while sent - len(received[0]) >= window:
                acknowledged.clear()
                await acknowledged.wait()
            await send(sender, {"type": "message", "room": "busy", "body": body, "client_id": f"b{sent}"})
            sent += 1
            if cut_at is None and sent % 50 == 0:
                # The server's own count of open sockets: the slow one gone, only the readers left.
                if (await asyncio.to_thread(gauges, server)).get("chat_ws_connections") == len(readers):
                    cut_at = sent
                assert sent < most, "the slow reader was never cut off"
        await send(sender, {"type": "message", "room": "busy", "body": "the end", "client_id": "last"})
        sent += 1

    await asyncio.gather(send_all(), *(read_all(index, ws) for index, ws in enumerate(readers)))
    for ids in received:
        assert len(ids) == sent and ids == sorted(ids) and len(set(ids)) == sent
    assert received[1] == received[0]

    reached, code = await asyncio.to_thread(slow.read_to_the_end)
    assert code in (4009, None), code
    assert len(reached) < sent - after_cut
    assert reached == received[0][: len(reached)]
    assert "closing a slow reader" in server.log()

    last_seen = reached[-1] if reached else 0
    again = await connect(server, token=tokens[2])
    await send(again, {"type": "join", "room": "busy", "after": last_seen})
    assert (await recv_until(again, lambda f: f["type"] == "joined"))["last_id"] == received[0][-1]
    missed = [message_id for message_id in received[0] if message_id > last_seen]
    if len(missed) > 500:
        assert (await recv_until(again, lambda f: f["type"] in ("resync", "message")))["type"] == "resync"
    else:
        replayed = [(await recv_until(again, lambda f: f["type"] == "message"))["message"]["id"] for _ in missed]
        assert replayed == missed
    for ws in [*readers, again]:
        await ws.close()
    slow.sock.close()


class StreamNonReader:
    """An event-stream client that reads its `joined` event and then never reads again."""

    def __init__(self, server, token: str, room: str) -> None:
        self.room = room
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", server.port))
        self.sock.sendall(
            (
                f"GET /api/v1/stream/?rooms={room} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
            ).encode()
        )
        self.raw = bytearray()
        while b"event: joined" not in self.raw:
            self.raw += self.sock.recv(4096)
        assert self.raw.startswith(b"HTTP/1.1 200"), bytes(self.raw[:200])

    def read_to_the_end(self) -> list[int]:
        """Read on at last, until the server's end or abort: the message ids that had reached it."""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            self.raw += chunk
        _, _, body = bytes(self.raw).partition(b"\r\n\r\n")
        text = bytearray()
        while body:  # undo the chunked transfer coding
            size_line, _, rest = body.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            if size == 0 or len(rest) < size:
                text += rest[:size]
                break
            text += rest[:size]
            body = rest[size + 2 :]
        pattern = rb"event: message\nid: " + self.room.encode() + rb":(\d+)\n"
        return [int(found) for found in re.findall(pattern, bytes(text))]


async def test_a_stream_that_never_reads_is_dropped_while_the_room_goes_on(server):
    """An event stream whose client stops reading is aborted once over 1 MiB waits for it (its
    user is announced offline); the room's sockets get every message in order before and after."""
    users = await sync_to_async(make_users)("flow", 2)
    await sync_to_async(make_room)("flow", users[0])
    tokens = [await sync_to_async(access_token)(user) for user in users]
    slow = await asyncio.to_thread(StreamNonReader, server, tokens[1], "flow")
    reader = await connect(server, token=tokens[0])
    await join(reader, "flow")
    body = "y" * 3990
    window, most, after_cut = 40, 3000, 20
    received: list[int] = []
    acknowledged, slow_gone = asyncio.Event(), asyncio.Event()

    async def read_all() -> None:
        while True:
            frame = await recv(reader, timeout=20)
            assert frame["type"] != "error", frame
            if frame["type"] == "presence" and frame["user"] == "flow1" and not frame["online"]:
                slow_gone.set()  # the stream left the hub: aborted
            if frame["type"] == "message":
                received.append(frame["message"]["id"])
                acknowledged.set()
                if frame["message"]["client_id"] == "last":
                    return

    async def send_all() -> int:
        sent = 0
        cut_at = None
        while cut_at is None or sent < cut_at + after_cut:
            while sent - len(received) >= window:
                acknowledged.clear()
                await acknowledged.wait()
            await send(reader, {"type": "message", "room": "flow", "body": body, "client_id": f"f{sent}"})
            sent += 1
            if cut_at is None and slow_gone.is_set():
                cut_at = sent
            assert sent < most, "the slow stream was never cut off"
        await send(reader, {"type": "message", "room": "flow", "body": "the end", "client_id": "last"})
        return sent + 1

    sent, _ = await asyncio.gather(send_all(), read_all())
    assert len(received) == sent and received == sorted(received) and len(set(received)) == sent
    reached = await asyncio.to_thread(slow.read_to_the_end)
    assert len(reached) < sent - after_cut
    assert reached == received[: len(reached)]
    assert "sse_slow_reader" in server.log()
    await reader.close()
    slow.sock.close()
