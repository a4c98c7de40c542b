"""Cursor pagination for API lists: a cursor the client mangled is a 400, not DRF's 404."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound, ParseError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request


class StrictCursorPagination(CursorPagination):
    """DRF's cursor pagination with `limit` (1-100, default 50); subclasses set `ordering`."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 100

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ParseError('Invalid "cursor": pass back the "next" or "previous" link unchanged.') from None
