"""Conversations (CONTRACT §5) and versions (§6): read state, DMs, mentions, notifications,
replies, reactions, search and the changes feed. Services are keyword-only `<entity>_<verb>`;
each module holds one subject and this package re-exports the public names."""

from rooms.conversations.changes import CHANGES_PAGE, RoomChanges, room_changes
from rooms.conversations.dms import dm_open, slug_is_reserved
from rooms.conversations.mentions import MentionToken, mention_tokens, mentions_resolve
from rooms.conversations.notifications import (
    RoomKind,
    mention_counts_changed,
    message_mentions_edit,
    message_notifications_delete,
    notification_dict,
    notification_list,
    notification_unread_count,
    notifications_for_user,
    notifications_mark_read,
)
from rooms.conversations.reactions import (
    emoji_check,
    reaction_add,
    reaction_message_get,
    reaction_remove,
    reaction_set,
    reaction_summary,
)
from rooms.conversations.reads import (
    read_state_send,
    room_marker_start,
    room_read,
    room_read_by_slug,
    room_read_state,
    room_with_read_state,
    rooms_with_read_state,
)
from rooms.conversations.search import message_search, rooms_readable_by, search_query_check
from rooms.conversations.stored import messages_stored
from rooms.conversations.versions import message_version_bump, room_version_next

__all__ = [
    "CHANGES_PAGE",
    "MentionToken",
    "RoomChanges",
    "RoomKind",
    "dm_open",
    "emoji_check",
    "mention_counts_changed",
    "mention_tokens",
    "mentions_resolve",
    "message_mentions_edit",
    "message_notifications_delete",
    "message_search",
    "message_version_bump",
    "messages_stored",
    "notification_dict",
    "notification_list",
    "notification_unread_count",
    "notifications_for_user",
    "notifications_mark_read",
    "reaction_add",
    "reaction_message_get",
    "reaction_remove",
    "reaction_set",
    "reaction_summary",
    "read_state_send",
    "room_changes",
    "room_marker_start",
    "room_read",
    "room_read_by_slug",
    "room_read_state",
    "room_version_next",
    "room_with_read_state",
    "rooms_readable_by",
    "rooms_with_read_state",
    "search_query_check",
    "slug_is_reserved",
]
