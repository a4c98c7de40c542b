"""Moderation endpoints: room bans and mutes (owner or moderator), site-wide bans (moderators).

One list view (POST: restrict) and one detail view (DELETE: lift) serve all three kinds; each URL
passes its `RestrictionKind` (the service pair and the words of its schema) to `as_view`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from chatsite.api.views import ERROR, ChatAPIView, validated
from rooms import selectors, services
from rooms.serializers import RestrictionCreateSerializer, RestrictionSerializer


@dataclass(frozen=True)
class RestrictionKind:
    """A room ban, a room mute or a site-wide ban: the services that write it and its schema text."""

    restrict: Callable[..., Any]
    lift: Callable[..., Any]
    restrict_description: str
    lift_description: str
    is_room_scoped: bool = True


ROOM_BAN = RestrictionKind(
    restrict=services.room_ban,
    lift=services.room_unban,
    restrict_description="Ban a user from the room; their open sockets leave it at once.",
    lift_description="Lift a room ban.",
)
ROOM_MUTE = RestrictionKind(
    restrict=services.room_mute,
    lift=services.room_unmute,
    restrict_description="Mute a user in the room: they may read, not post.",
    lift_description="Lift a room mute.",
)
SITE_BAN = RestrictionKind(
    restrict=services.site_ban,
    lift=services.site_unban,
    restrict_description="Ban a user site-wide (moderators): sockets close with 4003, REST answers 403.",
    lift_description="Lift a site-wide ban.",
    is_room_scoped=False,
)


class _RestrictionSchema(AutoSchema):
    """The operation's description comes from the view's kind (one class serves three kinds)."""

    def get_description(self) -> str:  # type: ignore[override]  # DRF's stubs give the older signature
        kind: RestrictionKind = self.view.kind  # type: ignore[attr-defined]
        return kind.restrict_description if self.method == "POST" else kind.lift_description


class _RestrictionView(ChatAPIView):
    kind: RestrictionKind = ROOM_BAN  # each URL passes its own: as_view(kind=...) in rooms/api_urls.py
    schema = _RestrictionSchema()

    def target(self, request: Request, slug: str | None) -> dict[str, Any]:
        """The service's `actor` and, for a room kind, the room (visible to the caller, else 404)."""
        if self.kind.is_room_scoped:
            assert slug is not None, "room kinds are routed under rooms/<slug>/"
            return {"actor": request.user, "room": selectors.room_get_visible(user=request.user, slug=slug)}
        return {"actor": request.user}


class RestrictionListView(_RestrictionView):
    @extend_schema(
        request=RestrictionCreateSerializer,
        responses={201: RestrictionSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR},
    )
    def post(self, request: Request, slug: str | None = None) -> Response:
        target = self.target(request, slug)
        data = validated(RestrictionCreateSerializer, request.data)
        row = self.kind.restrict(**target, **data)
        body: dict[str, Any] = {
            "username": data["username"],
            "until": row.until,
            "reason": row.reason,
            "created": row.created,
        }
        if "room" in target:
            body["room"] = target["room"].slug
        return Response(body, status=status.HTTP_201_CREATED)


class RestrictionDetailView(_RestrictionView):
    @extend_schema(request=None, responses={204: None, 401: ERROR, 403: ERROR, 404: ERROR})
    def delete(self, request: Request, username: str, slug: str | None = None) -> Response:
        self.kind.lift(**self.target(request, slug), username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)
