"""The changes feed (CONTRACT §6): what changed in a room since a version, in version order.

A read, like rooms/selectors.py: the caller checks the reader first (`room_get_for_reader`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rooms.models import Message, Room

CHANGES_PAGE = 200


@dataclass(frozen=True)
class RoomChanges:
    """One page of `GET rooms/{slug}/changes/`: live messages, ids of deleted ones, the cursor."""

    updated: list[Message]
    deleted: list[int]
    version: int
    has_more: bool


def room_changes(*, room: Room, since: int, limit: int = CHANGES_PAGE) -> RoomChanges:
    """The messages of `room` whose version is above `since`, oldest change first, at most `limit`.

    A range scan on the (room, version) index. `version` is the next `since`: the last change of
    the page when more follow, else the room's version (so an empty page still tells the client
    where the room is). The room's version is read *before* the messages: versions are given
    and committed in order under the room's row lock, so every change up to it is visible to the
    second query, and a change committed in between shows up in the page or the next one, never
    behind the cursor.
    """
    current = Room.objects.filter(pk=room.pk).values_list("version", flat=True).first() or 0
    rows = list(
        Message.objects.filter(room=room, version__gt=since)
        .select_related("author", "reply_to__author")
        .order_by("version")[: limit + 1]
    )
    has_more = len(rows) > limit
    page = rows[:limit]
    version = page[-1].version if has_more else max([current, *(message.version for message in page)])
    return RoomChanges(
        updated=[message for message in page if message.deleted is None],
        deleted=[message.id for message in page if message.deleted is not None],
        version=version,
        has_more=has_more,
    )
