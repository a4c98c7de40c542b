"""Tables and constraints of chat rooms; no business logic here (see services.py)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import models
from django.db.models import ExpressionWrapper, F, Q
from django.utils import timezone

# The text-search configuration of the message search index and of every query using it: the
# query's expression must be the index's, word for word, for PostgreSQL to use the index.
SEARCH_CONFIG = "english"


def message_search_vector() -> SearchVector:
    """The expression of the GIN index `message_search` (PostgreSQL only, made by migration 0004,
    because SQLite has no such index): what the author typed, in which the parser skips tags."""
    return SearchVector("body_raw", config=SEARCH_CONFIG)


class Room(models.Model):
    class Kind(models.TextChoices):
        ROOM = "room", "room"
        DM = "dm", "direct messages"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    topic = models.CharField(max_length=500, blank=True, default="")
    is_private = models.BooleanField(default=False)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.ROOM)
    # Null for a DM, which no one owns (CONTRACT §5).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="owned_rooms"
    )
    slow_mode_seconds = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)
    # Id of the newest accepted message, updated under the room's row lock: the lock orders
    # message ids by commit, and readers use it to see whether they missed anything.
    last_message_id = models.BigIntegerField(default=0)
    # The change counter of CONTRACT §6: every post, edit, delete and reaction change raises it
    # under the room's row lock, and the message concerned takes the new value as its version.
    version = models.BigIntegerField(default=0)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="rooms", blank=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_dm(self) -> bool:
        return self.kind == Room.Kind.DM


class Membership(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    joined = models.DateTimeField(default=timezone.now)
    last_read_id = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="membership_unique_room_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.room}"


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="messages")
    body = models.TextField(help_text="Sanitised HTML, what clients are sent.")
    body_raw = models.TextField(help_text="What the author typed, kept to re-render if the safelist changes.")
    created = models.DateTimeField(default=timezone.now, db_index=True)
    edited = models.DateTimeField(null=True, blank=True)
    deleted = models.DateTimeField(null=True, blank=True, db_index=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # NULL, not "": the unique (author, client_id) constraint must ignore messages without one.
    client_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # The room's previous message id when this one was accepted: a chain that lets a process
    # notice a broadcast the channel layer dropped.
    prev_id = models.BigIntegerField(default=0)
    # The room's version after the last change of this message (CONTRACT §6).
    version = models.BigIntegerField(default=0)
    reply_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies")
    # Usernames mentioned, in order of first appearance (CONTRACT §5); NULL for none, so insert
    # statements that do not name the column (the batch path) need no default from the database.
    mentions = models.JSONField(null=True, blank=True)
    # The `reactions` of the message object, kept in step with Reaction rows under the room's lock:
    # [{"emoji", "count", "users": first 50 usernames}] in order of each emoji's first use. NULL
    # for none. A summary on the row keeps history pages and frames free of per-message queries.
    reactions = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["room", "id"], name="message_room_id"),
            # The changes feed is a range scan on (room, version).
            models.Index(fields=["room", "version"], name="message_room_version"),
            # Unread counts: an index-only count of the live messages above a read marker.
            models.Index(fields=["room", "id", "author"], condition=Q(deleted__isnull=True), name="message_room_live"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["author", "client_id"],
                condition=Q(client_id__isnull=False),
                name="message_unique_author_client_id",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.id} in {self.room_id}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted is not None


class RestrictionQuerySet(models.QuerySet):
    """Bans and mutes by whether they are in force: `active()` is the one test of that rule."""

    def active(self, now: datetime | None = None) -> RestrictionQuerySet:
        """Those in force at `now` (default: now): no end, or an end still ahead."""
        return self.filter(_in_force(now))

    def expired(self, now: datetime | None = None) -> RestrictionQuerySet:
        """Those whose `until` has passed (kept as rows, so a re-ban replaces them)."""
        return self.exclude(_in_force(now))

    def with_in_force(self, now: datetime | None = None) -> RestrictionQuerySet:
        """Each row annotated `in_force` (bool), for lists that show active and expired together."""
        return self.annotate(in_force=ExpressionWrapper(_in_force(now), output_field=models.BooleanField()))


def _in_force(now: datetime | None) -> Q:
    return Q(until__isnull=True) | Q(until__gt=now or timezone.now())


def restriction_active_sql(alias: str, now: str = "%(now)s") -> str:
    """`active()` as a SQL condition on table alias `alias`, for the hand-written hot-path queries
    (rooms/selectors.py). `now` is the placeholder of the current time; tests check both agree."""
    return f"({alias}.until IS NULL OR {alias}.until > {now})"


class Restriction(models.Model):
    """What a room ban, room mute and site-wide ban share; `until` null means until lifted."""

    until = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now)

    objects = RestrictionQuerySet.as_manager()

    class Meta:
        abstract = True


class RoomRestriction(Restriction):
    """A per-room ban or mute."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)

    class Meta:
        abstract = True


class RoomBan(RoomRestriction):
    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="roomban_unique_room_user")]

    def __str__(self) -> str:
        return f"{self.user} banned from {self.room}"


class RoomMute(RoomRestriction):
    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="roommute_unique_room_user")]

    def __str__(self) -> str:
        return f"{self.user} muted in {self.room}"


class SiteBan(Restriction):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="site_ban")

    def __str__(self) -> str:
        return f"{self.user} banned site-wide"


