"""Typed chat errors whose `code` is the contract's error code (CONTRACT §3).

Services raise these; chatsite/api/errors.py `api_exception_handler` turns them (and DRF's own
errors) into JSON for REST, and the consumer turns them into `error` frames. One class per code,
one path each way. Plain Python: no DRF, no storage client here.
"""

from __future__ import annotations


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
