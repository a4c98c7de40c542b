"""REST moderation endpoints (CONTRACT §2): room bans and mutes, site-wide bans."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from rooms import services
from rooms.models import AuditLog, RoomBan, RoomMute, SiteBan

pytestmark = pytest.mark.django_db


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def target(user_factory):
    return user_factory("target")


@pytest.fixture
def room(room_factory, owner, target):
    return room_factory("modroom", owner=owner, members=[target])


# ----- room bans ---------------------------------------------------------------------------------


def test_ban_by_owner(owner, target, room):
    """The owner bans a user: 201 {room, username, until, reason, created}, audited."""
    response = bearer(owner).post(
        "/api/v1/rooms/modroom/bans/", {"username": "target", "reason": "spam"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["room"], body["username"], body["until"], body["reason"]) == ("modroom", "target", None, "spam")
    assert RoomBan.objects.filter(room=room, user=target).exists()
    assert AuditLog.objects.filter(action="room_ban", target_user=target, actor=owner).exists()


def test_ban_with_until(owner, target, room):
    """A ban may end at a future time."""
    until = (timezone.now() + timedelta(hours=1)).isoformat()
    response = bearer(owner).post("/api/v1/rooms/modroom/bans/", {"username": "target", "until": until}, format="json")
    assert response.status_code == 201
    assert response.json()["until"] is not None
    assert RoomBan.objects.get(room=room, user=target).until is not None


def test_ban_by_moderator(moderator_factory, target, room):
    """A moderator bans in any room."""
    assert (
        bearer(moderator_factory())
        .post("/api/v1/rooms/modroom/bans/", {"username": "target"}, format="json")
        .status_code
        == 201
    )


def test_ban_in_private_room_by_moderator(moderator_factory, user_factory, room_factory):
    """A moderator bans in a private room they are not a member of."""
    victim = user_factory()
    room_factory("secret", is_private=True, members=[victim])
    response = bearer(moderator_factory()).post(
        "/api/v1/rooms/secret/bans/", {"username": victim.username}, format="json"
    )
    assert response.status_code == 201


def test_ban_by_member_403(user_factory, target, room):
    """A plain member cannot ban: 403, nothing stored."""
    member = user_factory()
    services.room_join(user=member, room=room)
    assert bearer(member).post("/api/v1/rooms/modroom/bans/", {"username": "target"}, format="json").status_code == 403
    assert not RoomBan.objects.exists()


def test_ban_by_outsider_private_404(user_factory, room_factory):
    """An outsider gets 404 for a private room's bans."""
    room_factory("secret", is_private=True)
    assert (
        bearer(user_factory()).post("/api/v1/rooms/secret/bans/", {"username": "x"}, format="json").status_code == 404
    )


def test_ban_banned_user_cannot_read(owner, target, room):
    """After a ban the user's history read answers 403."""
    bearer(owner).post("/api/v1/rooms/modroom/bans/", {"username": "target"}, format="json")
    assert bearer(target).get("/api/v1/rooms/modroom/messages/").status_code == 403


def test_ban_unknown_user_404(owner, room):
    """Banning a user who does not exist answers 404."""
    assert bearer(owner).post("/api/v1/rooms/modroom/bans/", {"username": "ghost"}, format="json").status_code == 404


def test_ban_owner_or_self_400(owner, moderator_factory, room):
    """Neither the room's owner nor oneself can be banned."""
    assert bearer(owner).post("/api/v1/rooms/modroom/bans/", {"username": "owner"}, format="json").status_code == 400
    assert (
        bearer(moderator_factory())
        .post("/api/v1/rooms/modroom/bans/", {"username": "owner"}, format="json")
        .status_code
        == 400
    )
    assert not RoomBan.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": 7},
        {"username": ""},
        {"username": "target", "until": "tomorrow"},
        {"username": "target", "until": "2001-01-01T00:00:00Z"},
        {"username": "target", "until": 12},
        {"username": "target", "reason": "r" * 501},
        {"username": "target", "reason": 5},
        {"username": "target", "until": "99999-01-01T00:00:00Z"},
        ["target"],
    ],
)
def test_ban_bad_bodies_400(owner, room, body):
    """Bad ban bodies (past or malformed until included) answer 400 and store nothing."""
    assert bearer(owner).post("/api/v1/rooms/modroom/bans/", body, format="json").status_code == 400
    assert not RoomBan.objects.exists()


def test_ban_anonymous_401(room):
    """Banning needs credentials."""
    assert APIClient().post("/api/v1/rooms/modroom/bans/", {"username": "target"}, format="json").status_code == 401


