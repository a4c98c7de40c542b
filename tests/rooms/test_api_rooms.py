"""REST rooms endpoints (CONTRACT §2): list with cursor pagination, create, read, update, members."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from chatsite.api.views import MAX_REQUEST_BYTES
from rooms import services
from rooms.models import AuditLog, Membership, Room

pytestmark = pytest.mark.django_db

ROOM_KEYS = {
    "slug",
    "name",
    "topic",
    "is_private",
    "owner",
    "member_count",
    "slow_mode_seconds",
    "created",
    # CONTRACT §5
    "kind",
    "last_message_id",
    "joined",
    "last_read_id",
    "unread_count",
    "mention_count",
}


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def slugs(response) -> list[str]:
    return [room["slug"] for room in response.json()["results"]]


# ----- list ------------------------------------------------------------------------------------


def test_list_shows_public_and_own_private(user_factory, room_factory):
    """rooms/ lists public rooms and the private rooms the user belongs to, not others'."""
    user = user_factory()
    room_factory("pub")
    room_factory("mine", is_private=True, members=[user])
    room_factory("theirs", is_private=True)
    response = bearer(user).get("/api/v1/rooms/")
    assert response.status_code == 200
    assert set(response.json()) == {"next", "previous", "results"}
    assert slugs(response) == ["mine", "pub"]


def test_list_room_shape(user_factory, room_factory):
    """Each room is the §2 object plus §5's kind, last_message_id and the caller's read state."""
    owner = user_factory("olga")
    room_factory("shape", owner=owner, members=[user_factory()], topic="hi")
    room = bearer(owner).get("/api/v1/rooms/").json()["results"][0]
    assert set(room) == ROOM_KEYS
    assert room["owner"] == "olga"
    assert room["member_count"] == 2
    assert room["topic"] == "hi"
    assert room["created"].endswith("Z")


def test_list_private_room_member_count(user_factory, room_factory):
    """A private room's member_count counts every member, not just the caller."""
    user = user_factory()
    room_factory("mine", is_private=True, members=[user, user_factory()])
    assert bearer(user).get("/api/v1/rooms/").json()["results"][0]["member_count"] == 3


def test_list_anonymous_401():
    """rooms/ needs credentials."""
    assert APIClient().get("/api/v1/rooms/").status_code == 401


def test_list_cursor_pagination(user_factory, room_factory):
    """Pages follow `next` until null, every room once, in slug order."""
    user = user_factory()
    for i in range(7):
        room_factory(f"r{i:02d}")
    client = bearer(user)
    seen, url = [], "/api/v1/rooms/?limit=3"
    while url:
        response = client.get(url)
        assert response.status_code == 200
        assert len(response.json()["results"]) <= 3
        seen += slugs(response)
        url = response.json()["next"]
    assert seen == [f"r{i:02d}" for i in range(7)]


def test_list_previous_link(user_factory, room_factory):
    """The second page's `previous` returns the first page."""
    for i in range(4):
        room_factory(f"p{i}")
    client = bearer(user_factory())
    first = client.get("/api/v1/rooms/?limit=2").json()
    second = client.get(first["next"]).json()
    assert first["previous"] is None
    assert slugs(client.get(second["previous"])) == [r["slug"] for r in first["results"]]


def test_list_default_page_is_50(user_factory, room_factory):
    """Without limit a page holds 50 rooms."""
    owner = user_factory()
    Room.objects.bulk_create([Room(slug=f"b{i:03d}", name="B", owner=owner) for i in range(55)])
    response = bearer(owner).get("/api/v1/rooms/").json()
    assert len(response["results"]) == 50
    assert response["next"] is not None


def test_list_empty(user_factory):
    """No rooms: an empty page with no links."""
    assert bearer(user_factory()).get("/api/v1/rooms/").json() == {"next": None, "previous": None, "results": []}


@pytest.mark.parametrize("cursor", ["garbage", "x" * 5000, "bz0tMQ"])
def test_list_bad_cursor_400(user_factory, room_factory, cursor):
    """A mangled cursor answers 400 JSON, not 404 or 500."""
    room_factory("one")
    response = bearer(user_factory()).get(f"/api/v1/rooms/?cursor={cursor}")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


@pytest.mark.parametrize("cursor", ["%00", "", "cD0x"])
def test_list_odd_cursor_no_500(user_factory, room_factory, cursor):
    """Cursors that decode to nothing or to a position still answer 200."""
    room_factory("one")
    assert bearer(user_factory()).get(f"/api/v1/rooms/?cursor={cursor}").status_code == 200


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1000"])
def test_list_odd_limit_falls_back(user_factory, room_factory, limit):
    """An unusable page size falls back to the default (or the 100 cap), never an error."""
    room_factory("one")
    assert bearer(user_factory()).get(f"/api/v1/rooms/?limit={limit}").status_code == 200


