"""rooms/realtime/writer.py, the daphne adapter, against fakes of daphne's protocol and Twisted's transport."""

from __future__ import annotations

import asyncio
import functools
import logging

import pytest
from django.test import override_settings

from rooms.realtime import writer
from rooms.realtime.writer import Frame, SocketWriter, check_internals, ws_text_frame


class FakeSocket:
    def __init__(self, accepts: int | None = None) -> None:
        self.accepts = accepts  # bytes the kernel takes per send (None: everything)
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> int:
        taken = len(data) if self.accepts is None else min(self.accepts, len(data))
        if taken == 0:
            raise BlockingIOError
        self.sent.append(bytes(data[:taken]))
        return taken


class FakeTransport:
    def __init__(self, sock: FakeSocket) -> None:
        self.socket = sock
        self.dataBuffer = b""
        self.offset = 0
        self._tempDataLen = 0
        self.written: list[bytes] = []
        self.connected = True
        self.disconnecting = False

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self._tempDataLen += len(data)


class FakeProtocol:
    STATE_OPEN, STATE_CLOSED = 1, 3

    def __init__(self, sock: FakeSocket | None = None) -> None:
        self.state = self.STATE_OPEN
        self.transport = FakeTransport(sock or FakeSocket())
        self._perMessageCompress = None
        self.application_queue = asyncio.Queue()
        self.last_ping = 0.0
        self.closes: list[int] = []

    def sendClose(self, code: int) -> None:
        self.closes.append(code)
        self.state = 2


async def _handle_reply(protocol: FakeProtocol, message: dict) -> None:
    raise AssertionError("the fast path must not use the ASGI send")


@pytest.fixture
def fast_path(monkeypatch):
    """The adapter as install() leaves it under daphne, on fresh state."""
    monkeypatch.setattr(writer._State, "fast_path", True)
    monkeypatch.setattr(writer._State, "instance_checked", False)
    monkeypatch.setattr(writer._State, "writers", set())
    monkeypatch.setattr(writer._State, "dirty", [])
    monkeypatch.setattr(writer._State, "flush_scheduled", False)


def _writer_for(protocol) -> SocketWriter:
    return SocketWriter(functools.partial(_handle_reply, protocol))


def _unframe(data: bytes) -> list[str]:
    """The texts of a run of unmasked server text frames."""
    texts = []
    while data:
        assert data[0] == 0x81
        length, start = data[1], 2
        if length == 126:
            length, start = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            length, start = int.from_bytes(data[2:10], "big"), 10
        texts.append(data[start : start + length].decode())
        data = data[start + length :]
    return texts


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
def test_text_frame_encodes_every_length_form(size):
    """Server text frames use the 7-bit, 16-bit and 64-bit length forms of RFC 6455 correctly."""
    assert _unframe(ws_text_frame(b"x" * size)) == ["x" * size]


def test_frame_is_encoded_once_for_every_socket():
    """A shared Frame builds its bytes once, however many sockets it goes to."""
    frame = Frame('{"type":"pong"}')
    assert frame.wire is frame.wire


def test_pinned_daphne_has_every_internal_the_adapter_uses():
    """On the pinned daphne/Twisted/autobahn, the start-up check finds everything."""
    assert check_internals() == []


def test_start_up_check_names_a_missing_internal(monkeypatch):
    """A daphne without an attribute the adapter uses is reported by name."""
    from daphne.ws_protocol import WebSocketProtocol

    monkeypatch.delattr(WebSocketProtocol, "check_timeouts")
    assert check_internals() == ["daphne.ws_protocol:WebSocketProtocol.check_timeouts"]


async def test_frames_of_one_tick_go_out_in_one_write(fast_path):
    """Three frames queued for one socket in the same tick reach the kernel in one send, in order."""
    protocol = FakeProtocol()
    socket_writer = _writer_for(protocol)
    for text in ("a", "b", "c"):
        socket_writer.write(Frame(text))
    assert protocol.transport.socket.sent == []  # nothing before the end of the tick
    await asyncio.sleep(0)
    assert len(protocol.transport.socket.sent) == 1
    assert _unframe(protocol.transport.socket.sent[0]) == ["a", "b", "c"]


