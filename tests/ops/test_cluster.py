"""Several processes behind nginx behave as one (CONTRACT §4), started exactly as `make cluster` does.

The cluster is deploy/cluster.py on free ports and a temporary run directory, against the test
database and Redis; nginx answers with X-Chat-Upstream, so a test can see which process holds a socket.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.ops.conftest import CLUSTER
from tests.ops.support import ResumingClient, token_for, wait_for
from tests.support.servers import ROOT


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_message_crosses_processes_behind_nginx(cluster, user_factory, room_factory):
    """Two sockets through nginx land on different processes; a message sent on one reaches the other."""
    alice, bob = user_factory(), user_factory()
    room = room_factory(members=[alice, bob])
    tokens = token_for(alice), token_for(bob)

    async def scenario():
        stop = asyncio.Event()
        sender = ResumingClient(cluster.ws_url, tokens[0], room.slug)
        receiver = ResumingClient(cluster.ws_url, tokens[1], room.slug)
        tasks = [asyncio.create_task(sender.run(stop))]
        assert await wait_for(sender.joined.is_set, 10)
        tasks.append(asyncio.create_task(receiver.run(stop)))
        assert await wait_for(receiver.joined.is_set, 10)
        client_id = await sender.send("across processes")
        assert await wait_for(lambda: receiver.messages, 5), "the message never reached the other process"
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
    tokens = [token_for(user) for user in users]

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
            assert await wait_for(client.joined.is_set, 10)
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
    tokens = token_for(alice), token_for(bob)
    total = 30

    async def scenario():
        stop = asyncio.Event()
        sender = ResumingClient(cluster.ws_url, tokens[0], room.slug)
        receiver = ResumingClient(cluster.ws_url, tokens[1], room.slug)
        tasks = [asyncio.create_task(sender.run(stop))]
        assert await wait_for(sender.joined.is_set, 10)
        tasks.append(asyncio.create_task(receiver.run(stop)))
        assert await wait_for(receiver.joined.is_set, 10)
        victim = cluster.pid_of_backend(sender.upstreams[0])
        sent, stopped_at = [], None
        for n in range(total):
            sent.append(await sender.send(f"message {n}"))
            if n == total // 3:
                os.kill(victim, signal.SIGTERM)
                stopped_at = time.monotonic()
            await asyncio.sleep(0.08)
        delivered = await wait_for(lambda: len({m["client_id"] for m in receiver.messages}) >= total, 20)
        exited = await wait_for(lambda: not _alive(victim), max(0.0, 10 - (time.monotonic() - stopped_at)))
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
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "REDIS_URL=redis://" in result.stderr
    assert "DATABASE_URL=postgres://" in result.stderr
    assert not list(tmp_path.glob("*.pid"))


def test_cluster_stop_with_nothing_running_is_harmless(tmp_path):
    """`make cluster-stop` when nothing runs says so and succeeds."""
    result = subprocess.run(
        [sys.executable, str(CLUSTER), "stop", "--run-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert "nothing running" in result.stdout


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.browser
def test_two_browsers_chat_through_the_cluster(cluster, user_factory, room_factory, password):
    """As a new user would try it: two browsers log in through nginx, one posts, the other sees it live."""
    from playwright.sync_api import sync_playwright

    alice, bob = user_factory(), user_factory()
    room = room_factory(members=[alice, bob])
    base = f"http://127.0.0.1:{cluster.port}"
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync", "--no-first-run"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        try:
            pages = []
            for user in (alice, bob):
                page = browser.new_context().new_page()
                page.goto(f"{base}/accounts/login/?next=/rooms/{room.slug}/")
                page.fill("#id_username", user.username)
                page.fill("#id_password", password)
                page.click("button[type=submit]")
                page.wait_for_url(f"**/rooms/{room.slug}/")
                page.wait_for_selector("#connection[data-state=live]", state="attached", timeout=10_000)
                pages.append(page)
            pages[0].fill("#composer-input", "hello through nginx")
            pages[0].click("#composer-send")
            pages[1].locator("#messages li", has_text="hello through nginx").first.wait_for(timeout=10_000)
            pages[1].locator("#online-list li", has_text=alice.username).wait_for(timeout=5_000)
        finally:
            browser.close()
