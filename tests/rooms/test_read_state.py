"""Read state (CONTRACT §5): the room object's per-user fields, GET rooms/?joined=1, the marker's
start for new members, and the cost of a page of rooms (constant in rooms and messages)."""

from __future__ import annotations

import base64

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from rooms import conversations, services
from rooms.models import Membership, Message, Notification, Room

pytestmark = pytest.mark.django_db

READ_KEYS = ("joined", "last_read_id", "unread_count", "mention_count")


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def store(room: Room, author, body: str = "hi") -> Message:
    """A message stored as posts_store leaves it (room's last_message_id moved), without the
    rate limit: these tests are about counting, tests/rooms/test_posting.py about posting."""
    room.refresh_from_db()
    message = Message.objects.create(room=room, author=author, body=body, body_raw=body, prev_id=room.last_message_id)
    Room.objects.filter(pk=room.pk).update(last_message_id=message.id)
    return message


def notify(user, message: Message, *, kind: str = Notification.Kind.MENTION, is_read: bool = False) -> Notification:
    return Notification.objects.create(user=user, kind=kind, room_id=message.room_id, message=message, is_read=is_read)


def read_fields(room: dict) -> tuple:
    return tuple(room[key] for key in READ_KEYS)


def set_marker(user, room: Room, last_read_id: int) -> None:
    Membership.objects.filter(user=user, room=room).update(last_read_id=last_read_id)


# ----- the room object ---------------------------------------------------------------------


def test_room_object_has_kind_and_last_message_id(alice, room_factory):
    """A room object carries kind "room" and its last message id (0 while empty)."""
    room = room_factory("plain", owner=alice)
    body = bearer(alice).get("/api/v1/rooms/plain/").json()
    assert (body["kind"], body["last_message_id"]) == ("room", 0)
    message = store(room, alice)
    assert bearer(alice).get("/api/v1/rooms/plain/").json()["last_message_id"] == message.id


def test_non_member_sees_false_and_zeros(alice, bob, room_factory):
    """For a non-member of a public room: joined false, last_read_id, unread and mentions 0."""
    room = room_factory("pub", owner=alice)
    message = store(room, alice)
    notify(bob, message)  # a mention in a public room bob may read but has not joined
    body = bearer(bob).get("/api/v1/rooms/pub/").json()
    assert read_fields(body) == (False, 0, 0, 0)
    assert read_fields(bearer(bob).get("/api/v1/rooms/").json()["results"][0]) == (False, 0, 0, 0)


def test_unread_counts_live_messages_above_marker_not_by_the_user(alice, bob, room_factory):
    """unread_count: messages with id > last_read_id, not written by the user, not deleted."""
    room = room_factory("count", owner=alice, members=[bob])
    first = store(room, alice, "1")
    store(room, alice, "2")
    store(room, bob, "mine")  # bob's own: never unread for bob
    gone = store(room, alice, "3")
    Message.objects.filter(pk=gone.pk).update(deleted=timezone.now())
    store(room, alice, "4")
    body = bearer(bob).get("/api/v1/rooms/count/").json()
    assert read_fields(body) == (True, 0, 3, 0)
    set_marker(bob, room, first.id)
    assert bearer(bob).get("/api/v1/rooms/count/").json()["unread_count"] == 2


def test_mention_count_is_unread_notifications_of_the_room(alice, bob, room_factory):
    """mention_count: the user's unread notifications of that room only."""
    room = room_factory("ment", owner=alice, members=[bob])
    other = room_factory("elsewhere", owner=alice, members=[bob])
    notify(bob, store(room, alice))
    notify(bob, store(room, alice), kind=Notification.Kind.REPLY)
    notify(bob, store(room, alice), is_read=True)
    notify(bob, store(other, alice))
    notify(alice, store(room, bob))  # alice's, not bob's
    assert bearer(bob).get("/api/v1/rooms/ment/").json()["mention_count"] == 2


def test_every_room_answer_carries_the_read_state(alice, bob, room_factory):
    """Create, detail, PATCH and the list all answer the caller's read state."""
    client = bearer(alice)
    created = client.post("/api/v1/rooms/", {"name": "Fresh"}, format="json")
    assert created.status_code == 201
    assert read_fields(created.json()) == (True, 0, 0, 0)
    room = Room.objects.get(slug="fresh")
    Membership.objects.create(room=room, user=bob)
    store(room, bob)
    patched = client.patch("/api/v1/rooms/fresh/", {"topic": "t"}, format="json")
    assert patched.status_code == 200
    assert read_fields(patched.json()) == (True, 0, 1, 0)
    assert read_fields(client.get("/api/v1/rooms/fresh/").json()) == (True, 0, 1, 0)


def test_room_dict_refuses_a_room_without_read_state(room_factory):
    """room_dict names the reader to use when handed a bare Room."""
    from rooms.serializers import room_dict

    with pytest.raises(TypeError, match="room_with_read_state"):
        room_dict(room_factory())


# ----- where the marker starts -------------------------------------------------------------


def test_joining_starts_the_marker_at_the_last_message(alice, bob, room_factory):
    """A new member does not inherit the room's history as unread."""
    room = room_factory("busy", owner=alice)
    for number in range(5):
        last = store(room, alice, str(number))
    services.room_join(user=bob, room=Room.objects.get(pk=room.pk))
    assert read_fields(bearer(bob).get("/api/v1/rooms/busy/").json()) == (True, last.id, 0, 0)
    store(room, alice, "after")
    assert bearer(bob).get("/api/v1/rooms/busy/").json()["unread_count"] == 1