async def test_what_the_kernel_does_not_take_queues_in_twisted_and_keeps_order(fast_path):
    """A partial send leaves the rest to Twisted; later frames queue behind it, never beside it."""
    protocol = FakeProtocol(FakeSocket(accepts=5))
    socket_writer = _writer_for(protocol)
    socket_writer.write(Frame("first"))
    await asyncio.sleep(0)
    socket_writer.write(Frame("second"))
    await asyncio.sleep(0)
    sent = b"".join(protocol.transport.socket.sent) + b"".join(protocol.transport.written)
    assert _unframe(sent) == ["first", "second"]
    assert len(protocol.transport.socket.sent) == 1  # the second went behind Twisted's buffer


@override_settings(CHAT_SLOW_READER_BYTES=1000)
async def test_slow_reader_is_closed_with_4009_and_gets_nothing_more(fast_path):
    """Past the limit of bytes waiting for a socket, it is closed with 4009 and written no further."""
    protocol = FakeProtocol(FakeSocket(accepts=0))
    socket_writer = _writer_for(protocol)
    for _ in range(10):
        socket_writer.write(Frame("x" * 150))
        await asyncio.sleep(0)
    assert protocol.closes == [4009]
    assert socket_writer.closed
    queued = sum(map(len, protocol.transport.written))
    assert queued <= 1000
    socket_writer.write(Frame("after"))
    await asyncio.sleep(0)
    assert sum(map(len, protocol.transport.written)) == queued


@override_settings(CHAT_SLOW_READER_BYTES=1000)
async def test_a_reader_that_keeps_up_is_never_closed(fast_path):
    """Far more than the limit in total, but taken by the kernel as it comes: the socket stays open."""
    protocol = FakeProtocol()
    socket_writer = _writer_for(protocol)
    for _ in range(50):
        socket_writer.write(Frame("x" * 150))
        await asyncio.sleep(0)
    assert protocol.closes == []
    assert len(_unframe(b"".join(protocol.transport.socket.sent))) == 50


async def test_closed_protocol_is_not_written(fast_path):
    """A socket whose close handshake started gets no more data frames."""
    protocol = FakeProtocol()
    socket_writer = _writer_for(protocol)
    protocol.state = 2
    socket_writer.write(Frame("late"))
    await asyncio.sleep(0)
    assert protocol.transport.socket.sent == [] and protocol.transport.written == []


async def test_close_writes_what_is_queued_then_the_close(fast_path):
    """close() sends the frames queued before it, then starts the close handshake with the code."""
    protocol = FakeProtocol()
    socket_writer = _writer_for(protocol)
    socket_writer.write(Frame("bye"))
    socket_writer.close(4001)
    assert _unframe(protocol.transport.socket.sent[0]) == ["bye"]
    assert protocol.closes == [4001]


async def test_missing_instance_attribute_falls_back_to_asgi_send_with_one_warning(fast_path, caplog):
    """A protocol without an attribute the fast path touches disables it once, with one warning,
    before anything is written: every frame then goes through the ASGI send, in order."""
    sent: list[dict] = []

    async def handle_reply(protocol, message):
        sent.append(message)

    protocol = FakeProtocol()
    del protocol._perMessageCompress
    with caplog.at_level(logging.WARNING, logger="rooms.realtime.writer"):
        first = SocketWriter(functools.partial(handle_reply, protocol))
        second = SocketWriter(functools.partial(handle_reply, FakeProtocol()))
    assert not first.is_fast and not second.is_fast
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "_perMessageCompress" in caplog.records[0].message
    first.write(Frame("one"))
    first.write_text("two")
    first.close(4009)
    await first.drained()
    assert sent == [
        {"type": "websocket.send", "text": "one"},
        {"type": "websocket.send", "text": "two"},
        {"type": "websocket.close", "code": 4009},
    ]


async def test_outside_daphne_the_asgi_send_is_used():
    """A send that is not daphne's (Channels' communicator, another server) gets the ASGI messages."""
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    socket_writer = SocketWriter(send)
    assert not socket_writer.is_fast
    socket_writer.write(Frame("hello"))
    await socket_writer.drained()
    assert sent == [{"type": "websocket.send", "text": "hello"}]