def test_unban(owner, target, room):
    """DELETE bans/{username}/ lifts the ban: 204, audited."""
    services.room_ban(actor=owner, room=room, username="target")
    assert bearer(owner).delete("/api/v1/rooms/modroom/bans/target/").status_code == 204
    assert not RoomBan.objects.exists()
    assert AuditLog.objects.filter(action="room_unban").exists()


def test_unban_not_banned_404(owner, target, room):
    """Lifting a ban that does not exist answers 404."""
    assert bearer(owner).delete("/api/v1/rooms/modroom/bans/target/").status_code == 404


def test_unban_unknown_user_404(owner, room):
    """An unknown username answers 404."""
    assert bearer(owner).delete("/api/v1/rooms/modroom/bans/ghost/").status_code == 404


def test_unban_by_member_403(user_factory, owner, target, room):
    """A plain member cannot lift a ban."""
    services.room_ban(actor=owner, room=room, username="target")
    member = user_factory()
    services.room_join(user=member, room=room)
    assert bearer(member).delete("/api/v1/rooms/modroom/bans/target/").status_code == 403
    assert RoomBan.objects.exists()


@pytest.mark.parametrize("username", ["a%00b", "x" * 200, "sp%20ace", "%E2%98%83%E2%98%83!"])
def test_unban_odd_usernames_404(owner, room, username):
    """Odd usernames in the path answer 404, never 500."""
    assert bearer(owner).delete(f"/api/v1/rooms/modroom/bans/{username}/").status_code == 404


# ----- room mutes --------------------------------------------------------------------------------


def test_mute_by_owner(owner, target, room):
    """The owner mutes: 201; the user reads but cannot post."""
    response = bearer(owner).post("/api/v1/rooms/modroom/mutes/", {"username": "target"}, format="json")
    assert response.status_code == 201
    assert response.json()["username"] == "target"
    assert RoomMute.objects.filter(room=room, user=target).exists()
    client = bearer(target)
    assert client.get("/api/v1/rooms/modroom/messages/").status_code == 200
    assert client.post("/api/v1/rooms/modroom/messages/", {"body": "x"}, format="json").status_code == 403


def test_mute_by_moderator(moderator_factory, target, room):
    """A moderator mutes in any room."""
    assert (
        bearer(moderator_factory())
        .post("/api/v1/rooms/modroom/mutes/", {"username": "target"}, format="json")
        .status_code
        == 201
    )


def test_mute_expired_allows_posting(owner, target, room):
    """A mute whose `until` has passed no longer applies."""
    services.room_mute(actor=owner, room=room, username="target", until=timezone.now() + timedelta(hours=1))
    RoomMute.objects.update(until=timezone.now() - timedelta(seconds=1))
    assert bearer(target).post("/api/v1/rooms/modroom/messages/", {"body": "x"}, format="json").status_code == 201


def test_mute_by_member_403(user_factory, room):
    """A plain member cannot mute."""
    member = user_factory()
    services.room_join(user=member, room=room)
    assert bearer(member).post("/api/v1/rooms/modroom/mutes/", {"username": "target"}, format="json").status_code == 403
    assert not RoomMute.objects.exists()


@pytest.mark.parametrize("body", [{}, {"username": None}, {"username": "target", "until": "yesterday"}, [1]])
def test_mute_bad_bodies_400(owner, room, body):
    """Bad mute bodies answer 400."""
    assert bearer(owner).post("/api/v1/rooms/modroom/mutes/", body, format="json").status_code == 400
    assert not RoomMute.objects.exists()


def test_mute_unknown_user_404(owner, room):
    """Muting an unknown user answers 404."""
    assert bearer(owner).post("/api/v1/rooms/modroom/mutes/", {"username": "ghost"}, format="json").status_code == 404


def test_unmute(owner, target, room):
    """DELETE mutes/{username}/ lifts the mute: 204."""
    services.room_mute(actor=owner, room=room, username="target")
    assert bearer(owner).delete("/api/v1/rooms/modroom/mutes/target/").status_code == 204
    assert not RoomMute.objects.exists()
    assert bearer(target).post("/api/v1/rooms/modroom/messages/", {"body": "x"}, format="json").status_code == 201


def test_unmute_not_muted_404(owner, target, room):
    """Lifting a mute that does not exist answers 404."""
    assert bearer(owner).delete("/api/v1/rooms/modroom/mutes/target/").status_code == 404


def test_unmute_by_member_403(target, owner, room):
    """The muted user cannot lift their own mute."""
    services.room_mute(actor=owner, room=room, username="target")
    assert bearer(target).delete("/api/v1/rooms/modroom/mutes/target/").status_code == 403


