"""The write path of posts: many posts, of many rooms, stored in one transaction (group commit).

`posts_store(posts)` is the only code that inserts messages. The socket's batcher
(rooms/realtime/batcher.py) calls it with everything queued since its last batch;
`services.message_post` (REST, admin, tests) calls it with one post. Per batch:

1. per post, without the database: the body rule and the word filter (`filtered` spends no token);
2. one transaction: the batch's room rows locked in id order; one query re-checks membership,
   room ban, mute, an earlier use of each `client_id` and, for slow-mode rooms, each author's last
   post (so a ban or mute that committed is always seen, and five sockets racing in a slow-mode
   room get one acceptance); reply targets checked;
3. the rate limit for the posts still standing: one pipelined Redis round trip (rooms/ratelimit.py);
4. ids reserved and `prev_id`/`version` assigned under the locks in the order the posts came, so
   commit order is id order within every room; one INSERT for all rows, one UPDATE for the rooms;
   system reports for `flag` terms; `rooms.conversations.messages_stored` (mentions and the like).

A post that cannot be stored is answered on its own (`PostOutcome.error`); it never fails the
others. A `client_id` race with another process (the unique constraint) re-runs the batch, whose
check then finds the winner's row. Only an outage (DatabaseError, RedisError) fails a whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from chatsite import metrics
from rooms import conversations, ratelimit, wordfilter
from rooms.conversations import notification_dict
from rooms.exceptions import BadRequest, ChatError, Forbidden, NotFound, SlowMode
from rooms.models import DirectPair, Membership, Message, Room, RoomBan, RoomMute, SiteBan, restriction_active_sql
from rooms.protocol import message_body_check, message_dict, notification_frame, storable_text_check
from rooms.sanitize import sanitize_body
from rooms.sql import one_of as _one_of

CLIENT_ID_RACE_RETRIES = 3


@dataclass(frozen=True)
class PostRequest:
    """One post to store. `can_moderate`: the author owns or moderates the room (no slow mode)."""

    user_id: int
    username: str
    room_id: int
    room_slug: str
    body: str
    client_id: str | None = None
    reply_to_id: int | None = None
    can_moderate: bool = False


@dataclass
class PostOutcome:
    """What became of one post: a new message, the earlier one of its client_id, or an error."""

    request: PostRequest
    message: Message | None = None
    created: bool = False
    error: ChatError | None = None
    payload: dict[str, Any] | None = None  # message_dict(message), built once for every recipient
    flagged: tuple[str, ...] = ()
    # (user id, `notification` frame) for each user the new message notifies, sent after commit.
    notices: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _duplicate_of: int | None = field(default=None, repr=False)  # the stored message of its client_id
    _twin: PostOutcome | None = field(default=None, repr=False)  # the same client_id earlier in the batch


def posts_store(posts: Sequence[PostRequest]) -> list[PostOutcome]:
    """Store `posts` in one transaction; one outcome per post, in order. Raises only for an
    outage (DatabaseError, RedisError), in which case nothing of the batch is stored."""
    outcomes = [PostOutcome(request=post) for post in posts]
    for outcome in outcomes:
        try:
            message_body_check(outcome.request.body)
            if outcome.request.client_id is not None:
                storable_text_check(outcome.request.client_id, field="client_id")
            reply_to_id = outcome.request.reply_to_id
            if reply_to_id is not None and not (
                isinstance(reply_to_id, int) and not isinstance(reply_to_id, bool) and 0 < reply_to_id < 2**63
            ):
                raise BadRequest(f'"reply_to" must be the id of a message of {outcome.request.room_slug!r}.')
            outcome.flagged = wordfilter.screen(text=outcome.request.body, room_id=outcome.request.room_id).flagged
        except ChatError as error:
            outcome.error = error
    charged: set[int] = set()  # posts whose token is spent: a re-run must not spend it again
    standing = [outcome for outcome in outcomes if outcome.error is None]
    for attempt in range(CLIENT_ID_RACE_RETRIES):
        if not standing:
            break
        try:
            with transaction.atomic():
                _store(standing, charged)
            break
        except IntegrityError:
            # Another process stored one of these client_ids first; the re-run's check finds its row.
            for outcome in standing:
                outcome.message, outcome.created, outcome.payload, outcome.error = None, False, None, None
                outcome.notices = []
                outcome._duplicate_of = outcome._twin = None
            if attempt == CLIENT_ID_RACE_RETRIES - 1:
                raise
    _answer_duplicates(outcomes)
    created = sum(1 for outcome in outcomes if outcome.created)
    if created:
        metrics.MESSAGES_ACCEPTED.inc(created)
    return outcomes


def _store(outcomes: list[PostOutcome], charged: set[int]) -> None:
    from rooms.services import report_by_word_filter  # services imports this module

    now = timezone.now()
    room_ids = sorted({outcome.request.room_id for outcome in outcomes})
    rooms = _lock_rooms(room_ids)
    access = _Access.read(outcomes, rooms, now)
    candidates: list[PostOutcome] = []
    seen_client_ids: dict[tuple[int, str], PostOutcome] = {}
    last_post: dict[tuple[int, int], datetime] = dict(access.last_created)
    for outcome in outcomes:
        post = outcome.request
        room = rooms.get(post.room_id)
        key = (post.user_id, post.client_id) if post.client_id is not None else None
        if key is not None and key in access.client_ids:
            outcome._duplicate_of = access.client_ids[key]
            continue
        if key is not None and key in seen_client_ids:
            outcome._twin = seen_client_ids[key]
            continue
        refusal = _refusal(post, room, access, last_post, now)
        if refusal is not None:
            outcome.error = refusal
            continue
        if key is not None:
            seen_client_ids[key] = outcome
        if room is not None and room.slow_mode_seconds and not post.can_moderate:
            last_post[(post.room_id, post.user_id)] = now
        candidates.append(outcome)
    to_charge = [outcome for outcome in candidates if id(outcome) not in charged]
    refusals = ratelimit.consume_many(user_ids=[outcome.request.user_id for outcome in to_charge], action="message")
    for outcome, refusal in zip(to_charge, refusals, strict=True):
        if refusal is not None:
            outcome.error = refusal
        else:
            charged.add(id(outcome))
    accepted = [outcome for outcome in candidates if outcome.error is None]
    if not accepted:
        return
    for outcome in accepted:
        outcome.message = Message(
            room_id=outcome.request.room_id,
            author_id=outcome.request.user_id,
            body=sanitize_body(outcome.request.body),
            body_raw=outcome.request.body,
            created=now,
            client_id=outcome.request.client_id,
            reply_to_id=outcome.request.reply_to_id,
        )
        outcome.created = True
    messages = [outcome.message for outcome in accepted if outcome.message is not None]
    _insert(messages, rooms)
    replies = access.reply_targets
    for outcome in accepted:
        message = outcome.message
        assert message is not None
        if message.reply_to_id is not None:
            message.reply_to = replies[message.reply_to_id]
        if outcome.flagged:
            report_by_word_filter(message=message, terms=outcome.flagged)
    notifications = conversations.messages_stored(
        messages, rooms={room_id: room.kind for room_id, room in rooms.items()}
    )
    for outcome in accepted:
        assert outcome.message is not None
        outcome.payload = message_dict(
            outcome.message, room_slug=outcome.request.room_slug, author_username=outcome.request.username
        )
        outcome.notices = [
            (
                row.user_id,
                notification_frame(
                    notification_dict(row, message=outcome.payload, room_slug=outcome.request.room_slug)
                ),
            )
            for row in notifications.get(outcome.message.id, ())
        ]


@dataclass
class _RoomRow:
    id: int
    last_message_id: int
    version: int
    slow_mode_seconds: int
    kind: conversations.RoomKind


def _lock_rooms(room_ids: list[int]) -> dict[int, _RoomRow]:
    """The batch's rooms, their rows locked in id order (no deadlock between two batches)."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    params: list[Any] = []
    sql = (
        f"SELECT id, last_message_id, version, slow_mode_seconds, is_private, kind FROM {Room._meta.db_table} "
        f"WHERE id {_one_of(room_ids, params)} ORDER BY id{lock}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {
            row[0]: _RoomRow(
                row[0],
                row[1] or 0,
                row[2] or 0,
                row[3] or 0,
                conversations.RoomKind(bool(row[4]), row[5] == Room.Kind.DM),
            )
            for row in cursor.fetchall()
        }


