"""Serializer fields that take JSON types as they are: no "3" for an integer, no 1 for a boolean,
no number for a string. Every app's inbound serializers use these."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

# PostgreSQL bigint: a larger id or cursor can name no row; refusing it avoids a database error.
MAX_ID = 2**63 - 1  # rooms.protocol.MAX_MESSAGE_ID is the same


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean only: not "yes", 1 or "false"."""

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and data in ("true", "false"):  # form-encoded bodies
            return data == "true"
        self.fail("invalid", input=data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: not 1.5, "3" or true."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, (int, str)):
            self.fail("invalid")
        if isinstance(data, str) and not (data.isascii() and data.isdigit()):  # not "-1", "1e3", "٣"
            self.fail("invalid")
        return super().to_internal_value(data)


class JsonIntegerField(StrictIntegerField):
    """An integer in a JSON body: a JSON number only, not "3" (query strings use StrictIntegerField)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSlugField(serializers.SlugField):
    """A slug given as a JSON string only."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
