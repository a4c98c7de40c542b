"""Log lines: one per event with user, room and reason; JSON objects when LOG_FORMAT=json."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

import pytest

from chatsite.logs import JsonFormatter, log_event
from tests.support.servers import ROOT


@pytest.fixture
def capture():
    """A logger writing through the given formatter to a string buffer."""
    handlers = []

    def make(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        logger = logging.getLogger(f"tests.ops.logging.{len(handlers)}")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(handler)
        handlers.append((logger, handler))
        return logger, stream

    yield make
    for logger, handler in handlers:
        logger.removeHandler(handler)


def test_json_event_is_one_object_per_line(capture):
    """log_event under the JSON formatter writes one parseable object carrying every field."""
    logger, stream = capture(JsonFormatter())
    log_event(logger, "ws.close", user="alice", room="lobby", reason="client closed", code=1000)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["event"] == "ws.close"
    assert (entry["user"], entry["room"], entry["reason"], entry["code"]) == ("alice", "lobby", "client closed", 1000)
    assert entry["level"] == "INFO"
    assert entry["logger"] == logger.name
    assert entry["message"].startswith("ws.close ")


def test_text_event_is_greppable_key_values(capture):
    """In text format the line reads `event key=value ...`, quoting values with spaces."""
    logger, stream = capture(logging.Formatter("%(message)s"))
    log_event(logger, "ws.open", user="bob", room=None, reason='said "hi" = bye')
    assert stream.getvalue() == 'ws.open user=bob room=- reason="said \\"hi\\" = bye"\n'


def test_newline_in_a_field_cannot_forge_a_line(capture):
    """A user-supplied value with a newline stays on its one line in both formats."""
    for formatter in (logging.Formatter("%(message)s"), JsonFormatter()):
        logger, stream = capture(formatter)
        log_event(logger, "ws.error", user="eve", reason="x\nws.open user=admin")
        assert len(stream.getvalue().splitlines()) == 1


def test_field_named_like_a_record_attribute_is_kept(capture):
    """A field such as `name` does not crash logging; JSON keeps it as field_name."""
    logger, stream = capture(JsonFormatter())
    log_event(logger, "room.renamed", name="new name", level=logging.WARNING)
    entry = json.loads(stream.getvalue())
    assert entry["field_name"] == "new name"
    assert entry["level"] == "WARNING"


def test_exception_is_in_the_json_line(capture):
    """An error event with exc_info carries the traceback inside its one JSON object."""
    logger, stream = capture(JsonFormatter())
    try:
        raise ValueError("boom")
    except ValueError:
        log_event(logger, "ws.error", level=logging.ERROR, exc_info=True, user="alice", reason="crash")
    entry = json.loads(stream.getvalue())
    assert "ValueError: boom" in entry["exc_info"]


def test_log_format_json_configures_root_logging():
    """With LOG_FORMAT=json Django's logging config writes JSON lines to stderr."""
    script = (
        "import django, logging; django.setup(); from chatsite.logs import log_event; "
        "log_event(logging.getLogger('chatsite.test'), 'ws.open', user='alice', room='lobby')"
    )
    env = {**os.environ, "LOG_FORMAT": "json", "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "chatsite.settings"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    entry = json.loads(result.stderr.strip().splitlines()[-1])
    assert (entry["event"], entry["user"], entry["room"]) == ("ws.open", "alice", "lobby")


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_socket_open_and_close_log_one_json_line_each(daphne_factory, user_factory):
    """A real process with LOG_FORMAT=json logs a socket's open and close as JSON lines naming the user."""
    import asyncio
    import time

    import websockets

    from tests.ops.support import token_for

    user = user_factory()
    server = daphne_factory(env={"LOG_FORMAT": "json"})

    async def open_and_close():
        async with websockets.connect(server.ws_url, additional_headers={"Authorization": f"Bearer {token_for(user)}"}):
            await asyncio.sleep(0.2)

    asyncio.run(open_and_close())

    def events() -> list[dict]:
        entries = []
        for line in server.log().splitlines():
            if line.startswith("{"):
                entries.append(json.loads(line))
        return [e for e in entries if e.get("user") == user.username]

    deadline = time.monotonic() + 5
    while len(events()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    opened = [e for e in events() if e.get("event") == "ws_open"]
    closed = [e for e in events() if e.get("event") == "ws_close"]
    assert len(opened) == 1 and len(closed) == 1, server.log()[-2000:]
    assert closed[0]["level"] == "INFO" and "code" in closed[0]
