"""Direct messages (CONTRACT §5): open (or find) the DM room of the caller and another user."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from chatsite.api.views import ERROR, ChatAPIView, validated
from rooms import conversations
from rooms.serializers import DmOpenSerializer, RoomSerializer, room_dict


class DmListView(ChatAPIView):
    """POST dms/ {username}: the one DM room of the pair."""

    @extend_schema(
        request=DmOpenSerializer,
        responses={201: RoomSerializer, 200: RoomSerializer, 400: ERROR, 401: ERROR, 404: ERROR},
        summary="Open a DM with a user",
        description='201 with a new room of kind "dm" (private; the two users its only members; owner null; '
        'name the two usernames sorted and joined by ", "), or 200 with the pair\'s existing one. Yourself: '
        "400; an unknown, inactive or site-banned user: 404. A DM lists in rooms/ and rooms/?joined=1 for both "
        "users; no one can be invited into it or leave it (403); only site moderators may ban, mute or change "
        "it; while either user is banned site-wide or deactivated it stays readable and refuses new messages (403).",
    )
    def post(self, request: Request) -> Response:
        data = validated(DmOpenSerializer, request.data)
        room, created = conversations.dm_open(user=request.user, username=data["username"])
        return Response(
            room_dict(conversations.room_with_read_state(user=request.user, room=room)),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
