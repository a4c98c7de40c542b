"""Request body parsers of the API: DRF's, made to refuse pathological JSON with 400, not 500."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, FormParser, JSONParser


class SafeJSONParser(JSONParser):
    """DRF's JSONParser, answering 400 for nesting deeper than Python's recursion limit.

    `json` raises RecursionError (not ValueError) on e.g. 50,000 `[`, which DRF lets through
    as a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None


API_PARSERS: list[type[BaseParser]] = [SafeJSONParser, FormParser]
