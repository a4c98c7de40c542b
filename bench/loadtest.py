#!/usr/bin/env python
"""Load tool for chatsite's /ws/chat/ (CONTRACT §3): real protocol, open-loop sending, exact accounting.

Subcommands (docs/benchmarks.md has the method and the exact commands used):

  setup     create users benchuser0..N-1, rooms PREFIX-0..R-1 and memberships (user i in room i % R)
            with Django's ORM on the server's DATABASE_URL, and write access JWTs to a JSON file
  run       connect N sockets over R rooms, send at a fixed total rate for D seconds, report
  capacity  like run, ramping the rate (x factor per step) until p99 > limit or anything is lost
  idle      open N idle sockets (each joined to its room), measure accept time and memory per
            socket, close them all at once, then check Redis for left-over memberships

Every socket authenticates with `Authorization: Bearer <jwt>` and sends no Origin header.
`--protocol socketio` drives the Socket.IO peer (bench/socketio/server.js) with the same frames
inside Socket.IO v5 / Engine.IO v4 packets on a raw WebSocket (bench/dialects.py).
Each message carries a unique client_id and its scheduled send time (perf_counter_ns; sender and
receivers share one clock) in the body: "t=<ns> c=<client_id>". Deliveries are checked per socket:
ids strictly increasing (else out-of-order) and unique (else duplicated); every accepted message
must reach every socket of its room by the end of the grace period (else lost).

Only 127.0.0.1 is ever contacted; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import secrets
import sys
import time
from array import array
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dialects import CID_KEY, DIALECTS  # noqa: E402
from wsclient import HandshakeError  # noqa: E402
from wsclient import connect as raw_connect  # noqa: E402

perf_ns = time.perf_counter_ns
MAX_SOCKETS = 20000
MAX_MESSAGES_PER_STEP = 5_000_000
CLIENT_SATURATED_PCT = 85.0  # the tool's CPU % of its core in a step beyond which the step is flagged
SEND_TICK_S = 0.001  # the sender's shortest sleep: it adds at most 1 ms to a latency
SEND_BACKLOG_LIMIT = 1 << 20  # bytes queued on one client socket before we stop adding to it


# =============================================================================================
# setup: Django ORM on the server's database
# =============================================================================================


def cmd_setup(args) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction
    from rest_framework_simplejwt.tokens import AccessToken

    from rooms.models import Membership, Room

    User = get_user_model()
    n, r = args.users, args.rooms
    if not (1 <= n <= MAX_SOCKETS and 1 <= r <= n):
        raise SystemExit(f"need 1 <= rooms <= users <= {MAX_SOCKETS}")
    started = time.monotonic()
    names = [f"{args.user_prefix}{i}" for i in range(n)]
    with transaction.atomic():
        existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
        unusable = make_password(None)
        User.objects.bulk_create(
            [User(username=u, password=unusable) for u in names if u not in existing], batch_size=1000
        )
        users = {u.username: u for u in User.objects.filter(username__in=names)}
        owner = users[names[0]]
        slugs = [f"{args.room_prefix}-{j}" for j in range(r)]
        rooms = {}
        for slug in slugs:
            rooms[slug], _ = Room.objects.get_or_create(
                slug=slug, defaults={"name": slug, "owner": owner, "is_private": False}
            )
        Membership.objects.bulk_create(
            [Membership(room=rooms[slugs[i % r]], user=users[names[i]]) for i in range(n)],
            ignore_conflicts=True,
            batch_size=1000,
        )
    lifetime = timedelta(hours=args.token_hours)
    sockets = []
    for i, name in enumerate(names):
        token = AccessToken.for_user(users[name])
        token.set_exp(lifetime=lifetime)
        sockets.append({"username": name, "room": slugs[i % r], "token": str(token)})
    out = {"created": time.time(), "users": n, "rooms": slugs, "sockets": sockets}
    Path(args.out).write_text(json.dumps(out))
    print(
        f"setup: {n} users, {r} rooms ({slugs[0]}..), tokens valid {args.token_hours} h -> {args.out} "
        f"in {time.monotonic() - started:.1f}s"
    )
    return 0


# =============================================================================================
# proc helpers
# =============================================================================================


def proc_status(pid: int | None) -> dict[str, int]:
    """VmRSS / VmHWM in KiB and CPU ticks of a process (Linux /proc)."""
    if not pid:
        return {}
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:", "Threads:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out["cpu_ticks"] = int(fields[11]) + int(fields[12])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
        # Summed over threads: ns on CPU and ns runnable but waiting for a CPU (other processes).
        run_ns = wait_ns = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                fields = Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()
            except OSError:
                continue
            run_ns += int(fields[0])
            wait_ns += int(fields[1])
        out["sched_run_ns"], out["sched_wait_ns"] = run_ns, wait_ns
    except (OSError, ValueError, IndexError):
        pass
    return out


def listen_overflows() -> int:
    """TcpExt ListenOverflows of this machine: SYNs/ACKs dropped because an accept queue was full."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
        for names, values in zip(lines[::2], lines[1::2], strict=False):
            if names.startswith("TcpExt:"):
                return int(dict(zip(names.split(), values.split(), strict=False))["ListenOverflows"])
    except (OSError, KeyError, ValueError):
        pass
    return -1


def machine_busy_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def cpu_seconds_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def raise_nofile(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need + 256)) if hard != resource.RLIM_INFINITY else max(soft, need + 256)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def percentile(sorted_values, q: float):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


# =============================================================================================
# the client side
# =============================================================================================