@dataclass
class _Access:
    """Everything the batch's refusals need, read in one query under the room locks."""

    members: set[tuple[int, int]]
    banned: set[tuple[int, int]]
    muted: set[tuple[int, int]]
    client_ids: dict[tuple[int, str], int]  # (author, client_id) -> message id
    last_created: dict[tuple[int, int], datetime]  # (room, author) -> last post, slow-mode rooms only
    reply_targets: dict[int, Message]
    # DMs of the batch one of whose two users is banned site-wide or deactivated (CONTRACT §5:
    # readable, but no new messages).
    closed_dms: set[int] = field(default_factory=set)

    @classmethod
    def read(cls, outcomes: list[PostOutcome], rooms: dict[int, _RoomRow], now: datetime) -> _Access:
        posts = [outcome.request for outcome in outcomes]
        room_ids = sorted({post.room_id for post in posts})
        user_ids = sorted({post.user_id for post in posts})
        client_ids = sorted({post.client_id for post in posts if post.client_id is not None})
        slow_rooms = [room_id for room_id in room_ids if room_id in rooms and rooms[room_id].slow_mode_seconds]
        now_value = connection.ops.adapt_datetimefield_value(now)
        params: list[Any] = []
        # The first branch names the column types (PostgreSQL would take NULL for text).
        parts = [
            "SELECT 'm', room_id, user_id, CAST(NULL AS text), CAST(NULL AS timestamp with time zone) "
            f"FROM {Membership._meta.db_table} "
            f"WHERE room_id {_one_of(room_ids, params)} AND user_id {_one_of(user_ids, params)}"
        ]
        for kind, model in (("b", RoomBan), ("u", RoomMute)):
            part = (
                f"SELECT '{kind}', r.room_id, r.user_id, NULL, NULL FROM {model._meta.db_table} r "
                f"WHERE r.room_id {_one_of(room_ids, params)} AND r.user_id {_one_of(user_ids, params)} "
                f"AND {restriction_active_sql('r', '%s')}"
            )
            params.append(now_value)
            parts.append(part)
        if client_ids:
            parts.append(
                f"SELECT 'c', id, author_id, client_id, NULL FROM {Message._meta.db_table} "
                f"WHERE author_id {_one_of(user_ids, params)} AND client_id {_one_of(client_ids, params)}"
            )
        if slow_rooms:
            parts.append(
                f"SELECT 's', room_id, author_id, NULL, MAX(created) FROM {Message._meta.db_table} "
                f"WHERE room_id {_one_of(slow_rooms, params)} AND author_id {_one_of(user_ids, params)} "
                "GROUP BY room_id, author_id"
            )
        dm_rooms = [room_id for room_id in room_ids if room_id in rooms and rooms[room_id].kind.is_dm]
        if dm_rooms:
            user_table = get_user_model()._meta.db_table
            part = (
                f"SELECT 'd', p.room_id, NULL, NULL, NULL FROM {DirectPair._meta.db_table} p "
                f"WHERE p.room_id {_one_of(dm_rooms, params)} AND EXISTS (SELECT 1 FROM {user_table} du "
                "WHERE du.id IN (p.user_low_id, p.user_high_id) AND (du.is_active = %s OR EXISTS "
                f"(SELECT 1 FROM {SiteBan._meta.db_table} sb WHERE sb.user_id = du.id "
                f"AND {restriction_active_sql('sb', '%s')})))"
            )
            params.extend([False, now_value])
            parts.append(part)
        access = cls(set(), set(), set(), {}, {}, {})
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            for kind, first, second, text, moment in cursor.fetchall():
                if kind == "m":
                    access.members.add((first, second))
                elif kind == "b":
                    access.banned.add((first, second))
                elif kind == "u":
                    access.muted.add((first, second))
                elif kind == "c":
                    access.client_ids[(second, text)] = first
                elif kind == "s" and moment is not None:
                    access.last_created[(first, second)] = _aware(moment)
                elif kind == "d":
                    access.closed_dms.add(first)
        reply_ids = sorted({post.reply_to_id for post in posts if post.reply_to_id is not None})
        if reply_ids:
            access.reply_targets = Message.objects.select_related("author").in_bulk(reply_ids)
        return access


