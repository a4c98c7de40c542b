"""Serializers of the rooms API: inbound validation, and outbound shapes for the OpenAPI schema.

Messages are shaped by `rooms.protocol.message_dict` (shared with the WebSocket), so
`MessageSerializer` only documents that shape; rooms are shaped by `room_dict` here.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from chatsite.api.fields import (
    MAX_ID,
    JsonIntegerField,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictSlugField,
)
from rooms.conversations.notifications import MAX_IDS_PER_READ
from rooms.conversations.reads import read_state_of
from rooms.models import Room
from rooms.protocol import iso

MAX_SLOW_MODE_SECONDS = 86400


def room_dict(room: Room) -> dict[str, Any]:
    """The `room` object of CONTRACT §2 and §5, for the user whose read state `room` carries: read
    it through `rooms.conversations.rooms_with_read_state` (lists) or `room_with_read_state` (one)."""
    if not hasattr(room, "unread_count"):
        raise TypeError(
            "room_dict needs a room annotated with the caller's read state: read it with "
            "rooms.conversations.room_with_read_state(user=..., room=...) or rooms_with_read_state(queryset, user=...)."
        )
    state = read_state_of(room)
    annotated: Any = room
    return {
        "slug": room.slug,
        "name": room.name,
        "topic": room.topic,
        "is_private": room.is_private,
        "kind": room.kind,
        "owner": room.owner.username if room.owner is not None else None,
        "member_count": annotated.member_count,
        "slow_mode_seconds": room.slow_mode_seconds,
        "created": iso(room.created),
        "last_message_id": room.last_message_id,
        "joined": bool(annotated.joined),
        "last_read_id": state["last_read_id"],
        "unread_count": state["unread_count"],
        "mention_count": state["mention_count"],
    }


# ----- outbound shapes (documentation) --------------------------------------------------------


class RoomSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    topic = serializers.CharField()
    is_private = serializers.BooleanField()
    kind = serializers.ChoiceField(choices=["room", "dm"], help_text='"dm" for direct messages (POST dms/).')
    owner = serializers.CharField(allow_null=True, help_text="The owner's username; null for a DM.")
    member_count = serializers.IntegerField()
    slow_mode_seconds = serializers.IntegerField()
    created = serializers.DateTimeField()
    last_message_id = serializers.IntegerField(
        help_text="Id of the room's newest message (deleted or not); 0 while empty."
    )
    joined = serializers.BooleanField(help_text="The requesting user is a member.")
    last_read_id = serializers.IntegerField(help_text="The requesting user's read marker; 0 for a non-member.")
    unread_count = serializers.IntegerField(
        help_text="Live messages with id > last_read_id not written by the requesting user; 0 for a non-member."
    )
    mention_count = serializers.IntegerField(
        help_text="The requesting user's unread notifications of the room; 0 for a non-member."
    )


class ReadStateSerializer(serializers.Serializer):
    room = serializers.SlugField(help_text="The room's slug.")
    last_read_id = serializers.IntegerField(help_text="The read marker after the call.")
    unread_count = serializers.IntegerField(help_text="Live messages above the marker not written by the caller.")
    mention_count = serializers.IntegerField(help_text="The caller's unread notifications of the room.")


class RoomPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="The next page, or null.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null.")
    results = RoomSerializer(many=True)


class AuthorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class ReplySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    author = AuthorSerializer()
    excerpt = serializers.CharField(
        allow_null=True, help_text="The first 100 characters of its text without markup; null once it is deleted."
    )


class ReactionSummarySerializer(serializers.Serializer):
    emoji = serializers.CharField(help_text="One emoji, or a :short_code:.")
    count = serializers.IntegerField()
    users = serializers.ListField(
        child=serializers.CharField(), help_text="The first 50 reactors' usernames, in reaction order."
    )


class MessageSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Strictly increasing within a room, in acceptance order.")
    room = serializers.SlugField(help_text="The room's slug.")
    author = AuthorSerializer()
    body = serializers.CharField(help_text="Sanitised HTML.")
    created = serializers.DateTimeField()
    edited = serializers.DateTimeField(allow_null=True)
    client_id = serializers.CharField(allow_null=True)
    reply_to = ReplySerializer(allow_null=True, help_text="The message this one replies to, or null.")
    mentions = serializers.ListField(
        child=serializers.CharField(), help_text="Mentioned usernames, in order of first appearance."
    )
    reactions = ReactionSummarySerializer(many=True, help_text="In order of each emoji's first use.")
    version = serializers.IntegerField(help_text="The room's version after this message's last change (§6).")


class MessagePageSerializer(serializers.Serializer):
    results = MessageSerializer(many=True)
    has_more = serializers.BooleanField(help_text="More messages exist beyond this page in its direction.")


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(
        choices=["mention", "reply", "dm"],
        help_text="The first that applies: the user is mentioned, the message replies to theirs, it is in their DM.",
    )
    room = serializers.SlugField(help_text="The room's slug.")
    message = MessageSerializer()
    created = serializers.DateTimeField()
    read = serializers.BooleanField()


class NotificationPageSerializer(serializers.Serializer):
    results = NotificationSerializer(many=True, help_text="Newest first.")
    has_more = serializers.BooleanField(help_text="Older notifications exist beyond this page.")


class NotificationUnreadSerializer(serializers.Serializer):
    unread = serializers.IntegerField(help_text="The caller's unread notifications left.")


class ChangesSerializer(serializers.Serializer):
    updated = MessageSerializer(many=True, help_text="Changed messages (new, edited, reacted to, restored).")
    deleted = serializers.ListField(child=serializers.IntegerField(), help_text="Ids of deleted messages.")
    version = serializers.IntegerField(
        help_text="The highest version this page covers: the next `since`. When `has_more` is false, the "
        "room's current version (also for an empty page)."
    )
    has_more = serializers.BooleanField(help_text="More changes follow: ask again with `since=version`.")


class MembershipSerializer(serializers.Serializer):
    room = serializers.SlugField()
    username = serializers.CharField()
    joined = serializers.DateTimeField()


class ReportCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    message = serializers.IntegerField()
    reason = serializers.CharField()
    created = serializers.DateTimeField()


class RestrictionSerializer(serializers.Serializer):
    room = serializers.SlugField(required=False, help_text="Absent for a site-wide ban.")
    username = serializers.CharField()
    until = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField(required=False)
    created = serializers.DateTimeField()


# ----- inbound ---------------------------------------------------------------------------------


class RoomCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)
    slug = StrictSlugField(max_length=64, required=False)
    topic = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    is_private = StrictBooleanField(required=False, default=False)


class RoomListQuerySerializer(serializers.Serializer):
    # Query strings are text: "1"/"true" list only the user's rooms, "0"/"false" (default) all.
    joined = serializers.ChoiceField(choices=["1", "0", "true", "false"], required=False, default="0")


class DmOpenSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150, help_text="The other user.")


class RoomReadSerializer(serializers.Serializer):
    # No max_value: a huge id is only "beyond the last message", which the service clamps.
    last_read_id = JsonIntegerField(min_value=0, help_text="Id of the last message the user has seen.")


class RoomUpdateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100, required=False)
    topic = StrictCharField(max_length=500, required=False, allow_blank=True)
    slow_mode_seconds = StrictIntegerField(min_value=0, max_value=MAX_SLOW_MODE_SECONDS, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError('Give at least one of "name", "topic", "slow_mode_seconds".')
        return attrs


class MemberAddSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150, required=False)


class MessageHistoryQuerySerializer(serializers.Serializer):
    before = StrictIntegerField(min_value=1, max_value=MAX_ID, required=False)
    after = StrictIntegerField(min_value=0, max_value=MAX_ID, required=False)
    limit = StrictIntegerField(min_value=1, max_value=100, required=False, default=50)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "before" in attrs and "after" in attrs:
            raise serializers.ValidationError('Give "before" or "after", not both.')
        return attrs


class ChangesQuerySerializer(serializers.Serializer):
    since = StrictIntegerField(
        min_value=0,
        max_value=MAX_ID,
        error_messages={
            "required": 'Give "since": the last room version you saw (from a message or joined), 0 for all.',
            "invalid": '"since" must be a non-negative integer: a room version.',
        },
    )


class MessagePostSerializer(serializers.Serializer):
    # No max_length: the service answers 413 `too_large` past 4,000 characters, as the socket does.
    body = StrictCharField(trim_whitespace=False)
    client_id = StrictCharField(max_length=64, required=False, allow_null=True)
    reply_to = JsonIntegerField(
        min_value=1,
        max_value=MAX_ID,
        required=False,
        allow_null=True,
        help_text="The id of a message of the same room (not deleted) this one replies to.",
    )


class MessageEditSerializer(serializers.Serializer):
    body = StrictCharField(trim_whitespace=False)


class NotificationListQuerySerializer(serializers.Serializer):
    unread = serializers.ChoiceField(choices=["1", "0", "true", "false"], required=False)
    before = StrictIntegerField(min_value=1, max_value=MAX_ID, required=False)


class NotificationReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=JsonIntegerField(min_value=1, max_value=MAX_ID), max_length=MAX_IDS_PER_READ, required=False
    )
    all = StrictBooleanField(required=False, help_text="true: mark every notification read.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("ids" in attrs) == ("all" in attrs):
            raise serializers.ValidationError('Give exactly one of "ids" (a list of notification ids) and "all": true.')
        if "all" in attrs and attrs["all"] is not True:
            raise serializers.ValidationError('"all" can only be true; to mark some, give "ids".')
        return attrs


class SearchQuerySerializer(serializers.Serializer):
    # The rest of the rule (blank, NUL, lone surrogates) is rooms.conversations.search_query_check.
    q = StrictCharField(max_length=200, trim_whitespace=False)
    room = StrictCharField(max_length=200, required=False, trim_whitespace=False)
    before = StrictIntegerField(min_value=1, max_value=MAX_ID, required=False)


class ReactionSerializer(serializers.Serializer):
    # Checked by the service (rooms.conversations.emoji_check), the rule the socket uses too.
    emoji = StrictCharField(
        max_length=200, trim_whitespace=False, help_text="One emoji, or a short code `:name:` (1-32 of a-z 0-9 _ + -)."
    )


class ReportSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=500)


class RestrictionCreateSerializer(serializers.Serializer):
    """A room ban, room mute or site-wide ban: who, until when (null: until lifted), why."""

    username = StrictCharField(max_length=150)
    until = serializers.DateTimeField(required=False, allow_null=True)
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
