"""Focused consumer tests with Channels' WebsocketCommunicator, and property-based frame fuzzing.

These run in-process (in-memory layer and SQLite when no services are configured, Redis and
PostgreSQL in CI), so the protocol is checked even on a machine without services.
"""

from __future__ import annotations

import json
import string

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from chatsite.asgi import application
from rooms.protocol import FrameError, JoinFrame, MessageFrame, parse_frame
from tests.support.ws import access_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def in_process_services(settings):
    """These tests run the consumer in-process on the in-memory layer and local presence, with or
    without Redis (the Redis paths run in tests/realtime against real daphne processes). Each test
    has its own event loop, and channels-redis' pub/sub client can hang when a loop is torn down
    under it."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REDIS_URL = ""


def communicator(user=None, *, origin: str | None = None, query: str = "") -> WebsocketCommunicator:
    headers = []
    if user is not None:
        headers.append((b"authorization", f"Bearer {access_token(user)}".encode()))
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return WebsocketCommunicator(application, "/ws/chat/" + (f"?{query}" if query else ""), headers=headers)


async def test_unauthenticated_handshake_is_refused_with_4001():
    """No credentials: the handshake is refused (closed with 4001 before any frame)."""
    ws = communicator()
    connected, code = await ws.connect()
    assert connected is False and code == 4001


async def test_foreign_origin_is_refused(user_factory):
    """A handshake from a foreign origin is refused even with a valid JWT."""
    from asgiref.sync import sync_to_async

    user = await sync_to_async(user_factory)()
    ws = communicator(user, origin="http://evil.example")
    connected, _ = await ws.connect()
    assert connected is False


async def test_join_post_and_receive_in_process(user_factory, room_factory):
    """join, message and its broadcast work through the in-process stack."""
    from asgiref.sync import sync_to_async

    user = await sync_to_async(user_factory)("dora")
    await sync_to_async(room_factory)("den", owner=user)
    ws = communicator(user)
    connected, _ = await ws.connect()
    assert connected
    await ws.send_json_to({"type": "join", "room": "den"})
    joined = await ws.receive_json_from(timeout=3)
    assert joined["type"] == "joined" and joined["room"] == "den" and joined["online"] == ["dora"]
    await ws.send_json_to({"type": "message", "room": "den", "body": "hi", "client_id": "k1"})
    frames = [await ws.receive_json_from(timeout=3) for _ in range(2)]
    message = next(f for f in frames if f["type"] == "message")["message"]
    assert message["body"] == "hi" and message["client_id"] == "k1"
    await ws.disconnect()


# ----- property-based fuzzing --------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)
frame_objects = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["join", "leave", "message", "typing", "ping", "react", "pong", "", "JOIN"])
        | json_values,
        "room": st.sampled_from(["den", "nowhere", "", "../x", "a" * 65]) | json_values,
        "body": st.text(max_size=50) | json_values,
        "client_id": st.text(alphabet=string.ascii_letters, min_size=0, max_size=70) | json_values,
        "after": st.integers(min_value=-5, max_value=10**12) | json_values,
        "reply_to": st.integers(min_value=-2, max_value=50) | json_values,
        "message_id": st.integers(min_value=-2, max_value=50) | json_values,
        "emoji": st.sampled_from(["👍", ":ok:", "❤", "👍👍", "x", ""]) | json_values,
        "remove": st.booleans() | json_values,
    },
)
frame_texts = st.one_of(frame_objects.map(json.dumps), json_values.map(json.dumps), st.text(min_size=1, max_size=60))


@given(text=frame_texts)
@hypothesis_settings(max_examples=300, deadline=None)
def test_parse_frame_accepts_or_raises_frame_error_only(text):
    """parse_frame never raises anything but FrameError, whatever the text."""
    try:
        frame = parse_frame(text)
    except FrameError as error:
        assert error.code in ("bad_request", "too_large") and error.detail
    else:
        if isinstance(frame, (JoinFrame, MessageFrame)):
            assert isinstance(frame.room, str)


@given(texts=st.lists(frame_texts, min_size=1, max_size=12))
@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
def test_fuzzed_frames_never_crash_the_connection(texts, user_factory, room_factory):
    """Any sequence of frames is answered without crashing; the socket still answers ping after."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username="fuzz").first() or user_factory("fuzz")
    if not user.owned_rooms.filter(slug="den").exists():
        room_factory("den", owner=user)

    async def scenario():
        ws = communicator(user)
        connected, _ = await ws.connect()
        assert connected
        for text in texts:
            await ws.send_to(text_data=text)
        await ws.send_json_to({"type": "ping"})
        frames = []
        while True:
            frame = await ws.receive_json_from(timeout=5)
            frames.append(frame)
            if frame["type"] == "pong" and len([f for f in frames if f["type"] == "pong"]) > _pings(texts):
                break
        for frame in frames:
            assert frame["type"] in {
                "joined",
                "left",
                "message",
                "error",
                "pong",
                "presence",
                "typing",
                "resync",
                "reaction",
            }
            if frame["type"] == "error":
                assert frame["code"] in {
                    "bad_request",
                    "not_found",
                    "forbidden",
                    "rate_limited",
                    "slow_mode",
                    "too_large",
                }
        await ws.disconnect()

    async_to_sync(scenario)()


def _pings(texts: list[str]) -> int:
    count = 0
    for text in texts:
        try:
            if json.loads(text).get("type") == "ping":
                count += 1
        except (ValueError, AttributeError):
            pass
    return count
