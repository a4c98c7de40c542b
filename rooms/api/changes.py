"""Catching up and the stream's companions (CONTRACT §6): the changes feed and typing over REST."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from chatsite.api.views import ERROR, ChatAPIView, validated
from rooms import conversations, selectors, services
from rooms.protocol import message_dict
from rooms.serializers import ChangesQuerySerializer, ChangesSerializer


class RoomChangesView(ChatAPIView):
    """What changed in a room since a version: posts, edits, reactions, deletes, restores."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "since",
                OpenApiTypes.INT,
                required=True,
                description="The last room version the client saw (a message's `version`, `joined`'s "
                "`version`, or the previous page's `version`); 0 for everything.",
            )
        ],
        responses={200: ChangesSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR},
        summary="Changes of a room since a version (catching up after being offline)",
        description="The messages whose `version` > `since`, oldest change first, at most 200 a page; "
        "deleted ones only as ids in `deleted`. Pass `version` as the next `since` while `has_more`. "
        "Readers of the room: 404 for a private room the caller is not in, 403 when banned from it.",
    )
    def get(self, request: Request, slug: str) -> Response:
        room = selectors.room_get_for_reader(user=request.user, slug=slug)
        query = validated(ChangesQuerySerializer, request.query_params)
        changes = conversations.room_changes(room=room, since=query["since"])
        return Response(
            {
                "updated": [message_dict(message, room_slug=room.slug) for message in changes.updated],
                "deleted": changes.deleted,
                "version": changes.version,
                "has_more": changes.has_more,
            }
        )


class RoomTypingView(ChatAPIView):
    """`typing` for clients that read the event stream and so have no socket to send it on."""

    @extend_schema(
        request=None,
        responses={204: None, 401: ERROR, 403: ERROR, 404: ERROR},
        summary="Tell the room you are typing",
        description='Members: the others in the room get `{"type":"typing","room":S,"user":U}` on their '
        "sockets and streams. At most one notice per user and room every CHAT_TYPING_INTERVAL_SECONDS "
        "(2 s); extra calls answer 204 and announce nothing. A public room's non-member: 403 (join it "
        "first); a private room the caller is not in: 404.",
    )
    def post(self, request: Request, slug: str) -> Response:
        room = selectors.room_get_visible(user=request.user, slug=slug)
        services.room_typing(user=request.user, room=room)
        return Response(status=status.HTTP_204_NO_CONTENT)