class Step:
    """Accounting for one sending phase: messages seq_base .. seq_base+count-1."""

    def __init__(self, *, seq_base: int, count: int, rate: float, duration: float):
        self.seq_base = seq_base
        self.count = count
        self.rate = rate
        self.duration = duration
        self.send_ns = array("q", bytes(8 * count))
        self.room_of = array("i", bytes(4 * count))
        self.receipts = array("H", bytes(2 * count))  # unique deliveries per message
        self.rejected = bytearray(count)
        self.sent = bytearray(count)
        self.latencies = array("q")  # ns from scheduled send to receipt, one per delivery
        self.duplicated = 0
        self.out_of_order = 0
        self.error_codes: Counter = Counter()
        self.n_sent = 0
        self.not_sent_backlog = 0
        self.not_sent_closed = 0
        self.max_send_lag_ns = 0
        self.last_recv_ns = 0
        self.delivered = 0
        self.t_start_ns = 0
        self.t_end_ns = 0
        self.members: list[int] = []
        self.expected = 0  # deliveries owed: members of the room of every sent, not rejected message
        self.answered = 0  # sent messages with a broadcast or an error back


class Sock:
    __slots__ = (
        "close_code",
        "connect_join_ns",
        "error",
        "handshake_ns",
        "idx",
        "joined",
        "joined_fut",
        "joined_ns",
        "last_id",
        "ready_fut",
        "room",
        "room_idx",
        "seen",
        "token",
        "username",
        "ws",
    )

    def __init__(self, idx, username, room, room_idx, token):
        self.idx, self.username, self.room, self.room_idx, self.token = idx, username, room, room_idx, token
        self.ws = None
        self.joined = False
        self.joined_fut = None
        self.ready_fut = None  # socketio: the namespace connect answered
        self.last_id = 0
        self.seen: set[int] = set()
        self.handshake_ns = 0
        self.joined_ns = 0
        self.connect_join_ns = 0  # from the TCP connect to `joined`
        self.close_code = None
        self.error = None


class WebsocketsAdapter:
    """The `websockets` library behind the same small interface as wsclient.RawWebSocket."""

    def __init__(self, conn, on_text):
        self.conn = conn
        self.closed = False
        self.close_code = None
        self.recv_ns = 0
        self._pending: set[asyncio.Future] = set()  # sends and closes in flight, referenced until done
        self.lost = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(on_text))

    async def _read(self, on_text):
        from websockets.exceptions import ConnectionClosed

        try:
            async for data in self.conn:
                if isinstance(data, str):
                    self.recv_ns = perf_ns()
                    on_text(self, data.encode())
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            rcvd = self.conn.close_rcvd
            self.close_code = rcvd.code if rcvd else None
            if not self.lost.done():
                self.lost.set_result(self.close_code)

    def send_text(self, data: bytes) -> bool:
        if self.closed:
            return False
        self._pending.add(task := asyncio.ensure_future(self.conn.send(data.decode())))
        task.add_done_callback(self._pending.discard)
        return True

    def write_buffer_size(self) -> int:
        return self.conn.transport.get_write_buffer_size()

    def close(self, code: int = 1000) -> None:
        self._pending.add(task := asyncio.ensure_future(self.conn.close(code)))
        task.add_done_callback(self._pending.discard)

    def abort(self) -> None:
        self.conn.transport.abort()


