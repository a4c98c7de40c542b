"""Prometheus metrics of CONTRACT §4, correct across processes.

With PROMETHEUS_MULTIPROC_DIR set (make run and make cluster set it), prometheus-client's
multiprocess mode sums every process's values; gauges use `livesum` so a dead process's open
sockets stop counting. The variable must be in the environment *before* prometheus_client is
first imported (it picks its storage at import), so it is set by whoever starts the process
(the Makefile, deploy/cluster.py, the systemd unit, the Kubernetes Deployment), never from Python.

The process that serves (chatsite/serve.py) calls `prepare_multiprocess_dir()` at start and
`mark_this_process_dead()` at exit; a process killed with SIGKILL is swept at the next scrape
by `sweep_dead_processes()`.

Prometheus-client appends `_total` to counters: the exposed names are chat_messages_accepted_total,
chat_frames_rejected_total{code}, chat_layer_messages_total{direction},
chat_handshakes_refused_total{reason}.
"""

from __future__ import annotations

import glob
import os
import re

from prometheus_client import Counter, Gauge, Histogram


def multiprocess_dir() -> str:
    """The directory prometheus-client writes to, or '' in single-process mode.

    Read from the environment, like prometheus-client itself does at import, rather than from
    settings (which reads the same variable): the two can then never disagree.
    """
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


if multiprocess_dir():
    # Metric files are opened as the metrics below are created.
    os.makedirs(multiprocess_dir(), exist_ok=True)

WS_CONNECTIONS = Gauge("chat_ws_connections", "Open WebSocket connections.", multiprocess_mode="livesum")
ROOMS_JOINED = Gauge("chat_rooms_joined", "Open (socket, room) joins.", multiprocess_mode="livesum")
MESSAGES_ACCEPTED = Counter("chat_messages_accepted", "Messages accepted and stored.")
FRAMES_REJECTED = Counter("chat_frames_rejected", "Frames answered with an error, by code.", ["code"])
DELIVERY_LATENCY = Histogram(
    "chat_delivery_latency_seconds",
    "From a message's acceptance to its frame being written to this process's sockets.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
LAYER_MESSAGES = Counter("chat_layer_messages", "Channel-layer messages by direction.", ["direction"])
HANDSHAKES_REFUSED = Counter("chat_handshakes_refused", "WebSocket handshakes refused, by reason.", ["reason"])

# Every series the contract names exists from the first scrape (at 0), so dashboards and
# `rate()` see a counter start rather than appear.
ERROR_CODES = ("bad_request", "not_found", "forbidden", "rate_limited", "slow_mode", "too_large", "filtered")
for _code in ERROR_CODES:
    FRAMES_REJECTED.labels(code=_code)
for _direction in ("send", "receive"):
    LAYER_MESSAGES.labels(direction=_direction)


def render(accept_header: str = "") -> tuple[bytes, str]:
    """The exposition body and its content type (Prometheus text 0.0.4 unless the scraper asks otherwise)."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.exposition import choose_encoder

    path = multiprocess_dir()
    if path:
        from prometheus_client import multiprocess

        sweep_dead_processes(path)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry = REGISTRY
    encoder, content_type = choose_encoder(accept_header)
    return encoder(registry), content_type


def _pid_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db$")


def sweep_dead_processes(path: str) -> list[int]:
    """Drop the live-gauge files of processes of this host that no longer run (killed, crashed).

    The directory is per host (per pod in Kubernetes), so a pid in a file name is a pid here.
    Counters and histograms of dead processes are kept: their totals must not go backwards.
    """
    from prometheus_client import multiprocess

    dead = set()
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        match = _LIVE_GAUGE_FILE.search(name)
        if match and not _pid_is_alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in dead:
        multiprocess.mark_process_dead(pid, path)
    return sorted(dead)


def prepare_multiprocess_dir() -> None:
    """At process start: forget the live gauges of this host's dead processes (the directory exists by now)."""
    path = multiprocess_dir()
    if path:
        sweep_dead_processes(path)


def mark_this_process_dead() -> None:
    """At process exit: its open sockets and joins stop counting at once."""
    path = multiprocess_dir()
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), path)
