"""`make cluster` / `make cluster-stop`: several chatsite processes behind nginx on one machine.

    python deploy/cluster.py start [--processes 2] [--port 8080] [--first-backend-port 8001]
    python deploy/cluster.py stop

`start` needs REDIS_URL and DATABASE_URL (PostgreSQL): several processes share state only
through them. It migrates, seeds the demo, starts N `python -m chatsite.serve` processes on
127.0.0.1:8001..800N and nginx on 127.0.0.1:PORT with a config generated from
deploy/nginx/cluster.conf.template, and returns. Everything it writes is under run/cluster/
(--run-dir): pid files, logs, the nginx config and temp dirs, and the Prometheus multiprocess
directory. `stop` signals exactly the pids in those files (after checking each is still the
process it started) and waits for them to exit.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
TEMPLATE = ROOT / "deploy" / "nginx" / "cluster.conf.template"


class ClusterError(Exception):
    """A reason the cluster cannot start or stop, worded for the operator."""


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own child not yet reaped) is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def _pid_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("daphne-*.pid")) + sorted(run_dir.glob("nginx.pid"))


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _expected_command(path: Path) -> str:
    return "nginx" if path.name == "nginx.pid" else "chatsite.serve"


def _running(run_dir: Path) -> list[tuple[Path, int]]:
    """(pid file, pid) of the processes a previous `start` left running."""
    running = []
    for path in _pid_files(run_dir):
        pid = _read_pid(path)
        if pid and _alive(pid) and _expected_command(path) in _cmdline(pid):
            running.append((path, pid))
    return running


def _wait_healthy(port: int, proc: subprocess.Popen, log: Path, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ClusterError(f"chatsite on port {port} exited with {proc.returncode}; its log:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise ClusterError(f"chatsite on port {port} did not answer /healthz in {timeout:.0f} s; its log:\n{_tail(log)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _check_environment(env: dict[str, str]) -> None:
    missing = []
    if not env.get("REDIS_URL"):
        missing.append(
            "REDIS_URL=redis://127.0.0.1:6379/0 (the processes share the channel layer, presence, "
            "tickets and rate limits through Redis)"
        )
    database_url = env.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://", "pgsql://")):
        missing.append(
            "DATABASE_URL=postgres://USER@127.0.0.1:5432/chatsite (several processes need PostgreSQL, "
            f"not {'SQLite' if database_url else 'the SQLite default'})"
        )
    if missing:
        raise ClusterError(
            "make cluster needs\n  " + "\n  ".join(missing) + "\nfor example:\n  "
            "REDIS_URL=redis://127.0.0.1:6379/0 DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatsite "
            "make cluster"
        )
    if not Path(NGINX).exists():
        raise ClusterError(f"nginx not found at {NGINX} (apt-get install nginx, or set NGINX=/path/to/nginx)")


def render_nginx_config(*, run_dir: Path, port: int, backend_ports: list[int]) -> str:
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in backend_ports)
    # Run as root (a container, CI), nginx would hand its workers to `nobody`, who cannot write
    # the temp dirs under run/; on loopback for a trial, the workers may keep the invoking user.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    return (
        TEMPLATE.read_text()
        .replace("{{USER}}", user)
        .replace("{{RUN}}", str(run_dir))
        .replace("{{PORT}}", str(port))
        .replace("{{SERVERS}}", servers)
    )


def start(args: argparse.Namespace) -> None:
    run_dir: Path = args.run_dir.resolve()
    env = dict(os.environ)
    _check_environment(env)
    if _running(run_dir):
        raise ClusterError(f"a cluster is already running from {run_dir}: run `make cluster-stop` first")
    backend_ports = [args.first_backend_port + i for i in range(args.processes)]
    busy = [p for p in [args.port, *backend_ports] if not _port_is_free(p)]
    if busy:
        raise ClusterError(
            f"port(s) {', '.join(map(str, busy))} on 127.0.0.1 already in use; "
            "choose others with PORT=... or FIRST_BACKEND_PORT=..."
        )

    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in _pid_files(run_dir):
        stale.unlink()
    metrics_dir = run_dir / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)  # counters restart with the cluster
    metrics_dir.mkdir()
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (run_dir / "nginx-tmp" / sub).mkdir(parents=True, exist_ok=True)

    origins = f"http://127.0.0.1:{args.port},http://localhost:{args.port}"
    env.setdefault("DEBUG", "1")
    env.setdefault("ALLOWED_ORIGINS", origins)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    env.setdefault("PYTHONUNBUFFERED", "1")
    python = sys.executable

    print(f"cluster: migrating {env['DATABASE_URL'].split('@')[-1]}", flush=True)
    subprocess.run([python, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True)
    if not args.no_seed:
        subprocess.run([python, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True)

    started: list[int] = []
    try:
        for port in backend_ports:
            log = run_dir / f"daphne-{port}.log"
            with open(log, "ab") as log_file:
                proc = subprocess.Popen(
                    [python, "-m", "chatsite.serve", "--bind", "127.0.0.1", "--port", str(port)],
                    cwd=ROOT,
                    env={**env, "PORT": str(port)},
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # survives the make that started it
                )
            started.append(proc.pid)
            (run_dir / f"daphne-{port}.pid").write_text(f"{proc.pid}\n")
            _wait_healthy(port, proc, log)
            print(f"cluster: chatsite pid {proc.pid} on http://127.0.0.1:{port} (log {log})", flush=True)

        conf = run_dir / "nginx.conf"
        conf.write_text(render_nginx_config(run_dir=run_dir, port=args.port, backend_ports=backend_ports))
        nginx = [NGINX, "-p", str(run_dir), "-e", str(run_dir / "nginx-error.log"), "-c", str(conf)]
        check = subprocess.run([*nginx, "-t", "-q"], capture_output=True, text=True)
        if check.returncode != 0:
            raise ClusterError(f"generated nginx config is invalid:\n{check.stderr}")
        subprocess.run(nginx, check=True, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while _read_pid(run_dir / "nginx.pid") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        nginx_pid = _read_pid(run_dir / "nginx.pid")
        if nginx_pid is None:
            raise ClusterError(
                f"nginx did not write its pid file; {run_dir / 'nginx-error.log'}:\n"
                f"{_tail(run_dir / 'nginx-error.log')}"
            )
        started.append(nginx_pid)
    except BaseException:
        print("cluster: start failed, stopping what was started", file=sys.stderr)
        stop(args, quiet=True)
        raise

    print(
        f"cluster: nginx pid {nginx_pid} on http://127.0.0.1:{args.port} -> "
        f"{', '.join(f'127.0.0.1:{p}' for p in backend_ports)}\n"
        f"cluster: open http://127.0.0.1:{args.port}/ in two browsers (demo users alice, bob, mod; "
        f"password DEMO_PASSWORD, default demo-pass-123)\n"
        f"cluster: pids and logs in {run_dir}; stop with `make cluster-stop`",
        flush=True,
    )


def _stop_pid(path: Path, pid: int, timeout: float) -> bool:
    """SIGTERM (graceful for chatsite: 4012 to every socket; fast for nginx), SIGKILL after timeout."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            print(f"cluster: pid {pid} ({path.name}) still running after {timeout:.0f} s: SIGKILL", file=sys.stderr)
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            return False
        time.sleep(0.1)
    return True


