"""`POST rooms/{slug}/typing/` (CONTRACT §6): typing for clients on the event stream, who it is for,
its throttle, and every refusal. The frame reaching a socket over real HTTP is in
tests/realtime/test_stream.py."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import override_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from rooms import services
from rooms.models import Room
from rooms.realtime.events import room_group_name

pytestmark = pytest.mark.django_db

IN_MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def room_events(lobby):
    """The layer events sent to `lobby`'s group, one `receive()` at a time (in-memory layer)."""
    with override_settings(CHANNEL_LAYERS=IN_MEMORY_LAYER):
        layer = get_channel_layer()
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(room_group_name(lobby.id), channel)
        yield lambda: async_to_sync(layer.receive)(channel)


def test_typing_answers_204_and_the_room_gets_a_typing_event(
    alice, lobby, room_events, django_capture_on_commit_callbacks
):
    """A member's call: 204 and one `chat.typing` event for the room, naming the typer."""
    with django_capture_on_commit_callbacks(execute=True):
        response = bearer(alice).post("/api/v1/rooms/lobby/typing/")
    assert (response.status_code, response.content) == (204, b"")
    assert room_events() == {"type": "chat.typing", "room_id": lobby.id, "user_id": alice.id, "username": "alice"}


def test_typing_again_within_the_interval_is_dropped_not_refused(
    alice, bob, lobby, room_events, django_capture_on_commit_callbacks
):
    """A second call inside CHAT_TYPING_INTERVAL_SECONDS answers 204 and announces nothing."""
    alice_client = bearer(alice)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert alice_client.post("/api/v1/rooms/lobby/typing/").status_code == 204
        assert alice_client.post("/api/v1/rooms/lobby/typing/").status_code == 204
        assert bearer(bob).post("/api/v1/rooms/lobby/typing/").status_code == 204
    assert len(callbacks) == 2
    assert [room_events()["username"], room_events()["username"]] == ["alice", "bob"]


@override_settings(CHAT_TYPING_INTERVAL_SECONDS=0.25)
def test_a_fraction_of_a_second_interval_still_throttles(alice, lobby):
    """The shared cache counts whole seconds: an interval under one second throttles for one second."""
    assert services.room_typing(user=alice, room=lobby) is True
    assert services.room_typing(user=alice, room=lobby) is False


@pytest.mark.parametrize(
    ("caller", "slug", "status", "code"),
    [
        ("outsider", "lobby", 403, "forbidden"),  # a public room's non-member: join it first
        ("outsider", "secret", 404, "not_found"),  # a private room not in: as if it did not exist
        ("banned", "lobby", 403, "forbidden"),
        ("alice", "nope", 404, "not_found"),
        ("anonymous", "lobby", 401, "not_authenticated"),
    ],
)
def test_who_may_not_type(user_factory, room_factory, alice, owner, lobby, caller, slug, status, code):
    """Typing is for members: outsiders of public rooms 403, of private rooms 404, banned 403."""
    room_factory("secret", owner=owner, is_private=True)
    banned = user_factory("banned")
    services.room_join(user=banned, room=lobby)
    services.room_ban(actor=lobby.owner, room=lobby, username="banned")
    clients = {"outsider": bearer(user_factory("outsider")), "banned": bearer(banned), "alice": bearer(alice)}
    response = clients.get(caller, APIClient()).post(f"/api/v1/rooms/{slug}/typing/")
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_typing_takes_no_body_and_only_post(alice, lobby):
    """A body is ignored; GET answers 405 JSON."""
    client = bearer(alice)
    assert client.post("/api/v1/rooms/lobby/typing/", {"junk": "\x00"}, format="json").status_code == 204
    response = client.get("/api/v1/rooms/lobby/typing/")
    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")
    assert Room.objects.filter(slug="lobby").exists()
