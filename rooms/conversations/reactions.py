"""Reactions (CONTRACT §5): one user's emoji on one message, the message's `reactions` summary
and the `reaction` broadcast. REST (rooms/api/reactions.py) and the socket's `react` frame call
these; the emoji rule is `emoji_check`, defined once here."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import emoji as emoji_data
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, F, Min, Q, Window
from django.db.models.functions import RowNumber

from rooms import ratelimit
from rooms.conversations.versions import room_version_next
from rooms.exceptions import BadRequest, Forbidden, NotFound
from rooms.models import DirectPair, Message, Reaction, Room, SiteBan
from rooms.protocol import reaction_frame
from rooms.realtime import events
from rooms.selectors import (
    message_get_visible,
    user_is_member,
    user_is_moderator,
    user_is_room_banned,
    user_is_room_muted,
    user_is_site_banned,
)

MAX_DISTINCT_EMOJI = 20
USERS_LISTED = 50
SHORT_CODE_RE = re.compile(r":[a-z0-9_+\-]{1,32}:")
EMOJI_MAX_CHARS = 32  # the longest RGI sequence (a family with skin tones) has 11 code points

_EMOJI_RULE = 'one emoji (such as "👍" or "🇫🇷") or a short code ":name:" of 1-32 characters a-z 0-9 _ + -'


@cache
def _fully_qualified() -> dict[str, str]:
    """Each emoji without its variation selectors -> its fully-qualified form (❤ -> ❤️)."""
    qualified = emoji_data.STATUS["fully_qualified"]
    return {
        text.replace("\ufe0f", ""): text for text, data in emoji_data.EMOJI_DATA.items() if data["status"] == qualified
    }


def emoji_check(value: Any) -> str:
    """The one rule for a reaction's `emoji`: a single emoji sequence (per the `emoji` library's
    Unicode data) or a `:short_code:`. Returns it in its stored form (an emoji fully qualified, so
    "❤" and "❤️" are one reaction); BadRequest for words, markup, whitespace, two emoji."""
    if not isinstance(value, str):
        raise BadRequest(f'"emoji" must be a string: {_EMOJI_RULE}.')
    if SHORT_CODE_RE.fullmatch(value):
        return value
    if len(value) <= EMOJI_MAX_CHARS and emoji_data.is_emoji(value):
        return _fully_qualified().get(value.replace("\ufe0f", ""), value)
    raise BadRequest(f'"emoji" must be {_EMOJI_RULE}; got {value[:40]!r}.')


def reaction_summary(*, message_id: int) -> list[dict[str, Any]]:
    """The message's `reactions` from its rows: [{emoji, count, users}] in order of each emoji's
    first (still standing) reaction, `users` the first 50 reactors in reaction order. One query,
    reading at most 50 rows per emoji."""
    by_emoji = [F("emoji")]
    rows = (
        Reaction.objects.filter(message_id=message_id)
        .annotate(
            rank=Window(RowNumber(), partition_by=by_emoji, order_by=F("id").asc()),
            total=Window(Count("id"), partition_by=by_emoji),
            first_id=Window(Min("id"), partition_by=by_emoji),
        )
        .filter(rank__lte=USERS_LISTED)
        .order_by("first_id", "id")
        .values_list("emoji", "user__username", "total")
    )
    summary: dict[str, dict[str, Any]] = {}
    for emoji, username, total in rows:
        entry = summary.setdefault(emoji, {"emoji": emoji, "count": total, "users": []})
        entry["users"].append(username)
    return list(summary.values())


def reaction_message_get(*, user, message_id: int, room_slug: str | None = None) -> Message:
    """The live message a user may see (and, with `room_slug`, of that room): NotFound otherwise."""
    message = message_get_visible(user=user, message_id=message_id)
    if room_slug is not None and message.room.slug != room_slug:
        raise NotFound(f"No message {message_id} in {room_slug!r}.")
    return message


def _reactor_check(*, user, room: Room) -> None:
    """Reacting is posting, for moderation: a member of the room who may post in it."""
    if not user_is_member(user_id=user.id, room_id=room.id):
        if room.is_private and not user_is_moderator(user):
            raise NotFound(f"No room {room.slug!r}.")
        raise Forbidden(f"You are not a member of {room.slug!r}; join it first.")
    if user_is_room_banned(user_id=user.id, room_id=room.id):
        raise Forbidden(f"You are banned from {room.slug!r}.")
    if user_is_room_muted(user_id=user.id, room_id=room.id):
        raise Forbidden(f"You are muted in {room.slug!r}: you may read but not post or react.")
    if user_is_site_banned(user_id=user.id):
        raise Forbidden("You are banned from this site.")
    if room.is_dm and _dm_partner_is_site_banned(user=user, room=room):
        # §5: such a DM stays readable and refuses new messages; a reaction is a post here too.
        raise Forbidden("This DM is closed: the other user is banned or deactivated. You may still read it.")


def _dm_partner_is_site_banned(*, user, room: Room) -> bool:
    """A DM one of whose two users is banned site-wide or deactivated: closed, as posting reads
    it (rooms/posting.py, the batch's access query)."""
    pair = DirectPair.objects.filter(room_id=room.id)
    users = get_user_model().objects.filter(
        Q(pk__in=pair.values("user_low_id")) | Q(pk__in=pair.values("user_high_id"))
    )
    return users.filter(Q(is_active=False) | Q(pk__in=SiteBan.objects.active().values("user_id"))).exists()


def _change_check(*, user, message: Message, emoji: Any) -> str:
    """What every reaction change checks before taking locks: the emoji rule (its stored form
    returned), a live message, a user who may post in its room."""
    emoji = emoji_check(emoji)
    if message.is_deleted:
        raise NotFound(f"No message {message.id}.")
    _reactor_check(user=user, room=message.room)
    return emoji


def _locked(message: Message) -> Message:
    """Lock the room's row, then the message's (the order every change of a message takes, as in
    services.message_edit); the locked row, NotFound if it was deleted meanwhile."""
    Room.objects.select_for_update().filter(pk=message.room_id).values_list("pk", flat=True).first()
    current = (
        Message.objects.select_for_update()
        .filter(pk=message.pk, deleted__isnull=True)
        .values("reactions", "version")
        .first()
    )
    if current is None:
        raise NotFound(f"No message {message.id}.")
    message.reactions, message.version = current["reactions"], current["version"]
    return message


def _changed(*, user, message: Message, emoji: str, added: bool) -> None:
    """After a row was inserted or deleted: the new summary and version, stored and broadcast."""
    version = room_version_next(room_id=message.room_id)
    summary = reaction_summary(message_id=message.id) or None
    Message.objects.filter(pk=message.pk).update(reactions=summary, version=version)
    message.reactions, message.version = summary, version
    events.reaction_changed(message=message, frame=_frame(message=message, emoji=emoji, user=user, added=added))


def _count(message: Message, emoji: str) -> int:
    return next((entry["count"] for entry in message.reactions or [] if entry["emoji"] == emoji), 0)


def _frame(*, message: Message, emoji: str, user, added: bool) -> dict[str, Any]:
    return reaction_frame(
        room=message.room.slug,
        message_id=message.id,
        emoji=emoji,
        user=user.username,
        added=added,
        count=_count(message, emoji),
        version=message.version,
    )


def reaction_add(*, user, message: Message, emoji: str) -> bool:
    """`user` reacts to `message` with `emoji`; True when added, False when already so (nothing
    changes, nothing is broadcast). `message` gets its new `reactions` and `version`.

    Refused like a post (not a member: 403, or 404 for a private room; banned, muted, site-banned:
    403), a deleted message 404, a 21st distinct emoji 400. Spends a token of the `reaction` rate
    limit (CHAT_REACTION_RATE) only when something changes. Locks the room row, then the message's.
    """
    emoji = _change_check(user=user, message=message, emoji=emoji)
    with transaction.atomic():
        _locked(message)
        if Reaction.objects.filter(message_id=message.id, user_id=user.id, emoji=emoji).exists():
            return False
        present = {entry["emoji"] for entry in message.reactions or []}
        if emoji not in present and len(present) >= MAX_DISTINCT_EMOJI:
            raise BadRequest(
                f"A message has at most {MAX_DISTINCT_EMOJI} different emoji; react with one already on it."
            )
        ratelimit.consume(user_id=user.id, action="reaction")
        Reaction.objects.create(message_id=message.id, user_id=user.id, emoji=emoji)
        _changed(user=user, message=message, emoji=emoji, added=True)
    return True


def reaction_remove(*, user, message: Message, emoji: str) -> None:
    """`user` takes back their `emoji` on `message`; NotFound when they had not reacted so.

    The same refusals as `reaction_add` (a muted or banned user changes nothing in the room) and
    the same rate limit and locks; broadcast `reaction` with `added: false`."""
    emoji = _change_check(user=user, message=message, emoji=emoji)
    with transaction.atomic():
        _locked(message)
        reaction = Reaction.objects.filter(message_id=message.id, user_id=user.id, emoji=emoji).first()
        if reaction is None:
            raise NotFound(f"You have not reacted {emoji} to message {message.id}.")
        ratelimit.consume(user_id=user.id, action="reaction")
        reaction.delete()
        _changed(user=user, message=message, emoji=emoji, added=False)


def reaction_set(
    *, user, room_slug: str, message_id: int, emoji: str, remove: bool = False
) -> tuple[dict[str, Any], bool]:
    """The socket's `react` frame: add (or with `remove`, take back) a reaction to a message of
    `room_slug`. Returns the `reaction` frame of the state after it and whether anything changed
    (the broadcast went out on commit); raises what `reaction_add` / `reaction_remove` raise."""
    message = reaction_message_get(user=user, message_id=message_id, room_slug=room_slug)
    emoji = emoji_check(emoji)
    if remove:
        reaction_remove(user=user, message=message, emoji=emoji)
        changed = True
    else:
        changed = reaction_add(user=user, message=message, emoji=emoji)
    return _frame(message=message, emoji=emoji, user=user, added=not remove), changed
