"""The read marker (CONTRACT §5): POST rooms/{slug}/read/ and its service, never back, clamped,
notifications read up to it, `read_state` sent on commit; unread counts against a brute force."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rooms import conversations, services
from rooms.exceptions import BadRequest
from rooms.models import Membership, Message, Notification, Room
from rooms.realtime import events
from tests.rooms.test_read_state import bearer, notify, store

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch) -> list[events.Event]:
    """The layer events the code under test sends (after commit)."""
    captured: list[events.Event] = []
    monkeypatch.setattr(events, "_send", captured.append)
    return captured


def read(client, slug: str, body) -> tuple[int, dict]:
    response = client.post(f"/api/v1/rooms/{slug}/read/", json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


@pytest.fixture
def chat(alice, bob, room_factory):
    """Room `chat` (owner alice, member bob) with three of alice's messages; bob's marker at 0."""
    room = room_factory("chat", owner=alice, members=[bob])
    ids = [store(room, alice, str(number)).id for number in range(3)]
    room.refresh_from_db()
    return room, ids


# ----- the service -------------------------------------------------------------------------


def test_read_moves_the_marker_and_answers_the_state(bob, chat):
    """room_read sets last_read_id and answers {room, last_read_id, unread_count, mention_count}."""
    room, ids = chat
    state = conversations.room_read(user=bob, room=room, last_read_id=ids[0])
    assert state == {"room": "chat", "last_read_id": ids[0], "unread_count": 2, "mention_count": 0}
    assert Membership.objects.get(user=bob, room=room).last_read_id == ids[0]


def test_read_never_moves_back(bob, chat):
    """A smaller last_read_id answers the current state and leaves the marker."""
    room, ids = chat
    conversations.room_read(user=bob, room=room, last_read_id=ids[1])
    state = conversations.room_read(user=bob, room=room, last_read_id=ids[0])
    assert (state["last_read_id"], state["unread_count"]) == (ids[1], 1)


def test_read_beyond_the_last_message_is_the_last_message(bob, chat):
    """A last_read_id past the room's last message (even past bigint) is taken as the last one."""
    room, ids = chat
    assert conversations.room_read(user=bob, room=room, last_read_id=2**70)["last_read_id"] == ids[-1]
    store(room, room.owner)
    assert conversations.room_read(user=bob, room=room, last_read_id=0)["unread_count"] == 1


def test_read_marks_the_rooms_notifications_up_to_the_marker(alice, bob, chat, room_factory):
    """Notifications of the room with message id <= marker become read; later ones and other rooms' stay."""
    room, ids = chat
    early, late = notify(bob, Message.objects.get(pk=ids[0])), notify(bob, Message.objects.get(pk=ids[2]))
    other = notify(bob, store(room_factory("other", owner=alice, members=[bob]), alice))
    state = conversations.room_read(user=bob, room=room, last_read_id=ids[1])
    assert state["mention_count"] == 1
    assert [n.is_read for n in Notification.objects.filter(pk__in=[early.pk, late.pk, other.pk]).order_by("pk")] == [
        True,
        False,
        False,
    ]


def test_read_sends_read_state_to_the_user_on_commit(bob, chat, sent, django_capture_on_commit_callbacks):
    """The read_state frame goes to the user's sockets (UserFrame), only once the write commits."""
    room, ids = chat
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        conversations.room_read(user=bob, room=room, last_read_id=ids[0])
    assert sent == []
    for callback in callbacks:
        callback()
    assert sent == [
        events.UserFrame(
            user_id=bob.id,
            frame={"type": "read_state", "room": "chat", "last_read_id": ids[0], "unread_count": 2, "mention_count": 0},
        )
    ]


def test_read_state_send_is_the_one_sender(bob, chat, sent, django_capture_on_commit_callbacks):
    """read_state_send (for other services that change the numbers) sends what room_read_state says."""
    room, _ = chat
    with django_capture_on_commit_callbacks(execute=True):
        state = conversations.read_state_send(user=bob, room=room)
    assert state == conversations.room_read_state(user=bob, room=room)
    assert [event.frame for event in sent] == [{"type": "read_state", **state}]  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", [-1, True, None, "3", 1.5, [1], {"id": 1}])
def test_read_service_refuses_what_is_not_an_id(value, bob, chat):
    """The service's own check (shared with the socket) refuses non-integers and negatives."""
    with pytest.raises(BadRequest, match="last_read_id"):
        conversations.room_read(user=bob, room=chat[0], last_read_id=value)


def test_read_by_slug_checks_membership(alice, carol_factory, room_factory):
    """The socket's form: a private room the user is not in is NotFound, a public one Forbidden."""
    from rooms.exceptions import Forbidden, NotFound

    carol = carol_factory()
    room_factory("pub", owner=alice)
    room_factory("priv", owner=alice, is_private=True)
    with pytest.raises(NotFound):
        conversations.room_read_by_slug(user=carol, slug="priv", last_read_id=1)
    with pytest.raises(NotFound):
        conversations.room_read_by_slug(user=carol, slug="nope", last_read_id=1)
    with pytest.raises(Forbidden):
        conversations.room_read_by_slug(user=carol, slug="pub", last_read_id=1)


@pytest.fixture
def carol_factory(user_factory):
    return lambda: user_factory("carol")


# ----- REST --------------------------------------------------------------------------------


