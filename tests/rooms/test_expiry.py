"""Bans and mutes end on their `until` without anyone acting: every check asks `.active()`.

The clock is moved with `unittest.mock.patch("django.utils.timezone.now")` and nothing else is
mocked: the real services, selectors, middleware and REST views decide.
"""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from rooms.exceptions import Forbidden
from rooms.models import RoomBan, SiteBan
from rooms.selectors import user_is_room_banned, user_is_room_muted, user_is_site_banned
from rooms.services import message_post, room_ban, room_join, room_mute, site_ban


def clock_at(moment):
    """Move Django's clock (timezone.now) to `moment` for the duration of the block."""
    return mock.patch("django.utils.timezone.now", return_value=moment)


def test_room_ban_ends_at_its_until(moderator, alice, lobby):
    """A room ban refuses messages until its end time, and accepts them once it has passed."""
    start = timezone.now()
    room_ban(actor=moderator, room=lobby, username="alice", until=start + timedelta(hours=1))
    with clock_at(start + timedelta(minutes=59)), pytest.raises(Forbidden):
        message_post(user=alice, room=lobby, body="still banned?")
    with clock_at(start + timedelta(hours=1, seconds=1)):
        assert not user_is_room_banned(user_id=alice.id, room_id=lobby.id)
        message, created = message_post(user=alice, room=lobby, body="back again")
    assert created and message.body == "back again"


def test_expired_room_ban_lets_the_user_join_again(moderator, user_factory, room_factory):
    """A user whose room ban expired may join the room again."""
    bob = user_factory("bob")
    room = room_factory("open")
    start = timezone.now()
    room_ban(actor=moderator, room=room, username="bob", until=start + timedelta(minutes=5))
    with pytest.raises(Forbidden):
        room_join(user=bob, room=room)
    with clock_at(start + timedelta(minutes=6)):
        assert room_join(user=bob, room=room).user == bob


def test_room_mute_ends_at_its_until(moderator, alice, lobby):
    """A mute refuses messages with `forbidden` until its end time, then lets them through."""
    start = timezone.now()
    room_mute(actor=moderator, room=lobby, username="alice", until=start + timedelta(minutes=10))
    with pytest.raises(Forbidden, match="muted"):
        message_post(user=alice, room=lobby, body="hello?")
    with clock_at(start + timedelta(minutes=11)):
        assert not user_is_room_muted(user_id=alice.id, room_id=lobby.id)
        assert message_post(user=alice, room=lobby, body="hello!")[1]


def test_site_ban_ends_at_its_until_for_the_rest_api(moderator, alice):
    """A site-banned user's API calls answer 403 until the ban's end, then 200."""
    start = timezone.now()
    site_ban(actor=moderator, username="alice", until=start + timedelta(hours=2))
    client = Client()
    client.force_login(alice)
    assert client.get("/api/v1/me/").status_code == 403
    with clock_at(start + timedelta(hours=2, minutes=1)):
        assert not user_is_site_banned(user_id=alice.id)
        assert client.get("/api/v1/me/").status_code == 200


def test_site_ban_ends_at_its_until_for_tokens(moderator, alice, password):
    """POST auth/token/ answers 403 for a site-banned user and 200 after the ban's end."""
    start = timezone.now()
    site_ban(actor=moderator, username="alice", until=start + timedelta(days=1))
    credentials = {"username": "alice", "password": password}
    assert Client().post("/api/v1/auth/token/", credentials, content_type="application/json").status_code == 403
    with clock_at(start + timedelta(days=1, seconds=1)):
        response = Client().post("/api/v1/auth/token/", credentials, content_type="application/json")
    assert response.status_code == 200 and "access" in response.json()


def test_ban_without_until_never_expires(moderator, alice, lobby):
    """A ban with no end time is still in force years later."""
    room_ban(actor=moderator, room=lobby, username="alice")
    with clock_at(timezone.now() + timedelta(days=3650)):
        assert user_is_room_banned(user_id=alice.id, room_id=lobby.id)


def test_ban_written_with_a_past_until_is_not_in_force(alice, lobby):
    """A ban row whose `until` already passed refuses nothing (no job needs to delete it)."""
    RoomBan.objects.create(room=lobby, user=alice, until=timezone.now() - timedelta(seconds=1))
    SiteBan.objects.create(user=alice, until=timezone.now() - timedelta(seconds=1))
    assert not user_is_room_banned(user_id=alice.id, room_id=lobby.id)
    assert not user_is_site_banned(user_id=alice.id)
    assert message_post(user=alice, room=lobby, body="free again")[1]


def test_admin_shows_a_ban_as_expired_once_its_time_passed(client, moderator, alice, lobby):
    """The admin ban list moves a ban from active to expired when the clock passes its end."""
    start = timezone.now()
    room_ban(actor=moderator, room=lobby, username="alice", until=start + timedelta(minutes=30))
    client.force_login(moderator)
    url = reverse("admin:rooms_roomban_changelist")
    assert len(client.get(url, {"status": "active"}).context["cl"].result_list) == 1
    with clock_at(start + timedelta(minutes=31)):
        assert len(client.get(url, {"status": "active"}).context["cl"].result_list) == 0
        assert len(client.get(url, {"status": "expired"}).context["cl"].result_list) == 1
