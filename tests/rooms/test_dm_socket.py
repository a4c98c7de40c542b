"""A DM on the WebSocket in-process (in-memory layer; SQLite or PostgreSQL): its users join and
post; once the other user is banned site-wide the socket's posts answer `forbidden`."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from chatsite.asgi import application
from rooms import conversations, services
from tests.support.ws import access_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def in_process_services(settings):
    """The in-memory layer and local presence, as tests/rooms/test_consumer.py explains."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REDIS_URL = ""


async def receive_type(ws: WebsocketCommunicator, frame_type: str) -> dict:
    while True:
        frame = await ws.receive_json_from(timeout=3)
        if frame["type"] == frame_type:
            return frame


async def test_dm_on_the_socket_and_a_site_ban_of_the_other_user(user_factory, moderator_factory):
    """Join and post in a DM; after the other user's site ban the same post is `forbidden` with its client_id."""
    alice = await sync_to_async(user_factory)("alice")
    await sync_to_async(user_factory)("bob")
    moderator = await sync_to_async(moderator_factory)("mod")
    room, _ = await sync_to_async(conversations.dm_open)(user=alice, username="bob")
    ws = WebsocketCommunicator(
        application, "/ws/chat/", headers=[(b"authorization", f"Bearer {access_token(alice)}".encode())]
    )
    assert (await ws.connect())[0]
    await ws.send_json_to({"type": "join", "room": room.slug})
    assert (await receive_type(ws, "joined"))["room"] == room.slug
    await ws.send_json_to({"type": "message", "room": room.slug, "body": "hi", "client_id": "c1"})
    assert (await receive_type(ws, "message"))["message"]["client_id"] == "c1"
    await sync_to_async(services.site_ban)(actor=moderator, username="bob")
    await ws.send_json_to({"type": "message", "room": room.slug, "body": "still there?", "client_id": "c2"})
    error = await receive_type(ws, "error")
    assert (error["code"], error["client_id"]) == ("forbidden", "c2")
    await ws.send_json_to({"type": "join", "room": room.slug})  # still readable: joining again works
    assert (await receive_type(ws, "joined"))["room"] == room.slug
    await ws.disconnect()
