"""Reaction endpoints (CONTRACT §5): add one, take one back."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from chatsite.api.views import ERROR, ChatAPIView, validated
from rooms import conversations
from rooms.api.messages import message_for
from rooms.protocol import message_dict
from rooms.serializers import MessageSerializer, ReactionSerializer


class ReactionListView(ChatAPIView):
    """React to a message (members who may post in its room)."""

    @extend_schema(
        request=ReactionSerializer,
        responses={
            201: MessageSerializer,
            200: MessageSerializer,
            400: ERROR,
            401: ERROR,
            403: ERROR,
            404: ERROR,
            429: ERROR,
        },
        description="201 with the message (its `reactions` and `version` after the change), broadcast "
        "`reaction`; 200 with it unchanged when the caller already reacted with this emoji. `emoji`: one "
        "emoji or a `:short_code:` (1-32 of a-z 0-9 _ + -), else 400; a 21st distinct emoji on the message: "
        "400. Not a member, banned, muted: 403 (a private room the caller is not in, a deleted message: 404). "
        "Reactions have their own rate limit, `CHAT_REACTION_RATE` (429).",
    )
    def post(self, request: Request, message_id: int) -> Response:
        message = message_for(user=request.user, message_id=message_id)
        data = validated(ReactionSerializer, request.data)
        created = conversations.reaction_add(user=request.user, message=message, emoji=data["emoji"])
        return Response(message_dict(message), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ReactionDetailView(ChatAPIView):
    """Take back one's own reaction."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "emoji",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="The emoji, percent-encoded (UTF-8), or a `:short_code:`.",
            )
        ],
        request=None,
        responses={204: None, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 429: ERROR},
        description="204, broadcast `reaction` with `added: false`; 404 when the caller had not reacted so.",
    )
    def delete(self, request: Request, message_id: int, emoji: str) -> Response:
        message = message_for(user=request.user, message_id=message_id)
        conversations.reaction_remove(user=request.user, message=message, emoji=emoji)
        return Response(status=status.HTTP_204_NO_CONTENT)
