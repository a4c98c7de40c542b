"""The hook the post write path calls inside its transaction, once the rows of a batch are stored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rooms.conversations.notifications import RoomKind, messages_notify
from rooms.models import Message, Notification, Room


def messages_stored(
    messages: Sequence[Message], *, rooms: Mapping[int, RoomKind] | None = None
) -> dict[int, list[Notification]]:
    """Called by rooms/posting.py inside the batch transaction, after the rows are inserted and
    before commit, with the new messages in id order (room rows still locked); `rooms` has the kind
    of each message's room (read with the locks; read here when not given). Stores mentions and
    creates notifications (rooms/conversations/notifications.py); returns the notifications
    created by message id, for the caller to announce once the batch commits."""
    if rooms is None:
        rooms = {
            room.id: RoomKind.of(room)
            for room in Room.objects.filter(id__in={message.room_id for message in messages}).only("is_private", "kind")
        }
    return messages_notify(messages, rooms)
