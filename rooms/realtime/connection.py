"""What the hub needs of a local connection: a WebSocket consumer, or any other kind (an SSE stream).

The hub and the feeds only ever call these methods; a connection keeps its own per-room state
(what it was last sent, its replay buffer) and the hub keeps its own (which feeds a connection
is in). Neither touches the other's state.

Delivery is synchronous on purpose: a room broadcast is one loop over the room's local
connections with the frame encoded once (`Frame`), no coroutine per recipient. A connection that
cannot write at once queues the frame itself, in order.
"""

from __future__ import annotations

from typing import Protocol

from accounts.credentials import Credential
from rooms.realtime.writer import Frame


class Connection(Protocol):
    """One client connection on this process, as the hub sees it."""

    user_id: int
    username: str
    conn_id: str  # unique per connection; presence entries are built from it

    @property
    def session_key(self) -> str | None:
        """The web session that authenticated this connection (None for JWT and tickets)."""

    @property
    def credential(self) -> Credential | None:
        """What the handshake accepted (accounts/credentials.py), re-checked at every heartbeat."""

    def deliver_message(self, room_id: int, message_id: int, frame: Frame) -> None:
        """A `message` frame of a joined room: send it once, in id order (skip ids already sent)."""

    def deliver_event(self, room_id: int, frame: Frame) -> None:
        """Any other frame of a joined room (edits, deletes, typing, presence)."""

    def deliver_user_frame(self, frame: Frame) -> None:
        """A frame addressed to the user rather than to a room (`events.user_frame`)."""

    async def leave_room(self, room_id: int, *, reason: str | None = None) -> None:
        """Stop the room (ban, removal): leave it through the hub and tell the client `left`."""

    async def close_with(self, code: int) -> None:
        """Close the connection with an application close code (rooms/protocol.py)."""