def test_mute_anonymous_401(room):
    """Muting needs credentials."""
    assert APIClient().post("/api/v1/rooms/modroom/mutes/", {"username": "target"}, format="json").status_code == 401
    assert APIClient().delete("/api/v1/rooms/modroom/mutes/target/").status_code == 401


# ----- site bans ---------------------------------------------------------------------------------


def test_site_ban_by_moderator(moderator_factory, target):
    """A moderator bans site-wide: 201, audited; the user's REST calls answer 403."""
    client = bearer(target)
    response = bearer(moderator_factory()).post(
        "/api/v1/bans/", {"username": "target", "reason": "abuse"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["username"] == "target"
    assert "room" not in response.json()
    assert SiteBan.objects.filter(user=target).exists()
    assert AuditLog.objects.filter(action="site_ban", target_user=target).exists()
    assert client.get("/api/v1/rooms/").status_code == 403
    assert client.post("/api/v1/auth/ws-ticket/").status_code == 403


def test_site_ban_expired_lets_user_back(moderator_factory, target):
    """An expired site ban no longer applies."""
    services.site_ban(actor=moderator_factory(), username="target", until=timezone.now() + timedelta(hours=1))
    SiteBan.objects.update(until=timezone.now() - timedelta(seconds=1))
    assert bearer(target).get("/api/v1/me/").status_code == 200


def test_site_ban_by_room_owner_403(owner, target, room):
    """A room owner who is not a moderator cannot ban site-wide."""
    assert bearer(owner).post("/api/v1/bans/", {"username": "target"}, format="json").status_code == 403
    assert not SiteBan.objects.exists()


def test_site_ban_by_user_403(user_factory, target):
    """A plain user cannot ban site-wide."""
    assert bearer(user_factory()).post("/api/v1/bans/", {"username": "target"}, format="json").status_code == 403


def test_site_ban_self_or_superuser_400(moderator_factory, user_factory):
    """Moderators cannot ban themselves or a superuser."""
    mod = moderator_factory("mod1")
    user_factory("root", is_superuser=True, is_staff=True)
    client = bearer(mod)
    assert client.post("/api/v1/bans/", {"username": "mod1"}, format="json").status_code == 400
    assert client.post("/api/v1/bans/", {"username": "root"}, format="json").status_code == 400
    assert not SiteBan.objects.exists()


def test_site_ban_unknown_user_404(moderator_factory):
    """Banning an unknown user answers 404."""
    assert bearer(moderator_factory()).post("/api/v1/bans/", {"username": "ghost"}, format="json").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": 1},
        {"username": "target", "until": "2000-01-01T00:00:00Z"},
        ["target"],
        {"username": "target", "reason": ["x"]},
    ],
)
def test_site_ban_bad_bodies_400(moderator_factory, target, body):
    """Bad site-ban bodies answer 400 and ban nobody."""
    assert bearer(moderator_factory()).post("/api/v1/bans/", body, format="json").status_code == 400
    assert not SiteBan.objects.exists()


def test_site_ban_anonymous_401(target):
    """Site bans need credentials."""
    assert APIClient().post("/api/v1/bans/", {"username": "target"}, format="json").status_code == 401


def test_site_unban(moderator_factory, target):
    """DELETE bans/{username}/ lifts the ban: 204; the user is back."""
    mod = moderator_factory()
    services.site_ban(actor=mod, username="target")
    assert bearer(mod).delete("/api/v1/bans/target/").status_code == 204
    assert not SiteBan.objects.exists()
    assert bearer(target).get("/api/v1/me/").status_code == 200


def test_site_unban_not_banned_404(moderator_factory, target):
    """Lifting a site ban that does not exist answers 404."""
    assert bearer(moderator_factory()).delete("/api/v1/bans/target/").status_code == 404


def test_site_unban_by_user_403(user_factory, moderator_factory, target):
    """A plain user cannot lift a site ban."""
    services.site_ban(actor=moderator_factory(), username="target")
    assert bearer(user_factory()).delete("/api/v1/bans/target/").status_code == 403
    assert SiteBan.objects.exists()


def test_site_banned_moderator_loses_powers(moderator_factory, user_factory):
    """A moderator a superuser banned site-wide: their token answers 403 everywhere."""
    mod_a, mod_b = moderator_factory(), moderator_factory()
    client = bearer(mod_b)
    services.site_ban(actor=user_factory(is_superuser=True, is_staff=True), username=mod_b.username)
    assert client.post("/api/v1/bans/", {"username": mod_a.username}, format="json").status_code == 403
