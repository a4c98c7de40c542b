"""A lean WebSocket client for the load tool: one asyncio.Protocol per socket, no task per socket.

The `websockets` library costs a task, a queue and a future per received frame; at tens of
thousands of frames per second on one core that, not the server, becomes the limit (see
docs/benchmarks.md, "the load tool"). This client speaks just enough RFC 6455 for the benchmark:
the opening handshake (no extensions, no Origin), masked text frames out, unmasked text, close,
ping and pong frames in, fragmented messages reassembled.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import struct
import time
from collections.abc import Callable

try:  # the C helper websockets ships; the pure-Python fallback is correct but slower
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover

    def apply_mask(data: bytes, mask: bytes) -> bytes:
        n = len(data)
        key = (mask * (n // 4 + 1))[:n]
        return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


MAX_FRAME = 16 * 1024 * 1024
_getrandbits = random.getrandbits
_perf_ns = time.perf_counter_ns


def frame(opcode: int, payload: bytes) -> bytes:
    """A masked, final client frame."""
    n = len(payload)
    mask = _getrandbits(32).to_bytes(4, "big")
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + struct.pack("!H", n)
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + struct.pack("!Q", n)
    return head + mask + apply_mask(payload, mask)


class HandshakeError(Exception):
    pass


class RawWebSocket(asyncio.Protocol):
    """One client socket. `on_text(sock, payload_bytes)` is called for every text message."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        path: str,
        headers: dict[str, str],
        on_text: Callable[[RawWebSocket, bytes], None],
        on_close: Callable | None = None,
        owner=None,
    ):
        self.owner = owner  # whatever the caller wants to find from the callbacks
        self.host, self.port, self.path, self.headers = host, port, path, headers
        self.on_text = on_text
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.closed = False
        self.close_code: int | None = None
        self.close_sent = False
        self.status: int | None = None
        self.handshake: asyncio.Future = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future = asyncio.get_running_loop().create_future()
        self._buf = bytearray()
        self.recv_ns = 0  # perf_counter_ns of the read that brought the frame being handled
        self._fragments: list[bytes] | None = None
        self._key = base64.b64encode(os.urandom(16)).decode()

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self._key}",
            "Sec-WebSocket-Version: 13",
        ] + [f"{k}: {v}" for k, v in self.headers.items()]
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        # One clock reading per read: every frame of it had arrived by now (latency is per read).
        self.recv_ns = _perf_ns()
        if self._buf:
            self._buf += data
            data = bytes(self._buf)
            self._buf = bytearray()
        if not self.open:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > 65536:
                    self._fail_handshake("response headers too long")
                else:
                    self._buf += data
                return
            head = data[:end].decode("latin-1")
            data = data[end + 4 :]
            try:
                self.status = int(head.split(" ", 2)[1])
            except (IndexError, ValueError):
                self._fail_handshake(f"bad status line {head[:80]!r}")
                return
            if self.status != 101:
                self._fail_handshake(f"HTTP {self.status}")
                return
            self.open = True
            if not self.handshake.done():
                self.handshake.set_result(True)
        if data:
            self._parse(data)

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.open = False
        if not self.handshake.done():
            self.handshake.set_exception(HandshakeError(f"connection lost during handshake: {exc!r}"))
        if not self.lost.done():
            self.lost.set_result(self.close_code)
        if self.on_close is not None:
            self.on_close(self)

    # -- frames ----------------------------------------------------------------------------
    def _parse(self, data: bytes) -> None:
        """Every complete frame of data; an incomplete tail waits in _buf for the next read."""
        n = len(data)
        pos = 0
        on_text = self.on_text
        while n - pos >= 2:
            b0 = data[pos]
            length = data[pos + 1]
            if b0 == 0x81 and length <= 126:  # the common case: a final, unmasked text frame < 64 KiB
                if length < 126:
                    start = pos + 2
                elif n - pos < 4:
                    break
                else:
                    start = pos + 4
                    length = (data[pos + 2] << 8) | data[pos + 3]
                end = start + length
                if end > n:
                    break
                on_text(self, data[start:end])
                pos = end
                continue
            masked = length & 0x80
            length &= 0x7F
            hdr = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                hdr = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                hdr = 10
            if length > MAX_FRAME:
                self.abort()
                return
            mask = None
            if masked:
                if n - pos < hdr + 4:
                    break
                mask = data[pos + hdr : pos + hdr + 4]
                hdr += 4
            if n - pos < hdr + length:
                break
            payload = data[pos + hdr : pos + hdr + length]
            pos += hdr + length
            if mask is not None:
                payload = apply_mask(payload, mask)
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if opcode == 1 or opcode == 2:
                if fin:
                    if opcode == 1:
                        on_text(self, payload)
                else:
                    self._fragments = [payload]
            elif opcode == 0:
                if self._fragments is not None:
                    self._fragments.append(payload)
                    if fin:
                        whole = b"".join(self._fragments)
                        self._fragments = None
                        on_text(self, whole)
            elif opcode == 8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                if not self.close_sent:
                    self.close_sent = True
                    self.transport.write(frame(8, payload[:2]))
                self.transport.close()
                return
            elif opcode == 9:
                self.transport.write(frame(10, payload))
            # opcode 10 (pong): nothing to do
        if pos < n:
            self._buf += data[pos:]

    def send_text(self, data: bytes) -> bool:
        """Queue one text frame; False if the socket is not open."""
        if not self.open or self.transport is None or self.transport.is_closing():
            return False
        self.transport.write(frame(1, data))
        return True

    def write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport else 0

    def close(self, code: int = 1000) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.open and not self.close_sent:
            self.close_sent = True
            self.transport.write(frame(8, struct.pack("!H", code)))
        # The server answers with its close frame and then closes TCP; do not wait for it here.

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _fail_handshake(self, why: str) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(HandshakeError(why))
        if self.transport is not None:
            self.transport.close()


async def connect(
    host: str,
    port: int,
    path: str,
    headers: dict[str, str],
    on_text,
    *,
    on_close=None,
    owner=None,
    timeout: float = 10.0,
) -> RawWebSocket:
    loop = asyncio.get_running_loop()

    def factory() -> RawWebSocket:
        return RawWebSocket(
            host=host, port=port, path=path, headers=headers, on_text=on_text, on_close=on_close, owner=owner
        )

    async def _go() -> RawWebSocket:
        _transport, proto = await loop.create_connection(factory, host, port)
        await proto.handshake
        return proto

    return await asyncio.wait_for(_go(), timeout)
