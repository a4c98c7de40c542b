"""Every write of chatsite: one function per action, used by WebSocket, REST and admin alike.

Each function checks permissions first, then writes inside one transaction, then schedules its
broadcast on commit (rooms/realtime/events.py). Moderation actions write one AuditLog row each.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from rooms import conversations, ratelimit, wordfilter
from rooms.conversations.dms import slug_is_reserved
from rooms.conversations.reads import room_marker_start
from rooms.conversations.versions import room_version_next
from rooms.exceptions import BadRequest, Conflict, Forbidden, NotFound, RateLimited
from rooms.models import (
    AuditLog,
    FilterTerm,
    Membership,
    Message,
    MessageRevision,
    Notification,
    Report,
    Room,
    RoomBan,
    RoomMute,
    SiteBan,
)
from rooms.posting import PostRequest, posts_store
from rooms.protocol import message_body_check, message_dict, notification_frame
from rooms.realtime import events
from rooms.sanitize import sanitize_body
from rooms.selectors import (
    user_can_moderate_room,
    user_is_member,
    user_is_moderator,
    user_is_room_banned,
    user_is_room_muted,
)

User = get_user_model()


def _audit(*, actor, action: str, room=None, target_user=None, message_id=None, reason="", **detail) -> None:
    AuditLog.objects.create(
        actor=actor,
        action=action,
        room=room,
        target_user=target_user,
        message_id=message_id,
        reason=reason or "",
        detail={key: value for key, value in detail.items() if value is not None},
    )


def _require_room_moderator(*, actor, room: Room) -> None:
    if not user_can_moderate_room(user=actor, room=room):
        raise Forbidden("Only the room's owner or a moderator may do this.")


def _user_by_username(username: str):
    user = User.objects.filter(username=username).first()
    if user is None:
        raise NotFound(f"No user {username!r}.")
    return user


def restriction_until_check(until: datetime | None) -> None:
    """A ban's or mute's end must lie ahead (None: until lifted); the admin's forms use this too."""
    if until is not None and until <= timezone.now():
        raise BadRequest('"until" must be in the future; omit it for no end.')


# ----- rooms ---------------------------------------------------------------------------------


def room_create(*, user, name: str, slug: str | None = None, topic: str = "", is_private: bool = False) -> Room:
    """Create a room owned by `user`, who becomes its first member; Conflict if the slug is taken."""
    slug = slug or slugify(name)[:64]
    if not slug:
        raise BadRequest('Give a "slug" of letters, digits, "-" or "_": none could be made from the name.')
    if slug_is_reserved(slug):
        raise BadRequest(
            f'The slug {slug!r} has the form of a DM\'s ("dm-<id>-<id>"); choose another.',
            fields={"slug": ["reserved"]},
        )
    try:
        with transaction.atomic():
            room = Room.objects.create(slug=slug, name=name, topic=topic, is_private=is_private, owner=user)
            Membership.objects.create(room=room, user=user)
    except IntegrityError:
        raise Conflict(f"The slug {slug!r} is taken; choose another.", fields={"slug": ["taken"]}) from None
    return room


def room_update(
    *, actor, room: Room, name: str | None = None, topic: str | None = None, slow_mode_seconds: int | None = None
) -> Room:
    """Change a room's name, topic or slow mode (owner or moderator); audited."""
    _require_room_moderator(actor=actor, room=room)
    changes: dict[str, Any] = {}
    if name is not None:
        room.name = changes["name"] = name
    if topic is not None:
        room.topic = changes["topic"] = topic
    if slow_mode_seconds is not None:
        if slow_mode_seconds < 0:
            raise BadRequest('"slow_mode_seconds" must be 0 (off) or more.')
        room.slow_mode_seconds = changes["slow_mode_seconds"] = slow_mode_seconds
    with transaction.atomic():
        room.save(update_fields=list(changes) or None)
        _audit(actor=actor, action=AuditLog.Action.ROOM_UPDATE, room=room, **changes)
        events.room_updated(room)
    return room