def _aware(moment: datetime | str) -> datetime:
    """A raw cursor's timestamp (SQLite returns text) as an aware datetime."""
    if isinstance(moment, str):
        parsed = parse_datetime(moment)
        assert parsed is not None, moment
        moment = parsed
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


def _refusal(
    post: PostRequest,
    room: _RoomRow | None,
    access: _Access,
    last_post: dict[tuple[int, int], datetime],
    now: datetime,
) -> ChatError | None:
    pair = (post.room_id, post.user_id)
    if room is None:
        return NotFound(f"No room {post.room_slug!r}.")
    if pair not in access.members:
        return Forbidden(f"You are not a member of {post.room_slug!r}; join it first.")
    if pair in access.banned:
        return Forbidden(f"You are banned from {post.room_slug!r}.")
    if pair in access.muted:
        return Forbidden(f"You are muted in {post.room_slug!r}: you may read but not post.")
    if post.room_id in access.closed_dms:
        return Forbidden("This DM is closed: the other user is banned or deactivated. You may still read it.")
    if post.reply_to_id is not None:
        target = access.reply_targets.get(post.reply_to_id)
        if target is None or target.room_id != post.room_id or target.deleted is not None:
            return BadRequest(f'"reply_to": no message {post.reply_to_id} in {post.room_slug!r} to reply to.')
    if room.slow_mode_seconds and not post.can_moderate:
        last = last_post.get(pair)
        if last is not None:
            wait = (last + timedelta(seconds=room.slow_mode_seconds) - now).total_seconds()
            if wait > 0:
                return SlowMode(
                    f"Slow mode: one message every {room.slow_mode_seconds} s in this room.",
                    retry_after=round(wait, 3),
                )
    return None