# ----- create ------------------------------------------------------------------------------------


def test_create_room(user_factory):
    """POST rooms/ answers 201 room; the creator owns it and is a member."""
    user = user_factory("paul")
    response = bearer(user).post("/api/v1/rooms/", {"name": "Tea Time", "topic": "tea"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == ROOM_KEYS
    assert body["slug"] == "tea-time"
    assert body["owner"] == "paul"
    assert body["member_count"] == 1
    assert body["is_private"] is False
    assert Membership.objects.filter(room__slug="tea-time", user=user).exists()


def test_create_private_room_with_slug(user_factory):
    """A given slug and is_private are kept."""
    body = (
        bearer(user_factory())
        .post("/api/v1/rooms/", {"name": "Secret", "slug": "s3cret", "is_private": True}, format="json")
        .json()
    )
    assert body["slug"] == "s3cret"
    assert body["is_private"] is True


def test_create_taken_slug_409(user_factory, room_factory):
    """A taken slug answers 409 and changes nothing."""
    room_factory("taken", name="Original")
    response = bearer(user_factory()).post("/api/v1/rooms/", {"name": "Other", "slug": "taken"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert Room.objects.get(slug="taken").name == "Original"


def test_create_anonymous_401():
    """Creating a room needs credentials."""
    assert APIClient().post("/api/v1/rooms/", {"name": "x"}, format="json").status_code == 401
    assert not Room.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": 5},
        {"name": None},
        {"name": "x" * 101},
        {"name": "ok", "slug": "bad slug!"},
        {"name": "ok", "slug": "s" * 65},
        {"name": "ok", "slug": 7},
        {"name": "ok", "topic": "t" * 501},
        {"name": "ok", "topic": ["t"]},
        {"name": "ok", "is_private": "yes"},
        {"name": "ok", "is_private": 1},
        {"name": "!!!"},
        {"name": "n\x00ul"},
        {"name": "x" * 1_000_000},
        ["name"],
        "name",
    ],
)
def test_create_bad_bodies(user_factory, body):
    """Bad bodies answer 400 (413 past the 64 KiB request cap) and create nothing."""
    response = bearer(user_factory()).post("/api/v1/rooms/", body, format="json")
    oversized = len(json.dumps(body)) > MAX_REQUEST_BYTES
    assert (response.status_code, response.json()["code"]) == (
        (413, "too_large") if oversized else (400, "bad_request")
    )
    assert not Room.objects.exists()


def test_create_huge_body_413(user_factory):
    """A request body over 64 KiB answers 413."""
    response = bearer(user_factory()).post("/api/v1/rooms/", {"name": "x" * 100_000}, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


# ----- read ------------------------------------------------------------------------------------


def test_get_public_room_non_member(user_factory, room_factory):
    """Any authenticated user reads a public room."""
    room_factory("open")
    response = bearer(user_factory()).get("/api/v1/rooms/open/")
    assert response.status_code == 200
    assert response.json()["slug"] == "open"


def test_get_private_room_member(user_factory, room_factory):
    """A member reads a private room."""
    user = user_factory()
    room_factory("closed", is_private=True, members=[user])
    assert bearer(user).get("/api/v1/rooms/closed/").status_code == 200


def test_get_private_room_non_member_404(user_factory, room_factory):
    """A private room the user is not in answers 404, exactly like a missing one."""
    room_factory("closed", is_private=True)
    client = bearer(user_factory())
    hidden, missing = client.get("/api/v1/rooms/closed/"), client.get("/api/v1/rooms/nope/")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["code"] == missing.json()["code"] == "not_found"


def test_get_private_room_moderator(moderator_factory, room_factory):
    """A moderator sees private rooms."""
    room_factory("closed", is_private=True)
    assert bearer(moderator_factory()).get("/api/v1/rooms/closed/").status_code == 200


def test_get_room_anonymous_401(room_factory):
    """Reading a room needs credentials."""
    room_factory("open")
    assert APIClient().get("/api/v1/rooms/open/").status_code == 401


@pytest.mark.parametrize("path", ["/api/v1/rooms/" + "a" * 300 + "/", "/api/v1/rooms/%00/", "/api/v1/rooms/%E2%98%83/"])
def test_get_odd_slugs_404(user_factory, path):
    """Overlong or odd slugs answer 404 JSON, never 500."""
    assert bearer(user_factory()).get(path).status_code == 404


# ----- update ------------------------------------------------------------------------------------


def test_patch_by_owner(user_factory, room_factory):
    """The owner changes name, topic and slow mode: 200 room, audited."""
    owner = user_factory()
    room_factory("edit", owner=owner)
    response = bearer(owner).patch(
        "/api/v1/rooms/edit/", {"name": "Edited", "topic": "new", "slow_mode_seconds": 5}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Edited"
    assert response.json()["slow_mode_seconds"] == 5
    room = Room.objects.get(slug="edit")
    assert (room.name, room.topic, room.slow_mode_seconds) == ("Edited", "new", 5)
    assert AuditLog.objects.filter(action="room_update", room=room).exists()


def test_patch_by_moderator(moderator_factory, room_factory):
    """A moderator may update any room, private ones included."""
    room_factory("edit", is_private=True)
    response = bearer(moderator_factory()).patch("/api/v1/rooms/edit/", {"topic": "mod"}, format="json")
    assert response.status_code == 200
    assert Room.objects.get(slug="edit").topic == "mod"


def test_patch_partial_keeps_other_fields(user_factory, room_factory):
    """Fields not sent stay as they were."""
    owner = user_factory()
    room_factory("edit", owner=owner, name="Keep", topic="keep")
    bearer(owner).patch("/api/v1/rooms/edit/", {"slow_mode_seconds": 0}, format="json")
    room = Room.objects.get(slug="edit")
    assert (room.name, room.topic) == ("Keep", "keep")


def test_patch_by_member_403(user_factory, room_factory):
    """A member who is not the owner gets 403 and nothing changes."""
    member = user_factory()
    room_factory("edit", members=[member], name="Same")
    assert bearer(member).patch("/api/v1/rooms/edit/", {"name": "X"}, format="json").status_code == 403
    assert Room.objects.get(slug="edit").name == "Same"


def test_patch_by_other_user_public_403(user_factory, room_factory):
    """A non-member gets 403 on a public room."""
    room_factory("edit")
    assert bearer(user_factory()).patch("/api/v1/rooms/edit/", {"name": "X"}, format="json").status_code == 403


def test_patch_private_non_member_404(user_factory, room_factory):
    """A non-member gets 404 on a private room."""
    room_factory("edit", is_private=True)
    assert bearer(user_factory()).patch("/api/v1/rooms/edit/", {"name": "X"}, format="json").status_code == 404


def test_patch_anonymous_401(room_factory):
    """Updating needs credentials."""
    room_factory("edit")
    assert APIClient().patch("/api/v1/rooms/edit/", {"name": "X"}, format="json").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"slow_mode_seconds": -1},
        {"slow_mode_seconds": 1.5},
        {"slow_mode_seconds": "abc"},
        {"slow_mode_seconds": True},
        {"slow_mode_seconds": 10**12},
        {"name": ""},
        {"name": 3},
        {"topic": "t" * 501},
        {},
        {"unknown": 1},
        [1, 2],
    ],
)
def test_patch_bad_bodies(user_factory, room_factory, body):
    """Bad values answer 400 and change nothing."""
    owner = user_factory()
    room_factory("edit", owner=owner, name="Same")
    assert bearer(owner).patch("/api/v1/rooms/edit/", body, format="json").status_code == 400
    room = Room.objects.get(slug="edit")
    assert (room.name, room.slow_mode_seconds) == ("Same", 0)
    assert not AuditLog.objects.exists()


# ----- members -----------------------------------------------------------------------------------


def test_join_public_room(user_factory, room_factory):
    """POST members/ with no body joins a public room: 201."""
    user = user_factory()
    room = room_factory("open")
    response = bearer(user).post("/api/v1/rooms/open/members/", {}, format="json")
    assert response.status_code == 201
    assert response.json()["username"] == user.username
    assert Membership.objects.filter(room=room, user=user).exists()


def test_join_twice_is_idempotent(user_factory, room_factory):
    """Joining again answers 201 and keeps one membership."""
    user = user_factory()
    room = room_factory("open")
    client = bearer(user)
    client.post("/api/v1/rooms/open/members/")
    assert client.post("/api/v1/rooms/open/members/").status_code == 201
    assert Membership.objects.filter(room=room, user=user).count() == 1


def test_join_private_room_404(user_factory, room_factory):
    """A private room cannot be joined by outsiders: 404."""
    user = user_factory()
    room = room_factory("closed", is_private=True)
    assert bearer(user).post("/api/v1/rooms/closed/members/").status_code == 404
    assert not Membership.objects.filter(room=room, user=user).exists()


def test_join_banned_403(user_factory, room_factory):
    """A user banned from a room cannot join it."""
    owner, user = user_factory(), user_factory()
    room = room_factory("open", owner=owner)
    services.room_ban(actor=owner, room=room, username=user.username)
    assert bearer(user).post("/api/v1/rooms/open/members/").status_code == 403
    assert not Membership.objects.filter(room=room, user=user).exists()


def test_invite_by_owner(user_factory, room_factory):
    """The owner adds a user to a private room: 201, audited."""
    owner, guest = user_factory(), user_factory()
    room = room_factory("closed", owner=owner, is_private=True)
    response = bearer(owner).post("/api/v1/rooms/closed/members/", {"username": guest.username}, format="json")
    assert response.status_code == 201
    assert Membership.objects.filter(room=room, user=guest).exists()
    assert AuditLog.objects.filter(action="member_invite", target_user=guest).exists()
    assert bearer(guest).get("/api/v1/rooms/closed/").status_code == 200


def test_invite_by_moderator(moderator_factory, user_factory, room_factory):
    """A moderator may invite to any private room."""
    guest = user_factory()
    room = room_factory("closed", is_private=True)
    response = bearer(moderator_factory()).post(
        "/api/v1/rooms/closed/members/", {"username": guest.username}, format="json"
    )
    assert response.status_code == 201
    assert Membership.objects.filter(room=room, user=guest).exists()


def test_invite_by_member_403(user_factory, room_factory):
    """A plain member may not invite others."""
    member, guest = user_factory(), user_factory()
    room = room_factory("closed", is_private=True, members=[member])
    response = bearer(member).post("/api/v1/rooms/closed/members/", {"username": guest.username}, format="json")
    assert response.status_code == 403
    assert not Membership.objects.filter(room=room, user=guest).exists()


def test_invite_unknown_user_404(user_factory, room_factory):
    """Inviting a user who does not exist answers 404."""
    owner = user_factory()
    room_factory("closed", owner=owner, is_private=True)
    assert bearer(owner).post("/api/v1/rooms/closed/members/", {"username": "ghost"}, format="json").status_code == 404


@pytest.mark.parametrize("body", [{"username": 5}, {"username": "x" * 151}, ["u"], {"username": ["a"]}])
def test_members_bad_bodies(user_factory, room_factory, body):
    """Mistyped usernames answer 400."""
    owner = user_factory()
    room_factory("closed", owner=owner, is_private=True)
    assert bearer(owner).post("/api/v1/rooms/closed/members/", body, format="json").status_code == 400
    assert Membership.objects.count() == 1


def test_members_anonymous_401(room_factory):
    """Joining needs credentials."""
    room_factory("open")
    assert APIClient().post("/api/v1/rooms/open/members/").status_code == 401


def test_leave_room(user_factory, room_factory):
    """DELETE members/me/ answers 204 and removes the membership."""
    member = user_factory()
    room = room_factory("open", members=[member])
    assert bearer(member).delete("/api/v1/rooms/open/members/me/").status_code == 204
    assert not Membership.objects.filter(room=room, user=member).exists()


def test_leave_not_member_404(user_factory, room_factory):
    """Leaving a room one is not in answers 404."""
    room_factory("open")
    assert bearer(user_factory()).delete("/api/v1/rooms/open/members/me/").status_code == 404


def test_leave_private_room_then_hidden(user_factory, room_factory):
    """After leaving a private room it answers 404."""
    member = user_factory()
    room_factory("closed", is_private=True, members=[member])
    client = bearer(member)
    assert client.delete("/api/v1/rooms/closed/members/me/").status_code == 204
    assert client.get("/api/v1/rooms/closed/").status_code == 404


def test_leave_anonymous_401(room_factory):
    """Leaving needs credentials."""
    room_factory("open")
    assert APIClient().delete("/api/v1/rooms/open/members/me/").status_code == 401


def test_username_urls_reverse():
    """Usernames with Django's allowed punctuation round-trip through the URL map."""
    from django.urls import resolve, reverse

    url = reverse("api-room-ban", kwargs={"slug": "r", "username": "a.b@c+d-e_f"})
    assert url == "/api/v1/rooms/r/bans/a.b@c+d-e_f/"
    assert resolve(url).kwargs == {"slug": "r", "username": "a.b@c+d-e_f"}


def test_unparsable_content_length_is_ignored(user_factory, room_factory):
    """A Content-Length that is not a number does not break the body-size check."""
    room_factory("open")
    response = bearer(user_factory()).generic("POST", "/api/v1/rooms/open/members/", "", CONTENT_LENGTH="abc")
    assert response.status_code < 500


def test_options_describes_endpoint(user_factory):
    """OPTIONS answers 200 JSON for authenticated callers."""
    assert bearer(user_factory()).options("/api/v1/rooms/").status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/rooms", "/api/v1/nothing/here/", "/api/v1/rooms/open/messages"])
def test_unknown_api_paths_json_404(user_factory, room_factory, settings, path):
    """Unknown paths (a missing trailing slash included) answer JSON 404, even POST under DEBUG."""
    settings.DEBUG = True
    room_factory("open")
    response = bearer(user_factory()).post(path, {"name": "x"}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert not Room.objects.filter(name="x").exists()


def test_unknown_method_405(user_factory, room_factory):
    """Unsupported methods answer 405 JSON."""
    room_factory("open")
    response = bearer(user_factory()).put("/api/v1/rooms/open/", {}, format="json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
