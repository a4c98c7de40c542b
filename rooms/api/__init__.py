"""DRF views of the rooms API (CONTRACT §2): validate with rooms/serializers.py, call a service or
selector, shape with `room_dict` / `rooms.protocol.message_dict`. No rules and no writes here."""

from rooms.api.changes import RoomChangesView, RoomTypingView
from rooms.api.dms import DmListView
from rooms.api.messages import MessageDetailView, MessageListView, MessageReportView
from rooms.api.moderation import (
    ROOM_BAN,
    ROOM_MUTE,
    SITE_BAN,
    RestrictionDetailView,
    RestrictionKind,
    RestrictionListView,
)
from rooms.api.notifications import NotificationListView, NotificationReadView
from rooms.api.reactions import ReactionDetailView, ReactionListView
from rooms.api.reads import RoomReadView
from rooms.api.rooms import MembershipMeView, MembershipView, RoomDetailView, RoomListView
from rooms.api.search import SearchView

__all__ = [
    "ROOM_BAN",
    "ROOM_MUTE",
    "SITE_BAN",
    "DmListView",
    "MembershipMeView",
    "MembershipView",
    "MessageDetailView",
    "MessageListView",
    "MessageReportView",
    "NotificationListView",
    "NotificationReadView",
    "ReactionDetailView",
    "ReactionListView",
    "RestrictionDetailView",
    "RestrictionKind",
    "RestrictionListView",
    "RoomChangesView",
    "RoomDetailView",
    "RoomListView",
    "RoomReadView",
    "RoomTypingView",
    "SearchView",
]
