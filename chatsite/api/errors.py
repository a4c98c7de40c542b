"""The `{"code", "detail", ...}` error JSON of CONTRACT §3, built here and nowhere else.

`error_body` shapes it, `error_response` answers it from plain Django code (middleware, the
catch-all 404, ops endpoints), and `api_exception_handler` turns a view's exception into it for
DRF. The WebSocket `error` frame (rooms/protocol.py `error_frame`) carries the same two keys.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from rooms.exceptions import ChatError

logger = logging.getLogger("chatsite.api")

STORAGE_RETRY_AFTER = 5  # seconds a client should wait before retrying during an outage

# DRF's own exceptions by status: the contract's code for each (CONTRACT §3).
_CODE_BY_STATUS = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_body(code: str, detail: str, /, *, retry_after: float | None = None, **extra: Any) -> dict[str, Any]:
    """The error object: `code`, `detail`, the extra keys (field errors), `retry_after` when given.

    Positional-only, so a field named "code" or "detail" lands in `extra`; it cannot replace them.
    """
    body: dict[str, Any] = {"code": code, "detail": detail}
    for key, value in extra.items():
        body.setdefault(key, value)
    if retry_after is not None:
        body["retry_after"] = retry_after
    return body


def retry_after_header(seconds: float) -> str:
    """`Retry-After` in whole seconds, rounded up and at least 1 (the header takes no fractions)."""
    return str(max(1, math.ceil(seconds)))


def error_response(
    code: str, detail: str, /, *, status: int, retry_after: float | None = None, **extra: Any
) -> JsonResponse:
    """The error object as a plain Django response, with `Retry-After` when `retry_after` is given."""
    response = JsonResponse(error_body(code, detail, retry_after=retry_after, **extra), status=status)
    if retry_after is not None:
        response["Retry-After"] = retry_after_header(retry_after)
    return response


def _drf_response(body: dict[str, Any], *, status: int, retry_after: float | None = None) -> Response:
    headers = {"Retry-After": retry_after_header(retry_after)} if retry_after is not None else {}
    return Response(body, status=status, headers=headers)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler (settings REST_FRAMEWORK): every error is the error object, right status."""
    if isinstance(exc, ChatError):
        body = error_body(exc.code, exc.detail, retry_after=exc.retry_after, **exc.fields)
        return _drf_response(body, status=exc.status, retry_after=exc.retry_after)

    if isinstance(exc, (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)):
        # PostgreSQL or Redis is unreachable (docs/operations.md runbook): a retryable 503, never a bare 500.
        logger.warning("api call failed: storage unavailable", exc_info=exc)
        body = error_body(
            "unavailable",
            "The server cannot reach its storage right now; retry shortly.",
            retry_after=STORAGE_RETRY_AFTER,
        )
        return _drf_response(body, status=503, retry_after=STORAGE_RETRY_AFTER)

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        errors = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        # The DRF-style field errors stay at the top level as well as under "errors".
        response.data = error_body("bad_request", "Some fields are invalid.", **errors, errors=errors)
    elif isinstance(exc, drf_exceptions.APIException):
        detail = response.data.get("detail", str(exc)) if isinstance(response.data, dict) else str(exc)
        code = _CODE_BY_STATUS.get(response.status_code, str(exc.default_code))
        response.data = error_body(code, str(detail), retry_after=getattr(exc, "wait", None))
    return response
