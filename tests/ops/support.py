"""WebSocket clients for the operations drills: a native client that reconnects and resumes."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import websockets


def token_for(user) -> str:
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
        return json.dumps(
            {"type": "message", "room": self.room, "body": self.outbox[client_id], "client_id": client_id}
        )

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
            except (TimeoutError, OSError, websockets.InvalidHandshake):
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


async def wait_for(predicate, timeout: float) -> bool:
    """Poll `predicate` on the event loop until true or `timeout` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


class TcpProxy:
    """A loopback TCP proxy to PostgreSQL that a test can cut (every connection dropped, new ones refused) and restore.

    It stands in for "PostgreSQL is down" without touching the PostgreSQL other test runs share.
    """

    def __init__(self, target: tuple[str, int]):
        import socket

        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._listener = None
        self._conns: list = []
        self._lock = __import__("threading").Lock()

    def start(self) -> TcpProxy:
        import socket
        import threading

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass

    def stop(self) -> None:
        import socket

        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not, on Linux.
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
