"""Reads with access control, used by the consumer, every REST view and the pages alike.

A private room the user is not in answers NotFound, exactly like a missing one, so existence is
never revealed.
"""

from __future__ import annotations

from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from rooms.conversations.reads import rooms_with_read_state
from rooms.exceptions import Forbidden, NotFound
from rooms.models import Membership, Message, Room, RoomBan, RoomMute, SiteBan, restriction_active_sql


def user_is_moderator(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_moderator)


def user_can_moderate_room(*, user, room: Room) -> bool:
    """The room's owner or a site moderator; in a DM (no owner), site moderators only (CONTRACT §5)."""
    if room.is_dm:
        return user_is_moderator(user)
    return room.owner_id == user.id or user_is_moderator(user)


def user_is_site_banned(*, user_id: int) -> bool:
    return SiteBan.objects.active().filter(user_id=user_id).exists()


def user_is_room_banned(*, user_id: int, room_id: int) -> bool:
    return RoomBan.objects.active().filter(user_id=user_id, room_id=room_id).exists()


def user_is_room_muted(*, user_id: int, room_id: int) -> bool:
    return RoomMute.objects.active().filter(user_id=user_id, room_id=room_id).exists()


def user_is_member(*, user_id: int, room_id: int) -> bool:
    return Membership.objects.filter(user_id=user_id, room_id=room_id).exists()


def room_list_for_user(*, user, joined_only: bool = False) -> QuerySet[Room]:
    """Public rooms and the private rooms (DMs included) the user belongs to, by slug; with
    `joined_only`, only the user's rooms, most recent `last_message_id` first. Each room carries
    the user's read state and its member count (rooms.conversations.rooms_with_read_state), so a
    page of it is one query whatever the number of rooms and messages."""
    mine = Membership.objects.filter(user=user).values("room_id")
    if joined_only:
        rooms = Room.objects.filter(pk__in=mine).order_by("-last_message_id", "-id")
    else:
        rooms = Room.objects.filter(Q(is_private=False) | Q(pk__in=mine)).order_by("slug")
    return rooms_with_read_state(rooms.select_related("owner"), user=user)


def user_for_dm(*, username: str):
    """The user a DM may be opened with: active and not banned site-wide; None otherwise."""
    return (
        get_user_model()
        .objects.filter(username=username, is_active=True)
        .exclude(pk__in=SiteBan.objects.active().values("user_id"))
        .first()
    )


def room_get_visible(*, user, slug: str) -> Room:
    """The room if the user may see it (public, or a member, or a moderator); NotFound otherwise."""
    room = Room.objects.select_related("owner").filter(slug=slug).first()
    if room is None:
        raise NotFound(f"No room {slug!r}.")
    if room.is_private and not user_is_moderator(user) and not user_is_member(user_id=user.id, room_id=room.id):
        raise NotFound(f"No room {slug!r}.")
    return room


def room_get_for_reader(*, user, slug: str) -> Room:
    """The room if the user may read its messages: visible and not banned from it."""
    room = room_get_visible(user=user, slug=slug)
    if user_is_room_banned(user_id=user.id, room_id=room.id) and not user_is_moderator(user):
        raise Forbidden(f"You are banned from {slug!r}.")
    return room


def room_get_for_member(*, user, slug: str) -> Room:
    """The room if the user is a member of it (not banned); NotFound/Forbidden otherwise."""
    room = room_get_for_reader(user=user, slug=slug)
    if not user_is_member(user_id=user.id, room_id=room.id):
        raise Forbidden(f"You are not a member of {slug!r}; join it first.")
    return room


def room_member_count(*, room: Room) -> int:
    return Membership.objects.filter(room=room).count()


def message_get_visible(*, user, message_id: int) -> Message:
    """A message (not deleted) in a room the user can read; NotFound otherwise."""
    message = (
        Message.objects.select_related("room", "author", "reply_to__author")
        .filter(pk=message_id, deleted__isnull=True)
        .first()
    )
    if message is None:
        raise NotFound(f"No message {message_id}.")
    try:
        room_get_visible(user=user, slug=message.room.slug)
    except NotFound:
        raise NotFound(f"No message {message_id}.") from None
    return message


