"""The load tool's receive fast path (bench/dialects.py) agrees with a full JSON parse on every frame."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from dialects import DIALECTS, Chatsite, SocketIO

CID_PREFIX = "b0123abcd-"


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def envelope(dialect, message) -> bytes:
    if dialect is SocketIO:
        return ("42" + dumps(["message", message])).encode()
    return dumps({"type": "message", "message": message}).encode()


def slow(dialect, payload: bytes) -> tuple[int, int] | None:
    """What LoadTool.on_frame makes of a frame: (id, sequence) of one of the tool's messages, or None."""
    decoded = dialect.decode(payload)
    if decoded is None or decoded[0] != "message":
        return None
    m = decoded[1]["message"]
    cid = m.get("client_id") or ""
    if not cid.startswith(CID_PREFIX) or not cid[len(CID_PREFIX) :].isdigit():
        return None
    return int(m["id"]), int(cid[len(CID_PREFIX) :])


def message(mid=7, cid=f"{CID_PREFIX}42", body="t=1 c=x"):
    return {
        "id": mid,
        "room": "bench10x20-3",
        "author": {"id": 3, "username": "benchuser3"},
        "body": body,
        "created": "2026-01-01T00:00:00Z",
        "edited": None,
        "client_id": cid,
    }


@pytest.mark.parametrize("dialect", [Chatsite, SocketIO], ids=["chatsite", "socketio"])
def test_the_servers_frames_take_the_fast_path(dialect):
    """Frames as chatsite and Socket.IO write them are recognised without json.loads."""
    fast = dialect().delivery_matcher(CID_PREFIX.encode())
    assert fast(envelope(dialect, message(mid=12345, cid=f"{CID_PREFIX}678"))) == (12345, 678)
    # later contract fields after client_id (§5: reply_to, mentions, reactions, version) keep it fast
    later = message() | {"reply_to": {"id": 1, "author": {"id": 2, "username": "u"}, "excerpt": "x"}, "version": 9}
    assert fast(envelope(dialect, later)) == (7, 42)


@pytest.mark.parametrize("dialect", [Chatsite, SocketIO], ids=["chatsite", "socketio"])
@pytest.mark.parametrize(
    "frame",
    [
        message(cid="someone-else-1"),  # a client_id of another run or tool
        message(cid=None),
        message(cid=f"{CID_PREFIX}12x"),
        message(body=f'"client_id":"{CID_PREFIX}99"'),  # the pattern inside a body is escaped
        {"client_id": f"{CID_PREFIX}5", **message(cid=None)},  # id not the first key
        {"type": "message_edited", "message": message()},
    ],
    ids=["foreign", "null", "not-digits", "in-body", "key-order", "other-kind"],
)
def test_unusual_frames_agree_with_the_full_parse(dialect, frame):
    fast = dialect().delivery_matcher(CID_PREFIX.encode())
    payload = envelope(dialect, frame) if "type" not in frame else dumps(frame).encode()
    got = fast(payload)
    assert got is None or got == slow(dialect, payload)


def test_a_nested_client_id_is_not_taken_for_the_messages_own():
    """Two `"client_id":` keys (the message's null one and a nested one): the fast path declines."""
    frame = message(cid=None) | {"reply_to": {"client_id": f"{CID_PREFIX}5"}}
    payload = envelope(Chatsite, frame)
    assert Chatsite().delivery_matcher(CID_PREFIX.encode())(payload) is None
    assert slow(Chatsite, payload) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None)
@given(
    dialect=st.sampled_from(sorted(DIALECTS)),
    mid=st.integers(min_value=0, max_value=10**12),
    cid=st.one_of(
        st.none(),
        st.text(max_size=30),
        st.integers(min_value=0, max_value=10**9).map(lambda n: f"{CID_PREFIX}{n}"),
    ),
    body=st.text(max_size=80) | st.just(f'x","client_id":"{CID_PREFIX}1"}}'),
    extra=st.dictionaries(st.sampled_from(["reply_to", "version", "mentions", "client_id", "x"]), json_values),
)
def test_fast_path_never_disagrees_with_json(dialect, mid, cid, body, extra):
    """Whatever the frame, the fast path returns the full parse's answer or declines (None)."""
    d = DIALECTS[dialect]
    m = message(mid=mid, cid=cid, body=body)
    m.update({k: v for k, v in extra.items() if k != "client_id"})
    if "client_id" in extra:
        m["reply_to"] = {"client_id": extra["client_id"]}
    payload = envelope(d, m)
    got = d().delivery_matcher(CID_PREFIX.encode())(payload)
    want = slow(d, payload)
    assert got is None or got == want
    if cid and cid.startswith(CID_PREFIX) and cid[len(CID_PREFIX) :].isdigit() and "client_id" not in extra:
        assert got == want == (mid, int(cid[len(CID_PREFIX) :]))


def test_engineio_control_packets():
    """Engine.IO's open, ping and namespace packets are told apart from events."""
    control = SocketIO.control
    assert control(b'0{"sid":"a","pingInterval":25000}') == ("open", b"40")
    assert control(b"2") == ("ping", b"3")
    assert control(b'40{"sid":"b"}') == ("connected", None)
    assert control(b'44{"message":"no"}')[0] == "connect_error"
    assert control(b'42["message",{}]') is None
    assert SocketIO.decode(b'42["joined",{"room":"r","last_id":3}]') == (
        "joined",
        {"room": "r", "last_id": 3, "type": "joined"},
    )
    assert SocketIO.encode("join", '"room":"r"') == b'42["join",{"room":"r"}]'