def test_joining_again_keeps_the_marker(alice, bob, room_factory):
    """A second join (every WebSocket join calls room_join) leaves the marker where it was."""
    room = room_factory("again", owner=alice, members=[bob])
    store(room, alice)
    services.room_join(user=bob, room=room)
    assert Membership.objects.get(user=bob, room=room).last_read_id == 0


def test_invite_starts_the_marker_at_the_last_message(alice, bob, room_factory):
    """An invited member starts at the room's last message too."""
    room = room_factory("secret", owner=alice, is_private=True)
    last = store(room, alice)
    services.room_invite(actor=alice, room=room, username="bob")
    assert Membership.objects.get(user=bob, room=room).last_read_id == last.id


# ----- rooms/?joined=1 ---------------------------------------------------------------------


def test_joined_lists_only_the_users_rooms_by_recent_activity(alice, bob, room_factory):
    """?joined=1: the user's rooms (private included, not others' public ones), newest activity first."""
    quiet = room_factory("quiet", owner=alice, members=[bob])
    busy = room_factory("busy", owner=alice, members=[bob])
    hidden = room_factory("hidden", owner=alice, is_private=True, members=[bob])
    room_factory("notmine", owner=alice)
    room_factory("empty", owner=alice, members=[bob])
    store(quiet, alice)
    store(hidden, alice)
    store(busy, alice)
    response = bearer(bob).get("/api/v1/rooms/?joined=1")
    assert response.status_code == 200
    assert [room["slug"] for room in response.json()["results"]] == ["busy", "hidden", "quiet", "empty"]
    assert all(room["joined"] for room in response.json()["results"])


@pytest.mark.parametrize("value", ["0", "false"])
def test_joined_zero_is_the_plain_list(value, alice, bob, room_factory):
    """?joined=0 answers the plain list (public rooms and the user's private rooms, by slug)."""
    room_factory("b-pub", owner=alice)
    room_factory("a-mine", owner=alice, is_private=True, members=[bob])
    body = bearer(bob).get(f"/api/v1/rooms/?joined={value}").json()
    assert [room["slug"] for room in body["results"]] == ["a-mine", "b-pub"]


@pytest.mark.parametrize("value", ["2", "yes", "", "1.0", "%00", "%ED%A0%80", "9" * 400, "true1", "1&joined=x"])
def test_bad_joined_is_400(value, alice):
    """A joined value other than 1/0/true/false (blank, NUL, a lone surrogate's bytes) answers 400."""
    response = bearer(alice).get(f"/api/v1/rooms/?joined={value}")
    assert response.status_code == 400
    assert "joined" in response.json()


def test_joined_pages_follow_the_cursor(alice, bob, room_factory):
    """The cursor of ?joined=1 walks every room once, in activity order, empty rooms last."""
    rooms = [room_factory(f"r{number}", owner=alice, members=[bob]) for number in range(7)]
    for room in rooms[:4]:
        store(room, alice)
    client = bearer(bob)
    seen: list[str] = []
    url: str | None = "/api/v1/rooms/?joined=1&limit=2"
    while url:
        body = client.get(url).json()
        seen += [room["slug"] for room in body["results"]]
        url = body["next"]
    assert seen[:4] == ["r3", "r2", "r1", "r0"]
    assert sorted(seen[4:]) == ["r4", "r5", "r6"]
    assert len(seen) == 7


@pytest.mark.parametrize(
    "position", ["abc", "-1", "1.5", str(2**63), "٣", "\x00"], ids=["word", "neg", "float", "huge", "digit", "nul"]
)
def test_joined_mangled_cursor_position_is_400(position, alice):
    """A cursor whose position is not an id (edited by hand) answers 400, not 500."""
    cursor = base64.b64encode(f"p={position}".encode()).decode()
    response = bearer(alice).get("/api/v1/rooms/", {"joined": "1", "cursor": cursor})
    assert response.status_code == 400


def test_joined_needs_authentication(client):
    """Without credentials rooms/?joined=1 answers 401."""
    assert client.get("/api/v1/rooms/?joined=1").status_code == 401


# ----- cost ----------------------------------------------------------------------------------


def _list_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("url", ["/api/v1/rooms/?joined=1", "/api/v1/rooms/"])
def test_room_list_queries_do_not_grow_with_rooms_or_messages(url, alice, bob, room_factory):
    """A page of rooms costs the same number of queries for 2 rooms and 1 message as for 30
    rooms with 300 messages, unread notifications and deleted messages."""
    client = bearer(bob)
    first = room_factory("first", owner=alice, members=[bob])
    store(first, alice)
    small = _list_queries(client, url)
    for number in range(30):
        room = room_factory(f"more-{number}", owner=alice, members=[bob], is_private=number % 2 == 0)
        messages = [store(room, alice, str(index)) for index in range(10)]
        notify(bob, messages[-1])
        Message.objects.filter(pk=messages[0].pk).update(deleted=timezone.now())
    assert _list_queries(client, url) == small
    assert small <= 4  # authentication (user, site-ban check) and the page itself


def test_room_read_state_is_one_query(alice, bob, room_factory):
    """room_read_state reads the marker, unread and mention counts in one query."""
    room = room_factory("one", owner=alice, members=[bob])
    notify(bob, store(room, alice))
    with CaptureQueriesContext(connection) as queries:
        state = conversations.room_read_state(user=bob, room=room)
    assert len(queries) == 1
    assert state == {"room": "one", "last_read_id": 0, "unread_count": 1, "mention_count": 1}
