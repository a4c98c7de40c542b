"""Mentions stored and notifications (CONTRACT §5): what a new, edited or deleted message does to
`Message.mentions` and to Notification rows, the notifications list and marking them read.

A message concerns each other user it mentions, whose message it replies to, or with whom it is in
a DM; the first that applies is the notification's kind (mention > reply > dm). Only users who may
read the room count: active, not banned site-wide, not banned from the room, and for a private room
or a DM a member. The post path (`messages_plan` through `messages_stored`) reads all of that in a
constant number of queries per batch, and in none when no post of it has an `@`, a reply or a DM.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from rooms.conversations.mentions import (
    MentionToken,
    mention_names,
    mention_tokens,
    mentions_resolve,
    username_key,
)
from rooms.conversations.reads import read_state_of, rooms_with_read_state
from rooms.exceptions import BadRequest
from rooms.models import Membership, Message, Notification, Room, RoomBan, SiteBan, restriction_active_sql
from rooms.protocol import iso, read_state_frame
from rooms.realtime import events
from rooms.sql import one_of

NOTIFICATIONS_PAGE = 50
MAX_IDS_PER_READ = 500


@dataclass(frozen=True)
class RoomKind:
    """What deciding who may read a room needs of it."""

    is_private: bool
    is_dm: bool

    @classmethod
    def of(cls, room: Room) -> RoomKind:
        return cls(is_private=room.is_private, is_dm=room.is_dm)


@dataclass
class MessagePlan:
    """What one message should store: its mentions and the kind of each other user's notification."""

    mentions: list[str]
    kinds: dict[int, str] = field(default_factory=dict)  # user id -> Notification.Kind


def is_concerning(message: Message, room: RoomKind) -> bool:
    """Whether a message may concern anyone: an `@` in its text, a reply, or a DM. The post path
    skips every query for a batch of messages that are none of these."""
    return "@" in message.body_raw or message.reply_to_id is not None or room.is_dm


@dataclass
class _Readers:
    """Who may read which of some rooms, read in one query (see `_readers`)."""

    rooms: Mapping[int, RoomKind]
    members: set[tuple[int, int]]
    banned: set[tuple[int, int]]
    unable: set[int]  # inactive or banned site-wide
    dm_members: dict[int, set[int]]

    def may_read(self, room_id: int, user_id: int) -> bool:
        if user_id in self.unable or (room_id, user_id) in self.banned:
            return False
        room = self.rooms[room_id]
        return not (room.is_private or room.is_dm) or (room_id, user_id) in self.members


def _readers(rooms: Mapping[int, RoomKind], room_ids: set[int], user_ids: set[int]) -> _Readers:
    """Memberships and room bans of `user_ids` in `room_ids`, every member of the DMs among them,
    and which of all these users are inactive or banned site-wide: one query."""
    dm_ids = sorted(room_id for room_id in room_ids if rooms[room_id].is_dm)
    readers = _Readers(rooms=rooms, members=set(), banned=set(), unable=set(), dm_members={})
    if not user_ids and not dm_ids:
        return readers
    users = sorted(user_ids)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params: list[Any] = []

    def whose(alias: str) -> str:
        # The given users, and everyone in the DMs (whose other member the query finds).
        conditions = []
        if users:
            conditions.append(f"{alias}.user_id {one_of(users, params)}")
        if dm_ids:
            conditions.append(f"{alias}.room_id {one_of(dm_ids, params)}")
        return "(" + " OR ".join(conditions) + ")"

    membership, ban = Membership._meta.db_table, RoomBan._meta.db_table
    user_table, site_ban = get_user_model()._meta.db_table, SiteBan._meta.db_table
    parts = [f"SELECT 'm', m.room_id, m.user_id FROM {membership} m WHERE m.room_id {one_of(sorted(room_ids), params)}"]
    parts[0] += f" AND {whose('m')}"
    part = f"SELECT 'b', b.room_id, b.user_id FROM {ban} b WHERE b.room_id {one_of(sorted(room_ids), params)}"
    part += f" AND {whose('b')} AND {restriction_active_sql('b', '%s')}"
    params.append(now)
    parts.append(part)
    who = []
    if users:
        who.append(f"u.id {one_of(users, params)}")
    if dm_ids:
        who.append(f"u.id IN (SELECT d.user_id FROM {membership} d WHERE d.room_id {one_of(dm_ids, params)})")
    part = f"SELECT 'x', 0, u.id FROM {user_table} u WHERE ({' OR '.join(who)}) AND (u.is_active = %s OR EXISTS "
    part += f"(SELECT 1 FROM {site_ban} s WHERE s.user_id = u.id AND {restriction_active_sql('s', '%s')}))"
    params.extend([False, now])
    parts.append(part)
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        for kind, room_id, user_id in cursor.fetchall():
            if kind == "m":
                readers.members.add((room_id, user_id))
                if room_id in dm_ids:
                    readers.dm_members.setdefault(room_id, set()).add(user_id)
            elif kind == "b":
                readers.banned.add((room_id, user_id))
            else:
                readers.unable.add(user_id)
    return readers