class LoadTool:
    def __init__(self, args):
        self.args = args
        data = json.loads(Path(args.tokens).read_text())
        entries = data["sockets"]
        n = args.sockets or len(entries)
        if n > len(entries):
            raise SystemExit(f"{args.tokens} has {len(entries)} users, {n} sockets asked: run setup")
        if n > MAX_SOCKETS:
            raise SystemExit(f"at most {MAX_SOCKETS} sockets")
        self.room_names = sorted({e["room"] for e in entries[:n]}, key=lambda s: (len(s), s))
        room_index = {s: j for j, s in enumerate(self.room_names)}
        self.socks = [
            Sock(i, e["username"], e["room"], room_index[e["room"]], e["token"]) for i, e in enumerate(entries[:n])
        ]
        self.run_id = secrets.token_hex(4)
        self.cid_prefix = f"b{self.run_id}-"
        self.cid_prefix_b = self.cid_prefix.encode()
        self.step: Step | None = None
        self.stale_receipts = 0
        self.foreign_receipts = 0
        self.other_frames: Counter = Counter()
        self.idle_cpu_ns_per_s: float | None = None  # --idle-baseline
        self.errors_without_cid: Counter = Counter()
        self.server_closes: Counter = Counter()
        self.dialect = DIALECTS[args.protocol]()
        # the receive hot path (on_text): dialects.delivery_matcher's test, inlined
        self.match_delivery = self.dialect.delivery_pattern(self.cid_prefix_b).match

    # -- receiving -------------------------------------------------------------------------
    def on_text(self, ws, payload: bytes) -> None:
        """Every text frame of every socket: the tool's hot path (docs/benchmarks.md, its ceiling)."""
        m = self.match_delivery(payload)
        if m is None or payload.count(CID_KEY) != 1:
            self.on_frame(ws, payload)
        else:
            mid, number = m.groups()
            self.account_delivery(ws.owner, int(mid), int(number), ws.recv_ns)

    def account_delivery(self, sock: Sock, mid: int, number: int, now: int) -> None:
        """One delivery of the tool's message `number` (its client_id's sequence) with id `mid`."""
        step = self.step
        if step is None:
            self.foreign_receipts += 1
            return
        seq = number - step.seq_base
        if seq < 0 or seq >= step.count:
            self.stale_receipts += 1
            return
        seen = sock.seen
        if mid > sock.last_id:
            sock.last_id = mid
        elif mid in seen:
            step.duplicated += 1
            return
        else:
            step.out_of_order += 1
        seen.add(mid)
        receipts = step.receipts
        if not receipts[seq] and not step.rejected[seq]:
            step.answered += 1
        receipts[seq] += 1
        step.delivered += 1
        step.latencies.append(now - step.send_ns[seq])
        if now > step.last_recv_ns:
            step.last_recv_ns = now

    def on_frame(self, ws, payload: bytes) -> None:
        """Any frame the fast path did not take, parsed in full."""
        sock = ws.owner
        control = self.dialect.control(payload)
        if control is not None:
            what, answer = control
            if answer is not None:
                ws.send_text(answer)
            if what == "connected" and sock.ready_fut is not None and not sock.ready_fut.done():
                sock.ready_fut.set_result(True)
            elif what == "connect_error":
                self.errors_without_cid["connect_error"] += 1
                for fut in (sock.ready_fut, sock.joined_fut):
                    if fut is not None and not fut.done():
                        fut.set_exception(RuntimeError(f"namespace connect refused: {payload[:200]!r}"))
            elif what != "open":
                self.other_frames[f"engine.io {what}"] += 1
            return
        decoded = self.dialect.decode(payload)
        if decoded is None:
            self.other_frames["unparsable"] += 1
            return
        kind, f = decoded
        if kind == "message":
            m = f["message"]
            cid = (m.get("client_id") if isinstance(m, dict) else None) or ""
            if not cid.startswith(self.cid_prefix) or not cid[len(self.cid_prefix) :].isdigit():
                self.foreign_receipts += 1
                return
            self.account_delivery(sock, int(m["id"]), int(cid[len(self.cid_prefix) :]), ws.recv_ns)
        elif kind == "joined":
            sock.joined = True
            sock.joined_ns = perf_ns()
            sock.last_id = max(sock.last_id, int(f.get("last_id") or 0))
            if sock.joined_fut is not None and not sock.joined_fut.done():
                sock.joined_fut.set_result(True)
        elif kind == "error":
            cid = f.get("client_id") or ""
            step = self.step
            code = f.get("code", "?")
            if cid.startswith(self.cid_prefix) and cid[len(self.cid_prefix) :].isdigit() and step is not None:
                seq = int(cid[len(self.cid_prefix) :]) - step.seq_base
                if 0 <= seq < step.count:
                    if not step.rejected[seq]:
                        if not step.receipts[seq]:
                            step.answered += 1
                        if step.sent[seq]:
                            step.expected -= step.members[step.room_of[seq]]
                    step.rejected[seq] = 1
                    step.error_codes[code] += 1
                    return
            self.errors_without_cid[code] += 1
            if sock.joined_fut is not None and not sock.joined_fut.done():
                sock.joined_fut.set_exception(RuntimeError(f"join refused: {f}"))
        else:
            self.other_frames[kind] += 1

    def on_close(self, ws) -> None:
        sock = ws.owner
        sock.close_code = ws.close_code
        self.server_closes[str(ws.close_code)] += 1
        for fut in (sock.ready_fut, sock.joined_fut):
            if fut is not None and not fut.done():
                fut.set_exception(RuntimeError(f"closed {ws.close_code} before joined"))

    # -- connecting ------------------------------------------------------------------------
    async def _open_one(self, sock: Sock, sem: asyncio.Semaphore, t0: int, join: bool) -> None:
        a = self.args
        headers = {"Authorization": f"Bearer {sock.token}"}
        path = a.path or self.dialect.default_path
        async with sem:
            started = perf_ns()
            if self.dialect.handshake_steps:
                # socketio: the open packet may come in the same read as the 101 answer; on_frame
                # answers it with the namespace connect `40`, and the server's `40{sid}` resolves this
                sock.ready_fut = asyncio.get_running_loop().create_future()
            try:
                if a.client == "raw":
                    ws = await raw_connect(
                        "127.0.0.1",
                        a.port,
                        path,
                        headers,
                        self.on_text,
                        on_close=self.on_close,
                        owner=sock,
                        timeout=a.connect_timeout,
                    )
                else:
                    import websockets

                    conn = await asyncio.wait_for(
                        websockets.connect(
                            f"ws://127.0.0.1:{a.port}{path}",
                            additional_headers=headers,
                            origin=None,
                            compression=None,
                            max_size=2**20,
                            ping_interval=None,
                            max_queue=None,
                        ),
                        a.connect_timeout,
                    )
                    ws = WebsocketsAdapter(conn, self.on_text)
                    ws.lost.add_done_callback(lambda _f, w=ws: self.on_close(w))
                ws.owner = sock
                sock.ws = ws
                if sock.ready_fut is not None:
                    await asyncio.wait_for(sock.ready_fut, a.connect_timeout)
                sock.handshake_ns = perf_ns() - started
                if join:
                    sock.joined_fut = asyncio.get_running_loop().create_future()
                    ws.send_text(self.dialect.encode("join", f'"room":{json.dumps(sock.room)}'))
                    await asyncio.wait_for(sock.joined_fut, a.connect_timeout)
                    sock.connect_join_ns = sock.joined_ns - started
            except (TimeoutError, OSError, HandshakeError, RuntimeError, Exception) as exc:
                sock.error = f"{type(exc).__name__}: {exc}"[:200]

    async def open_all(self, *, join: bool = True) -> dict:
        a = self.args
        sem = asyncio.Semaphore(a.connect_concurrency)
        before = proc_status(a.server_pid)
        cpu0 = cpu_seconds_self()
        overflows0 = listen_overflows()
        t0 = perf_ns()
        tasks = [asyncio.create_task(self._open_one(s, sem, t0, join)) for s in self.socks]
        await asyncio.wait(
            tasks, timeout=min(a.connect_deadline, a.connect_timeout * (len(tasks) / a.connect_concurrency + 2))
        )
        for t in tasks:
            if not t.done():
                t.cancel()
        await asyncio.sleep(0)
        for s in self.socks:
            if s.ws is None and s.error is None:
                s.error = f"not connected within the {a.connect_deadline:.0f} s deadline"
        elapsed = (perf_ns() - t0) / 1e9
        await asyncio.sleep(a.settle)
        after = proc_status(a.server_pid)
        ok = [
            s for s in self.socks if s.ws is not None and s.error is None and not s.ws.closed and (s.joined or not join)
        ]
        for s in self.socks:
            if s.ws is not None and s.error is None and join and not s.joined:
                s.error = f"not joined within the {a.connect_deadline:.0f} s deadline"
        okset = {s.idx for s in ok}
        failed = Counter((s.error or f"closed {s.close_code}")[:90] for s in self.socks if s.idx not in okset)
        hs = sorted(s.handshake_ns for s in ok)
        cj = sorted(s.connect_join_ns for s in ok if s.connect_join_ns)
        res = {
            "sockets": len(self.socks),
            "connected": len(ok),
            "failed_handshakes": len(self.socks) - len(ok),
            "failures": dict(failed.most_common(8)),
            "connect_all_s": round(elapsed, 3),
            "handshake_p50_ms": round(percentile(hs, 0.5) / 1e6, 1) if hs else None,
            "handshake_max_ms": round(hs[-1] / 1e6, 1) if hs else None,
            # per socket, from its TCP connect to its `joined` (waits for the server under the burst)
            "connect_join_p50_ms": round(percentile(cj, 0.5) / 1e6, 1) if cj else None,
            "connect_join_p99_ms": round(percentile(cj, 0.99) / 1e6, 1) if cj else None,
            "connect_concurrency": a.connect_concurrency,
            "client_cpu_s_during_connect": round(cpu_seconds_self() - cpu0, 2),
            # machine-wide, so other processes' listeners count too; the server's backlog is daphne's
            "listen_queue_overflows": listen_overflows() - overflows0,
        }
        if before and after:
            res["server_rss_before_kib"] = before.get("VmRSS")
            res["server_rss_after_kib"] = after.get("VmRSS")
            if ok:
                res["server_kib_per_socket"] = round((after["VmRSS"] - before["VmRSS"]) / len(ok), 1)
            res["server_cpu_s_during_connect"] = round(
                (after["cpu_ticks"] - before["cpu_ticks"]) / os.sysconf("SC_CLK_TCK"), 2
            )
            res["server_runqueue_wait_s_during_connect"] = round(
                (after.get("sched_wait_ns", 0) - before.get("sched_wait_ns", 0)) / 1e9, 2
            )
        res["loadavg"] = Path("/proc/loadavg").read_text().split()[0]
        return res

    def live_socks(self) -> list[Sock]:
        return [s for s in self.socks if s.ws is not None and not s.ws.closed and (s.joined or not self.args.join)]

    # -- sending ---------------------------------------------------------------------------
    async def send_phase(self, rate: float, duration: float, seq_base: int) -> Step:
        a = self.args
        count = min(MAX_MESSAGES_PER_STEP, max(1, int(rate * duration)))
        step = Step(seq_base=seq_base, count=count, rate=rate, duration=duration)
        live = self.live_socks()
        by_room: list[list[Sock]] = [[] for _ in self.room_names]
        for s in live:
            by_room[s.room_idx].append(s)
        rooms_with_members = [j for j, members in enumerate(by_room) if members]
        if not rooms_with_members:
            raise SystemExit("no socket joined: nothing to send to")
        step.members = [len(m) for m in by_room]
        for s in live:
            s.seen = set()
        self.step = step
        interval = 1e9 / rate
        prefix = self.cid_prefix
        room_b = [json.dumps(r) for r in self.room_names]
        encode = self.dialect.encode
        nr = len(rooms_with_members)
        cursors = [0] * len(by_room)
        t0 = perf_ns() + 20_000_000
        step.t_start_ns = t0
        k = 0
        deadline = t0 + int(duration * 1e9) + int(a.send_timeout * 1e9)
        sleep = asyncio.sleep
        while k < count:
            now = perf_ns()
            if now > deadline:
                break
            due = min(count, int((now - t0) / interval) + 1) if now >= t0 else 0
            while k < due:
                sched = t0 + int(k * interval)
                if now - sched > step.max_send_lag_ns:  # how late the tool sent it
                    step.max_send_lag_ns = now - sched
                j = rooms_with_members[k % nr]
                members = by_room[j]
                sock = members[cursors[j] % len(members)]
                cursors[j] += 1
                cid = f"{prefix}{seq_base + k}"
                step.send_ns[k] = sched
                step.room_of[k] = j
                ws = sock.ws
                if ws.closed:
                    step.not_sent_closed += 1
                elif ws.write_buffer_size() > SEND_BACKLOG_LIMIT:
                    step.not_sent_backlog += 1
                else:
                    frame = encode("message", f'"room":{room_b[j]},"body":"t={sched} c={cid}","client_id":"{cid}"')
                    if ws.send_text(frame):
                        step.sent[k] = 1
                        step.n_sent += 1
                        step.expected += step.members[j]
                    else:
                        step.not_sent_closed += 1
                k += 1
            if k < count:
                # Wake at most once per SEND_TICK_S and send what is due: at thousands of messages
                # per second a wake-up per message would cost the tool more than its receiving.
                wait = (t0 + k * interval - perf_ns()) / 1e9
                await sleep(wait if wait > SEND_TICK_S else SEND_TICK_S)
        step.t_end_ns = perf_ns()
        return step

    async def drain(self, step: Step, grace: float) -> None:
        """Wait until every expected delivery arrived or the grace period ends."""
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if step.delivered >= step.expected and step.answered >= step.n_sent:
                break
            await asyncio.sleep(0.05)

    def report_step(self, step: Step, cpu_client: float, server_before: dict, server_after: dict) -> dict:
        members = step.members
        lost = 0
        lost_of_accepted = 0
        unanswered = 0
        accepted = 0
        both = 0
        for i in range(step.count):
            if not step.sent[i]:
                continue
            got = step.receipts[i]
            rej = step.rejected[i]
            if rej and got:
                both += 1
            if rej:
                continue
            if got:
                accepted += 1
            else:
                unanswered += 1
            exp = members[step.room_of[i]]
            if got < exp:
                lost += exp - got
                if got:
                    lost_of_accepted += exp - got
        # Deliveries owed to sockets the server closed during the run (ban, shutdown, error):
        # part of `lost`, but explained by the close code in server_close_codes.
        accepted_per_room = [0] * len(members)
        for i in range(step.count):
            if step.sent[i] and not step.rejected[i]:
                accepted_per_room[step.room_of[i]] += 1
        lost_closed = sum(
            max(0, accepted_per_room[s.room_idx] - len(s.seen))
            for s in self.socks
            if s.ws is not None and s.ws.closed and s.joined
        )
        lat = sorted(step.latencies)
        send_s = max(1e-9, (step.t_end_ns - step.t_start_ns) / 1e9)
        recv_window = (step.last_recv_ns - step.t_start_ns) / 1e9 if step.last_recv_ns else None
        tick = os.sysconf("SC_CLK_TCK")
        res = {
            "offered_msgs_per_s": step.rate,
            "duration_s": step.duration,
            "sent": step.n_sent,
            "not_sent_client_backlog": step.not_sent_backlog,
            "not_sent_socket_closed": step.not_sent_closed,
            "accepted": accepted,
            "rejected": sum(step.error_codes.values()),
            "rejected_by_code": dict(step.error_codes),
            "unanswered": unanswered,
            "answered_twice": both,
            "expected_deliveries": step.expected,
            "delivered": step.delivered,
            "delivered_per_s": round(step.delivered / send_s, 1),
            "delivered_per_s_until_last": round(step.delivered / recv_window, 1) if recv_window else None,
            "lost": lost,
            # of which deliveries of messages that reached at least one socket (the rest belong to
            # unanswered messages: still queued in the server at the end, or dropped before posting)
            "lost_of_accepted": lost_of_accepted,
            "lost_at_sockets_closed_by_server": lost_closed,
            "duplicated": step.duplicated,
            "out_of_order": step.out_of_order,
            "latency_p50_ms": round(percentile(lat, 0.50) / 1e6, 2) if lat else None,
            "latency_p99_ms": round(percentile(lat, 0.99) / 1e6, 2) if lat else None,
            "latency_max_ms": round(lat[-1] / 1e6, 2) if lat else None,
            "client_max_send_lag_ms": round(step.max_send_lag_ns / 1e6, 2),
            "client_cpu_pct": round(100 * cpu_client / send_s, 1),
            "stale_receipts": self.stale_receipts,
            "sockets_closed_by_server": sum(1 for s in self.socks if s.ws is not None and s.ws.closed),
        }
        if server_before and server_after:
            res["server_cpu_pct"] = round(
                100 * (server_after["cpu_ticks"] - server_before["cpu_ticks"]) / tick / send_s, 1
            )
            res["server_rss_kib"] = server_after.get("VmRSS")
            run_s = (server_after.get("sched_run_ns", 0) - server_before.get("sched_run_ns", 0)) / 1e9
            wait_s = (server_after.get("sched_wait_ns", 0) - server_before.get("sched_wait_ns", 0)) / 1e9
            # Time the server was runnable but another process had its core: > a few % means the
            # machine was shared during the run and latencies are inflated by it.
            res["server_runqueue_wait_pct"] = round(100 * wait_s / send_s, 1)
            if step.delivered:
                res["server_cpu_us_per_accepted_msg"] = round(1e6 * run_s / max(1, accepted), 1)
                res["server_cpu_us_per_delivery"] = round(1e6 * run_s / step.delivered, 2)
                if self.idle_cpu_ns_per_s is not None:
                    # less what the server spends with nothing sent (timers, pings, heartbeats)
                    net_s = max(0.0, run_s - self.idle_cpu_ns_per_s * send_s / 1e9)
                    res["server_idle_cpu_pct"] = round(self.idle_cpu_ns_per_s / 1e7, 2)
                    res["server_cpu_us_per_accepted_msg_net"] = round(1e6 * net_s / max(1, accepted), 1)
                    res["server_cpu_us_per_delivery_net"] = round(1e6 * net_s / step.delivered, 2)
        res["loadavg"] = Path("/proc/loadavg").read_text().split()[0]
        return res

    async def one_step(self, rate: float, duration: float, seq_base: int) -> dict:
        a = self.args
        server_before = proc_status(a.server_pid)
        cpu0 = cpu_seconds_self()
        busy0 = machine_busy_ticks()
        step = await self.send_phase(rate, duration, seq_base)
        # server CPU over the sending window only, then wait out the stragglers
        server_after = proc_status(a.server_pid)
        cpu1 = cpu_seconds_self()
        busy1 = machine_busy_ticks()
        await self.drain(step, a.grace)
        cpu2 = cpu_seconds_self()
        res = self.report_step(step, cpu1 - cpu0, server_before, server_after)
        # The tool's own cost (sending included, over send and drain): its ceiling is 1e6 / this
        # deliveries per second of one core, whatever else runs on the machine.
        res["client_cpu_us_per_delivery"] = round(1e6 * (cpu2 - cpu0) / step.delivered, 2) if step.delivered else None
        # Above this the tool, not the server, may be what limits the step (and its latencies).
        res["client_saturated"] = res["client_cpu_pct"] >= CLIENT_SATURATED_PCT
        res["machine_busy_pct"] = round(100 * os.cpu_count() * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), 1)
        if server_before and server_after:
            tick = os.sysconf("SC_CLK_TCK")
            window = (step.t_end_ns - step.t_start_ns) / 1e9
            srv = (server_after["cpu_ticks"] - server_before["cpu_ticks"]) / tick
            # CPU used by everything else on the machine (other engineers' processes, PostgreSQL, Redis)
            res["other_processes_cpu_pct"] = round(res["machine_busy_pct"] - 100 * (srv + cpu1 - cpu0) / window, 1)
        self.step = None
        return res

    async def quiesce(self, limit: float) -> float:
        """Wait until no frame has arrived for a second (at most `limit` s); the seconds waited."""
        t0 = time.monotonic()
        last = -1
        while time.monotonic() - t0 < limit:
            now = self.foreign_receipts + self.stale_receipts + sum(self.other_frames.values())
            if now == last:
                break
            last = now
            await asyncio.sleep(1.0)
        return round(time.monotonic() - t0, 1)

    async def measure_idle(self, seconds: float) -> None:
        """Server CPU (ns per second) with the sockets joined and nothing sent."""
        before = proc_status(self.args.server_pid)
        t0 = perf_ns()
        await asyncio.sleep(seconds)
        after = proc_status(self.args.server_pid)
        if before and after:
            run = after["sched_run_ns"] - before["sched_run_ns"]
            self.idle_cpu_ns_per_s = run * 1e9 / (perf_ns() - t0)

    async def close_all(self, timeout: float) -> dict:
        t0 = time.monotonic()
        open_socks = [s for s in self.socks if s.ws is not None and not s.ws.closed]
        for s in open_socks:
            s.ws.close(1000)
        waiters = [s.ws.lost for s in open_socks]
        if waiters:
            await asyncio.wait(waiters, timeout=timeout)
        still = [s for s in open_socks if not s.ws.closed]
        for s in still:
            s.ws.abort()
        return {
            "closed": len(open_socks),
            "close_all_s": round(time.monotonic() - t0, 3),
            "not_closed_by_server_in_time": len(still),
        }


