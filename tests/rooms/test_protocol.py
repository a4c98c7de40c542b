"""rooms/protocol.py `parse_frame`, table-driven: each inbound frame (CONTRACT §3) and each way it
can be wrong, with the error's code, the client_id it carries, and the words that teach the fix."""

from __future__ import annotations

import json

import pytest

from rooms.protocol import FrameError, JoinFrame, LeaveFrame, MessageFrame, PingFrame, TypingFrame, parse_frame

VALID = [
    ({"type": "join", "room": "lobby"}, JoinFrame(room="lobby")),
    ({"type": "join", "room": "lobby", "after": 0}, JoinFrame(room="lobby", after=0)),
    ({"type": "join", "room": "a_b-9", "after": 42}, JoinFrame(room="a_b-9", after=42)),
    ({"type": "join", "room": "lobby", "after": None}, JoinFrame(room="lobby")),
    ({"type": "leave", "room": "lobby"}, LeaveFrame(room="lobby")),
    ({"type": "message", "room": "lobby", "body": "hi"}, MessageFrame(room="lobby", body="hi")),
    (
        {"type": "message", "room": "lobby", "body": " padded ", "client_id": "c-1"},
        MessageFrame(room="lobby", body=" padded ", client_id="c-1"),
    ),
    ({"type": "message", "room": "lobby", "body": "x" * 4000}, MessageFrame(room="lobby", body="x" * 4000)),
    ({"type": "message", "room": "lobby", "body": "é😀"}, MessageFrame(room="lobby", body="é😀")),
    ({"type": "typing", "room": "lobby"}, TypingFrame(room="lobby")),
    ({"type": "ping"}, PingFrame()),
    ({"type": "ping", "extra": "ignored"}, PingFrame()),
]


@pytest.mark.parametrize(("data", "expected"), VALID, ids=[json.dumps(d)[:50] for d, _ in VALID])
def test_valid_frames_parse_to_their_dataclass(data, expected):
    """A well-formed frame of each type parses into its dataclass, with every field kept."""
    assert parse_frame(json.dumps(data)) == expected


# (raw text, code, client_id carried, words the detail must contain)
INVALID = [
    ("not json", "bad_request", None, "not valid JSON"),
    ("[" * 100_000, "bad_request", None, "not valid JSON"),
    ('"a string"', "bad_request", None, "JSON object"),
    ("[1, 2]", "bad_request", None, "JSON object"),
    ("{}", "bad_request", None, "Unknown frame type None"),
    ('{"type": 5}', "bad_request", None, "Unknown frame type 5"),
    ('{"type": "shout"}', "bad_request", None, "expected one of: join, leave, message, ping"),
    ('{"type": "join"}', "bad_request", None, '"room" must be a room slug'),
    ('{"type": "join", "room": 7}', "bad_request", None, '"room" must be a room slug'),
    ('{"type": "join", "room": "has space"}', "bad_request", None, '"room" must be a room slug'),
    ('{"type": "join", "room": "' + "r" * 65 + '"}', "bad_request", None, '"room" must be a room slug'),
    ('{"type": "join", "room": "lobby", "after": -1}', "bad_request", None, '"after" must be a non-negative'),
    ('{"type": "join", "room": "lobby", "after": "3"}', "bad_request", None, '"after" must be a non-negative'),
    ('{"type": "join", "room": "lobby", "after": true}', "bad_request", None, '"after" must be a non-negative'),
    ('{"type": "join", "room": "lobby", "after": 1.5}', "bad_request", None, '"after" must be a non-negative'),
    ('{"type": "leave"}', "bad_request", None, '"room" must be a room slug'),
    ('{"type": "typing", "room": null}', "bad_request", None, '"room" must be a room slug'),
    ('{"type": "message", "room": "lobby"}', "bad_request", None, '"body" must be a string'),
    (
        '{"type": "message", "room": "lobby", "body": 5, "client_id": "c"}',
        "bad_request",
        "c",
        '"body" must be a string',
    ),
    ('{"type": "message", "room": "lobby", "body": "   ", "client_id": "c"}', "bad_request", "c", "must not be empty"),
    ('{"type": "message", "room": "lobby", "body": ""}', "bad_request", None, "must not be empty"),
    (
        json.dumps({"type": "message", "room": "lobby", "body": "x" * 4001, "client_id": "c"}),
        "too_large",
        "c",
        "the limit is 4000",
    ),
    ('{"type": "message", "room": "no room!", "body": "hi", "client_id": "c"}', "bad_request", "c", '"room"'),
    ('{"type": "message", "room": "lobby", "body": "hi", "client_id": 5}', "bad_request", None, '"client_id"'),
    ('{"type": "message", "room": "lobby", "body": "hi", "client_id": ""}', "bad_request", None, '"client_id"'),
    (
        json.dumps({"type": "message", "room": "lobby", "body": "hi", "client_id": "c" * 65}),
        "bad_request",
        None,
        "1-64 characters",
    ),
]


@pytest.mark.parametrize(("text", "code", "client_id", "words"), INVALID, ids=[t[:50] for t, *_ in INVALID])
def test_invalid_frames_raise_frame_error_that_teaches_the_fix(text, code, client_id, words):
    """Each malformed frame is a FrameError with the contract's code, its client_id if readable,
    and a detail that names what is wrong."""
    with pytest.raises(FrameError) as caught:
        parse_frame(text)
    assert caught.value.code == code
    assert caught.value.client_id == client_id
    assert words in caught.value.detail
