"""Smoke test of the load tool (bench/loadtest.py) against bench/fake_server.py: its accounting is exact."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fake_server(request):
    """A fake /ws/chat/ server started with the options given by indirect parametrization."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "fake_server.py"), "--port", str(port), *getattr(request, "param", [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port, proc.pid
    proc.terminate()
    proc.wait(timeout=10)


def _loadtest(tmp_path: Path, *args: str) -> dict:
    tokens = tmp_path / "tokens.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "loadtest.py"),
            "fake-setup",
            "--users",
            "40",
            "--rooms",
            "4",
            "--out",
            str(tokens),
        ],
        check=True,
        timeout=30,
    )
    out = tmp_path / "summary.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "loadtest.py"),
            *args,
            "--tokens",
            str(tokens),
            "--json",
            str(out),
            "--settle",
            "0.1",
        ],
        check=True,
        timeout=90,
        capture_output=True,
    )
    return json.loads(out.read_text())


def test_clean_server_reports_every_delivery(fake_server, tmp_path):
    """Against a correct server: all 40 sockets connect and every message reaches its 10 room members."""
    port, pid = fake_server
    summary = _loadtest(
        tmp_path,
        "run",
        "--port",
        str(port),
        "--server-pid",
        str(pid),
        "--rate",
        "100",
        "--duration",
        "1",
        "--grace",
        "2",
    )
    res = summary["result"]
    assert summary["connect"]["connected"] == 40
    assert res["sent"] == 100 and res["accepted"] == 100
    assert res["delivered"] == res["expected_deliveries"] == 1000
    assert (res["lost"], res["duplicated"], res["out_of_order"], res["unanswered"]) == (0, 0, 0, 0)
    assert res["latency_p99_ms"] is not None
    assert summary["connect"]["server_kib_per_socket"] is not None


@pytest.mark.parametrize(
    "fake_server",
    [["--drop-every", "50", "--dup-every", "70", "--swap-every", "5", "--reject-every", "20"]],
    indirect=True,
)
def test_misbehaving_server_is_caught(fake_server, tmp_path):
    """Dropped, duplicated, reordered and rejected deliveries are each counted, none hidden."""
    port, _pid = fake_server
    summary = _loadtest(tmp_path, "run", "--port", str(port), "--rate", "100", "--duration", "2", "--grace", "1")
    res = summary["result"]
    assert res["rejected_by_code"] == {"rate_limited": 10}
    assert res["accepted"] == 190
    # the server delivers 190 x 10 times, dropping every 50th and doubling every 70th
    assert res["lost"] == 1900 // 50
    assert res["duplicated"] == 1900 // 70 - len([n for n in range(70, 1901, 70) if n % 50 == 0])
    assert res["out_of_order"] > 0


def test_capacity_mode_ramps_and_reports_last_passing_rate(fake_server, tmp_path):
    """Capacity mode runs its steps at x factor and names the last rate that passed."""
    port, _pid = fake_server
    summary = _loadtest(
        tmp_path,
        "capacity",
        "--port",
        str(port),
        "--rate",
        "50",
        "--factor",
        "2",
        "--duration",
        "0.5",
        "--grace",
        "1",
        "--max-steps",
        "2",
        "--pause",
        "0",
    )
    assert [s["offered_msgs_per_s"] for s in summary["steps"]] == [50, 100]
    assert summary["capacity"]["last_passing_msgs_per_s"] == 100
