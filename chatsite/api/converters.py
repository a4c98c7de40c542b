"""Path converters of the API's URL maps."""

from __future__ import annotations

from django.urls import register_converter


class UsernameConverter:
    """Django's username characters only, so no NUL byte or other junk reaches the database."""

    regex = r"[\w.@+-]{1,150}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


# Registered on import: the URL maps that use `<username:...>` import this module first.
register_converter(UsernameConverter, "username")