# =============================================================================================
# Redis inspection (idle mode)
# =============================================================================================


def redis_snapshot(url: str) -> dict:
    """Key counts and member counts by kind, and pub/sub channel count, of the Redis DB in url."""
    import redis

    r = redis.Redis.from_url(url)
    kinds: Counter = Counter()
    members: Counter = Counter()
    for n, key in enumerate(r.scan_iter(count=1000)):
        if n >= 200_000:
            break
        name = key.decode(errors="replace")
        t = r.type(key).decode()
        label = _key_label(name)
        kinds[label] += 1
        if t == "zset":
            members[label] += r.zcard(key)
        elif t == "set":
            members[label] += r.scard(key)
        elif t == "hash":
            members[label] += r.hlen(key)
        elif t == "list":
            members[label] += r.llen(key)
    channels = r.pubsub_channels()
    return {
        "keys": sum(kinds.values()),
        "keys_by_kind": dict(kinds),
        "entries_by_kind": dict(members),
        "pubsub_channels": len(channels),
    }


def _key_label(name: str) -> str:
    """Collapse per-room / per-user / per-channel parts of a key name into a kind."""
    import re

    label = re.sub(r"specific\.[^!]*!", "specific.*!", name)
    label = re.sub(r"[0-9a-f]{8,}", "*", label)
    label = re.sub(r"\d+", "N", label)
    label = re.sub(r"bench[-\w]*", "bench*", label)
    return label[:80]


