"""Typed chat errors whose `code` is the contract's error code (CONTRACT §3).

Services raise these; `api_exception_handler` turns them (and DRF's own errors) into JSON for
REST, and the consumer turns them into `error` frames. One class per code, one path each way.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ChatError(Exception):
    code = "bad_request"
    status = 400

    def __init__(self, detail: str, *, retry_after: float | None = None, fields: dict | None = None):
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
        self.fields = fields or {}


class BadRequest(ChatError):
    code, status = "bad_request", 400


class NotFound(ChatError):
    code, status = "not_found", 404


class Forbidden(ChatError):
    code, status = "forbidden", 403


class Conflict(ChatError):
    code, status = "conflict", 409


class TooLarge(ChatError):
    code, status = "too_large", 413


class RateLimited(ChatError):
    code, status = "rate_limited", 429


class SlowMode(ChatError):
    code, status = "slow_mode", 429


class Filtered(ChatError):
    """A `block` term of the word filter (CONTRACT §7): nothing stored, no rate-limit token spent."""

    code, status = "filtered", 400


STORAGE_RETRY_AFTER = 5  # seconds a client should wait before retrying during an outage


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: every error is `{"code", "detail", ...}` JSON with the right status."""
    if isinstance(exc, ChatError):
        data: dict[str, Any] = {"code": exc.code, "detail": exc.detail, **exc.fields}
        headers = {}
        if exc.retry_after is not None:
            data["retry_after"] = exc.retry_after
            headers["Retry-After"] = str(max(1, int(exc.retry_after + 0.999)))
        return Response(data, status=exc.status, headers=headers)

    if isinstance(exc, (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)):
        # PostgreSQL or Redis is unreachable (docs/operations.md runbook): a retryable 503, never a bare 500.
        logging.getLogger("chatsite.api").warning("api call failed: storage unavailable", exc_info=exc)
        return Response(
            {
                "code": "unavailable",
                "detail": "The server cannot reach its storage right now; retry shortly.",
                "retry_after": STORAGE_RETRY_AFTER,
            },
            status=503,
            headers={"Retry-After": str(STORAGE_RETRY_AFTER)},
        )

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        errors = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        response.data = {"code": "bad_request", "detail": "Some fields are invalid.", **errors}
        # Keep the DRF-style field errors at the top level as well as under "errors".
        response.data["errors"] = errors
    elif isinstance(exc, drf_exceptions.APIException):
        detail = response.data.get("detail", str(exc)) if isinstance(response.data, dict) else str(exc)
        code = {
            400: "bad_request",
            401: "not_authenticated",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            415: "unsupported_media_type",
            429: "rate_limited",
        }.get(response.status_code, exc.default_code)
        response.data = {"code": code, "detail": str(detail)}
        wait = getattr(exc, "wait", None)
        if wait is not None:
            response.data["retry_after"] = wait
    return response