def room_join(*, user, room: Room) -> Membership:
    """Join a public room (idempotent); Forbidden when banned; NotFound for a private room."""
    if room.is_private and not user_is_member(user_id=user.id, room_id=room.id):
        raise NotFound(f"No room {room.slug!r}.")
    if user_is_room_banned(user_id=user.id, room_id=room.id):
        raise Forbidden(f"You are banned from {room.slug!r}.")
    return _membership_add(room=room, user=user)[0]


def _membership_add(*, room: Room, user) -> tuple[Membership, bool]:
    """(membership, created): a new member's read marker starts at the room's last message."""
    membership = Membership.objects.filter(room=room, user=user).first()
    if membership is not None:
        return membership, False
    return Membership.objects.get_or_create(
        room=room, user=user, defaults={"last_read_id": room_marker_start(room=room)}
    )


def room_join_by_slug(*, user, slug: str) -> Room:
    """Join a room by slug, as the WebSocket `join` does: public rooms make the user a member."""
    from rooms.selectors import room_get_visible

    room = room_get_visible(user=user, slug=slug)
    room_join(user=user, room=room)
    return room


def room_invite(*, actor, room: Room, username: str) -> Membership:
    """Add `username` to a private room (owner or moderator); audited. Never into a DM."""
    if room.is_dm:
        raise Forbidden("No one can be invited into a DM; open a DM with each person instead (POST dms/).")
    _require_room_moderator(actor=actor, room=room)
    user = _user_by_username(username)
    if user_is_room_banned(user_id=user.id, room_id=room.id):
        raise Forbidden(f"{username} is banned from {room.slug!r}; lift the ban first.")
    with transaction.atomic():
        membership, created = _membership_add(room=room, user=user)
        if created:
            _audit(actor=actor, action=AuditLog.Action.MEMBER_INVITE, room=room, target_user=user)
    return membership


def room_leave(*, user, room: Room) -> None:
    """Stop being a member; NotFound if the user was not one; a DM cannot be left (Forbidden).
    Open sockets leave the room."""
    if room.is_dm:
        raise Forbidden("A DM cannot be left: it stays between its two users.")
    with transaction.atomic():
        deleted, _ = Membership.objects.filter(room=room, user=user).delete()
        if not deleted:
            raise NotFound(f"You are not a member of {room.slug!r}.")
        events.room_user_removed(room=room, user_id=user.id)


def room_typing(*, user, room: Room) -> bool:
    """A member of `room` is typing (REST, for clients on the event stream): the others in the
    room get `typing`. Refuses non-members and users banned from the room; True if announced.

    Throttled like the socket's `typing` frame, one notice per CHAT_TYPING_INTERVAL_SECONDS, but
    per user and room in the shared cache (a REST client has no socket to keep the time on, and
    its calls may reach any process); extra notices are dropped, not errors. The cache counts
    whole seconds, so the interval is rounded up."""
    if not user_is_member(user_id=user.id, room_id=room.id):
        raise Forbidden(f"You are not a member of {room.slug!r}; join it first.")
    if user_is_room_banned(user_id=user.id, room_id=room.id):
        raise Forbidden(f"You are banned from {room.slug!r}.")
    interval = max(1, math.ceil(settings.CHAT_TYPING_INTERVAL_SECONDS))
    if not cache.add(f"typing:{room.id}:{user.id}", 1, timeout=interval):
        return False
    events.user_typing(room_id=room.id, user_id=user.id, username=user.username)
    return True


# ----- messages ------------------------------------------------------------------------------


