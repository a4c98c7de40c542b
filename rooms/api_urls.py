"""URL map of the rooms API under /api/v1/ (CONTRACT §2): rooms, members, messages, moderation."""

from django.urls import path

import chatsite.api.converters  # noqa: F401  (registers the `username` converter)
from rooms import api

urlpatterns = [
    path("rooms/", api.RoomListView.as_view(), name="api-rooms"),
    path("rooms/<slug:slug>/", api.RoomDetailView.as_view(), name="api-room"),
    path("rooms/<slug:slug>/members/", api.MembershipView.as_view(), name="api-room-members"),
    path("rooms/<slug:slug>/members/me/", api.MembershipMeView.as_view(), name="api-room-members-me"),
    path("rooms/<slug:slug>/messages/", api.MessageListView.as_view(), name="api-room-messages"),
    path("rooms/<slug:slug>/read/", api.RoomReadView.as_view(), name="api-room-read"),
    path("rooms/<slug:slug>/changes/", api.RoomChangesView.as_view(), name="api-room-changes"),
    path("rooms/<slug:slug>/typing/", api.RoomTypingView.as_view(), name="api-room-typing"),
    path("rooms/<slug:slug>/bans/", api.RestrictionListView.as_view(kind=api.ROOM_BAN), name="api-room-bans"),
    path(
        "rooms/<slug:slug>/bans/<username:username>/",
        api.RestrictionDetailView.as_view(kind=api.ROOM_BAN),
        name="api-room-ban",
    ),
    path("rooms/<slug:slug>/mutes/", api.RestrictionListView.as_view(kind=api.ROOM_MUTE), name="api-room-mutes"),
    path(
        "rooms/<slug:slug>/mutes/<username:username>/",
        api.RestrictionDetailView.as_view(kind=api.ROOM_MUTE),
        name="api-room-mute",
    ),
    path("messages/<int:message_id>/", api.MessageDetailView.as_view(), name="api-message"),
    path("messages/<int:message_id>/report/", api.MessageReportView.as_view(), name="api-message-report"),
    path("notifications/", api.NotificationListView.as_view(), name="api-notifications"),
    path("notifications/read/", api.NotificationReadView.as_view(), name="api-notifications-read"),
    path("messages/<int:message_id>/reactions/", api.ReactionListView.as_view(), name="api-message-reactions"),
    path(
        "messages/<int:message_id>/reactions/<str:emoji>/",
        api.ReactionDetailView.as_view(),
        name="api-message-reaction",
    ),
    path("search/", api.SearchView.as_view(), name="api-search"),
    path("dms/", api.DmListView.as_view(), name="api-dms"),
    path("bans/", api.RestrictionListView.as_view(kind=api.SITE_BAN), name="api-site-bans"),
    path("bans/<username:username>/", api.RestrictionDetailView.as_view(kind=api.SITE_BAN), name="api-site-ban"),
]
