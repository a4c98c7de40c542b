"""The real-time engine of /ws/chat/: one module per job.

- `consumer`: the WebSocket consumer; frames in (rooms/protocol.py), service calls, frames out.
- `connection`: what the hub needs of a local connection (a WebSocket, an SSE stream).
- `hub`: one per process; connection lifecycle and layer-event dispatch.
- `feed`: one room's ordered delivery on this process (prev_id order, gap fill, tail check).
- `events`: every event that crosses the channel layer, typed, and the only `group_send`.
- `writer`: writing one framed message to many daphne sockets (the daphne adapter).
- `db`: the database thread pool the real-time path runs its ORM work on.

Presence lives in rooms/presence.py and close codes in rooms/protocol.py. docs/realtime.md
describes the design.
"""
