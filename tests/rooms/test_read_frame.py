"""The `read` frame in-process (in-memory layer; SQLite or PostgreSQL): the sender gets `read_state`."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from chatsite.asgi import application
from tests.rooms.test_read_state import store
from tests.support.ws import access_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def in_process_services(settings):
    """The in-memory layer and local presence, as tests/rooms/test_consumer.py explains."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REDIS_URL = ""


async def test_read_frame_answers_read_state_without_joining(user_factory, room_factory):
    """A socket that never joined the room sends `read` and gets `read_state` with the new numbers."""
    owner, reader = await sync_to_async(user_factory)(), await sync_to_async(user_factory)()
    room = await sync_to_async(room_factory)("den", owner=owner, members=[reader])
    first = await sync_to_async(store)(room, owner)
    await sync_to_async(store)(room, owner)
    ws = WebsocketCommunicator(
        application, "/ws/chat/", headers=[(b"authorization", f"Bearer {access_token(reader)}".encode())]
    )
    connected, _ = await ws.connect()
    assert connected
    await ws.send_json_to({"type": "read", "room": "den", "last_read_id": first.id})
    assert await ws.receive_json_from(timeout=3) == {
        "type": "read_state",
        "room": "den",
        "last_read_id": first.id,
        "unread_count": 1,
        "mention_count": 0,
    }
    await ws.send_json_to({"type": "read", "room": "den", "last_read_id": "x"})
    error = await ws.receive_json_from(timeout=3)
    assert (error["type"], error["code"]) == ("error", "bad_request")
    await ws.disconnect()
