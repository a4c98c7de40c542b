"""Message endpoints: history, post, edit, delete, report."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from chatsite.api.fields import MAX_ID
from chatsite.api.views import ERROR, ChatAPIView, validated
from rooms import selectors, services
from rooms.exceptions import NotFound
from rooms.models import Message
from rooms.protocol import message_dict
from rooms.serializers import (
    MessageEditSerializer,
    MessageHistoryQuerySerializer,
    MessagePageSerializer,
    MessagePostSerializer,
    MessageSerializer,
    ReportCreatedSerializer,
    ReportSerializer,
)


def message_for(*, user, message_id: int) -> Message:
    """A message the user can see, NotFound otherwise (ids past bigint included)."""
    if not 0 < message_id <= MAX_ID:
        raise NotFound(f"No message {message_id}.")
    return selectors.message_get_visible(user=user, message_id=message_id)


class MessageListView(ChatAPIView):
    """A room's history (readers) and posting (members not banned or muted)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("before", OpenApiTypes.INT, description="The newest `limit` with id < before."),
            OpenApiParameter("after", OpenApiTypes.INT, description="The oldest `limit` with id > after."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="1-100, default 50."),
        ],
        responses={200: MessagePageSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR},
        description="`results` ascend by id. Give `before` or `after`, not both (400).",
    )
    def get(self, request: Request, slug: str) -> Response:
        room = selectors.room_get_for_reader(user=request.user, slug=slug)
        query = validated(MessageHistoryQuerySerializer, request.query_params)
        page, has_more = selectors.message_history(
            room=room, before=query.get("before"), after=query.get("after"), limit=query["limit"]
        )
        return Response(
            {"results": [message_dict(message, room_slug=room.slug) for message in page], "has_more": has_more}
        )

    @extend_schema(
        request=MessagePostSerializer,
        responses={
            201: MessageSerializer,
            200: MessageSerializer,
            400: ERROR,
            401: ERROR,
            403: ERROR,
            404: ERROR,
            413: ERROR,
            429: ERROR,
        },
        description="201 with the new message; 200 with the stored one when `client_id` was already used "
        "by this user (a resend: nothing stored, broadcast or counted again). A `block` term of the word "
        'filter answers 400 `{"code": "filtered"}` (nothing stored, no rate-limit token spent). A `reply_to` '
        "that is not a message of this room (missing, deleted, another room's): 400.",
    )
    def post(self, request: Request, slug: str) -> Response:
        room = selectors.room_get_visible(user=request.user, slug=slug)
        data = validated(MessagePostSerializer, request.data)
        message, created = services.message_post(
            user=request.user,
            room=room,
            body=data["body"],
            client_id=data.get("client_id"),
            reply_to=data.get("reply_to"),
        )
        return Response(message_dict(message), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class MessageDetailView(ChatAPIView):
    """Edit (author) or delete (author, room owner or moderator) one message."""

    @extend_schema(
        request=MessageEditSerializer,
        responses={200: MessageSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 413: ERROR, 429: ERROR},
        description="The replaced text is kept as a revision moderators see. Refused (403) while the author "
        "is banned from or muted in the room; a `block` term of the word filter answers 400 `filtered`; "
        "edits spend the posting rate limit (429).",
    )
    def patch(self, request: Request, message_id: int) -> Response:
        message = message_for(user=request.user, message_id=message_id)
        data = validated(MessageEditSerializer, request.data)
        message = services.message_edit(user=request.user, message=message, body=data["body"])
        return Response(message_dict(message))

    @extend_schema(request=None, responses={204: None, 401: ERROR, 403: ERROR, 404: ERROR})
    def delete(self, request: Request, message_id: int) -> Response:
        message = message_for(user=request.user, message_id=message_id)
        services.message_delete(actor=request.user, message=message)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessageReportView(ChatAPIView):
    """Flag a message for moderators (members of its room)."""

    @extend_schema(
        request=ReportSerializer,
        responses={
            201: ReportCreatedSerializer,
            200: ReportCreatedSerializer,
            400: ERROR,
            401: ERROR,
            403: ERROR,
            404: ERROR,
            429: ERROR,
        },
        description="201 with the new report, which keeps a copy of the message's text. 200 with the open "
        "report when the caller already reported this message and it is not resolved yet. At most 10 new "
        "reports per user per hour: 429 with `Retry-After` beyond.",
    )
    def post(self, request: Request, message_id: int) -> Response:
        message = message_for(user=request.user, message_id=message_id)
        data = validated(ReportSerializer, request.data)
        report, created = services.message_report(user=request.user, message=message, reason=data["reason"])
        return Response(
            {"id": report.id, "message": message.id, "reason": report.reason, "created": report.created},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