def users_named_query(names: set[str]) -> QuerySet:
    """The users whose username is one of `names` ignoring case (index `user_username_lower`)."""
    keys = sorted({username_key(name) for name in names})
    as_typed = sorted(name for name in names if not name.isascii())
    condition = Q(name_key__in=keys)
    if as_typed:
        condition |= Q(username__in=as_typed)
    return get_user_model().objects.annotate(name_key=Lower("username")).filter(condition).order_by("id")


def _users_named(names: set[str]) -> dict[str, tuple[int, str]]:
    """`username_key(name)` -> (id, real username) of the users any of `names` may stand for,
    ignoring case: one query. On SQLite LOWER() folds ASCII only, so a non-ASCII name is also
    looked up as typed."""
    if not names:
        return {}
    found: dict[str, tuple[int, str]] = {}
    for user_id, username in users_named_query(names).values_list("id", "username"):
        found.setdefault(username_key(username), (user_id, username))
    return found


def messages_plan(messages: Sequence[Message], rooms: Mapping[int, RoomKind]) -> dict[int, MessagePlan]:
    """Mentions and notification kinds of each concerning message (by id; `rooms` has each one's
    room). Messages with a reply must have `reply_to` loaded. Two queries at most, whatever the
    number of messages; none when no message is concerning."""
    concerning = [message for message in messages if is_concerning(message, rooms[message.room_id])]
    if not concerning:
        return {}
    tokens: dict[int, list[MentionToken]] = {message.id: mention_tokens(message.body_raw) for message in concerning}
    named = _users_named(mention_names(token for found in tokens.values() for token in found))
    user_ids = {user_id for user_id, _ in named.values()}
    user_ids.update(
        message.reply_to.author_id for message in concerning if message.reply_to_id and message.reply_to is not None
    )
    room_ids = {message.room_id for message in concerning}
    readers = _readers(rooms, room_ids, user_ids)
    ids_by_username = {username: user_id for user_id, username in named.values()}
    plans: dict[int, MessagePlan] = {}
    for message in concerning:
        lookup = {
            key: username for key, (user_id, username) in named.items() if readers.may_read(message.room_id, user_id)
        }
        plan = plans[message.id] = MessagePlan(mentions=mentions_resolve(tokens[message.id], lookup))
        candidates: list[tuple[int, str]] = [
            (ids_by_username[name], Notification.Kind.MENTION) for name in plan.mentions
        ]
        if message.reply_to_id is not None and message.reply_to is not None:
            candidates.append((message.reply_to.author_id, Notification.Kind.REPLY))
        if rooms[message.room_id].is_dm:
            members = readers.dm_members.get(message.room_id, set())
            candidates.extend((user_id, Notification.Kind.DM) for user_id in sorted(members))
        for user_id, kind in candidates:
            if (
                user_id != message.author_id
                and user_id not in plan.kinds
                and readers.may_read(message.room_id, user_id)
            ):
                plan.kinds[user_id] = kind
    return plans


