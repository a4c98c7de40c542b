"""Tables and constraints of chat rooms; no business logic here (see services.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Room(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    topic = models.CharField(max_length=500, blank=True, default="")
    is_private = models.BooleanField(default=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_rooms")
    slow_mode_seconds = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)
    # Id of the newest accepted message, updated under the room's row lock: the lock orders
    # message ids by commit, and readers use it to see whether they missed anything.
    last_message_id = models.BigIntegerField(default=0)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="rooms", blank=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


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

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["room", "id"], name="message_room_id")]
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


class ActiveQuerySet(models.QuerySet):
    def active(self, now=None):
        now = now or timezone.now()
        return self.filter(Q(until__isnull=True) | Q(until__gt=now))


class RoomRestriction(models.Model):
    """A per-room ban or mute; `until` null means until lifted."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    until = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now)

    objects = ActiveQuerySet.as_manager()

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.until is None or self.until > timezone.now()


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


class SiteBan(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="site_ban")
    until = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now)

    objects = ActiveQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.user} banned site-wide"

    @property
    def is_active(self) -> bool:
        return self.until is None or self.until > timezone.now()


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