# =============================================================================================
# commands
# =============================================================================================


def print_table(title: str, rows: list[tuple[str, object]]) -> None:
    print(f"\n== {title}")
    width = max(len(k) for k, _ in rows) if rows else 10
    for k, v in rows:
        print(f"  {k.ljust(width)}  {v}")


async def _run(args) -> dict:
    tool = LoadTool(args)
    summary: dict = {
        "mode": args.cmd,
        "client": args.client,
        "protocol": args.protocol,
        "run_id": tool.run_id,
        "sockets": len(tool.socks),
        "rooms": len(tool.room_names),
    }
    summary["connect"] = await tool.open_all(join=True)
    print_table("connect", list(summary["connect"].items()))
    if args.idle_baseline > 0:
        await tool.measure_idle(args.idle_baseline)
        summary["server_idle_cpu_pct"] = (
            round(tool.idle_cpu_ns_per_s / 1e7, 2) if tool.idle_cpu_ns_per_s is not None else None
        )
    warm_seq = 0
    if args.warmup > 0:
        # JIT (Node), caches and pools warm up on traffic that is not counted
        warm = await tool.one_step(args.rate, args.warmup, 0)
        warm_seq = warm["sent"] + warm["not_sent_client_backlog"] + warm["not_sent_socket_closed"] + 1
        summary["warmup"] = {k: warm[k] for k in ("offered_msgs_per_s", "sent", "lost", "latency_p99_ms")}
        await tool.quiesce(args.quiesce_max)
    try:
        if args.cmd == "run":
            res = await tool.one_step(args.rate, args.duration, warm_seq)
            summary["result"] = res
            print_table(f"run {args.rate} msg/s for {args.duration}s", list(res.items()))
        else:
            steps = []
            rate = args.rate
            seq_base = warm_seq
            best = None
            failed_rate = None
            refinements = 0
            deadline = time.monotonic() + args.max_seconds
            for i in range(args.max_steps + args.refine):
                if time.monotonic() > deadline:
                    break
                res = await tool.one_step(rate, args.duration, seq_base)
                seq_base += res["sent"] + res["not_sent_client_backlog"] + res["not_sent_socket_closed"] + 1
                passed = (
                    res["lost"] == 0
                    and res["unanswered"] == 0
                    and res["duplicated"] == 0
                    and res["out_of_order"] == 0
                    and (res["latency_p99_ms"] or 1e9) <= args.p99_ms
                    and res["not_sent_client_backlog"] == 0
                    # A step the server carried only by refusing part of it (`rate_limited`, its
                    # backpressure) is beyond its capacity, however fast the rest went.
                    and res["rejected"] == 0
                )
                res["passed"] = passed
                steps.append(res)
                print(
                    f"  step {i}: offered {rate:9.1f} msg/s  delivered {res['delivered_per_s']:10.1f}/s  "
                    f"p50 {res['latency_p50_ms']} p99 {res['latency_p99_ms']} max {res['latency_max_ms']} ms  "
                    f"lost {res['lost']} dup {res['duplicated']} ooo {res['out_of_order']} "
                    f"rej {res['rejected']} srv cpu {res.get('server_cpu_pct')}% "
                    f"(+{res.get('server_runqueue_wait_pct')}% runq wait) cli cpu {res['client_cpu_pct']}% "
                    f"{'PASS' if passed else 'FAIL'}{' (tool saturated)' if res['client_saturated'] else ''}",
                    flush=True,
                )
                if passed:
                    if best is None or rate > best["offered_msgs_per_s"]:
                        best = res
                else:
                    failed_rate = rate
                    # A failed step may leave a backlog in the server: let it drain before the next.
                    res["quiesce_s"] = await tool.quiesce(args.quiesce_max)
                if failed_rate is None:
                    rate = round(rate * args.factor, 1)
                elif best is None:
                    # The first step failed: ramp down until one passes.
                    rate = round(rate / args.factor, 1)
                    if rate < args.min_rate:
                        break
                elif refinements < args.refine:
                    # Bisect (geometrically) between the last passing and the lowest failing rate.
                    refinements += 1
                    low = best["offered_msgs_per_s"]
                    fails = [
                        r["offered_msgs_per_s"] for r in steps if not r["passed"] and r["offered_msgs_per_s"] > low
                    ]
                    if not fails:
                        break
                    rate = round((low * min(fails)) ** 0.5, 1)
                else:
                    break
                await asyncio.sleep(args.pause)
            summary["steps"] = steps
            summary["capacity"] = {
                "last_passing_msgs_per_s": best["offered_msgs_per_s"] if best else None,
                "last_passing_deliveries_per_s": best["delivered_per_s"] if best else None,
                "last_passing_p99_ms": best["latency_p99_ms"] if best else None,
                "criteria": f"p99 <= {args.p99_ms} ms, nothing lost/unanswered/duplicated/out of order",
            }
            print_table("capacity", list(summary["capacity"].items()))
    finally:
        summary["other_frames"] = dict(tool.other_frames)
        summary["errors_without_client_id"] = dict(tool.errors_without_cid)
        summary["close"] = await tool.close_all(args.close_timeout)
        summary["server_close_codes"] = dict(tool.server_closes)
    return summary


