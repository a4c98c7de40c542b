#!/usr/bin/env python
"""A tiny stand-in for /ws/chat/ to self-test the load tool: bare `websockets` broadcast, same frames.

It speaks the subset of CONTRACT §3 the load tool uses (join/joined, message broadcast with
per-room increasing ids, error with client_id, ping/pong), needs an `Authorization: Bearer` header,
and can misbehave on purpose so the tool's accounting can be checked:
  --drop-every K     skip every K-th delivery (the tool must report them lost)
  --dup-every K      send every K-th delivery twice (duplicated)
  --swap-every K     deliver every K-th message of a room before the previous one (out of order)
  --reject-every K   answer every K-th message with error rate_limited instead of a broadcast
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


class Hub:
    def __init__(self, args):
        self.args = args
        self.rooms: dict[str, set] = {}
        self.last_id: dict[str, int] = {}
        self.n_msg = 0
        self.n_delivery = 0
        self.held: dict[str, tuple] = {}  # room -> (frame, members) held back for --swap-every

    def release(self, room: str, frame: str) -> None:
        """Deliver a held frame if no later message of its room came to release it."""
        if self.held.get(room) is frame:
            del self.held[room]
            self.deliver(room, frame)

    def deliver(self, room: str, frame: str) -> None:
        a = self.args
        members = self.rooms.get(room, ())
        if not (a.drop_every or a.dup_every):
            broadcast(members, frame)
            return
        for ws in list(members):
            self.n_delivery += 1
            if a.drop_every and self.n_delivery % a.drop_every == 0:
                continue
            broadcast([ws], frame)
            if a.dup_every and self.n_delivery % a.dup_every == 0:
                broadcast([ws], frame)


async def handler(ws, hub: Hub) -> None:
    a = hub.args
    joined: set[str] = set()
    user = ws.request.headers.get("Authorization", "")[7:][-12:]
    try:
        async for raw in ws:
            try:
                f = json.loads(raw)
                kind = f["type"]
            except (ValueError, KeyError, TypeError):
                await ws.send('{"type":"error","code":"bad_request","detail":"not JSON"}')
                continue
            if kind == "join":
                room = f["room"]
                hub.rooms.setdefault(room, set()).add(ws)
                joined.add(room)
                await ws.send(
                    json.dumps({"type": "joined", "room": room, "last_id": hub.last_id.get(room, 0), "online": []})
                )
            elif kind == "message":
                room = f["room"]
                cid = f.get("client_id")
                if room not in joined:
                    await ws.send(
                        json.dumps({"type": "error", "code": "forbidden", "detail": "join first", "client_id": cid})
                    )
                    continue
                hub.n_msg += 1
                if a.reject_every and hub.n_msg % a.reject_every == 0:
                    await ws.send(
                        json.dumps(
                            {
                                "type": "error",
                                "code": "rate_limited",
                                "detail": "slow down",
                                "client_id": cid,
                                "retry_after": 1,
                            }
                        )
                    )
                    continue
                mid = hub.last_id.get(room, 0) + 1
                hub.last_id[room] = mid
                frame = json.dumps(
                    {
                        "type": "message",
                        "message": {
                            "id": mid,
                            "room": room,
                            "author": {"id": 1, "username": user},
                            "body": f["body"],
                            "created": "2026-01-01T00:00:00Z",
                            "edited": None,
                            "client_id": cid,
                        },
                    }
                )
                if a.swap_every and mid % a.swap_every == 0 and room not in hub.held:
                    hub.held[room] = frame
                    asyncio.get_running_loop().call_later(0.2, hub.release, room, frame)
                    continue
                hub.deliver(room, frame)
                held = hub.held.pop(room, None)
                if held is not None:
                    hub.deliver(room, held)
            elif kind == "ping":
                await ws.send('{"type":"pong"}')
            elif kind == "leave":
                hub.rooms.get(f["room"], set()).discard(ws)
                joined.discard(f["room"])
                await ws.send(json.dumps({"type": "left", "room": f["room"]}))
    finally:
        for room in joined:
            hub.rooms.get(room, set()).discard(ws)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--drop-every", type=int, default=0)
    p.add_argument("--dup-every", type=int, default=0)
    p.add_argument("--swap-every", type=int, default=0)
    p.add_argument("--reject-every", type=int, default=0)
    args = p.parse_args(argv)
    hub = Hub(args)

    def check_auth(conn, request):
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
