#!/usr/bin/env python
"""A tiny stand-in for /ws/chat/ to self-test the load tool: bare `websockets` broadcast, same frames.

It speaks the subset of CONTRACT §3 the load tool uses (join/joined, message broadcast with
per-room increasing ids, error with client_id, ping/pong), needs an `Authorization: Bearer` header,
and can misbehave on purpose so the tool's accounting can be checked:
  --drop-every K     skip every K-th delivery (the tool must report them lost)
  --dup-every K      send every K-th delivery twice (duplicated)
  --swap-every K     deliver every K-th message of a room before the previous one (out of order)
  --reject-every K   answer every K-th message with error rate_limited instead of a broadcast
  --drop-after N     deliver none of the messages after the N-th (a server that breaks under load)
  --protocol socketio  the same chat over Socket.IO v5 / Engine.IO v4 packets (open packet, `40`
                     namespace connect, `42[...]` events, `2`/`3` pings with --ping-interval)
Also a floor for comparisons: this is what one Python process on one core can push with
`websockets.broadcast` (one encode per message, no database).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from http import HTTPStatus

from websockets.asyncio.server import broadcast, serve


def dumps(obj) -> str:
    """Compact JSON, as chatsite (rooms/protocol.py) and Socket.IO (JSON.stringify) write it."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class Wire:
    """The envelope of one dialect: chatsite's {"type":...} frames or Socket.IO's 42["kind",{...}]."""

    def __init__(self, protocol: str):
        self.socketio = protocol == "socketio"

    def frame(self, kind: str, obj: dict) -> str:
        if self.socketio:
            return "42" + dumps([kind, obj])
        return dumps({"type": kind, **obj})

    def message(self, msg: dict) -> str:
        return "42" + dumps(["message", msg]) if self.socketio else dumps({"type": "message", "message": msg})

    def parse(self, raw: str) -> tuple[str, dict]:
        """(kind, fields) of a client frame; ValueError/KeyError/TypeError if malformed."""
        if not self.socketio:
            f = json.loads(raw)
            return f["type"], f
        if not raw.startswith("42"):
            raise ValueError("not an event")
        event = json.loads(raw[2:])
        return event[0], event[1]