def stop(args: argparse.Namespace, quiet: bool = False) -> None:
    run_dir: Path = args.run_dir.resolve()
    running = _running(run_dir)
    # The chatsite processes first, so their 4012 close frames still reach clients through nginx.
    running.sort(key=lambda item: item[0].name == "nginx.pid")
    for path in _pid_files(run_dir):
        pid = _read_pid(path)
        if pid and (path, pid) not in running and not quiet:
            print(f"cluster: {path.name}: pid {pid} is not running (or is no longer ours); skipped")
    for path, pid in running:
        _stop_pid(path, pid, timeout=15)
        if not quiet:
            print(f"cluster: stopped pid {pid} ({path.name})")
    for path in _pid_files(run_dir):
        path.unlink(missing_ok=True)
    if not running and not quiet:
        print(f"cluster: nothing running from {run_dir}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop"])
    parser.add_argument("--processes", "-n", type=int, default=2)
    parser.add_argument("--port", type=int, default=8080, help="nginx port on 127.0.0.1 (default 8080)")
    parser.add_argument("--first-backend-port", type=int, default=8001)
    parser.add_argument("--run-dir", type=Path, default=ROOT / "run" / "cluster")
    parser.add_argument("--no-seed", action="store_true", help="skip seeding the demo users and room")
    args = parser.parse_args(argv)
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    try:
        start(args) if args.command == "start" else stop(args)
    except ClusterError as error:
        print(f"cluster: {error}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as error:
        print(f"cluster: {' '.join(map(str, error.cmd))} failed with {error.returncode}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
