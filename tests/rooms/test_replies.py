"""Replies (CONTRACT §5): `reply_to` on REST posts and WebSocket `message` frames, its object in
history, frames and answers (loaded without a query per message), and every bad `reply_to`."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from rooms import selectors, services
from rooms.models import Message
from rooms.protocol import FrameError, parse_frame

pytestmark = pytest.mark.django_db


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def original(lobby, alice):
    message, _ = services.message_post(user=alice, room=lobby, body="<b>Hello</b> &amp; welcome " + "x" * 120)
    return message


def test_rest_reply_carries_the_reply_object(lobby, bob, alice, original):
    """POST messages/ with reply_to answers 201 with reply_to {id, author, excerpt}: 100 characters, no markup."""
    response = bearer(bob).post("/api/v1/rooms/lobby/messages/", {"body": "hi", "reply_to": original.id}, format="json")
    assert response.status_code == 201, response.json()
    reply = response.json()["reply_to"]
    assert reply["id"] == original.id
    assert reply["author"] == {"id": alice.id, "username": "alice"}
    assert reply["excerpt"] == ("Hello & welcome " + "x" * 120)[:100]
    assert Message.objects.get(pk=response.json()["id"]).reply_to_id == original.id


def test_rest_post_without_reply_to_has_null(lobby, bob):
    """No reply_to (or null): reply_to is null."""
    for body in ({"body": "a"}, {"body": "b", "reply_to": None}):
        response = bearer(bob).post("/api/v1/rooms/lobby/messages/", body, format="json")
        assert response.status_code == 201
        assert response.json()["reply_to"] is None


@pytest.mark.parametrize(
    "value",
    ["1", True, False, 1.5, 1.0, -1, 0, 2**63, 10**30, [1], {"id": 1}, "", "x\x00"],
    ids=repr,
)
def test_rest_reply_to_of_the_wrong_type_is_400(lobby, bob, original, value):
    """reply_to as a string, bool, float, list, object, zero, negative or past bigint: 400 with a field error."""
    response = bearer(bob).post("/api/v1/rooms/lobby/messages/", {"body": "hi", "reply_to": value}, format="json")
    assert response.status_code == 400, (value, response.json())
    assert "reply_to" in response.json()
    assert not Message.objects.filter(body_raw="hi").exists()


def test_rest_reply_to_missing_deleted_or_other_room_is_400(lobby, alice, bob, room_factory, original):
    """reply_to naming no message, a deleted one, or one of another room: 400, nothing stored."""
    elsewhere = room_factory("elsewhere", members=[bob])
    other, _ = services.message_post(user=bob, room=elsewhere, body="there")
    gone, _ = services.message_post(user=alice, room=lobby, body="soon gone")
    services.message_delete(actor=alice, message=gone)
    for target in (other.id, gone.id, other.id + 1000):
        response = bearer(bob).post("/api/v1/rooms/lobby/messages/", {"body": "r", "reply_to": target}, format="json")
        assert response.status_code == 400, (target, response.json())
        assert response.json()["code"] == "bad_request"
    assert not Message.objects.filter(body_raw="r").exists()


def test_reply_to_a_private_room_message_from_a_public_room_is_400(lobby, alice, bob, room_factory):
    """A message of another user's private room cannot be quoted elsewhere (its text would leak)."""
    secret_room = room_factory("secret", owner=alice, is_private=True)
    secret, _ = services.message_post(user=alice, room=secret_room, body="classified")
    response = bearer(bob).post("/api/v1/rooms/lobby/messages/", {"body": "r", "reply_to": secret.id}, format="json")
    assert response.status_code == 400
    assert "classified" not in response.content.decode()


def test_excerpt_is_null_once_the_replied_message_is_deleted(lobby, alice, bob, original):
    """The reply keeps its reply_to id and author; the excerpt becomes null when the original is deleted."""
    reply, _ = services.message_post(user=bob, room=lobby, body="answer", reply_to=original.id)
    services.message_delete(actor=alice, message=original)
    [result] = bearer(bob).get("/api/v1/rooms/lobby/messages/").json()["results"]
    assert result["id"] == reply.id
    assert result["reply_to"] == {"id": original.id, "author": {"id": alice.id, "username": "alice"}, "excerpt": None}


def test_history_page_loads_replies_without_a_query_per_message(lobby, alice, bob, original, settings):
    """A history page of replies costs the same queries for 3 or 30 messages."""
    settings.CHAT_MESSAGE_RATE = (10_000, 1.0)

    def page_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            page, _ = selectors.message_history(room=lobby, limit=100)
            from rooms.protocol import message_dict

            for message in page:
                message_dict(message, room_slug=lobby.slug)
        return len(queries)

    for number in range(3):
        services.message_post(user=bob, room=lobby, body=f"r{number}", reply_to=original.id)
    few = page_queries()
    for number in range(27):
        services.message_post(user=bob if number % 2 else alice, room=lobby, body=f"s{number}", reply_to=original.id)
    assert page_queries() == few