def server_frame(text: str) -> bytes:
    """One unmasked, final server text frame: framed once, written to any number of sockets."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


class Hub:
    def __init__(self, args):
        self.args = args
        self.wire = Wire(args.protocol)
        self.rooms: dict[str, set] = {}
        self.last_id: dict[str, int] = {}
        self.n_msg = 0
        self.n_delivery = 0
        self.held: dict[str, tuple] = {}  # room -> (frame, members) held back for --swap-every
        self.pending: dict = {}  # --batch-writes: socket -> frames written at the end of the loop tick
        self.pongs = 0

    def release(self, room: str, frame: str) -> None:
        """Deliver a held frame if no later message of its room came to release it."""
        if self.held.get(room) is frame:
            del self.held[room]
            self.deliver(room, frame)

    def write(self, members, frame: str) -> None:
        if not self.args.batch_writes:
            broadcast(members, frame)
            return
        data = server_frame(frame)
        pending = self.pending
        if not pending:
            asyncio.get_running_loop().call_soon(self.flush)
        for ws in members:
            queued = pending.get(ws)
            if queued is None:
                pending[ws] = [data]
            else:
                queued.append(data)

    def flush(self) -> None:
        pending, self.pending = self.pending, {}
        for ws, frames in pending.items():
            if ws.transport is not None and not ws.transport.is_closing():
                ws.transport.write(b"".join(frames))

    def deliver(self, room: str, frame: str) -> None:
        a = self.args
        members = self.rooms.get(room, ())
        if not (a.drop_every or a.dup_every):
            self.write(members, frame)
            return
        for ws in list(members):
            self.n_delivery += 1
            if a.drop_every and self.n_delivery % a.drop_every == 0:
                continue
            self.write([ws], frame)
            if a.dup_every and self.n_delivery % a.dup_every == 0:
                self.write([ws], frame)


async def engineio_open(ws, hub: Hub) -> bool:
    """Engine.IO's open packet, then the client's namespace connect `40`, answered `40{sid}`."""
    a = hub.args
    opened = {"sid": "fake", "upgrades": [], "pingInterval": int(a.ping_interval * 1000), "pingTimeout": 20000}
    await ws.send("0" + json.dumps(opened))
    first = await ws.recv()
    if first != "40" and not first.startswith("40{"):
        await ws.send('44{"message":"namespace connect expected"}')
        return False
    await ws.send('40{"sid":"fake-ns"}')
    return True


async def engineio_pinger(ws, hub: Hub, pong: asyncio.Event) -> None:
    """Ping every --ping-interval; a client that does not pong within --ping-timeout is closed, as Engine.IO does."""
    a = hub.args
    while True:
        await asyncio.sleep(a.ping_interval)
        pong.clear()
        await ws.send("2")
        try:
            await asyncio.wait_for(pong.wait(), a.ping_timeout)
        except TimeoutError:
            await ws.close(4000, "ping timeout")
            return


async def handler(ws, hub: Hub) -> None:
    a = hub.args
    wire = hub.wire
    joined: set[str] = set()
    user = ws.request.headers.get("Authorization", "")[7:][-12:]
    pinger = None
    pong = asyncio.Event()
    if wire.socketio:
        if not await engineio_open(ws, hub):
            return
        if a.ping_interval:
            pinger = asyncio.create_task(engineio_pinger(ws, hub, pong))
    try:
        async for raw in ws:
            if wire.socketio and raw == "3":
                hub.pongs += 1
                pong.set()
                continue
            try:
                kind, f = wire.parse(raw)
            except (ValueError, KeyError, TypeError, IndexError):
                await ws.send(wire.frame("error", {"code": "bad_request", "detail": "not JSON"}))
                continue
            if kind == "join":
                room = f["room"]
                hub.rooms.setdefault(room, set()).add(ws)
                joined.add(room)
                await ws.send(wire.frame("joined", {"room": room, "last_id": hub.last_id.get(room, 0), "online": []}))
            elif kind == "message":
                room = f["room"]
                cid = f.get("client_id")
                if room not in joined:
                    await ws.send(wire.frame("error", {"code": "forbidden", "detail": "join first", "client_id": cid}))
                    continue
                hub.n_msg += 1
                if a.reject_every and hub.n_msg % a.reject_every == 0:
                    await ws.send(
                        wire.frame(
                            "error",
                            {"code": "rate_limited", "detail": "slow down", "client_id": cid, "retry_after": 1},
                        )
                    )
                    continue
                mid = hub.last_id.get(room, 0) + 1
                hub.last_id[room] = mid
                frame = wire.message(
                    {
                        "id": mid,
                        "room": room,
                        "author": {"id": 1, "username": user},
                        "body": f["body"],
                        "created": "2026-01-01T00:00:00Z",
                        "edited": None,
                        "client_id": cid,
                    }
                )
                if a.swap_every and mid % a.swap_every == 0 and room not in hub.held:
                    hub.held[room] = frame
                    asyncio.get_running_loop().call_later(0.2, hub.release, room, frame)
                    continue
                if a.drop_after and hub.n_msg > a.drop_after:
                    continue  # accepted, never delivered
                hub.deliver(room, frame)
                held = hub.held.pop(room, None)
                if held is not None:
                    hub.deliver(room, held)
            elif kind == "ping":
                await ws.send(wire.frame("pong", {}))
            elif kind == "leave":
                hub.rooms.get(f["room"], set()).discard(ws)
                joined.discard(f["room"])
                await ws.send(wire.frame("left", {"room": f["room"]}))
    finally:
        if pinger is not None:
            pinger.cancel()
        for room in joined:
            hub.rooms.get(room, set()).discard(ws)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--drop-every", type=int, default=0)
    p.add_argument("--dup-every", type=int, default=0)
    p.add_argument("--swap-every", type=int, default=0)
    p.add_argument("--reject-every", type=int, default=0)
    p.add_argument("--drop-after", type=int, default=0, help="deliver none of the messages after the N-th")
    p.add_argument("--protocol", choices=["chatsite", "socketio"], default="chatsite")
    p.add_argument("--ping-interval", type=float, default=0.0, help="socketio: Engine.IO ping every S seconds")
    p.add_argument("--ping-timeout", type=float, default=5.0, help="socketio: close a client that has not ponged")
    p.add_argument(
        "--batch-writes",
        action="store_true",
        help="frame each broadcast once and write each socket's frames of one loop tick in one write "
        "(a server cheaper per delivery than the tool: to measure the tool's own ceiling)",
    )
    args = p.parse_args(argv)
    hub = Hub(args)

    def check_auth(conn, request):
        want = "/socket.io/" if args.protocol == "socketio" else "/ws/chat/"
        if not request.path.startswith(want):
            return conn.respond(HTTPStatus.NOT_FOUND, "no such path\n")
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return conn.respond(HTTPStatus.UNAUTHORIZED, "credentials needed\n")
        return None

    async def run():
        async with serve(
            lambda ws: handler(ws, hub),
            "127.0.0.1",
            args.port,
            process_request=check_auth,
            compression=None,
            max_queue=None,
            ping_interval=None,
            backlog=4096,
        ) as server:
            print(f"fake server on 127.0.0.1:{args.port}", flush=True)
            await server.serve_forever()

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
