"""Prometheus metrics of CONTRACT §4, correct across processes.

With PROMETHEUS_MULTIPROC_DIR set (make run and make cluster set it), prometheus-client's
multiprocess mode sums every process's values; gauges use `livesum` so a dead process's open
sockets stop counting.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

WS_CONNECTIONS = Gauge(
    "chat_ws_connections", "Open WebSocket connections.", multiprocess_mode="livesum"
)
ROOMS_JOINED = Gauge(
    "chat_rooms_joined", "Open (socket, room) joins.", multiprocess_mode="livesum"
)
MESSAGES_ACCEPTED = Counter("chat_messages_accepted", "Messages accepted and stored.")
FRAMES_REJECTED = Counter("chat_frames_rejected", "Frames answered with an error, by code.", ["code"])
DELIVERY_LATENCY = Histogram(
    "chat_delivery_latency_seconds",
    "From a message's acceptance to its frame being written to this process's sockets.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
LAYER_MESSAGES = Counter("chat_layer_messages", "Channel-layer messages by direction.", ["direction"])
HANDSHAKES_REFUSED = Counter("chat_handshakes_refused", "WebSocket handshakes refused, by reason.", ["reason"])
