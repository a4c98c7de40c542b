"""Fixtures for the operations tests: a throwaway redis-server, and `make cluster` on free ports."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.support.servers import ROOT, free_port, test_database_url

REDIS_SERVER = "/usr/bin/redis-server"
NGINX = "/usr/sbin/nginx"


def tool_missing(reason: str):
    """Skip loudly, or fail under REQUIRE_SERVICES=1 (CI), like the service markers of tests/conftest.py."""
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {reason}")


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """`redis-server` on a spare loopback port, no persistence; stop() and start() again keep the port."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _answers(self.port):
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)  # a crash, not a clean shutdown
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def redis_server(tmp_path):
    if not os.path.exists(REDIS_SERVER):
        tool_missing(f"this test starts its own Redis and needs {REDIS_SERVER} (apt-get install redis-server)")
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def wait_until(predicate, *, timeout: float, interval: float = 0.2):
    """Poll `predicate` until it returns a truthy value; return it, or the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


CLUSTER = ROOT / "deploy" / "cluster.py"


def _consecutive_free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports."""
    # A random start: parallel test runs on this machine rarely race for the same range.
    for _ in range(200):
        base = random.randrange(20000, 30000)
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free port range")


class Cluster:
    def __init__(self, run_dir: Path, processes: int = 2):
        base = _consecutive_free_ports(processes + 1)
        self.port = base
        self.backend_ports = [base + 1 + i for i in range(processes)]
        self.run_dir = run_dir
        self.processes = processes

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat/"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DEBUG": "0",
            "SECRET_KEY": settings.SECRET_KEY,
            "CONN_MAX_AGE": "0",
            "RATE_LIMIT_MESSAGES": "1000/1s",
        }
        return subprocess.run(
            [sys.executable, str(CLUSTER), *args, "--run-dir", str(self.run_dir)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self) -> Cluster:
        result = self._run(
            "start",
            "--processes",
            str(self.processes),
            "--port",
            str(self.port),
            "--first-backend-port",
            str(self.backend_ports[0]),
            "--no-seed",
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return self

    def stop(self) -> subprocess.CompletedProcess:
        return self._run("stop")

    def pid_of_backend(self, upstream: str) -> int:
        port = upstream.rsplit(":", 1)[1]
        return int((self.run_dir / f"daphne-{port}.pid").read_text())


@pytest.fixture
def cluster(transactional_db, tmp_path):
    if not os.path.exists(NGINX):
        tool_missing(f"the cluster tests need nginx at {NGINX} (apt-get install nginx)")
    running = Cluster(tmp_path / "cluster").start()
    yield running
    result = running.stop()
    assert result.returncode == 0, result.stdout + result.stderr
