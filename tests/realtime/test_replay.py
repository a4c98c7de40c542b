"""The one replay decision of a join (rooms/realtime/replay.py), for the socket and the stream alike."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rooms.models import Message
from rooms.realtime.replay import replay_plan

NOW = datetime(2026, 12, 3, tzinfo=UTC)


def rows(*ids: int, deleted: tuple[int, ...] = ()) -> list[Message]:
    return [Message(id=i, room_id=1, author_id=1, body="b", deleted=NOW if i in deleted else None) for i in ids]


@pytest.mark.parametrize(
    ("after", "last_id", "messages", "limit", "resync", "sent", "start", "last_sent"),
    [
        (None, 9, [], 500, False, [], 9, 9),  # no after: nothing replayed, live from the last id
        (5, 9, rows(6, 7, 8, 9), 500, False, [6, 7, 8, 9], 5, 9),
        (5, 9, rows(6, 7, 8, 9, deleted=(7, 9)), 500, False, [6, 8], 5, 9),  # deleted: skipped, passed
        (9, 9, [], 500, False, [], 9, 9),  # nothing missed
        (40, 9, [], 500, False, [], 9, 9),  # an after beyond the room counts as its last id
        (0, 4, rows(1, 2, 3, 4), 3, True, [], 4, 4),  # more than the limit: resync alone
        (0, 3, rows(1, 2, 3, 4), 3, True, [], 4, 4),  # a row committed after last_id was read
        (0, 3, rows(1, 2, 3), 3, False, [1, 2, 3], 0, 3),  # exactly the limit: replayed
    ],
)
def test_replay_plan(after, last_id, messages, limit, resync, sent, start, last_sent):
    """Replay, resync or nothing, and where the room stands before and after."""
    plan = replay_plan(after=after, last_id=last_id, messages=messages, limit=limit)
    assert (plan.resync, [m.id for m in plan.messages], plan.start, plan.last_sent) == (resync, sent, start, last_sent)
