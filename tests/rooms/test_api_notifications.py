"""GET notifications/ and POST notifications/read/ (CONTRACT §5): pages newest first, access, marking
read by id or all, `read_state` when a room's mention count changes, and every bad input a 400."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from chatsite.api.fields import MAX_ID
from rooms import services
from rooms.models import Membership, Message, Notification
from rooms.protocol import message_dict
from rooms.realtime import events

pytestmark = pytest.mark.django_db

NOTIFICATION_KEYS = {"id", "kind", "room", "message", "created", "read"}


@pytest.fixture(autouse=True)
def _fast_rate():
    with override_settings(CHAT_MESSAGE_RATE=(10_000, 1.0)):
        yield


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def mention(author, room, username: str, text: str = "hi") -> Message:
    return services.message_post(user=author, room=room, body=f"@{username} {text}")[0]


def listed(user, query: str = "") -> dict:
    response = bearer(user).get(f"/api/v1/notifications/{query}")
    assert response.status_code == 200, response.content
    return response.json()


def read(user, body) -> tuple[int, dict]:
    response = bearer(user).post("/api/v1/notifications/read/", body, format="json")
    assert response.status_code != 500
    return response.status_code, response.json()


# ----- the list ------------------------------------------------------------------------------------


def test_the_list_shape_is_the_notification_object(alice, bob, lobby):
    message = mention(alice, lobby, "bob")
    body = listed(bob)
    assert body["has_more"] is False
    [item] = body["results"]
    assert set(item) == NOTIFICATION_KEYS
    assert (item["kind"], item["room"], item["read"]) == ("mention", "lobby", False)
    stored = Message.objects.select_related("room", "author", "reply_to__author").get(pk=message.pk)
    assert item["message"] == message_dict(stored)
    assert item["message"]["mentions"] == ["bob"]
    assert item["id"] == Notification.objects.get().id
    assert item["created"].endswith("Z")


def test_newest_first_fifty_a_page_then_before(alice, bob, lobby):
    for number in range(53):
        mention(alice, lobby, "bob", str(number))
    first = listed(bob)
    ids = [item["id"] for item in first["results"]]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True) and first["has_more"] is True
    assert first["results"][0]["message"]["body"] == "@bob 52"
    second = listed(bob, f"?before={ids[-1]}")
    assert [item["message"]["body"] for item in second["results"]] == ["@bob 2", "@bob 1", "@bob 0"]
    assert second["has_more"] is False


def test_a_page_costs_the_same_queries_for_two_or_fifty(alice, bob, lobby, room_factory):
    """The page loads rooms, messages, authors and replies with the notifications: no query per row."""
    other = room_factory("other", owner=alice, members=[bob])
    original = services.message_post(user=bob, room=other, body="question")[0]
    services.message_post(user=alice, room=other, body="answer", reply_to=original.id)
    mention(alice, lobby, "bob")
    client = bearer(bob)
    with CaptureQueriesContext(connection) as few:
        assert len(client.get("/api/v1/notifications/").json()["results"]) == 2
    for number in range(48):
        mention(alice, lobby if number % 2 else other, "bob", str(number))
    with CaptureQueriesContext(connection) as many:
        assert len(client.get("/api/v1/notifications/").json()["results"]) == 50
    assert len(many.captured_queries) == len(few.captured_queries)


def test_unread_only(alice, bob, lobby):
    first, second = mention(alice, lobby, "bob", "one"), mention(alice, lobby, "bob", "two")
    Notification.objects.filter(message=first).update(is_read=True)
    assert [item["message"]["id"] for item in listed(bob, "?unread=1")["results"]] == [second.id]
    assert len(listed(bob, "?unread=0")["results"]) == 2
    assert len(listed(bob, "?unread=true")["results"]) == 1


def test_only_the_callers_notifications(alice, bob, lobby):
    mention(alice, lobby, "bob")
    assert listed(alice)["results"] == []


def test_rooms_the_user_may_no_longer_read_are_not_listed(alice, bob, lobby, room_factory):
    """Left a private room, banned from a public one: their notifications are hidden."""
    private = room_factory("secret", owner=alice, is_private=True, members=[bob])
    mention(alice, private, "bob", "private")
    mention(alice, lobby, "bob", "public")
    assert len(listed(bob)["results"]) == 2
    services.room_leave(user=bob, room=private)
    assert [item["room"] for item in listed(bob)["results"]] == ["lobby"]
    services.room_ban(actor=lobby.owner, room=lobby, username="bob")
    assert listed(bob)["results"] == []
    assert read(bob, {"all": True}) == (200, {"unread": 0})


def test_a_deleted_messages_notification_is_gone(alice, bob, lobby):
    message = mention(alice, lobby, "bob")
    services.message_delete(actor=alice, message=Message.objects.select_related("room").get(pk=message.pk))
    assert listed(bob)["results"] == []


def test_anonymous_401(alice):
    assert APIClient().get("/api/v1/notifications/").status_code == 401
    assert APIClient().post("/api/v1/notifications/read/", {"all": True}, format="json").status_code == 401


@pytest.mark.parametrize(
    "query",
    [
        "?before=0",
        "?before=-1",
        "?before=abc",
        "?before=1.5",
        f"?before={MAX_ID + 1}",
        "?before=%00",
        "?unread=2",
        "?unread=yes",
        "?unread=%00",
        "?unread=%ED%A0%80",
    ],
)
def test_bad_queries_are_400(bob, query):
    response = bearer(bob).get(f"/api/v1/notifications/{query}")
    assert response.status_code == 400, (query, response.content)
    assert response.json()["code"] == "bad_request"


def test_the_largest_before_is_fine(bob):
    assert listed(bob, f"?before={MAX_ID}")["results"] == []


# ----- marking read ---------------------------------------------------------------------------------


def test_mark_some_read_by_id(alice, bob, lobby):
    first, second, third = (mention(alice, lobby, "bob", str(n)) for n in range(3))
    ids = {row.message_id: row.id for row in Notification.objects.all()}
    assert read(bob, {"ids": [ids[first.id], ids[third.id]]}) == (200, {"unread": 1})
    assert [item["message"]["id"] for item in listed(bob, "?unread=1")["results"]] == [second.id]
    assert {item["message"]["id"]: item["read"] for item in listed(bob)["results"]} == {
        first.id: True,
        second.id: False,
        third.id: True,
    }


def test_mark_all_read(alice, bob, lobby):
    for number in range(3):
        mention(alice, lobby, "bob", str(number))
    assert read(bob, {"all": True}) == (200, {"unread": 0})
    assert not Notification.objects.filter(is_read=False).exists()


def test_other_users_ids_are_ignored(alice, bob, carol_user, lobby):
    mention(alice, lobby, "bob")
    mention(alice, lobby, carol_user.username)
    carols = Notification.objects.get(user=carol_user).id
    assert read(bob, {"ids": [carols, 999_999, MAX_ID]}) == (200, {"unread": 1})
    assert Notification.objects.get(pk=carols).is_read is False


def test_an_empty_list_changes_nothing(alice, bob, lobby):
    mention(alice, lobby, "bob")
    assert read(bob, {"ids": []}) == (200, {"unread": 1})


def test_marking_read_twice_is_fine(alice, bob, lobby):
    mention(alice, lobby, "bob")
    row = Notification.objects.get()
    assert read(bob, {"ids": [row.id, row.id]}) == (200, {"unread": 0})
    assert read(bob, {"ids": [row.id]}) == (200, {"unread": 0})


@pytest.fixture
def carol_user(user_factory):
    return user_factory("carol")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ids": [1], "all": True},
        {"all": False},
        {"all": 1},
        {"all": None},
        {"ids": None},
        {"ids": 1},
        {"ids": "1"},
        {"ids": {"1": 1}},
        {"ids": ["1"]},
        {"ids": [1.5]},
        {"ids": [True]},
        {"ids": [0]},
        {"ids": [-3]},
        {"ids": [MAX_ID + 1]},
        {"ids": [2**200]},
        {"ids": [None]},
        {"ids": [[1]]},
        {"ids": ["\x00"]},
        {"ids": list(range(1, 502))},
        {"all": "\x00"},
    ],
    ids=lambda body: json.dumps(body)[:40],
)
def test_bad_bodies_are_400(bob, body):
    status, answer = read(bob, body)
    assert status == 400, answer
    assert answer["code"] == "bad_request"


@pytest.mark.parametrize(
    "raw", ["not json", "[1, 2]", '"all"', '{"ids": [1,', '{"ids": ["\\ud800"]}', '{"ids": [1], "all": "\\u0000"}']
)
def test_unreadable_bodies_are_400(bob, raw):
    response = bearer(bob).post("/api/v1/notifications/read/", raw, content_type="application/json")
    assert response.status_code == 400, response.content


def test_five_hundred_ids_are_fine(bob):
    assert read(bob, {"ids": list(range(1, 501))}) == (200, {"unread": 0})


# ----- read_state ------------------------------------------------------------------------------


@pytest.fixture
def user_frames(monkeypatch, django_capture_on_commit_callbacks):
    captured: list[events.Event] = []
    monkeypatch.setattr(events, "_send", captured.append)

    def frames_of(user, action):
        captured.clear()
        with django_capture_on_commit_callbacks(execute=True):
            action()
        return [event.frame for event in captured if isinstance(event, events.UserFrame) and event.user_id == user.id]

    return frames_of


def test_marking_read_sends_read_state_of_each_room_whose_mentions_changed(
    alice, bob, lobby, room_factory, user_frames
):
    other = room_factory("other", owner=alice, members=[bob])
    mention(alice, lobby, "bob")
    mention(alice, other, "bob")
    mention(alice, other, "bob", "again")
    in_other = Notification.objects.filter(room=other).order_by("id").first()
    assert in_other is not None
    frames = user_frames(bob, lambda: read(bob, {"ids": [in_other.id]}))
    assert [(f["type"], f["room"], f["mention_count"]) for f in frames] == [("read_state", "other", 1)]
    frames = user_frames(bob, lambda: read(bob, {"all": True}))
    assert sorted((f["room"], f["mention_count"]) for f in frames) == [("lobby", 0), ("other", 0)]
    assert user_frames(bob, lambda: read(bob, {"all": True})) == [], "nothing changed, nothing sent"


def test_a_non_member_marking_read_gets_no_read_state(alice, carol_user, lobby, user_frames):
    """carol was mentioned in a public room she has not joined: her mention_count there is 0 anyway."""
    mention(alice, lobby, "carol")
    assert user_frames(carol_user, lambda: read(carol_user, {"all": True})) == []


def test_a_delete_sends_read_state_to_whoever_lost_an_unread_mention(alice, bob, lobby, user_frames):
    message = mention(alice, lobby, "bob")
    Membership.objects.filter(room=lobby, user=bob).update(last_read_id=message.id)
    row = Message.objects.select_related("room").get(pk=message.pk)
    frames = user_frames(bob, lambda: services.message_delete(actor=alice, message=row))
    assert [(f["type"], f["mention_count"]) for f in frames] == [("read_state", 0)]


# ----- the schema ------------------------------------------------------------------------------


def test_the_schema_documents_both_endpoints():
    """OpenAPI: the page of notifications, the read body {ids, all} and its answer {unread}."""
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    components = schema["components"]["schemas"]

    def shape(ref: dict) -> set[str]:
        return set(components[ref["$ref"].rsplit("/", 1)[-1]]["properties"])

    listing = schema["paths"]["/api/v1/notifications/"]["get"]
    assert {parameter["name"] for parameter in listing["parameters"]} >= {"unread", "before"}
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert shape(page) == {"results", "has_more"}
    assert shape(components["NotificationPage"]["properties"]["results"]["items"]) == NOTIFICATION_KEYS
    marking = schema["paths"]["/api/v1/notifications/read/"]["post"]
    assert shape(marking["requestBody"]["content"]["application/json"]["schema"]) == {"ids", "all"}
    assert shape(marking["responses"]["200"]["content"]["application/json"]["schema"]) == {"unread"}
    assert set(marking["responses"]) >= {"200", "400", "401"}
