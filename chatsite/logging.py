"""Log lines an operator can grep and a log pipeline can parse.

`log_event(logger, "ws_close", user=..., room=..., reason=...)` writes one line per event:
`ws_close user=alice room=lobby reason=...` as text, or, with LOG_FORMAT=json, one JSON object per
line (`JsonFormatter`) whose keys are `event` and the event's fields. The consumer's lines
(`ws_open`, `ws_close`, `ws_refused`, `ws_flood`) carry the same `event` key; docs/operations.md
lists them.
"""

from __future__ import annotations

import json
import logging
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


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
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _text_value(value: Any) -> str:
    text = "-" if value is None else str(value)
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
        extra[f"field_{key}" if key in _STANDARD else key] = value
    text = " ".join([event, *(f"{key}={_text_value(value)}" for key, value in fields.items())])
    logger.log(level, "%s", text, extra=extra, exc_info=exc_info)