class MessageRevision(models.Model):
    """The text a message had before one edit: one row per edit (CONTRACT §7), shown to moderators."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="revisions")
    body_raw = models.TextField(help_text="The replaced text, as the author typed it.")
    body = models.TextField(help_text="The replaced text, sanitised.")
    written = models.DateTimeField(help_text="When the replaced text was posted, or edited in.")
    replaced = models.DateTimeField(default=timezone.now, help_text="When the edit replaced it.")

    class Meta:
        ordering = ["message", "id"]

    def __str__(self) -> str:
        return f"revision of #{self.message_id} replaced {self.replaced:%Y-%m-%d %H:%M:%S}"


class Report(models.Model):
    # Null for a report the system filed (a `flag` term of the word filter).
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="reports"
    )
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reports")
    reason = models.CharField(max_length=500)
    snapshot = models.TextField(
        blank=True, default="", help_text="The message's text (as typed) when it was reported: edits do not change it."
    )
    created = models.DateTimeField(default=timezone.now)
    resolved = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["resolved", "-created"]
        constraints = [
            # One open report per message and reporter (the system counting as one reporter).
            models.UniqueConstraint(
                fields=["message", "reporter"],
                condition=Q(resolved__isnull=True, reporter__isnull=False),
                name="report_one_open_per_reporter",
            ),
            models.UniqueConstraint(
                fields=["message"],
                condition=Q(resolved__isnull=True, reporter__isnull=True),
                name="report_one_open_by_system",
            ),
        ]
        indexes = [models.Index(fields=["reporter", "created"], name="report_reporter_created")]

    def __str__(self) -> str:
        return f"report on #{self.message_id}"

    @property
    def is_by_system(self) -> bool:
        return self.reporter_id is None


class FilterTerm(models.Model):
    """A word-filter term kept by moderators (CONTRACT §7): `block` refuses, `flag` reports."""

    class Action(models.TextChoices):
        BLOCK = "block", "block: refuse the message"
        FLAG = "flag", "flag: let it through and report it"

    term = models.CharField(max_length=100, help_text="A word or phrase, matched as whole words, any case or width.")
    # The matching key, made by rooms.wordfilter.normalize (NFKC, case folded); unique per scope.
    normalized = models.CharField(max_length=400, editable=False)
    action = models.CharField(max_length=8, choices=Action.choices, default=Action.BLOCK)
    room = models.ForeignKey(
        Room,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="filter_terms",
        help_text="Only in this room; empty for every room.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["normalized", "id"]
        constraints = [
            models.UniqueConstraint(fields=["normalized", "room"], name="filterterm_unique_in_room"),
            models.UniqueConstraint(
                fields=["normalized"], condition=Q(room__isnull=True), name="filterterm_unique_everywhere"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.term} ({self.action}{f' in {self.room}' if self.room_id else ''})"


class AuditLog(models.Model):
    """One row per moderation action, written by the service functions."""

    class Action(models.TextChoices):
        MESSAGE_DELETE = "message_delete"
        MESSAGE_RESTORE = "message_restore"
        ROOM_BAN = "room_ban"
        ROOM_UNBAN = "room_unban"
        ROOM_MUTE = "room_mute"
        ROOM_UNMUTE = "room_unmute"
        SITE_BAN = "site_ban"
        SITE_UNBAN = "site_unban"
        ROOM_UPDATE = "room_update"
        REPORT_RESOLVE = "report_resolve"
        MEMBER_INVITE = "member_invite"
        USER_DEACTIVATE = "user_deactivate"
        USER_REACTIVATE = "user_reactivate"
        FILTER_TERM_ADD = "filter_term_add"
        FILTER_TERM_CHANGE = "filter_term_change"
        FILTER_TERM_DELETE = "filter_term_delete"

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    action = models.CharField(max_length=32, choices=Action.choices)
    room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    target_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message_id = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor}"


class DirectPair(models.Model):
    """The one DM room of a pair of users (CONTRACT §5): `user_low` has the smaller id."""

    room = models.OneToOneField(Room, on_delete=models.CASCADE, related_name="dm_pair")
    user_low = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    user_high = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_low", "user_high"], name="directpair_unique_pair"),
            models.CheckConstraint(condition=Q(user_low__lt=F("user_high")), name="directpair_ordered"),
        ]

    def __str__(self) -> str:
        return f"DM {self.user_low_id}/{self.user_high_id}"


class Notification(models.Model):
    """One message concerning one other user (CONTRACT §5): mention > reply > dm, one per pair."""

    class Kind(models.TextChoices):
        MENTION = "mention"
        REPLY = "reply"
        DM = "dm"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="notifications")
    created = models.DateTimeField(default=timezone.now)
    is_read = models.BooleanField(default=False)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="notification_unique_message_user")]
        indexes = [
            models.Index(fields=["user", "-id"], name="notification_user_id"),
            # mention_count per room and "read up to the marker" touch only unread rows.
            models.Index(fields=["user", "room", "message"], condition=Q(is_read=False), name="notification_unread"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id} on #{self.message_id}"


class Reaction(models.Model):
    """One user's one emoji on one message; the message's `reactions` summary is derived from these."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reaction_rows")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    emoji = models.CharField(max_length=64)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["message", "user", "emoji"], name="reaction_unique_message_user_emoji")
        ]
        indexes = [models.Index(fields=["message", "emoji", "id"], name="reaction_message_emoji")]

    def __str__(self) -> str:
        return f"{self.emoji} by {self.user_id} on #{self.message_id}"
