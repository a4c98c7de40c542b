"""What a connection joining a room sends after `joined` (CONTRACT §3 `join` with `after`, §6 the
stream's cursor replay): one decision for the socket consumer and the event stream alike.

Pure: it reads nothing and sends nothing. The caller subscribed the connection to the room's feed
(buffering) before reading `selectors.room_replay`, sends what the plan says, then delivers what
the buffer gathered meanwhile with `Subscription.drain` (rooms/realtime/consumer.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from rooms.models import Message


@dataclass(frozen=True)
class ReplayPlan:
    """`resync`: too much was missed, send `resync` alone; else `messages` to send, in id order.
    `start`: the room's position as `joined` leaves it (a stream's cursor on that event);
    `last_sent`: its position once the replay is sent (live frames at or below it are skipped)."""

    resync: bool
    messages: list[Message]
    start: int
    last_sent: int


def replay_plan(*, after: int | None, last_id: int, messages: list[Message], limit: int) -> ReplayPlan:
    """The replay of a join, from `selectors.room_replay`'s `last_id` and `messages` (up to
    `limit + 1` after `after`, deleted ones included): nothing without `after`; `resync` when more
    than `limit` follow `after`; else the live (not deleted) ones. An `after` beyond the room's
    last id counts as the last id."""
    if after is None:
        return ReplayPlan(resync=False, messages=[], start=last_id, last_sent=last_id)
    if len(messages) > limit:
        position = max(last_id, messages[-1].id)
        return ReplayPlan(resync=True, messages=[], start=position, last_sent=position)
    start = min(after, last_id)
    live = [message for message in messages if message.id > start and message.deleted is None]
    last_sent = max([start, *(message.id for message in messages)])
    return ReplayPlan(resync=False, messages=live, start=start, last_sent=last_sent)