def test_rest_read_answers_200_with_the_state(bob, chat):
    """POST rooms/{slug}/read/ {last_read_id} answers 200 {room, last_read_id, unread_count, mention_count}."""
    _, ids = chat
    assert read(bearer(bob), "chat", {"last_read_id": ids[1]}) == (
        200,
        {"room": "chat", "last_read_id": ids[1], "unread_count": 1, "mention_count": 0},
    )
    assert bearer(bob).get("/api/v1/rooms/chat/").json()["unread_count"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"last_read_id": None},
        {"last_read_id": "5"},
        {"last_read_id": 1.5},
        {"last_read_id": True},
        {"last_read_id": -1},
        {"last_read_id": [1]},
        {"last_read_id": {"n": 1}},
        {"last_read_id": "\x00"},
        {"last_read_id": "\ud800"},
        {"last_read": 1},
        [1],
        "1",
    ],
    ids=[
        "missing",
        "null",
        "string",
        "float",
        "bool",
        "negative",
        "list",
        "object",
        "nul",
        "surrogate",
        "typo",
        "array",
        "str",
    ],
)
def test_rest_read_bad_bodies_are_400(body, bob, chat):
    """Wrong types, missing fields, NUL and lone surrogates answer 400 (never 500)."""
    status, answer = read(bearer(bob), "chat", body)
    assert status == 400
    assert answer["code"] in ("bad_request", "invalid", "parse_error")


def test_rest_read_raw_bad_json_is_400(bob, chat):
    """Bodies that are not JSON, or hold a number too long to parse, answer 400."""
    client = bearer(bob)
    for raw in ['{"last_read_id": ', '{"last_read_id": 1e999}', '{"last_read_id": ' + "9" * 5000 + "}"]:
        response = client.post("/api/v1/rooms/chat/read/", raw, content_type="application/json")
        assert response.status_code == 400, raw


def test_rest_read_huge_id_clamps_to_the_last_message(bob, chat):
    """A huge last_read_id (past bigint) is beyond the last message: 200, marker at the last message."""
    _, ids = chat
    status, answer = read(bearer(bob), "chat", {"last_read_id": 10**30})
    assert (status, answer["last_read_id"], answer["unread_count"]) == (200, ids[-1], 0)


def test_rest_read_access(alice, bob, user_factory, room_factory):
    """Private room not joined: 404; unknown room: 404; public room not joined: 403; banned: 403; no auth: 401."""
    outsider = user_factory("outsider")
    room_factory("priv", owner=alice, is_private=True)
    public = room_factory("pub", owner=alice, members=[bob])
    client = bearer(outsider)
    assert read(client, "priv", {"last_read_id": 1})[0] == 404
    assert read(client, "missing", {"last_read_id": 1})[0] == 404
    assert read(client, "pub", {"last_read_id": 1})[0] == 403
    services.room_ban(actor=alice, room=public, username="bob")
    assert read(bearer(bob), "pub", {"last_read_id": 1})[0] == 403
    from rest_framework.test import APIClient

    assert APIClient().post("/api/v1/rooms/pub/read/", {"last_read_id": 1}, format="json").status_code == 401


def test_rest_read_get_is_405(bob, chat):
    """read/ only takes POST."""
    assert bearer(bob).get("/api/v1/rooms/chat/read/").status_code == 405


# ----- unread counts against a brute force -------------------------------------------------

USERS = ("ann", "ben", "cat")

actions = st.lists(
    st.one_of(
        st.tuples(st.just("post"), st.sampled_from(USERS)),
        st.tuples(st.just("delete"), st.integers(0, 40)),
        st.tuples(st.just("read"), st.sampled_from(USERS), st.integers(-3, 45)),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=actions)
def test_unread_count_matches_a_brute_force_count(history, user_factory, room_factory):
    """On random histories (posts by several users, deletes, marker moves back and forth) every
    user's last_read_id and unread_count equal what a count over the whole history says."""
    Room.objects.filter(slug="prop").delete()
    users = {name: user_factory() for name in USERS}
    owner = users["ann"]
    room = room_factory("prop", owner=owner, members=[users["ben"], users["cat"]])
    posted: list[Message] = []
    markers = dict.fromkeys(USERS, 0)
    for action in history:
        if action[0] == "post":
            posted.append(store(room, users[action[1]]))
        elif action[0] == "delete" and posted:
            Message.objects.filter(pk=posted[action[1] % len(posted)].pk).update(deleted="2026-01-01T00:00:00Z")
        elif action[0] == "read":
            name, position = action[1], action[2]
            # A position in the history (or beyond it, or before the first message).
            target = max(0, posted[position].id if 0 <= position < len(posted) else position * 10**6)
            last = posted[-1].id if posted else 0
            markers[name] = max(markers[name], min(target, last))
            state = conversations.room_read(user=users[name], room=room, last_read_id=target)
            assert state["last_read_id"] == markers[name]
    live = {m.id: m.author_id for m in Message.objects.filter(room=room, deleted__isnull=True)}
    for name, user in users.items():
        expected = sum(1 for mid, author in live.items() if mid > markers[name] and author != user.id)
        assert conversations.room_read_state(user=user, room=room) == {
            "room": "prop",
            "last_read_id": markers[name],
            "unread_count": expected,
            "mention_count": 0,
        }
    listed = {r["slug"]: r for r in bearer(users["ben"]).get("/api/v1/rooms/?joined=1").json()["results"]}
    assert listed["prop"]["unread_count"] == conversations.room_read_state(user=users["ben"], room=room)["unread_count"]
    Room.objects.filter(pk=room.pk).delete()