def messages_notify(messages: Sequence[Message], rooms: Mapping[int, RoomKind]) -> dict[int, list[Notification]]:
    """For new messages, inside their transaction: store each one's mentions (one UPDATE, and on
    the objects, so their broadcast lists them) and create their notifications (one INSERT).
    Returns the notifications created, by message id."""
    plans = messages_plan(messages, rooms)
    if not plans:
        return {}
    mentioning = []
    for message in messages:
        plan = plans.get(message.id)
        if plan is not None and plan.mentions:
            message.mentions = plan.mentions
            mentioning.append(message)
    if mentioning:
        Message.objects.bulk_update(mentioning, ["mentions"])
    rows = [
        Notification(user_id=user_id, kind=kind, room_id=message.room_id, message=message, created=message.created)
        for message in messages
        if message.id in plans
        for user_id, kind in plans[message.id].kinds.items()
    ]
    if not rows:
        return {}
    Notification.objects.bulk_create(rows)
    created: dict[int, list[Notification]] = {}
    for row in rows:
        created.setdefault(row.message_id, []).append(row)
    return created


@dataclass
class EditOutcome:
    """What an edit did to notifications: those to announce (created, or made a mention) and the
    users whose unread mentions in the room changed."""

    announce: list[Notification] = field(default_factory=list)
    changed_user_ids: set[int] = field(default_factory=set)


def message_mentions_edit(message: Message) -> EditOutcome:
    """After an edit changed `message.body_raw` (inside its transaction, the message row locked):
    set `message.mentions` (the caller saves it). A newly mentioned user gets a `mention`
    notification (an earlier `reply` or `dm` one becomes a mention, unread); a user no longer
    mentioned loses an unread mention notification, or keeps it as `reply`/`dm` when one of those
    applies (a read one that applies to nothing else stays, read)."""
    plan = messages_plan([message], {message.room_id: RoomKind.of(message.room)}).get(message.id)
    if plan is None:
        plan = MessagePlan(mentions=[])
    message.mentions = plan.mentions or None
    outcome = EditOutcome()
    existing = {row.user_id: row for row in Notification.objects.filter(message=message)}
    now = timezone.now()
    to_create: list[Notification] = []
    for user_id, kind in plan.kinds.items():
        row = existing.get(user_id)
        if kind != Notification.Kind.MENTION:
            continue
        if row is None:
            to_create.append(
                Notification(user_id=user_id, kind=kind, room_id=message.room_id, message=message, created=now)
            )
        elif row.kind != Notification.Kind.MENTION:
            row.kind, row.is_read = Notification.Kind.MENTION, False
            row.save(update_fields=["kind", "is_read"])
            outcome.announce.append(row)
        else:
            continue
        outcome.changed_user_ids.add(user_id)
    gone: list[int] = []
    for user_id, row in existing.items():
        if row.kind != Notification.Kind.MENTION or plan.kinds.get(user_id) == Notification.Kind.MENTION:
            continue
        other = plan.kinds.get(user_id)
        if other is not None:
            row.kind = other
            row.save(update_fields=["kind"])
        elif not row.is_read:
            gone.append(row.id)
        else:
            continue
        if not row.is_read:
            outcome.changed_user_ids.add(user_id)
    if gone:
        Notification.objects.filter(id__in=gone).delete()
    if to_create:
        Notification.objects.bulk_create(to_create)
        outcome.announce.extend(to_create)
    return outcome


def message_notifications_delete(message: Message) -> set[int]:
    """A message is deleted: its notifications disappear. Returns the users who had an unread one."""
    rows = Notification.objects.filter(message_id=message.id)
    unread = set(rows.filter(is_read=False).values_list("user_id", flat=True))
    rows.delete()
    return unread


