"""Read state (CONTRACT §5): the room object's per-user fields, the read marker and `read_state`.

One definition of each number, as query expressions over the caller's rooms, so a page of rooms
is one query whatever the number of rooms or messages:

- `last_read_id`: the user's `Membership.last_read_id` (NULL, shown as 0, for a non-member);
- `unread_count`: live messages above the marker not written by the user, counted on the partial
  index `message_room_live` (room, id, author) WHERE deleted IS NULL, so the count only walks the
  index entries above the marker, never the room's history below it;
- `mention_count`: the user's unread notifications of the room (partial index
  `notification_unread`), 0 for a non-member.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce, Greatest, Least

from rooms.models import Membership, Message, Notification, Room
from rooms.protocol import read_marker_check, read_state_frame
from rooms.realtime import events

READ_STATE_FIELDS = ("last_read_id", "unread_count", "mention_count")


def _count(queryset: QuerySet) -> Coalesce:
    """COUNT(*) of a correlated queryset as a scalar subquery (0 rather than NULL when empty)."""
    return Coalesce(
        Subquery(queryset.order_by().values("room_id").annotate(n=Count("*")).values("n")[:1]),
        Value(0),
        output_field=IntegerField(),
    )


def rooms_with_read_state(queryset: QuerySet[Room], *, user) -> QuerySet[Room]:
    """`queryset` annotated for `user` with `joined`, `read_marker` (last_read_id, 0 for a
    non-member), `unread_count`, `mention_count` and `member_count`: correlated subqueries, which
    PostgreSQL evaluates only for the rows of the page it returns."""
    marker = Subquery(Membership.objects.filter(room_id=OuterRef("pk"), user_id=user.id).values("last_read_id")[:1])
    # The same marker, one level deeper (inside the message count). A non-member has none:
    # `id > NULL` matches nothing, so their unread count is 0.
    marker_inside = Subquery(
        Membership.objects.filter(room_id=OuterRef(OuterRef("pk")), user_id=user.id).values("last_read_id")[:1]
    )
    unread = Message.objects.filter(room_id=OuterRef("pk"), deleted__isnull=True, id__gt=marker_inside).exclude(
        author_id=user.id
    )
    mentions = Notification.objects.filter(user_id=user.id, room_id=OuterRef("pk"), is_read=False)
    is_member = Exists(Membership.objects.filter(room_id=OuterRef("pk"), user_id=user.id))
    return queryset.annotate(
        joined=is_member,
        read_marker=Coalesce(marker, Value(0)),
        unread_count=_count(unread),
        mention_count=Case(When(is_member, then=_count(mentions)), default=Value(0), output_field=IntegerField()),
        member_count=_count(Membership.objects.filter(room_id=OuterRef("pk"))),
    )


def room_with_read_state(*, user, room: Room) -> Room:
    """`room` re-read with the annotations of `rooms_with_read_state` (one query), for answers
    that carry a room object (create, PATCH, POST dms/)."""
    return rooms_with_read_state(Room.objects.select_related("owner").filter(pk=room.pk), user=user).get()


def room_read_state(*, user, room: Room) -> dict[str, Any]:
    """`{room, last_read_id, unread_count, mention_count}` of `user` in `room` now (one query): the
    answer of POST rooms/{slug}/read/ and the body of the `read_state` frame. Anything that changes
    these numbers for a user (the marker, notifications read) sends it with `read_state_send`."""
    annotated: Any = rooms_with_read_state(Room.objects.filter(pk=room.pk), user=user).get()
    return read_state_of(annotated)


def read_state_of(room: Room) -> dict[str, Any]:
    """The read state a room read through `rooms_with_read_state` carries."""
    annotated: Any = room
    return {
        "room": room.slug,
        "last_read_id": int(annotated.read_marker or 0),
        "unread_count": int(annotated.unread_count or 0),
        "mention_count": int(annotated.mention_count or 0),
    }


def read_state_send(*, user, room: Room) -> dict[str, Any]:
    """Compute `room_read_state` and send it as a `read_state` frame to every socket and stream
    of the user, on every process, once the current transaction commits. Returns the state."""
    state = room_read_state(user=user, room=room)
    events.user_frame(user.id, read_state_frame(state))
    return state


def room_read(*, user, room: Room, last_read_id: Any) -> dict[str, Any]:
    """Move the user's read marker in `room` to `last_read_id` (never back; beyond the room's last
    message it is the last message), mark the room's notifications up to it read, and send
    `read_state` to every socket of the user. Returns the state (`room_read_state`).

    The caller checked access (rooms.selectors.room_get_for_member). One UPDATE does the
    never-back and the clamp against the room's current last message in the database, under the
    membership row's lock, so concurrent calls (two devices) can only move the marker forward.
    """
    target = read_marker_check(last_read_id)
    with transaction.atomic():
        last_message = Subquery(Room.objects.filter(pk=room.pk).values("last_message_id")[:1])
        Membership.objects.filter(room_id=room.pk, user_id=user.id).update(
            last_read_id=Greatest(F("last_read_id"), Least(Value(target), last_message))
        )
        marker = Membership.objects.filter(room_id=room.pk, user_id=user.id).values_list("last_read_id", flat=True)
        Notification.objects.filter(
            user_id=user.id, room_id=room.pk, is_read=False, message_id__lte=Subquery(marker[:1])
        ).update(is_read=True)
        return read_state_send(user=user, room=room)


def room_marker_start(*, room: Room) -> int:
    """Where a new member's read marker starts: the room's last message id now (a newcomer does
    not inherit the room's whole history as unread; docs/contract-notes.md)."""
    return Room.objects.filter(pk=room.pk).values_list("last_message_id", flat=True).first() or 0


def room_read_by_slug(*, user, slug: str, last_read_id: Any) -> dict[str, Any]:
    """`room_read` for the room `slug` as the WebSocket `read` frame names it: members only (a
    private room the user is not in: NotFound; not a member, or banned: Forbidden)."""
    from rooms.selectors import room_get_for_member  # selectors imports this module

    room = room_get_for_member(user=user, slug=slug)
    return room_read(user=user, room=room, last_read_id=last_read_id)
