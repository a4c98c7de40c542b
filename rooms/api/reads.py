"""Read state endpoints (CONTRACT §5): moving the read marker."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from chatsite.api.views import ERROR, ChatAPIView, validated
from rooms import conversations, selectors
from rooms.serializers import ReadStateSerializer, RoomReadSerializer


class RoomReadView(ChatAPIView):
    """Move the caller's read marker in a room."""

    @extend_schema(
        request=RoomReadSerializer,
        responses={200: ReadStateSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR},
        summary="Mark a room read up to a message",
        description="Members only (a private room the caller is not in: 404; a public room they have not "
        "joined, or are banned from: 403). The marker never moves back: a smaller `last_read_id` answers the "
        "current state; one beyond the room's last message is taken as the last message. The room's "
        "notifications up to the marker become read, and every socket and stream of the caller, on every "
        'process, gets `{"type": "read_state", ...}` with the same numbers.',
    )
    def post(self, request: Request, slug: str) -> Response:
        room = selectors.room_get_for_member(user=request.user, slug=slug)
        data = validated(RoomReadSerializer, request.data)
        return Response(conversations.room_read(user=request.user, room=room, last_read_id=data["last_read_id"]))
