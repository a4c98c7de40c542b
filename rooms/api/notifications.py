"""Notification endpoints (CONTRACT §5): the user's notifications, newest first, and marking them read."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from chatsite.api.views import ERROR, ChatAPIView, validated
from rooms import conversations
from rooms.protocol import message_dict
from rooms.serializers import (
    NotificationListQuerySerializer,
    NotificationPageSerializer,
    NotificationReadSerializer,
    NotificationUnreadSerializer,
)


class NotificationListView(ChatAPIView):
    """The requesting user's notifications of rooms they may still read, newest first, 50 a page."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "unread", OpenApiTypes.STR, enum=["1", "0", "true", "false"], description="1: only unread ones."
            ),
            OpenApiParameter(
                "before", OpenApiTypes.INT, description="Only notifications with a smaller id (the next page)."
            ),
        ],
        responses={200: NotificationPageSerializer, 400: ERROR, 401: ERROR},
        description="A message's notification disappears when the message is deleted; those of rooms the user "
        "may no longer read (left, banned from) are not listed. `has_more`: older ones exist; ask again with "
        "`before` set to the last id of the page.",
    )
    def get(self, request: Request) -> Response:
        query = validated(NotificationListQuerySerializer, request.query_params)
        page, has_more = conversations.notification_list(
            user=request.user, unread_only=query.get("unread") in ("1", "true"), before=query.get("before")
        )
        results = [
            conversations.notification_dict(row, message=message_dict(row.message), room_slug=row.room.slug)
            for row in page
        ]
        return Response({"results": results, "has_more": has_more})


class NotificationReadView(ChatAPIView):
    """Mark some (`ids`) or all (`all: true`) of the user's notifications read."""

    @extend_schema(
        request=NotificationReadSerializer,
        responses={200: NotificationUnreadSerializer, 400: ERROR, 401: ERROR},
        description="Give exactly one of `ids` (at most 500 notification ids; ids that are not the caller's "
        "are ignored) and `all: true`. Answers how many unread notifications the caller has left. Each room "
        "whose unread mention count changed is announced to the caller's sockets as `read_state`.",
    )
    def post(self, request: Request) -> Response:
        data = validated(NotificationReadSerializer, request.data)
        unread, _ = conversations.notifications_mark_read(
            user=request.user, ids=data.get("ids"), everything=bool(data.get("all"))
        )
        return Response({"unread": unread})
