"""DRF views of the rooms API (CONTRACT §2): validate with rooms/serializers.py, call a service or
selector, shape with `room_dict` / `rooms.protocol.message_dict`. No rules and no writes here."""

from rooms.api.messages import MessageDetailView, MessageListView, MessageReportView
from rooms.api.moderation import (
    RoomBanDetailView,
    RoomBanListView,
    RoomMuteDetailView,
    RoomMuteListView,
    SiteBanDetailView,
    SiteBanListView,
)
from rooms.api.rooms import MembershipMeView, MembershipView, RoomDetailView, RoomListView

__all__ = [
    "MembershipMeView",
    "MembershipView",
    "MessageDetailView",
    "MessageListView",
    "MessageReportView",
    "RoomBanDetailView",
    "RoomBanListView",
    "RoomDetailView",
    "RoomListView",
    "RoomMuteDetailView",
    "RoomMuteListView",
    "SiteBanDetailView",
    "SiteBanListView",
]