def message_post(
    *, user, room: Room, body: str, client_id: str | None = None, reply_to: int | None = None
) -> tuple[Message, bool]:
    """Store a message and broadcast it; returns (message, created).

    The one-post form of the batch write path (rooms/posting.py `posts_store`, which the socket's
    batcher calls with many): a `client_id` the user already used returns the stored message,
    uncounted and not broadcast again; membership, room ban, mute and slow mode are checked under
    the room's row lock, the word filter before any rate-limit token is spent; ids are in commit
    order per room. A `flag` term opens a report by the system in the same transaction.
    """
    [outcome] = posts_store(
        [
            PostRequest(
                user_id=user.id,
                username=user.username,
                room_id=room.id,
                room_slug=room.slug,
                body=body,
                client_id=client_id,
                reply_to_id=reply_to,
                can_moderate=user_can_moderate_room(user=user, room=room),
            )
        ]
    )
    if outcome.error is not None:
        raise outcome.error
    message = outcome.message
    assert message is not None
    if outcome.created:
        message.room, message.author = room, user
        events.messages_created([outcome])
    return message, outcome.created


def message_edit(*, user, message: Message, body: str) -> Message:
    """The author changes a message's body; the replaced text is kept as a revision; broadcast
    `message_edited`.

    Checks authorship, room ban and mute, the word filter, then the posting rate limit (an edit
    spends a token of the same budget; a refused one spends none). An edit to the same text changes
    nothing. Mentions are parsed again: newly mentioned users are notified, those no longer
    mentioned lose their unread mention (rooms/conversations/notifications.py). Locks the message row, so concurrent edits each keep the text they replaced.
    """
    if message.author_id != user.id:
        raise Forbidden("Only the author may edit a message.")
    if message.is_deleted:
        raise NotFound(f"No message {message.id}.")
    body = message_body_check(body)
    if body == message.body_raw:
        return message
    if user_is_room_banned(user_id=user.id, room_id=message.room_id):
        raise Forbidden("You are banned from this room.")
    if user_is_room_muted(user_id=user.id, room_id=message.room_id):
        raise Forbidden("You are muted in this room: you may read but not post or edit.")
    verdict = wordfilter.screen(text=body, room_id=message.room_id)
    ratelimit.consume(user_id=user.id, action="message")
    sanitized = sanitize_body(body)
    with transaction.atomic():
        # The room's row lock first, the message's second, as every change of a message does (a
        # reaction too), so two changes never wait on each other in opposite orders.
        version = room_version_next(room_id=message.room_id)
        current = Message.objects.select_for_update().get(pk=message.pk)
        if current.is_deleted:
            raise NotFound(f"No message {message.id}.")
        now = timezone.now()
        MessageRevision.objects.create(
            message=current,
            body_raw=current.body_raw,
            body=current.body,
            written=current.edited or current.created,
            replaced=now,
        )
        message.body_raw, message.body, message.edited, message.version = body, sanitized, now, version
        message.reactions = current.reactions  # a reaction since `message` was read: broadcast the current
        mentions = conversations.message_mentions_edit(message)
        message.save(update_fields=["body", "body_raw", "edited", "version", "mentions"])
        if verdict.flagged:
            report_by_word_filter(message=message, terms=verdict.flagged)
        events.message_edited(message)
        _notifications_announce(message, mentions.announce)
        conversations.mention_counts_changed(room_id=message.room_id, user_ids=mentions.changed_user_ids)
    return message


def _notifications_announce(message: Message, notifications: list[Notification]) -> None:
    """Each notified user's sockets get the `notification` frame once the transaction commits."""
    if not notifications:
        return
    payload = message_dict(message)
    for notification in notifications:
        frame = notification_frame(
            conversations.notification_dict(notification, message=payload, room_slug=message.room.slug)
        )
        events.user_frame(notification.user_id, frame)


