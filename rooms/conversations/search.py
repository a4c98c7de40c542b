"""Message search (CONTRACT §5): every word of the query, newest first, only in rooms the user may
read, with the access rules inside the query itself (nothing is filtered afterwards, so neither
results nor `has_more` can reveal a room the user may not read)."""

from __future__ import annotations

import re

from django.contrib.postgres.search import SearchQuery
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet

from rooms.exceptions import BadRequest, NotFound
from rooms.models import SEARCH_CONFIG, Membership, Message, Room, RoomBan, message_search_vector
from rooms.protocol import SLUG_RE, storable_text_check

SEARCH_PAGE = 20
QUERY_MAX_CHARS = 200
_WORD_RE = re.compile(r"\w+")


def search_query_check(q: object) -> str:
    """The `q` rule: a string of 1-200 characters, not only whitespace, storable text (no NUL,
    no lone surrogate). BadRequest otherwise."""
    if not isinstance(q, str) or not q.strip():
        raise BadRequest('"q" must be 1-200 characters of text to search for.')
    if len(q) > QUERY_MAX_CHARS:
        raise BadRequest(f'"q" is {len(q)} characters; at most {QUERY_MAX_CHARS}.')
    return storable_text_check(q, field="q")


def rooms_readable_by(user) -> QuerySet[Room]:
    """The rooms whose messages `user` may search: public rooms and the user's private rooms and
    DMs, less those the user is banned from (a ban in force). One subquery, no rows fetched."""
    banned = RoomBan.objects.active().filter(room_id=OuterRef("pk"), user_id=user.id)
    is_member = Membership.objects.filter(room_id=OuterRef("pk"), user_id=user.id)
    return Room.objects.filter(Q(is_private=False) | Exists(is_member)).exclude(Exists(banned))


def _matching(queryset: QuerySet[Message], q: str) -> QuerySet[Message]:
    if connection.vendor == "postgresql":
        # Exactly the expression of the GIN index `message_search`, so PostgreSQL can use it;
        # websearch_to_tsquery never raises on user syntax (quotes, -, or) and stems words.
        return queryset.alias(search=message_search_vector()).filter(
            search=SearchQuery(q, search_type="websearch", config=SEARCH_CONFIG)
        )
    words = _WORD_RE.findall(q)
    if not words:
        return queryset.none()
    condition = Q()
    for word in words:
        condition &= Q(body_raw__icontains=word)
    return queryset.filter(condition)


def message_search(
    *, user, q: str, room_slug: str | None = None, before: int | None = None, limit: int = SEARCH_PAGE
) -> tuple[list[Message], bool]:
    """A page of live messages matching every word of `q`, newest first, and whether older ones
    match too. `room_slug`: only that room, NotFound unless the user may read it; `before`: ids
    below it. PostgreSQL: full-text matching (other forms of a word match); SQLite: each word
    contained, case-insensitively (ASCII case only: SQLite's LIKE)."""
    q = search_query_check(q)
    readable = rooms_readable_by(user)
    if room_slug is not None:
        if not SLUG_RE.match(room_slug):
            raise NotFound(f"No room {room_slug[:64]!r} you may read.")
        room_id = readable.filter(slug=room_slug).values_list("pk", flat=True).first()
        if room_id is None:
            raise NotFound(f"No room {room_slug!r} you may read.")
        scope = Message.objects.filter(room_id=room_id)
    else:
        scope = Message.objects.filter(room__in=readable.values("pk"))
    scope = scope.filter(deleted__isnull=True)
    if before is not None:
        scope = scope.filter(id__lt=before)
    page = list(_matching(scope, q).select_related("room", "author", "reply_to__author").order_by("-id")[: limit + 1])
    return page[:limit], len(page) > limit
