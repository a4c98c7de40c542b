"""Room versions (CONTRACT §6): the per-room change counter that edits, deletes and reactions raise.

Posts take their version where their ids are assigned (rooms/posting.py, the one write path of
posts), under the same row lock that orders ids, so that commit order is version order.
"""

from __future__ import annotations

from django.db import connection

from rooms.models import Message, Room

_ROOM_VERSION_NEXT_SQL = f"UPDATE {Room._meta.db_table} SET version = version + 1 WHERE id = %s RETURNING version"


def room_version_next(*, room_id: int) -> int:
    """Raise the room's version and return the new value. Call inside a transaction: the UPDATE
    takes the room's row lock until commit, so versions are given (and committed) in order."""
    with connection.cursor() as cursor:
        cursor.execute(_ROOM_VERSION_NEXT_SQL, [room_id])
        row = cursor.fetchone()
    if row is None:
        raise Room.DoesNotExist(f"No room {room_id}.")
    return int(row[0])


def message_version_bump(message: Message) -> int:
    """Give `message` the room's next version (and store it). Call inside a transaction."""
    version = room_version_next(room_id=message.room_id)
    Message.objects.filter(pk=message.pk).update(version=version)
    message.version = version
    return version