def _insert(messages: list[Message], rooms: dict[int, _RoomRow]) -> None:
    """Give each message its id, `prev_id` and `version` in order, under the room locks, and store
    them with their rooms' new `last_message_id` and `version`."""
    if connection.vendor == "postgresql":
        _insert_postgresql(messages, rooms)
        return
    # SQLite: one process, and the write lock of the transaction serialises writers.
    for message in messages:
        room = rooms[message.room_id]
        message.prev_id = room.last_message_id
        room.version += 1
        message.version = room.version
        message.save(force_insert=True)
        room.last_message_id = message.id
    for room_id in sorted({message.room_id for message in messages}):
        room = rooms[room_id]
        Room.objects.filter(pk=room_id).update(last_message_id=room.last_message_id, version=room.version)


_RESERVE_IDS_SQL = (
    f"SELECT nextval(pg_get_serial_sequence('{Message._meta.db_table}', 'id')) FROM generate_series(1, %s)"
)

# Every row of a batch has the same `created` (the batch's one `now`): one parameter, not an array.
_INSERT_SQL = f"""
INSERT INTO {Message._meta.db_table}
  (id, room_id, author_id, body, body_raw, created, client_id, prev_id, version, reply_to_id)
SELECT u.id, u.room_id, u.author_id, u.body, u.body_raw, %s::timestamptz, u.client_id, u.prev_id, u.version,
       u.reply_to_id
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::varchar[], %s::bigint[],
            %s::bigint[], %s::bigint[]) AS u(id, room_id, author_id, body, body_raw, client_id, prev_id, version,
                                             reply_to_id)
"""

_ROOMS_UPDATE_SQL = f"""
UPDATE {Room._meta.db_table} AS r SET last_message_id = v.last_id, version = v.version
FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS v(id, last_id, version) WHERE r.id = v.id
"""


def _bigint_array(values: Sequence[int | None]) -> str:
    """A `bigint[]` literal, `{1,2,NULL}`: psycopg's list dumper inspects and quotes each element
    in Python (a visible share of a batch's CPU in bench profiles); `:d` also refuses a non-number."""
    return "{" + ",".join(["NULL" if value is None else f"{value:d}" for value in values]) + "}"


def _insert_postgresql(messages: list[Message], rooms: dict[int, _RoomRow]) -> None:
    # Plain SQL: the ORM's bulk_create costs several times the CPU on this hot path, and the ids
    # must be known before the rows are written (each one's prev_id is its predecessor's id).
    with connection.cursor() as cursor:
        cursor.execute(_RESERVE_IDS_SQL, [len(messages)])
        ids = sorted(row[0] for row in cursor.fetchall())
        for message, message_id in zip(messages, ids, strict=True):
            room = rooms[message.room_id]
            message.id = message_id
            message.prev_id = room.last_message_id
            room.version += 1
            message.version = room.version
            room.last_message_id = message_id
            message._state.adding, message._state.db = False, connection.alias
        created = messages[0].created
        if any(m.created != created for m in messages):
            raise ValueError("a batch's messages must share one `created` (posts_store's `now`)")
        cursor.execute(
            _INSERT_SQL,
            [
                created,
                _bigint_array([m.id for m in messages]),
                _bigint_array([m.room_id for m in messages]),
                _bigint_array([m.author_id for m in messages]),
                [m.body for m in messages],
                [m.body_raw for m in messages],
                [m.client_id for m in messages],
                _bigint_array([m.prev_id for m in messages]),
                _bigint_array([m.version for m in messages]),
                _bigint_array([m.reply_to_id for m in messages]),
            ],
        )
        touched = sorted({m.room_id for m in messages})
        cursor.execute(
            _ROOMS_UPDATE_SQL,
            [
                _bigint_array(touched),
                _bigint_array([rooms[r].last_message_id for r in touched]),
                _bigint_array([rooms[r].version for r in touched]),
            ],
        )


def _answer_duplicates(outcomes: list[PostOutcome]) -> None:
    """A resend of a stored client_id answers with the stored message (not counted, not broadcast)."""
    earlier_ids = [o._duplicate_of for o in outcomes if o._duplicate_of is not None]
    stored = (
        Message.objects.select_related("room", "author", "reply_to__author").in_bulk(earlier_ids) if earlier_ids else {}
    )
    for outcome in outcomes:
        if outcome._twin is not None:  # the same client_id twice in this batch: the first one's answer
            twin = outcome._twin
            outcome.message, outcome.error, outcome.payload = twin.message, twin.error, twin.payload
        elif outcome._duplicate_of is not None:
            outcome.message = stored.get(outcome._duplicate_of)
            if outcome.message is None:  # deleted in between
                outcome.error = NotFound("The message stored with this client_id is gone.")
            else:
                outcome.payload = message_dict(outcome.message)
