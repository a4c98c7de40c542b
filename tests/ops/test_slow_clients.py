"""Slow clients at the door (slowloris): a trickled request or upgrade must not hold a socket forever."""

from __future__ import annotations

import socket
import time

import pytest


def _trickle_headers(port: int, *, limit: float) -> float | None:
    """Send an upgrade request one header line per second; seconds until the server hangs up, None if it never did."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.settimeout(1)
        sock.sendall(b"GET /ws/chat/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
        line = 0
        while time.monotonic() - started < limit:
            try:
                sock.sendall(b"X-Trickle-%d: x\r\n" % line)
                line += 1
                if sock.recv(1024) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                continue
            except OSError:
                return time.monotonic() - started
            # Anything else received (a 408 page) is followed by the close.
    return None


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_nginx_cuts_trickled_upgrade(cluster):
    """Through nginx (client_header_timeout 10s) a trickled upgrade is dropped after about 10 s."""
    elapsed = _trickle_headers(cluster.port, limit=20)
    assert elapsed is not None, "nginx kept a trickling client for 20 s"
    assert 8 <= elapsed <= 13


# A process reached directly: tests/ops/test_plain_daphne.py (200 trickled upgrades, plain daphne).