async def _idle(args) -> dict:
    tool = LoadTool(args)
    summary: dict = {
        "mode": "idle",
        "client": args.client,
        "protocol": args.protocol,
        "sockets": len(tool.socks),
        "rooms": len(tool.room_names),
        "join": args.join,
    }
    if args.redis_url:
        summary["redis_before"] = redis_snapshot(args.redis_url)
    summary["connect"] = await tool.open_all(join=args.join)
    print_table("connect", list(summary["connect"].items()))
    await asyncio.sleep(args.hold)
    summary["still_open_after_hold"] = sum(1 for s in tool.socks if s.ws is not None and not s.ws.closed)
    summary["server_after_hold"] = proc_status(args.server_pid)
    if args.redis_url:
        summary["redis_connected"] = redis_snapshot(args.redis_url)
    summary["close"] = await tool.close_all(args.close_timeout)
    summary["server_close_codes"] = dict(tool.server_closes)
    await asyncio.sleep(args.after_close)
    summary["server_after_close"] = proc_status(args.server_pid)
    if args.redis_url:
        summary["redis_after_close"] = redis_snapshot(args.redis_url)
        before = summary["redis_before"]["entries_by_kind"]
        after = summary["redis_after_close"]["entries_by_kind"]
        left = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}
        summary["redis_left_behind"] = left
        summary["redis_pubsub_channels_left"] = (
            summary["redis_after_close"]["pubsub_channels"] - summary["redis_before"]["pubsub_channels"]
        )
        if args.recheck_after > 0:
            # Presence entries carry an expiry: what a crashed or failed cleanup leaves, the TTL removes.
            await asyncio.sleep(args.recheck_after)
            later = redis_snapshot(args.redis_url)["entries_by_kind"]
            summary["redis_left_behind_after_recheck"] = {
                k: v - before.get(k, 0) for k, v in later.items() if v - before.get(k, 0) > 0
            }
            summary["recheck_after_s"] = args.after_close + args.recheck_after
    summary["other_frames"] = dict(tool.other_frames)
    summary["errors_without_client_id"] = dict(tool.errors_without_cid)
    rows = [("still open after hold", summary["still_open_after_hold"]), *summary["close"].items()]
    if args.redis_url:
        rows += [
            ("redis while connected", summary["redis_connected"]["entries_by_kind"]),
            ("redis left behind", summary["redis_left_behind"]),
            ("pubsub channels left", summary["redis_pubsub_channels_left"]),
        ]
        if "redis_left_behind_after_recheck" in summary:
            rows.append(
                (
                    f"left behind {summary['recheck_after_s']:.0f} s after close",
                    summary["redis_left_behind_after_recheck"],
                )
            )
    print_table("idle", rows)
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("setup", help="create users/rooms/memberships and mint JWTs (needs DATABASE_URL)")
    s.add_argument("--users", type=int, required=True)
    s.add_argument("--rooms", type=int, required=True)
    s.add_argument("--room-prefix", default="bench")
    s.add_argument("--user-prefix", default="benchuser")
    s.add_argument("--token-hours", type=float, default=4.0)
    s.add_argument("--out", required=True)

    def common(sp):
        sp.add_argument("--port", type=int, required=True, help="server port on 127.0.0.1")
        sp.add_argument(
            "--protocol",
            choices=sorted(DIALECTS),
            default="chatsite",
            help="chatsite's /ws/chat/ frames, or Socket.IO v5 over Engine.IO v4 (bench/socketio/server.js)",
        )
        sp.add_argument("--path", default="", help="default: /ws/chat/, or /socket.io/?EIO=4&transport=websocket")
        sp.add_argument("--tokens", required=True, help="JSON file written by setup")
        sp.add_argument("--sockets", type=int, default=0, help="first N users of the tokens file (default all)")
        sp.add_argument("--server-pid", type=int, default=0, help="for RSS and CPU from /proc")
        sp.add_argument("--client", choices=["raw", "websockets"], default="raw")
        sp.add_argument("--connect-concurrency", type=int, default=100)
        sp.add_argument("--connect-timeout", type=float, default=15.0)
        sp.add_argument("--connect-deadline", type=float, default=120.0, help="seconds for all sockets")
        sp.add_argument("--settle", type=float, default=1.0, help="seconds after connecting before RSS")
        sp.add_argument("--close-timeout", type=float, default=15.0)
        sp.add_argument("--json", help="write the JSON summary here too")
        sp.add_argument(
            "--meta",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="recorded in the summary (server commit, layer, ...)",
        )
        sp.add_argument("--no-uvloop", action="store_true")

    for name in ("run", "capacity"):
        r = sub.add_parser(name)
        common(r)
        r.add_argument("--rate", type=float, required=True, help="total messages/s (capacity: first step)")
        r.add_argument("--duration", type=float, default=10.0, help="seconds of sending (per step)")
        r.add_argument("--grace", type=float, default=5.0, help="seconds to wait for stragglers")
        r.add_argument("--send-timeout", type=float, default=10.0)
        r.add_argument("--warmup", type=float, default=0.0, help="seconds of sending at --rate first, not counted")
        r.add_argument(
            "--quiesce-max",
            type=float,
            default=30.0,
            help="seconds to wait for the backlog of a failed or warm-up step",
        )
        r.add_argument(
            "--idle-baseline",
            type=float,
            default=0.0,
            help="seconds of server CPU measured with the sockets joined and nothing sent, before the "
            "first step; the figures per message and per delivery then also come net of that idle CPU",
        )
        r.set_defaults(join=True)
        if name == "capacity":
            r.add_argument("--factor", type=float, default=1.5)
            r.add_argument("--p99-ms", type=float, default=200.0)
            r.add_argument("--max-steps", type=int, default=12)
            r.add_argument("--min-rate", type=float, default=1.0, help="ramping down below this rate stops")
            r.add_argument("--max-seconds", type=float, default=240.0)
            r.add_argument("--pause", type=float, default=1.0)
            r.add_argument(
                "--refine",
                type=int,
                default=0,
                help="after the first failing step, N more steps bisecting between the last pass and the first fail",
            )

    i = sub.add_parser("idle")
    common(i)
    i.add_argument("--hold", type=float, default=5.0, help="seconds to hold the sockets open")
    i.add_argument("--after-close", type=float, default=5.0, help="seconds to wait before checking Redis")
    i.add_argument(
        "--recheck-after",
        type=float,
        default=0.0,
        help="seconds after the first Redis check to look again (presence expiry)",
    )
    i.add_argument("--no-join", dest="join", action="store_false")
    i.add_argument("--redis-url", default="", help="redis://127.0.0.1:6379/N of the server, to check leftovers")

    f = sub.add_parser("fake-setup", help="a tokens file with dummy tokens, for bench/fake_server.py")
    f.add_argument("--users", type=int, required=True)
    f.add_argument("--rooms", type=int, required=True)
    f.add_argument("--room-prefix", default="bench")
    f.add_argument("--out", required=True)

    args = p.parse_args(argv)
    if args.cmd == "setup":
        return cmd_setup(args)
    if args.cmd == "fake-setup":
        slugs = [f"{args.room_prefix}-{j}" for j in range(args.rooms)]
        socks = [
            {"username": f"benchuser{i}", "room": slugs[i % args.rooms], "token": f"fake{i}"} for i in range(args.users)
        ]
        Path(args.out).write_text(json.dumps({"users": args.users, "rooms": slugs, "sockets": socks}))
        return 0
    redis_url = getattr(args, "redis_url", "")
    if redis_url and "127.0.0.1" not in redis_url and "localhost" not in redis_url:
        raise SystemExit("only a loopback Redis may be inspected")
    nofile = raise_nofile((args.sockets or MAX_SOCKETS) + 64)
    if not args.no_uvloop:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
    random.seed()
    coro = _idle(args) if args.cmd == "idle" else _run(args)
    summary = asyncio.run(coro)
    summary["nofile_limit"] = nofile
    summary["uvloop"] = not args.no_uvloop and "uvloop" in sys.modules
    summary["meta"] = dict(m.split("=", 1) for m in args.meta if "=" in m)
    summary["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = json.dumps(summary, indent=2, default=str)
    print("\n" + text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
