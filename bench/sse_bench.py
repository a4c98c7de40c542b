"""Benchmarks of the event stream (`/api/v1/stream/`, CONTRACT §6), with the same tokens files as
bench/loadtest.py (`bench/run_server.sh setup ...`).

  idle   N idle streams joined to their rooms: the server's memory per stream (VmRSS before,
         with all of them open, and after they closed), and whether every one got `joined`.
  mixed  one room, its members half on streams and half on WebSockets, one sender posting at
         RATE msg/s for DURATION s: delivery latency (post to receipt, one clock) per transport,
         and every receiver's loss, duplicates and order.

  .venv/bin/python bench/sse_bench.py idle  --url http://127.0.0.1:18100 --tokens bench/out/tokens/idle.json \\
      --streams 2000 --server-pid PID
  .venv/bin/python bench/sse_bench.py mixed --url http://127.0.0.1:18100 --tokens bench/out/tokens/big.json \\
      --rate 20 --duration 30

The streams are raw asyncio connections (one Protocol each, no task per stream), so the tool
stays cheap next to the server; the sockets use the lean client of bench/wsclient.py. Prints one
JSON summary (also written to --out when given).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.wsclient import RawWebSocket  # noqa: E402


def rss_kib(pid: int | None) -> int | None:
    if not pid:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


class SSEStream(asyncio.Protocol):
    """One stream: parses events as they arrive; `on_event(stream, type, data_text, id)`."""

    def __init__(self, *, host: str, port: int, path: str, token: str, on_event) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
        self.on_event = on_event
        self.buffer = b""
        self.headers_done = False
        self.status = 0
        self.joined = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.fields: dict[str, str] = {}
        self.data: list[str] = []

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.headers_done:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            self.status = int(head.split(b" ", 2)[1])
            self.headers_done, self.buffer = True, rest
            if self.status != 200 and not self.joined.done():
                self.joined.set_exception(RuntimeError(f"stream answered {self.status}: {rest[:200]!r}"))
        # Chunked encoding: the chunk-size lines are not event lines; skip them by shape.
        *lines, self.buffer = self.buffer.split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r").decode()
            if line == "":
                if self.data:
                    self.on_event(
                        self, self.fields.get("event", "message"), "\n".join(self.data), self.fields.get("id")
                    )
                self.fields, self.data = {}, []
            elif line.startswith(":"):
                continue
            elif ":" not in line:
                continue  # a chunk size
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    self.data.append(value)
                elif name in ("event", "id", "retry"):
                    self.fields[name] = value

    def connection_lost(self, exc) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if not self.joined.done():
            self.joined.set_exception(RuntimeError("stream closed before joined"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_stream(url, token: str, rooms: str, on_event) -> SSEStream:
    parsed = urlparse(url)
    loop = asyncio.get_running_loop()
    path = f"/api/v1/stream/?rooms={rooms}"
    _, stream = await loop.create_connection(
        lambda: SSEStream(host=parsed.hostname, port=parsed.port, path=path, token=token, on_event=on_event),
        parsed.hostname,
        parsed.port,
    )
    return stream


def _joined_handler(stream: SSEStream, event: str, data: str, event_id: str | None) -> None:
    if event == "joined" and not stream.joined.done():
        stream.joined.set_result(None)


async def bench_idle(args) -> dict:
    entries = json.loads(Path(args.tokens).read_text())["sockets"][: args.streams]
    before = rss_kib(args.server_pid)
    streams: list[SSEStream] = []
    started = time.monotonic()
    for batch_start in range(0, len(entries), args.batch):
        batch = entries[batch_start : batch_start + args.batch]
        opened = await asyncio.gather(*(open_stream(args.url, e["token"], e["room"], _joined_handler) for e in batch))
        streams += opened
        await asyncio.gather(*(s.joined for s in opened), return_exceptions=True)
    joined = sum(1 for s in streams if s.joined.done() and not s.joined.exception())
    opened_in = time.monotonic() - started
    await asyncio.sleep(args.hold)
    during = rss_kib(args.server_pid)
    for stream in streams:
        stream.close()
    await asyncio.gather(*(s.closed for s in streams))
    await asyncio.sleep(args.settle)
    after = rss_kib(args.server_pid)
    per_stream = (during - before) / len(streams) if before is not None and during is not None else None
    return {
        "scenario": "sse-idle",
        "streams": len(streams),
        "joined": joined,
        "open_seconds": round(opened_in, 2),
        "rss_kib": {"before": before, "open": during, "after_close": after},
        "kib_per_stream": round(per_stream, 2) if per_stream is not None else None,
    }


async def bench_mixed(args) -> dict:
    data = json.loads(Path(args.tokens).read_text())
    entries = data["sockets"]
    room = entries[0]["room"]
    members = [e for e in entries if e["room"] == room][: args.members]
    sender_entry, receivers = members[0], members[1:]
    half = len(receivers) // 2
    parsed = urlparse(args.url)
    received: dict[str, dict[str, list[tuple[int, float]]]] = {"sse": {}, "ws": {}}

    def on_stream_event(stream, event, text, event_id) -> None:
        if event == "joined" and not stream.joined.done():
            stream.joined.set_result(None)
        elif event == "message":
            message = json.loads(text)["message"]
            received["sse"].setdefault(stream.name, []).append((message["id"], _sent_at(message, time.time())))

    streams = []
    for entry in receivers[:half]:
        stream = await open_stream(args.url, entry["token"], room, on_stream_event)
        stream.name = entry["username"]  # type: ignore[attr-defined]
        streams.append(stream)
    await asyncio.gather(*(s.joined for s in streams))

    loop = asyncio.get_running_loop()
    sockets = []
    join_frame = json.dumps({"type": "join", "room": room}).encode()

    sender_socket: list = [None]  # its own messages are its acknowledgements, not deliveries

    def on_text(sock, payload: bytes) -> None:
        frame = json.loads(payload)
        if frame.get("type") == "joined" and not sock.bench_joined.done():
            sock.bench_joined.set_result(None)
        elif frame.get("type") == "message" and sock is not sender_socket[0]:
            message = frame["message"]
            received["ws"].setdefault(sock.bench_name, []).append((message["id"], _sent_at(message, time.time())))

    async def open_socket(entry):
        _, sock = await loop.create_connection(
            lambda: RawWebSocket(
                host=parsed.hostname,
                port=parsed.port,
                path="/ws/chat/",
                headers={"Authorization": f"Bearer {entry['token']}"},
                on_text=on_text,
            ),
            parsed.hostname,
            parsed.port,
        )
        await sock.handshake
        sock.bench_name = entry["username"]
        sock.bench_joined = loop.create_future()
        sock.send_text(join_frame)
        await sock.bench_joined
        return sock

    sockets = list(await asyncio.gather(*(open_socket(e) for e in receivers[half:])))
    sender = await open_socket(sender_entry)
    sender_socket[0] = sender
    sent = 0
    started = time.monotonic()
    while time.monotonic() - started < args.duration:
        body = f"t={time.time():.6f} n={sent}"
        sender.send_text(
            json.dumps(
                {"type": "message", "room": room, "body": body, "client_id": f"sse-{os.getpid()}-{sent}"}
            ).encode()
        )
        sent += 1
        await asyncio.sleep(max(0.0, started + sent / args.rate - time.monotonic()))
    await asyncio.sleep(args.settle)
    result = {"scenario": "sse-mixed", "room": room, "streams": len(streams), "sockets": len(sockets), "sent": sent}
    for transport, per_receiver in received.items():
        latencies = sorted(lat for got in per_receiver.values() for _, lat in got)
        expected = len(streams) if transport == "sse" else len(sockets)
        lost = doubled = disordered = 0
        for got in per_receiver.values():
            ids = [message_id for message_id, _ in got]
            lost += max(0, sent - len(set(ids)))
            doubled += len(ids) - len(set(ids))
            disordered += sum(1 for a, b in itertools.pairwise(ids) if b <= a)
        lost += sent * (expected - len(per_receiver))
        result[transport] = {
            "deliveries": len(latencies),
            "lost": lost,
            "doubled": doubled,
            "disordered": disordered,
            "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
            "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1) if latencies else None,
        }
    for stream in streams:
        stream.close()
    for sock in [*sockets, sender]:
        sock.close()
    return result


def _sent_at(message: dict, now: float) -> float:
    text = message["body"]
    try:
        return now - float(text.split("t=", 1)[1].split()[0])
    except (IndexError, ValueError):
        return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("idle", "mixed"):
        sp = sub.add_parser(name)
        sp.add_argument("--url", required=True, help="http://host:port of one chatsite process")
        sp.add_argument("--tokens", required=True, help="JSON written by loadtest.py setup")
        sp.add_argument("--settle", type=float, default=3.0, help="seconds to wait for the last deliveries / frees")
        sp.add_argument("--out", help="also write the JSON summary here")
    idle = sub.choices["idle"]
    idle.add_argument("--streams", type=int, default=2000)
    idle.add_argument("--batch", type=int, default=200, help="streams opened at once")
    idle.add_argument("--hold", type=float, default=5.0, help="seconds the streams stay open before measuring")
    idle.add_argument("--server-pid", type=int, help="pid of the server, for VmRSS")
    mixed = sub.choices["mixed"]
    mixed.add_argument(
        "--members", type=int, default=500, help="the room's members used: one sender, the rest half/half"
    )
    mixed.add_argument("--rate", type=float, default=20.0, help="messages per second")
    mixed.add_argument("--duration", type=float, default=30.0)
    args = parser.parse_args()
    summary = asyncio.run(bench_idle(args) if args.command == "idle" else bench_mixed(args))
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
