"""/metrics (CONTRACT §4): the contract's series, counters that move, access rules, several processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import ROOT

CONTRACT_SERIES = {
    "chat_ws_connections": "gauge",
    "chat_rooms_joined": "gauge",
    "chat_messages_accepted": "counter",
    "chat_frames_rejected": "counter",
    "chat_delivery_latency_seconds": "histogram",
    "chat_layer_messages": "counter",
    "chat_handshakes_refused": "counter",
}


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted label pairs): value} of an exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client, **headers) -> dict[tuple, float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return samples(response.content.decode())


def test_metrics_is_prometheus_text(client):
    """A loopback scrape answers 200 in the Prometheus text format, version 0.0.4."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"


def test_metrics_lists_every_contract_series(client):
    """Every series of CONTRACT §4 is exposed, with its type and exact name."""
    text = client.get("/metrics").content.decode()
    families = {family.name: family.type for family in text_string_to_metric_families(text)}
    for name, kind in CONTRACT_SERIES.items():
        assert families.get(name) == kind, name
    for line in (
        "# TYPE chat_messages_accepted_total counter",
        "# TYPE chat_frames_rejected_total counter",
        "# TYPE chat_layer_messages_total counter",
        "# TYPE chat_ws_connections gauge",
        "# TYPE chat_rooms_joined gauge",
        "# TYPE chat_delivery_latency_seconds histogram",
    ):
        assert line in text


def test_labelled_series_start_at_zero(client):
    """Every rejection code and both layer directions are exposed before the first event."""
    values = scrape(client)
    for code in ("bad_request", "not_found", "forbidden", "rate_limited", "slow_mode", "too_large"):
        assert ("chat_frames_rejected_total", (("code", code),)) in values
    for direction in ("send", "receive"):
        assert ("chat_layer_messages_total", (("direction", direction),)) in values


@pytest.mark.django_db
def test_accepted_message_moves_counter(client, room_factory, user_factory):
    """Posting one message moves chat_messages_accepted_total by exactly one."""
    from rooms.services import message_post

    user = user_factory()
    room = room_factory(members=[user])
    before = scrape(client)[("chat_messages_accepted_total", ())]
    message_post(user=user, room=room, body="hello")
    after = scrape(client)[("chat_messages_accepted_total", ())]
    assert after - before == 1


@pytest.mark.django_db
def test_resent_client_id_does_not_move_counter(client, room_factory, user_factory):
    """A resend answered with the stored message is not counted a second time."""
    from rooms.services import message_post

    user = user_factory()
    room = room_factory(members=[user])
    message_post(user=user, room=room, body="once", client_id="c-1")
    before = scrape(client)[("chat_messages_accepted_total", ())]
    message_post(user=user, room=room, body="once", client_id="c-1")
    assert scrape(client)[("chat_messages_accepted_total", ())] == before


def test_rejected_frame_counter_moves_by_code(client):
    """chat_frames_rejected_total moves for the code rejected and no other."""
    from chatsite import metrics

    before = scrape(client)
    metrics.FRAMES_REJECTED.labels(code="slow_mode").inc()
    after = scrape(client)
    moved = {key: after[key] - before.get(key, 0) for key in after if key[0] == "chat_frames_rejected_total"}
    assert {key: delta for key, delta in moved.items() if delta} == {
        ("chat_frames_rejected_total", (("code", "slow_mode"),)): 1
    }


def test_remote_client_without_token_gets_401(client):
    """Without METRICS_TOKEN a non-loopback client is refused with 401 JSON."""
    with override_settings(METRICS_TOKEN=""):
        response = client.get("/metrics", REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "not_authenticated"


def test_ipv6_loopback_may_scrape(client):
    """::1 is loopback too."""
    with override_settings(METRICS_TOKEN=""):
        assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_proxied_request_from_loopback_gets_401(client):
    """A request that came through nginx (forwarding headers) is not a loopback client, whatever it claims."""
    with override_settings(METRICS_TOKEN=""):
        for header in ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED"):
            response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **{header: "127.0.0.1"})
            assert response.status_code == 401, header


def test_token_required_from_loopback_when_set(client):
    """With METRICS_TOKEN set, a loopback scrape without the token answers 401."""
    with override_settings(METRICS_TOKEN="s3cret-metrics-token"):
        assert client.get("/metrics").status_code == 401


def test_wrong_token_gets_401(client):
    """A wrong bearer token, or the token under another scheme, answers 401."""
    with override_settings(METRICS_TOKEN="s3cret-metrics-token"):
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
        assert client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-metrics-token").status_code == 401
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer").status_code == 401


def test_right_token_scrapes_from_anywhere(client):
    """With the right bearer token any client, proxied or remote, may scrape."""
    with override_settings(METRICS_TOKEN="s3cret-metrics-token"):
        response = client.get(
            "/metrics",
            REMOTE_ADDR="203.0.113.7",
            HTTP_X_FORWARDED_FOR="198.51.100.1",
            HTTP_AUTHORIZATION="Bearer s3cret-metrics-token",
        )
    assert response.status_code == 200
    assert b"chat_messages_accepted_total" in response.content


