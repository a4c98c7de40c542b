"""Moderation endpoints: room bans and mutes (owner or moderator), site-wide bans (moderators)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from chatsite.api.views import ERROR, ChatAPIView, validated
from rooms import selectors, services
from rooms.serializers import RestrictionCreateSerializer, RestrictionSerializer

_CREATE_RESPONSES = {201: RestrictionSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR}
_DELETE_RESPONSES = {204: None, 401: ERROR, 403: ERROR, 404: ERROR}


def _restriction_dict(restriction, *, username: str, room_slug: str | None = None) -> dict:
    data = {
        "username": username,
        "until": restriction.until,
        "reason": restriction.reason,
        "created": restriction.created,
    }
    if room_slug is not None:
        data["room"] = room_slug
    return data


class RoomBanListView(ChatAPIView):
    @extend_schema(
        request=RestrictionCreateSerializer,
        responses=_CREATE_RESPONSES,
        description="Ban a user from the room; their open sockets leave it at once.",
    )
    def post(self, request: Request, slug: str) -> Response:
        room = selectors.room_get_visible(user=request.user, slug=slug)
        data = validated(RestrictionCreateSerializer, request.data)
        ban = services.room_ban(actor=request.user, room=room, **data)
        return Response(
            _restriction_dict(ban, username=data["username"], room_slug=room.slug), status=status.HTTP_201_CREATED
        )


class RoomBanDetailView(ChatAPIView):
    @extend_schema(request=None, responses=_DELETE_RESPONSES, description="Lift a room ban.")
    def delete(self, request: Request, slug: str, username: str) -> Response:
        room = selectors.room_get_visible(user=request.user, slug=slug)
        services.room_unban(actor=request.user, room=room, username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoomMuteListView(ChatAPIView):
    @extend_schema(
        request=RestrictionCreateSerializer,
        responses=_CREATE_RESPONSES,
        description="Mute a user in the room: they may read, not post.",
    )
    def post(self, request: Request, slug: str) -> Response:
        room = selectors.room_get_visible(user=request.user, slug=slug)
        data = validated(RestrictionCreateSerializer, request.data)
        mute = services.room_mute(actor=request.user, room=room, **data)
        return Response(
            _restriction_dict(mute, username=data["username"], room_slug=room.slug), status=status.HTTP_201_CREATED
        )


class RoomMuteDetailView(ChatAPIView):
    @extend_schema(request=None, responses=_DELETE_RESPONSES, description="Lift a room mute.")
    def delete(self, request: Request, slug: str, username: str) -> Response:
        room = selectors.room_get_visible(user=request.user, slug=slug)
        services.room_unmute(actor=request.user, room=room, username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SiteBanListView(ChatAPIView):
    @extend_schema(
        request=RestrictionCreateSerializer,
        responses=_CREATE_RESPONSES,
        description="Ban a user site-wide (moderators): sockets close with 4003, REST answers 403.",
    )
    def post(self, request: Request) -> Response:
        data = validated(RestrictionCreateSerializer, request.data)
        ban = services.site_ban(actor=request.user, **data)
        return Response(_restriction_dict(ban, username=data["username"]), status=status.HTTP_201_CREATED)


class SiteBanDetailView(ChatAPIView):
    @extend_schema(request=None, responses=_DELETE_RESPONSES, description="Lift a site-wide ban.")
    def delete(self, request: Request, username: str) -> Response:
        services.site_unban(actor=request.user, username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)
