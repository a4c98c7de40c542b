"""Room endpoints: list, create, read, update, join or invite, leave."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response

from chatsite.api.fields import MAX_ID
from chatsite.api.pagination import StrictCursorPagination
from chatsite.api.views import ERROR, ChatAPIView, validated
from rooms import selectors, services
from rooms.conversations import room_with_read_state
from rooms.serializers import (
    MemberAddSerializer,
    MembershipSerializer,
    RoomCreateSerializer,
    RoomListQuerySerializer,
    RoomPageSerializer,
    RoomSerializer,
    RoomUpdateSerializer,
    room_dict,
)


class RoomCursorPagination(StrictCursorPagination):
    ordering = "slug"


class JoinedRoomCursorPagination(StrictCursorPagination):
    """`?joined=1`: most recent activity first. Message ids come from one sequence, so only empty
    rooms (0) tie, and DRF's cursor offsets through those."""

    ordering = ("-last_message_id", "-id")

    def decode_cursor(self, request: Request) -> Any:
        cursor = super().decode_cursor(request)
        position = cursor.position if cursor is not None else None
        if position is not None and not (position.isascii() and position.isdigit() and int(position) <= MAX_ID):
            raise ParseError('Invalid "cursor": pass back the "next" or "previous" link unchanged.')
        return cursor


class RoomListView(ChatAPIView):
    """Rooms the user can see, and room creation."""

    @extend_schema(
        parameters=[
            OpenApiParameter("cursor", OpenApiTypes.STR, description="From a previous page's next/previous."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="Page size, 1-100, default 50."),
            OpenApiParameter(
                "joined",
                OpenApiTypes.STR,
                enum=["1", "0", "true", "false"],
                description="1: only the user's rooms and DMs, most recent last_message_id first "
                "(default 0: public rooms and the user's private rooms, by slug).",
            ),
        ],
        responses={200: RoomPageSerializer, 400: ERROR, 401: ERROR},
        operation_id="rooms_list",
        summary="List public rooms and the user's private rooms (or, with joined=1, the user's rooms)",
        description="Each room carries the requesting user's read state (joined, last_read_id, unread_count, "
        "mention_count); a page costs a constant number of queries.",
    )
    def get(self, request: Request) -> Response:
        # A plain dict, not the QueryDict: DRF would take a blank `joined=` from a QueryDict as absent.
        query = validated(RoomListQuerySerializer, request.query_params.dict())
        joined_only = query["joined"] in ("1", "true")
        paginator = JoinedRoomCursorPagination() if joined_only else RoomCursorPagination()
        rooms = selectors.room_list_for_user(user=request.user, joined_only=joined_only)
        page = paginator.paginate_queryset(rooms, request, view=self)
        return paginator.get_paginated_response([room_dict(room) for room in page or ()])

    @extend_schema(
        request=RoomCreateSerializer,
        responses={201: RoomSerializer, 400: ERROR, 401: ERROR, 409: ERROR},
        summary="Create a room; the creator owns it and is its first member",
    )
    def post(self, request: Request) -> Response:
        data = validated(RoomCreateSerializer, request.data)
        room = services.room_create(user=request.user, **data)
        return Response(room_dict(room_with_read_state(user=request.user, room=room)), status=status.HTTP_201_CREATED)


class RoomDetailView(ChatAPIView):
    """One room: read (members, or anyone for a public room) and update (owner or moderator)."""

    @extend_schema(responses={200: RoomSerializer, 401: ERROR, 404: ERROR})
    def get(self, request: Request, slug: str) -> Response:
        room = selectors.room_get_visible(user=request.user, slug=slug)
        return Response(room_dict(room_with_read_state(user=request.user, room=room)))

    @extend_schema(request=RoomUpdateSerializer, responses={200: RoomSerializer, 400: ERROR, 403: ERROR, 404: ERROR})
    def patch(self, request: Request, slug: str) -> Response:
        room = selectors.room_get_visible(user=request.user, slug=slug)
        data = validated(RoomUpdateSerializer, request.data)
        room = services.room_update(actor=request.user, room=room, **data)
        return Response(room_dict(room_with_read_state(user=request.user, room=room)))


class MembershipView(ChatAPIView):
    """Join a public room yourself, or (owner/moderator) add `username` to a room."""

    @extend_schema(
        request=MemberAddSerializer,
        responses={201: MembershipSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR},
        description="Idempotent: answers 201 whether or not the user already was a member.",
    )
    def post(self, request: Request, slug: str) -> Response:
        room = selectors.room_get_visible(user=request.user, slug=slug)
        data = validated(MemberAddSerializer, request.data)
        username = data.get("username") or request.user.username
        if username == request.user.username:
            membership = services.room_join(user=request.user, room=room)
        else:
            membership = services.room_invite(actor=request.user, room=room, username=username)
        return Response(
            {"room": room.slug, "username": username, "joined": membership.joined}, status=status.HTTP_201_CREATED
        )


class MembershipMeView(ChatAPIView):
    """Leave a room."""

    @extend_schema(request=None, responses={204: None, 401: ERROR, 404: ERROR})
    def delete(self, request: Request, slug: str) -> Response:
        room = selectors.room_get_visible(user=request.user, slug=slug)
        services.room_leave(user=request.user, room=room)
        return Response(status=status.HTTP_204_NO_CONTENT)
