"""Log lines an operator can grep and a log pipeline can parse.

`log_event(logger, "ws_close", user=..., room=..., reason=...)` writes one line per event:
`ws_close user=alice room=lobby reason=...` as text, or, with LOG_FORMAT=json, one JSON object per
line (`JsonFormatter`) whose keys are `event` and the event's fields. The consumer's lines
(`ws_open`, `ws_close`, `ws_refused`, `ws_flood`) carry the same `event` key; docs/operations.md
lists them.

Log hygiene (CONTRACT §7): `LogHygieneFilter`, on the one console handler, sees every record of
every logger (Django, daphne, channels, ours) before it is written. It masks what looks like a
credential (JWTs, `Bearer` values, `ticket=`, session cookies, passwords in key=value or JSON form)
and clips client-supplied text: each field to MAX_FIELD_CHARS, a whole message to
MAX_MESSAGE_CHARS, a traceback to MAX_TRACEBACK_CHARS. `log_event` clips its fields the same way,
so one long value cannot crowd the others out of its line.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

MAX_FIELD_CHARS = 200
MAX_MESSAGE_CHARS = 2000
MAX_TRACEBACK_CHARS = 20000
REDACTED = "[redacted]"

# (pattern, replacement): what a credential looks like wherever it lands in a line.
_CREDENTIALS = [
    # A JWT: base64url header (always starting {" = eyJ), payload and signature.
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+"), rf"\1 {REDACTED}"),
    # key=value in query strings, cookies and form bodies.
    (
        re.compile(r"(?i)\b(ticket|sessionid|session_key|csrftoken|password\w*|access|refresh|token)=[^&;\s\"']+"),
        rf"\1={REDACTED}",
    ),
    # "key": "value" in JSON (request bodies echoed by an error, a payload in a traceback).
    (
        re.compile(
            r"(?i)([\"'](?:ticket|password\w*|old_password|new_password|access|refresh|token)[\"']\s*:\s*)[\"'][^\"']*[\"']"
        ),
        rf'\1"{REDACTED}"',
    ),
]


def redact(text: str) -> str:
    """`text` with anything shaped like a credential replaced by [redacted]."""
    for pattern, replacement in _CREDENTIALS:
        text = pattern.sub(replacement, text)
    return text


def clip(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """At most `limit` characters of `text`, saying how many were cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[{len(text) - limit} more characters]"


class LogHygieneFilter(logging.Filter):
    """Mask credentials and clip client-supplied text in every record a handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = clip(redact(message), MAX_MESSAGE_CHARS)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, clip(redact(value)))
        if record.exc_info and not record.exc_text:
            record.exc_text = clip(redact(logging.Formatter().formatException(record.exc_info)), MAX_TRACEBACK_CHARS)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and every `extra` field."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_text:  # formatted (and cleaned) by LogHygieneFilter
            entry["exc_info"] = record.exc_text
        elif record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _text_value(value: Any) -> str:
    text = "-" if value is None else clip(str(value))
    # Quote what would break `key=value` splitting; user-chosen text (a reason) may hold anything.
    if not text or any(ch.isspace() or ch in '"=' for ch in text):
        return json.dumps(text)
    return text


def log_event(
    logger: logging.Logger, event: str, *, level: int = logging.INFO, exc_info: Any = None, **fields: Any
) -> None:
    """Log `event` with `fields` (user, room, reason, code, ...) as one line, text or JSON.

    Fields named like LogRecord attributes (`name`, `msg`, ...) are kept as `field_<name>`, since
    `logging` refuses to overwrite those.
    """
    if not logger.isEnabledFor(level):
        return
    extra = {"event": event}
    for key, value in fields.items():
        extra[f"field_{key}" if key in _STANDARD else key] = clip(value) if isinstance(value, str) else value
    text = " ".join([event, *(f"{key}={_text_value(value)}" for key, value in fields.items())])
    logger.log(level, "%s", text, extra=extra, exc_info=exc_info)