def message_delete(*, actor, message: Message) -> None:
    """The author or a room moderator removes a message from history, and its notifications with
    it; broadcast `message_deleted`."""
    is_author = message.author_id == actor.id
    if not is_author:
        _require_room_moderator(actor=actor, room=message.room)
    if message.is_deleted:
        raise NotFound(f"No message {message.id}.")
    with transaction.atomic():
        message.deleted = timezone.now()
        message.deleted_by = actor
        message.version = room_version_next(room_id=message.room_id)
        message.save(update_fields=["deleted", "deleted_by", "version"])
        unread = conversations.message_notifications_delete(message)
        conversations.mention_counts_changed(room_id=message.room_id, user_ids=unread)
        if not is_author:
            _audit(
                actor=actor,
                action=AuditLog.Action.MESSAGE_DELETE,
                room=message.room,
                target_user=message.author,
                message_id=message.id,
            )
        events.message_deleted(message)


def message_restore(*, actor, message: Message) -> None:
    """A moderator puts a deleted message back into history (it keeps its id); audited."""
    if not user_is_moderator(actor):
        raise Forbidden("Only moderators may restore messages.")
    with transaction.atomic():
        message.deleted = None
        message.deleted_by = None
        # A restored message is a change too: `changes` lists it again among the updated.
        message.version = room_version_next(room_id=message.room_id)
        message.save(update_fields=["deleted", "deleted_by", "version"])
        _audit(
            actor=actor,
            action=AuditLog.Action.MESSAGE_RESTORE,
            room=message.room,
            target_user=message.author,
            message_id=message.id,
        )