def test_metrics_refuses_post(client):
    """/metrics answers 405 to a POST."""
    assert client.post("/metrics").status_code == 405


# Multiprocess mode: separate interpreters share one PROMETHEUS_MULTIPROC_DIR, as daphne workers do.

_WORKER = textwrap.dedent(
    """
    import sys, time
    from chatsite import metrics
    metrics.prepare_multiprocess_dir()
    metrics.MESSAGES_ACCEPTED.inc(int(sys.argv[1]))
    metrics.WS_CONNECTIONS.inc(int(sys.argv[2]))
    metrics.FRAMES_REJECTED.labels(code="too_large").inc()
    print("ready", flush=True)
    if sys.argv[3] == "exit":
        metrics.mark_this_process_dead()
    else:
        time.sleep(60)
    """
)


def _start_worker(multiproc_dir, accepted: int, sockets: int, then: str) -> subprocess.Popen:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(accepted), str(sockets), then],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _render_in(multiproc_dir) -> dict[tuple, float]:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    script = "from chatsite import metrics; print(metrics.render()[0].decode())"
    return samples(subprocess.check_output([sys.executable, "-c", script], cwd=ROOT, env=env, text=True))


def test_multiprocess_counters_sum_across_processes(tmp_path):
    """Counters of several processes add up in one scrape, also after a process exits."""
    running = _start_worker(tmp_path, accepted=2, sockets=3, then="sleep")
    try:
        _start_worker(tmp_path, accepted=5, sockets=4, then="exit").wait(timeout=10)
        values = _render_in(tmp_path)
    finally:
        running.kill()
        running.wait(timeout=10)
    assert values[("chat_messages_accepted_total", ())] == 7
    assert values[("chat_frames_rejected_total", (("code", "too_large"),))] == 2
    # The exited process marked itself dead: only the running one's sockets count.
    assert values[("chat_ws_connections", ())] == 3


def test_killed_process_stops_counting_open_sockets(tmp_path):
    """A worker killed with SIGKILL drops out of chat_ws_connections; its counted messages stay."""
    victim = _start_worker(tmp_path, accepted=4, sockets=6, then="sleep")
    survivor = _start_worker(tmp_path, accepted=1, sockets=2, then="sleep")
    try:
        assert _render_in(tmp_path)[("chat_ws_connections", ())] == 8
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        values = _render_in(tmp_path)
    finally:
        for proc in (victim, survivor):
            proc.kill()
            proc.wait(timeout=10)
    assert values[("chat_ws_connections", ())] == 2
    assert values[("chat_messages_accepted_total", ())] == 5


# The same with real daphne processes started the standard way with the same environment and no
# PROMETHEUS_MULTIPROC_DIR: they share the directory derived from their settings.


def _scrape_url(base: str) -> dict[tuple, float]:
    import urllib.request

    with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
        return samples(response.read().decode())


def _post_message(base: str, token: str, slug: str, body: str) -> int:
    import json
    import urllib.request

    request = urllib.request.Request(
        f"{base}/api/v1/rooms/{slug}/messages/",
        data=json.dumps({"body": body}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_scrape_of_one_process_counts_messages_accepted_by_both(daphne_factory, user_factory, room_factory):
    """Two plain daphne processes, no metrics setting: a message accepted by each moves the counter
    both scrapes report by two."""
    from tests.ops.support import token_for

    user = user_factory()
    room = room_factory(members=[user])
    first, second = daphne_factory(plain=True), daphne_factory(plain=True)
    token = token_for(user)
    key = ("chat_messages_accepted_total", ())
    before = _scrape_url(first.http_url)[key]
    assert _post_message(first.http_url, token, room.slug, "via the first") == 201
    assert _post_message(second.http_url, token, room.slug, "via the second") == 201
    assert _scrape_url(first.http_url)[key] - before == 2
    assert _scrape_url(second.http_url)[key] - before == 2


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_killed_process_sockets_leave_the_gauge(daphne_factory, user_factory):
    """Two plain daphne processes, no metrics setting: each scrape counts both's sockets, and one
    killed with SIGKILL while holding a socket stops counting in chat_ws_connections."""
    import asyncio

    import websockets

    from tests.ops.support import token_for

    survivor, victim = daphne_factory(plain=True), daphne_factory(plain=True)
    token = token_for(user_factory())
    key = ("chat_ws_connections", ())

    async def hold_sockets() -> tuple[float, float]:
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            websockets.connect(survivor.ws_url, additional_headers=headers),
            websockets.connect(victim.ws_url, additional_headers=headers),
        ):
            # The gauge moves once each consumer ran its connect; poll, do not sleep.
            scraped: dict = {}

            async def both_counted() -> bool:
                scraped.update(await asyncio.to_thread(_scrape_url, survivor.http_url))
                return scraped[key] == 2

            deadline = asyncio.get_running_loop().time() + 5
            while not await both_counted() and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            during = scraped[key]
            assert (await asyncio.to_thread(_scrape_url, victim.http_url))[key] == during
            await asyncio.to_thread(victim.kill)
            after = (await asyncio.to_thread(_scrape_url, survivor.http_url))[key]
            return during, after

    during, after = asyncio.run(hold_sockets())
    assert (during, after) == (2, 1)
