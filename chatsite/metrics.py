"""Prometheus metrics of CONTRACT §4, correct across the processes of a host.

prometheus-client's multiprocess mode is always on: every process writes its values to files in
`settings.PROMETHEUS_MULTIPROC_DIR` (by default a directory derived from the checkout, database
and Redis, so the processes of one host started with the same environment share it without any
setting), and any process's scrape sums them; gauges use `livesum` so a dead process's open
sockets stop counting. prometheus-client picks its storage when first imported, from the
environment variable chatsite/settings.py sets, so this module reads the settings first.

The one place the directory is looked after: `prepare_multiprocess_dir()` at process start (by
rooms/realtime/writer.py's `install()`), `mark_this_process_dead()` at exit, and
`sweep_dead_processes()` at every scrape for processes killed with SIGKILL.

Prometheus-client appends `_total` to counters: the exposed names are chat_messages_accepted_total,
chat_frames_rejected_total{code}, chat_layer_messages_total{direction},
chat_handshakes_refused_total{reason}.
"""

from __future__ import annotations

import logging
import os
import re

from django.conf import settings

logger = logging.getLogger(__name__)


def multiprocess_dir() -> str:
    """The directory every process of this host writes its metric files to."""
    return str(settings.PROMETHEUS_MULTIPROC_DIR)


# The directory must exist before the metrics below open their files in it.
os.makedirs(multiprocess_dir(), exist_ok=True)

from prometheus_client import Counter, Gauge, Histogram  # noqa: E402
from prometheus_client import values as _values  # noqa: E402

if _values.ValueClass is _values.MutexValue:  # imported before the settings set the variable
    logger.warning(
        "prometheus_client was imported before chatsite's settings: /metrics counts only this process. "
        "Import chatsite.metrics (or django.setup()) before anything that imports prometheus_client."
    )

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
# In multiprocess mode a family with no sample is not exposed at all: start the common reasons.
for _reason in ("no_credentials", "origin", "shutting_down"):
    HANDSHAKES_REFUSED.labels(reason=_reason)


def render(accept_header: str = "") -> tuple[bytes, str]:
    """The exposition body, summed over this host's processes, and its content type
    (Prometheus text 0.0.4 unless the scraper asks otherwise)."""
    from prometheus_client import CollectorRegistry, multiprocess
    from prometheus_client.exposition import choose_encoder

    path = multiprocess_dir()
    sweep_dead_processes(path)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
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


_METRIC_FILE = re.compile(r"^(\w+?)_(\d+)\.db$")


def _file_pids(path: str) -> dict[str, int]:
    """{file name: pid} of the metric files in `path`."""
    pids = {}
    for name in os.listdir(path):
        match = _METRIC_FILE.match(name)
        if match:
            pids[name] = int(match.group(2))
    return pids


def sweep_dead_processes(path: str) -> list[int]:
    """Drop the live-gauge files of processes of this host that no longer run (killed, crashed).

    The directory is per host (per pod in Kubernetes), so a pid in a file name is a pid here.
    Counters and histograms of dead processes are kept: their totals must not go backwards.
    """
    from prometheus_client import multiprocess

    dead = {pid for name, pid in _file_pids(path).items() if name.startswith("gauge_live") and not _pid_is_alive(pid)}
    for pid in dead:
        multiprocess.mark_process_dead(pid, path)
    return sorted(dead)


def prepare_multiprocess_dir() -> None:
    """At process start. If no other process of the directory runs, the host's servers restarted:
    their files go (counters restart, as Prometheus expects after a restart) so the directory
    never grows; otherwise only the live gauges of dead processes go."""
    path = multiprocess_dir()
    pids = _file_pids(path)
    me = os.getpid()
    if not any(pid != me and _pid_is_alive(pid) for pid in pids.values()):
        for name, pid in pids.items():
            if pid != me:
                try:
                    os.remove(os.path.join(path, name))
                except FileNotFoundError:
                    pass
        return
    sweep_dead_processes(path)


def mark_this_process_dead() -> None:
    """At process exit: its open sockets and joins stop counting at once."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(os.getpid(), multiprocess_dir())