def test_resend_of_a_reply_answers_the_stored_reply(lobby, bob, original):
    """The same client_id again answers 200 with the stored message, its reply_to included."""
    body = {"body": "once", "reply_to": original.id, "client_id": "rep-1"}
    first = bearer(bob).post("/api/v1/rooms/lobby/messages/", body, format="json")
    again = bearer(bob).post("/api/v1/rooms/lobby/messages/", body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["reply_to"] == first.json()["reply_to"]
    assert again.json()["reply_to"]["id"] == original.id


# ----- the WebSocket frame -------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", True, 1.5, -3, 0, 2**63, [1], {"id": 1}], ids=repr)
def test_message_frame_with_a_bad_reply_to_is_bad_request_with_its_client_id(value):
    """A reply_to that is no positive integer: FrameError bad_request carrying the client_id."""
    text = '{"type":"message","room":"lobby","body":"b","client_id":"c9","reply_to":%s}'
    with pytest.raises(FrameError) as raised:
        parse_frame(text % json.dumps(value))
    assert raised.value.code == "bad_request"
    assert raised.value.client_id == "c9"
    assert "reply_to" in raised.value.detail


def test_message_frame_reply_to_parses():
    """reply_to: N is carried on the frame; absent or null is None."""
    assert parse_frame('{"type":"message","room":"lobby","body":"b","reply_to":7}').reply_to == 7
    assert parse_frame('{"type":"message","room":"lobby","body":"b","reply_to":null}').reply_to is None
    assert parse_frame('{"type":"message","room":"lobby","body":"b"}').reply_to is None


@pytest.fixture
def in_process_services(settings):
    """The consumer in-process on the in-memory layer (tests/rooms/test_consumer.py explains why)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REDIS_URL = ""


def communicator(user):
    from channels.testing import WebsocketCommunicator

    from chatsite.asgi import application
    from tests.support.ws import access_token

    return WebsocketCommunicator(
        application, "/ws/chat/", headers=[(b"authorization", f"Bearer {access_token(user)}".encode())]
    )


async def receive_type(ws, frame_type: str) -> dict:
    while True:
        frame = await ws.receive_json_from(timeout=3)
        if frame["type"] == frame_type:
            return frame


@pytest.mark.django_db(transaction=True)
async def test_ws_reply_is_broadcast_with_reply_to_and_bad_ones_answer_bad_request(
    in_process_services, user_factory, room_factory
):
    """A `message` frame with reply_to is broadcast with the reply object; missing, deleted, other
    room's and ill-typed reply_to answer `error` bad_request with the client_id, nothing stored."""
    alice = await sync_to_async(user_factory)("alice")
    den = await sync_to_async(room_factory)("den", owner=alice)
    other_room = await sync_to_async(room_factory)("other", owner=alice)
    original, _ = await sync_to_async(services.message_post)(user=alice, room=den, body="<i>first</i>")
    elsewhere, _ = await sync_to_async(services.message_post)(user=alice, room=other_room, body="there")
    gone, _ = await sync_to_async(services.message_post)(user=alice, room=den, body="gone")
    await sync_to_async(services.message_delete)(actor=alice, message=gone)
    ws = communicator(alice)
    assert (await ws.connect())[0]
    await ws.send_json_to({"type": "join", "room": "den"})
    await receive_type(ws, "joined")
    await ws.send_json_to({"type": "message", "room": "den", "body": "re", "client_id": "ok", "reply_to": original.id})
    message = (await receive_type(ws, "message"))["message"]
    assert message["client_id"] == "ok"
    assert message["reply_to"] == {
        "id": original.id,
        "author": {"id": alice.id, "username": "alice"},
        "excerpt": "first",
    }
    for number, bad in enumerate([elsewhere.id, gone.id, gone.id + 999, "1", True, 2.5, -1, 2**64]):
        client_id = f"bad{number}"
        await ws.send_json_to({"type": "message", "room": "den", "body": "no", "client_id": client_id, "reply_to": bad})
        error = await receive_type(ws, "error")
        assert (error["code"], error["client_id"]) == ("bad_request", client_id), (bad, error)
    await ws.send_json_to({"type": "ping"})
    await receive_type(ws, "pong")
    assert not await sync_to_async(Message.objects.filter(body_raw="no").exists)()
    await ws.disconnect()


def test_join_replay_loads_replies_without_a_query_per_message(lobby, alice, bob, original, settings):
    """The replay a joining socket gets (and the hub's gap fill, the same selector) builds reply
    objects for 3 or 30 replies with the same queries."""
    from rooms.protocol import message_dict

    settings.CHAT_MESSAGE_RATE = (10_000, 1.0)

    def replay_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            replay = selectors.room_replay(room_id=lobby.id, after=0, limit=500).messages
            payloads = [message_dict(message) for message in replay]
        assert all(p["reply_to"]["id"] == original.id for p in payloads if p["id"] != original.id)
        return len(queries)

    for number in range(3):
        services.message_post(user=bob, room=lobby, body=f"r{number}", reply_to=original.id)
    few = replay_queries()
    for number in range(27):
        services.message_post(user=alice, room=lobby, body=f"s{number}", reply_to=original.id)
    assert replay_queries() == few
