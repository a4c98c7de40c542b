"""The event stream's wire format (rooms/sse.py): the rooms query, the cursor, the event bytes."""

from __future__ import annotations

import json

import pytest

from rooms import sse
from rooms.exceptions import BadRequest


def test_rooms_are_slugs_in_order_with_repeats_counted_once():
    """?rooms=b,a,b streams b then a."""
    assert sse.parse_rooms("b, a,b") == ["b", "a"]


@pytest.mark.parametrize("value", [None, "", " ", "a,", ",a", "a,,b", "a b", "a\x00", "\ud800", "x" * 65, "é"])
def test_rooms_that_are_not_slugs_are_bad_requests(value):
    """Missing, empty entries, spaces, NUL, lone surrogates, over 64 characters: BadRequest."""
    with pytest.raises(BadRequest):
        sse.parse_rooms(value)


def test_twenty_rooms_are_allowed_and_twenty_one_are_not():
    """1 to 20 rooms (CONTRACT §6)."""
    assert len(sse.parse_rooms(",".join(f"r{n}" for n in range(20)))) == 20
    with pytest.raises(BadRequest, match="at most 20"):
        sse.parse_rooms(",".join(f"r{n}" for n in range(21)))


def test_a_cursor_round_trips():
    """format_cursor and parse_cursor are inverses, in join order."""
    cursor = {"lobby": 12, "dev-talk": 0, "x_1": 123456789012345678}
    assert sse.format_cursor(cursor) == "lobby:12,dev-talk:0,x_1:123456789012345678"
    assert sse.parse_cursor(sse.format_cursor(cursor)) == cursor


def test_an_empty_cursor_means_no_replay():
    assert sse.parse_cursor("") == {} and sse.parse_cursor("  ") == {}


@pytest.mark.parametrize(
    "value",
    [
        "lobby",
        "lobby:",
        ":5",
        "lobby:-1",
        "lobby:1.5",
        "lobby:\u0661",
        "lobby:1,",
        "lobby:1,lobby:2",
        "lo bby:1",
        "a:" + "9" * 19,
    ],
)
def test_malformed_cursors_are_bad_requests(value):
    """Missing parts, signs, decimals, non-ASCII digits, trailing commas, repeats, over 18 digits: BadRequest."""
    with pytest.raises(BadRequest):
        sse.parse_cursor(value)


def test_a_cursor_longer_than_any_we_send_is_refused():
    with pytest.raises(BadRequest, match="longer than"):
        sse.parse_cursor("a:1," * 1000)


def test_an_event_is_type_id_and_one_line_of_json():
    """`event:`, `id:`, `data:` and a blank line; line breaks in the text stay escaped in the JSON."""
    data = json.dumps({"type": "message", "body": "two\nlines\r\u2028"}, ensure_ascii=False)
    encoded = sse.event_bytes("message", data, event_id="lobby:3")
    assert encoded == f"event: message\nid: lobby:3\ndata: {data}\n\n".encode()
    assert encoded.count(b"\n") == 4


def test_events_without_a_cursor_have_no_id_line():
    assert sse.event_bytes("typing", "{}") == b"event: typing\ndata: {}\n\n"


def test_last_event_id_wins_over_the_after_of_the_url():
    """The browser's reconnect sends Last-Event-ID while the URL keeps its first ?after=."""
    from rooms.stream import stream_request

    scope = {"query_string": b"rooms=a,b&after=a:1", "headers": [(b"last-event-id", b"a:7,b:2")]}
    assert stream_request(scope) == (["a", "b"], {"a": 7, "b": 2})
    assert stream_request({**scope, "headers": []}) == (["a", "b"], {"a": 1})
    assert stream_request({"query_string": b"rooms=a", "headers": []}) == (["a"], {})