def message_history(
    *, room: Room, before: int | None = None, after: int | None = None, limit: int = 50
) -> tuple[list[Message], bool]:
    """A page of live (not deleted) messages ascending by id, and whether more exist beyond it.

    No cursor: the newest `limit`; `before`: the newest with id < before; `after`: the oldest
    with id > after. `has_more` looks in the page's direction.
    """
    queryset = Message.objects.filter(room=room, deleted__isnull=True).select_related("author", "reply_to__author")
    if after is not None:
        page = list(queryset.filter(id__gt=after).order_by("id")[: limit + 1])
        has_more = len(page) > limit
        return page[:limit], has_more
    if before is not None:
        queryset = queryset.filter(id__lt=before)
    page = list(queryset.order_by("-id")[: limit + 1])
    has_more = len(page) > limit
    return list(reversed(page[:limit])), has_more


def messages_after(*, room_id: int, after: int, limit: int) -> list[Message]:
    """Replay for a socket: messages with id > after in order, deleted ones included (caller filters)."""
    return list(
        Message.objects.filter(room_id=room_id, id__gt=after)
        .select_related("author", "room", "reply_to__author")
        .order_by("id")[:limit]
    )


def post_access(*, user_id: int, room_id: int, client_id: str | None) -> tuple[bool, bool, bool, int | None, int]:
    """(is_member, banned, muted, id of the user's message with this client_id, the room's slow
    mode seconds) in one query: the settings are re-read, never trusted from a cached `Room`.

    Posting is the hot path: plain SQL here costs a tenth of the CPU of the same query built by
    the ORM (measured while the write path was tuned; docs/realtime.md). The ban and mute
    conditions come from `restriction_active_sql`, the SQL form of `RestrictionQuerySet.active()`.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _POST_ACCESS_SQL,
            {
                "room": room_id,
                "user": user_id,
                "client_id": client_id,
                "now": connection.ops.adapt_datetimefield_value(timezone.now()),
            },
        )
        is_member, banned, muted, existing_id, slow_mode_seconds = cursor.fetchone()
    return bool(is_member), bool(banned), bool(muted), existing_id, slow_mode_seconds or 0


_POST_ACCESS_SQL = f"""
SELECT
  EXISTS (SELECT 1 FROM {Membership._meta.db_table} WHERE room_id = %(room)s AND user_id = %(user)s),
  EXISTS (SELECT 1 FROM {RoomBan._meta.db_table} b
          WHERE b.room_id = %(room)s AND b.user_id = %(user)s AND {restriction_active_sql("b")}),
  EXISTS (SELECT 1 FROM {RoomMute._meta.db_table} m
          WHERE m.room_id = %(room)s AND m.user_id = %(user)s AND {restriction_active_sql("m")}),
  (SELECT id FROM {Message._meta.db_table} WHERE author_id = %(user)s AND client_id = %(client_id)s LIMIT 1),
  (SELECT slow_mode_seconds FROM {Room._meta.db_table} WHERE id = %(room)s)
"""


def user_for_handshake(*, user_id: int):
    """The active user with this id if not banned site-wide, else None: one cheap query per handshake."""
    User = get_user_model()
    rows = User.objects.raw(
        f"SELECT * FROM {User._meta.db_table} u WHERE u.id = %s AND u.is_active = %s AND NOT EXISTS "
        f"(SELECT 1 FROM {SiteBan._meta.db_table} b WHERE b.user_id = u.id AND {restriction_active_sql('b', '%s')})",
        [user_id, True, connection.ops.adapt_datetimefield_value(timezone.now())],
    )
    return next(iter(rows), None)


class RoomReplay(NamedTuple):
    """What a connection joining a room needs: the room's last message id and version (read
    together, from one row), and the messages after its `after` (deleted ones included)."""

    last_id: int
    version: int
    messages: list[Message]


def room_replay(*, room_id: int, after: int | None, limit: int) -> RoomReplay:
    """The room's last id and version, and up to `limit` messages after `after`, for a joining
    socket or stream.

    Called after the connection's process subscribed to the room, so nothing committed later is
    missed: every message above `last_id` and every change above `version` arrives live.
    """
    last_id, version = Room.objects.filter(pk=room_id).values_list("last_message_id", "version").first() or (0, 0)
    last_id, version = last_id or 0, version or 0
    if after is None:
        return RoomReplay(last_id, version, [])
    return RoomReplay(last_id, version, messages_after(room_id=room_id, after=after, limit=limit))
