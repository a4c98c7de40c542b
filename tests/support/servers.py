"""Real daphne processes for end-to-end tests, sharing the test database and Redis.

`DaphneProcess` starts `python -m chatsite.serve` (or, with `plain=True`, `daphne
chatsite.asgi:application`) on a free loopback port with the test run's
DATABASE_URL (pointing at pytest-django's test database) and REDIS_URL, waits for /healthz, and
stops it by its pid. Use from tests marked `e2e`, `postgres` and `redis` with `transactional_db`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError("end-to-end tests need PostgreSQL (mark the test `postgres`)")
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{db['NAME']}"


class DaphneProcess:
    def __init__(self, *, port: int | None = None, env: dict[str, str] | None = None, plain: bool = False):
        self.port = port or free_port()
        self.extra_env = env or {}
        # plain: `daphne chatsite.asgi:application`, the way the Channels docs deploy it, instead
        # of `python -m chatsite.serve`.
        self.plain = plain
        self.proc: subprocess.Popen | None = None
        self.log_path = ROOT / "run" / f"daphne-test-{self.port}.log"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat/"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # Generous: a start normally takes 1-2 s, but on a loaded 2-core machine Django's imports alone
    # have taken over 20 s; the wait ends as soon as /healthz answers.
    def start(self, timeout: float = 60) -> DaphneProcess:
        self.log_path.parent.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DEBUG": "0",
            "SECRET_KEY": settings.SECRET_KEY,
            "PORT": str(self.port),
            "ALLOWED_ORIGINS": f"http://127.0.0.1:{self.port},http://localhost:{self.port}",
            "CONN_MAX_AGE": "0",
            **self.extra_env,
        }
        if "PROMETHEUS_MULTIPROC_DIR" not in self.extra_env:
            # As an operator would start it: the metrics directory derived from its own settings,
            # not the one this test process's settings exported.
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed by stop())
        if self.plain:
            command = [str(Path(sys.executable).with_name("daphne")), "-b", "127.0.0.1", "-p", str(self.port)]
            command.append("chatsite.asgi:application")
        else:
            command = [sys.executable, "-m", "chatsite.serve", "--bind", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daphne exited early; log:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(self.http_url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"daphne did not answer in {timeout}s; log:\n{self.log_path.read_text()}")

    def signal(self, signum: int) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""
