"""Message search (CONTRACT §5)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from chatsite.api.views import ERROR, ChatAPIView, validated
from rooms import conversations
from rooms.protocol import message_dict
from rooms.serializers import MessagePageSerializer, SearchQuerySerializer


class SearchView(ChatAPIView):
    """Search the messages of the rooms the caller may read."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "q", OpenApiTypes.STR, required=True, description="1-200 characters; every word must match."
            ),
            OpenApiParameter(
                "room", OpenApiTypes.STR, description="Only this room (a slug the caller may read, else 404)."
            ),
            OpenApiParameter("before", OpenApiTypes.INT, description="Only messages with id < before (the next page)."),
        ],
        responses={200: MessagePageSerializer, 400: ERROR, 401: ERROR, 404: ERROR},
        description="Messages containing every word of `q`, case-insensitive, newest first, 20 a page; "
        "`has_more`: older matches exist (pass the last id as `before`). On PostgreSQL full-text "
        "matching (English stemming: 'running' finds 'run'; quotes, `-word` and `or` as in web search "
        "engines); on SQLite each word as a substring. Only public rooms (unless banned there), the "
        "caller's private rooms and DMs; never deleted messages. Empty, blank or longer `q`: 400.",
    )
    def get(self, request: Request) -> Response:
        query = validated(SearchQuerySerializer, request.query_params)
        page, has_more = conversations.message_search(
            user=request.user, q=query["q"], room_slug=query.get("room"), before=query.get("before")
        )
        return Response({"results": [message_dict(message) for message in page], "has_more": has_more})