def notification_dict(notification: Notification, *, message: dict[str, Any], room_slug: str) -> dict[str, Any]:
    """The `notification` object of CONTRACT §5; `message` is the message object (message_dict)."""
    return {
        "id": notification.id,
        "kind": notification.kind,
        "room": room_slug,
        "message": message,
        "created": iso(notification.created),
        "read": notification.is_read,
    }


# ----- reads and marking read ------------------------------------------------------------------


def _readable_by(user) -> Q:
    """Notifications of rooms the user may still read (public ones, or a member), not banned from."""
    member_rooms = Membership.objects.filter(user_id=user.id).values("room_id")
    banned_rooms = RoomBan.objects.active().filter(user_id=user.id).values("room_id")
    return (Q(room__is_private=False, room__kind=Room.Kind.ROOM) | Q(room_id__in=member_rooms)) & ~Q(
        room_id__in=banned_rooms
    )


def notifications_for_user(user) -> QuerySet[Notification]:
    """The user's notifications of rooms they may still read, of messages not deleted, newest first."""
    return Notification.objects.filter(_readable_by(user), user_id=user.id, message__deleted__isnull=True).order_by(
        "-id"
    )


def notification_list(
    *, user, unread_only: bool = False, before: int | None = None, limit: int = NOTIFICATIONS_PAGE
) -> tuple[list[Notification], bool]:
    """A page of the user's notifications, newest first, and whether older ones exist: `before`
    gives those with a smaller id, `unread_only` only unread ones. Messages loaded for message_dict."""
    queryset = notifications_for_user(user).select_related(
        "room", "message__author", "message__reply_to__author", "message__room"
    )
    if unread_only:
        queryset = queryset.filter(is_read=False)
    if before is not None:
        queryset = queryset.filter(id__lt=before)
    page = list(queryset[: limit + 1])
    return page[:limit], len(page) > limit


def notification_unread_count(*, user) -> int:
    return notifications_for_user(user).filter(is_read=False).count()


def notifications_mark_read(
    *, user, ids: Iterable[int] | None = None, everything: bool = False
) -> tuple[int, set[int]]:
    """Mark the user's notifications read: those of `ids` (ids of other users' notifications are
    ignored) or, with `everything`, all. Each room whose `mention_count` this changed is sent to the
    user's sockets as `read_state` on commit. Returns (unread left, ids of those rooms)."""
    if (ids is None) == (not everything):
        raise BadRequest('Give either "ids" (a list of notification ids) or "all": true.')
    with transaction.atomic():
        rows = Notification.objects.filter(user_id=user.id, is_read=False)
        if not everything:
            rows = rows.filter(id__in=sorted(set(ids or ())))
        room_ids = set(rows.order_by().values_list("room_id", flat=True).distinct())
        if room_ids:
            rows.update(is_read=True)
            _read_states_send(user_id=user.id, room_ids=room_ids)
        return notification_unread_count(user=user), room_ids


def _read_states_send(*, user_id: int, room_ids: set[int]) -> None:
    """`read_state` of each of the rooms the user is a member of (for others mention_count is 0
    and stays 0): one query for them all, sent on commit."""
    member_rooms = Membership.objects.filter(user_id=user_id, room_id__in=sorted(room_ids)).values("room_id")
    user = get_user_model()(id=user_id)  # only the id is read
    for room in rooms_with_read_state(Room.objects.filter(pk__in=member_rooms), user=user):
        events.user_frame(user_id, read_state_frame(read_state_of(room)))


def mention_counts_changed(*, room_id: int, user_ids: Iterable[int]) -> None:
    """The unread mentions of these users in one room changed (an edit, a delete): each member's
    sockets get the room's `read_state` on commit."""
    for user_id in sorted(set(user_ids)):
        _read_states_send(user_id=user_id, room_ids={room_id})