def message_report(*, user, message: Message, reason: str) -> tuple[Report, bool]:
    """A reader flags a message for moderators; returns (report, created).

    The report keeps a copy of the text as it is now. A second report of the message by the same
    user while the first is open returns the open one. Beyond CHAT_REPORTS_PER_HOUR new reports in
    the last hour: RateLimited with the seconds until the oldest leaves the window. Locks the
    reporter's user row, so concurrent reports are counted and de-duplicated exactly.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise BadRequest('"reason" must say what is wrong with the message.')
    if not user_is_member(user_id=user.id, room_id=message.room_id) and not user_is_moderator(user):
        raise Forbidden("Only members of the room may report its messages.")
    limit = settings.CHAT_REPORTS_PER_HOUR
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()
        open_report = Report.objects.filter(message=message, reporter=user, resolved__isnull=True).first()
        if open_report is not None:
            return open_report, False
        now = timezone.now()
        window = timedelta(hours=1)
        recent = list(
            Report.objects.filter(reporter=user, created__gt=now - window)
            .order_by("created")
            .values_list("created", flat=True)
        )
        if len(recent) >= limit:
            wait = (recent[len(recent) - limit] + window - now).total_seconds()
            raise RateLimited(
                f"At most {limit} reports an hour; try again in {max(1, round(wait / 60))} min.",
                retry_after=round(max(wait, 1.0), 3),
            )
        report = Report.objects.create(
            message=message, reporter=user, reason=reason[:500], snapshot=message.body_raw or message.body
        )
    return report, True


def report_by_word_filter(*, message: Message, terms: tuple[str, ...]) -> Report | None:
    """Open a report by the system (no reporter) on a message a `flag` term let through, unless one
    is open already. Call inside the transaction that stores the message or its edit."""
    if Report.objects.filter(message=message, reporter__isnull=True, resolved__isnull=True).exists():
        return None
    reason = "Word filter flagged: " + ", ".join(terms)
    return Report.objects.create(
        message=message, reporter=None, reason=reason[:500], snapshot=message.body_raw or message.body
    )


def report_resolve(*, actor, report: Report) -> Report:
    """A moderator closes a report; audited."""
    if not user_is_moderator(actor):
        raise Forbidden("Only moderators may resolve reports.")
    if report.resolved is not None:
        return report
    with transaction.atomic():
        report.resolved = timezone.now()
        report.resolved_by = actor
        report.save(update_fields=["resolved", "resolved_by"])
        _audit(
            actor=actor,
            action=AuditLog.Action.REPORT_RESOLVE,
            room=report.message.room,
            message_id=report.message_id,
            detail_report=report.id,
        )
    return report


# ----- moderation ----------------------------------------------------------------------------


def _room_restrict(*, model, action, noun: str, actor, room: Room, username: str, until, reason: str):
    """Create or replace a room ban or mute (owner or moderator), audited; returns (row, user)."""
    _require_room_moderator(actor=actor, room=room)
    restriction_until_check(until)
    user = _user_by_username(username)
    if user.id == room.owner_id or user.id == actor.id:
        raise BadRequest(f"The room's owner and you yourself cannot be {noun} in it.")
    if user_is_moderator(user) and not actor.is_superuser:
        raise Forbidden(f"{username} is a site moderator: only a superuser may have them {noun} in a room.")
    restriction, _ = model.objects.update_or_create(
        room=room, user=user, defaults={"until": until, "reason": reason, "created_by": actor}
    )
    _audit(
        actor=actor,
        action=action,
        room=room,
        target_user=user,
        reason=reason,
        until=until.isoformat() if until else None,
    )
    return restriction, user


def _room_unrestrict(*, model, action, noun: str, actor, room: Room, username: str):
    """Lift a room ban or mute (owner or moderator), audited; returns the user."""
    _require_room_moderator(actor=actor, room=room)
    user = _user_by_username(username)
    with transaction.atomic():
        deleted, _ = model.objects.filter(room=room, user=user).delete()
        if not deleted:
            raise NotFound(f"{username} is not {noun} in {room.slug!r}.")
        _audit(actor=actor, action=action, room=room, target_user=user)
    return user


def room_ban(*, actor, room: Room, username: str, until: datetime | None = None, reason: str = "") -> RoomBan:
    """Ban a user from a room (owner or moderator): their sockets get `left`/`banned` at once."""
    with transaction.atomic():
        ban, user = _room_restrict(
            model=RoomBan,
            action=AuditLog.Action.ROOM_BAN,
            noun="banned",
            actor=actor,
            room=room,
            username=username,
            until=until,
            reason=reason,
        )
        events.room_user_banned(room=room, user_id=user.id)
    return ban


def room_unban(*, actor, room: Room, username: str) -> None:
    _room_unrestrict(
        model=RoomBan, action=AuditLog.Action.ROOM_UNBAN, noun="banned", actor=actor, room=room, username=username
    )


def room_mute(*, actor, room: Room, username: str, until: datetime | None = None, reason: str = "") -> RoomMute:
    """Mute a user in a room: they read, every message they send answers `forbidden`."""
    with transaction.atomic():
        mute, user = _room_restrict(
            model=RoomMute,
            action=AuditLog.Action.ROOM_MUTE,
            noun="muted",
            actor=actor,
            room=room,
            username=username,
            until=until,
            reason=reason,
        )
        events.room_user_muted(room=room, user_id=user.id, is_muted=True)
    return mute


def room_unmute(*, actor, room: Room, username: str) -> None:
    with transaction.atomic():
        user = _room_unrestrict(
            model=RoomMute, action=AuditLog.Action.ROOM_UNMUTE, noun="muted", actor=actor, room=room, username=username
        )
        events.room_user_muted(room=room, user_id=user.id, is_muted=False)


def site_ban(*, actor, username: str, until: datetime | None = None, reason: str = "") -> SiteBan:
    """Ban a user site-wide (moderators): sockets close with 4003, tokens and REST answer 403."""
    if not user_is_moderator(actor):
        raise Forbidden("Only moderators may ban site-wide.")
    restriction_until_check(until)
    user = _user_by_username(username)
    if user.id == actor.id or user.is_superuser:
        raise BadRequest("You cannot ban yourself or a superuser site-wide.")
    if user_is_moderator(user) and not actor.is_superuser:
        raise Forbidden(f"{username} is a moderator: only a superuser may ban a moderator site-wide.")
    with transaction.atomic():
        ban, _ = SiteBan.objects.update_or_create(
            user=user, defaults={"until": until, "reason": reason, "created_by": actor}
        )
        _audit(
            actor=actor,
            action=AuditLog.Action.SITE_BAN,
            target_user=user,
            reason=reason,
            until=until.isoformat() if until else None,
        )
        events.user_site_banned(user_id=user.id)
    return ban


def site_unban(*, actor, username: str) -> None:
    if not user_is_moderator(actor):
        raise Forbidden("Only moderators may lift site-wide bans.")
    user = _user_by_username(username)
    with transaction.atomic():
        deleted, _ = SiteBan.objects.filter(user=user).delete()
        if not deleted:
            raise NotFound(f"{username} is not banned site-wide.")
        _audit(actor=actor, action=AuditLog.Action.SITE_UNBAN, target_user=user)


# ----- word filter ---------------------------------------------------------------------------


def _check_term(term: str) -> str:
    if not isinstance(term, str) or not wordfilter.term_is_usable(term):
        raise BadRequest("A filter term needs at least one letter or digit.")
    if len(term) > 100:
        raise BadRequest(f"A filter term is at most 100 characters; this one has {len(term)}.")
    return term.strip()


def _term_detail(term: FilterTerm) -> dict:
    return {"term": term.term, "term_action": term.action, "everywhere": term.room_id is None}


def _save_term(term: FilterTerm) -> None:
    try:
        with transaction.atomic():
            term.save()
    except IntegrityError:
        where = f"in {term.room}" if term.room_id else "for every room"
        raise Conflict(f"The term {term.term!r} is already on the list {where}.", fields={"term": ["taken"]}) from None


def filter_term_add(*, actor, term: str, action: str, room: Room | None = None) -> FilterTerm:
    """A moderator adds a word-filter term (every room, or one); audited; live within a second."""
    if not user_is_moderator(actor):
        raise Forbidden("Only moderators may change the word filter.")
    if action not in FilterTerm.Action.values:
        raise BadRequest(f'"action" must be one of {", ".join(FilterTerm.Action.values)}.')
    term = _check_term(term)
    with transaction.atomic():
        entry = FilterTerm(
            term=term, normalized=wordfilter.normalize_term(term), action=action, room=room, created_by=actor
        )
        _save_term(entry)
        _audit(actor=actor, action=AuditLog.Action.FILTER_TERM_ADD, room=room, **_term_detail(entry))
        wordfilter.list_changed()
    return entry


def filter_term_change(
    *, actor, entry: FilterTerm, term: str | None = None, action: str | None = None, room: Room | None = None
) -> FilterTerm:
    """A moderator changes a term's text, action or room (pass the room it should have); audited."""
    if not user_is_moderator(actor):
        raise Forbidden("Only moderators may change the word filter.")
    if action is not None and action not in FilterTerm.Action.values:
        raise BadRequest(f'"action" must be one of {", ".join(FilterTerm.Action.values)}.')
    before = _term_detail(FilterTerm.objects.get(pk=entry.pk))
    if term is not None:
        entry.term = _check_term(term)
        entry.normalized = wordfilter.normalize_term(entry.term)
    if action is not None:
        entry.action = action
    entry.room = room
    with transaction.atomic():
        _save_term(entry)
        _audit(
            actor=actor,
            action=AuditLog.Action.FILTER_TERM_CHANGE,
            room=room,
            before=before,
            **_term_detail(entry),
        )
        wordfilter.list_changed()
    return entry


def filter_term_delete(*, actor, entry: FilterTerm) -> None:
    """A moderator removes a term; audited."""
    if not user_is_moderator(actor):
        raise Forbidden("Only moderators may change the word filter.")
    with transaction.atomic():
        detail = _term_detail(entry)
        room = entry.room
        entry.delete()
        _audit(actor=actor, action=AuditLog.Action.FILTER_TERM_DELETE, room=room, **detail)
        wordfilter.list_changed()
