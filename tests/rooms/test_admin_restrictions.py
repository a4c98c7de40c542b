"""Bans, mutes, site bans, rooms (slow mode) and users in the admin, each through its service."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from rooms.models import AuditLog, RoomBan, RoomMute, SiteBan
from rooms.services import room_ban, room_mute, site_ban


@pytest.fixture
def mod_client(client, moderator):
    client.force_login(moderator)
    return client


def later(**delta) -> str:
    return (timezone.now() + timedelta(**delta)).strftime("%Y-%m-%d %H:%M:%S")


def until_fields(**delta) -> dict[str, str]:
    """The admin's split date/time widget for `until`, that far from now."""
    moment = timezone.now() + timedelta(**delta)
    return {"until_0": moment.strftime("%Y-%m-%d"), "until_1": moment.strftime("%H:%M:%S")}


def audit_actions() -> list[str]:
    return list(AuditLog.objects.order_by("id").values_list("action", flat=True))


# ----- room bans ------------------------------------------------------------------------------


def test_add_room_ban_goes_through_the_service(mod_client, lobby, alice, moderator):
    """The add form bans the user with end time and reason, created by the moderator, one audit entry."""
    response = mod_client.post(
        reverse("admin:rooms_roomban_add"),
        {"room": lobby.pk, "user": alice.pk, "reason": "flooding", **until_fields(hours=2)},
    )
    assert response.status_code == 302
    ban = RoomBan.objects.get()
    assert (ban.room, ban.user, ban.reason, ban.created_by) == (lobby, alice, "flooding", moderator)
    assert ban.until is not None
    assert audit_actions() == ["room_ban"]
    assert response["Location"] == reverse("admin:rooms_roomban_changelist")


def test_add_room_ban_schedules_the_live_broadcast(mod_client, lobby, alice, django_capture_on_commit_callbacks):
    """Adding a room ban in the admin schedules the `left`/banned broadcast on commit."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        mod_client.post(reverse("admin:rooms_roomban_add"), {"room": lobby.pk, "user": alice.pk, "reason": "x"})
    assert len(callbacks) == 1


def test_add_room_ban_over_an_expired_one_renews_it(mod_client, lobby, alice):
    """Banning again a user whose ban expired replaces the old row with an active ban."""
    RoomBan.objects.create(room=lobby, user=alice, until=timezone.now() - timedelta(days=1))
    response = mod_client.post(reverse("admin:rooms_roomban_add"), {"room": lobby.pk, "user": alice.pk})
    assert response.status_code == 302
    assert RoomBan.objects.get().until is None
    assert RoomBan.objects.active().count() == 1
    assert audit_actions() == ["room_ban"]


def test_add_room_ban_refuses_an_end_time_in_the_past(mod_client, lobby, alice):
    """An end time already past is a form error: the page answers 200 with it, nothing is written."""
    response = mod_client.post(
        reverse("admin:rooms_roomban_add"), {"room": lobby.pk, "user": alice.pk, **until_fields(hours=-1)}
    )
    assert response.status_code == 200
    assert "must be in the future" in response.content.decode()
    assert not RoomBan.objects.exists() and not AuditLog.objects.exists()


def test_banning_the_owner_in_the_add_form_explains_why_not(mod_client, lobby):
    """The service refuses to ban the room's owner; the admin shows its reason and writes nothing."""
    response = mod_client.post(
        reverse("admin:rooms_roomban_add"), {"room": lobby.pk, "user": lobby.owner.pk}, follow=True
    )
    assert response.status_code == 200
    assert "cannot be banned" in response.content.decode()
    assert not RoomBan.objects.exists() and not AuditLog.objects.exists()


def test_change_room_ban_reason_is_one_audit_entry(mod_client, lobby, alice, moderator):
    """Changing a ban's reason re-bans through the service: one more audit entry."""
    ban = room_ban(actor=moderator, room=lobby, username="alice", reason="first")
    mod_client.post(
        reverse("admin:rooms_roomban_change", args=[ban.pk]), {"until_0": "", "until_1": "", "reason": "second"}
    )
    ban.refresh_from_db()
    assert ban.reason == "second"
    assert audit_actions() == ["room_ban", "room_ban"]


def test_saving_an_unchanged_ban_writes_no_audit_entry(mod_client, lobby, alice, moderator):
    """Saving a ban form without changes calls no service and adds no audit entry."""
    ban = room_ban(actor=moderator, room=lobby, username="alice", reason="first")
    mod_client.post(
        reverse("admin:rooms_roomban_change", args=[ban.pk]), {"until_0": "", "until_1": "", "reason": "first"}
    )
    assert audit_actions() == ["room_ban"]


def test_delete_room_ban_lifts_it(mod_client, lobby, alice, moderator):
    """Deleting a ban in the admin calls room_unban: the row goes, one room_unban audit entry."""
    ban = room_ban(actor=moderator, room=lobby, username="alice")
    response = mod_client.post(reverse("admin:rooms_roomban_delete", args=[ban.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not RoomBan.objects.exists()
    assert audit_actions() == ["room_ban", "room_unban"]


def test_bulk_lift_room_bans(mod_client, lobby, user_factory, moderator):
    """The delete-selected action lifts each ban through the service."""
    bans = [room_ban(actor=moderator, room=lobby, username=user_factory(name).username) for name in ("u1", "u2")]
    mod_client.post(
        reverse("admin:rooms_roomban_changelist"),
        {"action": "delete_selected", ACTION_CHECKBOX_NAME: [ban.pk for ban in bans], "post": "yes"},
    )
    assert not RoomBan.objects.exists()
    assert audit_actions().count("room_unban") == 2


def test_ban_list_shows_active_and_expired(mod_client, lobby, user_factory, moderator):
    """The ban list says which bans are active and which expired, and filters on it."""
    room_ban(actor=moderator, room=lobby, username=user_factory("current").username)
    RoomBan.objects.create(room=lobby, user=user_factory("former"), until=timezone.now() - timedelta(minutes=1))
    changelist = reverse("admin:rooms_roomban_changelist")
    page = mod_client.get(changelist).content.decode()
    assert "active (no end)" in page and "expired" in page
    expired = mod_client.get(changelist, {"status": "expired"}).context["cl"].result_list
    active = mod_client.get(changelist, {"status": "active"}).context["cl"].result_list
    assert [ban.user.username for ban in expired] == ["former"]
    assert [ban.user.username for ban in active] == ["current"]


def test_plain_staff_cannot_add_a_ban(client, user_factory, lobby, alice):
    """A staff user outside Moderators gets 403 on the ban form."""
    client.force_login(user_factory("staffer", is_staff=True))
    response = client.post(reverse("admin:rooms_roomban_add"), {"room": lobby.pk, "user": alice.pk})
    assert response.status_code == 403
    assert not RoomBan.objects.exists()


# ----- mutes and site bans --------------------------------------------------------------------


def test_add_and_lift_room_mute(mod_client, lobby, alice):
    """Muting then unmuting in the admin are room_mute and room_unmute, one audit entry each."""
    mod_client.post(reverse("admin:rooms_roommute_add"), {"room": lobby.pk, "user": alice.pk, "reason": "shouting"})
    mute = RoomMute.objects.get()
    assert mute.reason == "shouting"
    mod_client.post(reverse("admin:rooms_roommute_delete", args=[mute.pk]), {"post": "yes"})
    assert not RoomMute.objects.exists()
    assert audit_actions() == ["room_mute", "room_unmute"]


def test_muted_user_is_refused_by_the_rest_api(mod_client, lobby, alice):
    """After an admin mute the user's next message answers 403 forbidden."""
    from django.test import Client

    mod_client.post(reverse("admin:rooms_roommute_add"), {"room": lobby.pk, "user": alice.pk})
    alice_client = Client()
    alice_client.force_login(alice)
    response = alice_client.post(
        f"/api/v1/rooms/{lobby.slug}/messages/", {"body": "hi"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_add_site_ban_refuses_the_user_everywhere(mod_client, alice):
    """A site ban from the admin form is audited and the user's API calls answer 403."""
    from django.test import Client

    response = mod_client.post(reverse("admin:rooms_siteban_add"), {"user": alice.pk, "reason": "abuse"})
    assert response.status_code == 302
    assert SiteBan.objects.get().reason == "abuse"
    assert audit_actions() == ["site_ban"]
    alice_client = Client()
    alice_client.force_login(alice)
    assert alice_client.get("/api/v1/me/").status_code == 403


def test_add_site_ban_schedules_the_live_broadcast(mod_client, alice, django_capture_on_commit_callbacks):
    """A site ban from the admin schedules the 4003 broadcast on commit."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        mod_client.post(reverse("admin:rooms_siteban_add"), {"user": alice.pk})
    assert len(callbacks) == 1


def test_lift_site_ban(mod_client, alice, moderator):
    """Deleting a site ban calls site_unban: one audit entry, the user is back."""
    ban = site_ban(actor=moderator, username="alice")
    mod_client.post(reverse("admin:rooms_siteban_delete", args=[ban.pk]), {"post": "yes"})
    assert not SiteBan.objects.exists()
    assert audit_actions() == ["site_ban", "site_unban"]


def test_user_list_action_bans_site_wide(mod_client, alice):
    """The users list's action bans the selected users site-wide after the reason page."""
    mod_client.post(
        reverse("admin:accounts_user_changelist"),
        {
            "action": "ban_site_wide",
            ACTION_CHECKBOX_NAME: [alice.pk],
            "apply": "1",
            "reason": "abuse",
            "until": later(days=7),
        },
    )
    assert SiteBan.objects.active().filter(user=alice, reason="abuse").count() == 1
    assert audit_actions() == ["site_ban"]


def test_user_list_action_lifts_site_bans(mod_client, alice, moderator):
    """The users list's lift action lifts the site ban of each selected banned user."""
    site_ban(actor=moderator, username="alice")
    mod_client.post(
        reverse("admin:accounts_user_changelist"), {"action": "lift_site_ban", ACTION_CHECKBOX_NAME: [alice.pk]}
    )
    assert not SiteBan.objects.exists()
    assert audit_actions() == ["site_ban", "site_unban"]


def test_moderator_cannot_site_ban_a_superuser(mod_client, user_factory):
    """The service refuses to ban a superuser; the admin shows why."""
    root = user_factory("root", is_staff=True, is_superuser=True)
    response = mod_client.post(reverse("admin:rooms_siteban_add"), {"user": root.pk}, follow=True)
    assert "cannot ban yourself or a superuser" in response.content.decode()
    assert not SiteBan.objects.exists()


# ----- rooms ----------------------------------------------------------------------------------


def room_form(room, **changes) -> dict:
    return {"name": room.name, "topic": room.topic, "slow_mode_seconds": room.slow_mode_seconds, **changes}


def test_set_slow_mode_goes_through_room_update(mod_client, lobby, moderator):
    """Setting slow mode in the admin updates the room with one room_update audit entry."""
    response = mod_client.post(
        reverse("admin:rooms_room_change", args=[lobby.pk]), room_form(lobby, slow_mode_seconds=30)
    )
    assert response.status_code == 302
    lobby.refresh_from_db()
    assert lobby.slow_mode_seconds == 30
    entry = AuditLog.objects.get()
    assert (entry.action, entry.actor, entry.detail) == ("room_update", moderator, {"slow_mode_seconds": 30})


def test_slow_mode_from_the_admin_is_enforced(mod_client, lobby, alice):
    """After slow mode is set in the admin a second quick message answers 429 slow_mode with retry_after."""
    from django.test import Client

    mod_client.post(reverse("admin:rooms_room_change", args=[lobby.pk]), room_form(lobby, slow_mode_seconds=60))
    alice_client = Client()
    alice_client.force_login(alice)
    url = f"/api/v1/rooms/{lobby.slug}/messages/"
    assert alice_client.post(url, {"body": "one"}, content_type="application/json").status_code == 201
    second = alice_client.post(url, {"body": "two"}, content_type="application/json")
    assert second.status_code == 429
    assert second.json()["code"] == "slow_mode" and second.json()["retry_after"] > 0


def test_negative_slow_mode_is_a_form_error(mod_client, lobby):
    """A negative slow mode is answered on the form; the room and the audit log are unchanged."""
    response = mod_client.post(
        reverse("admin:rooms_room_change", args=[lobby.pk]), room_form(lobby, slow_mode_seconds=-5)
    )
    assert response.status_code == 200
    lobby.refresh_from_db()
    assert lobby.slow_mode_seconds == 0 and not AuditLog.objects.exists()


def test_room_name_and_topic_change_is_one_audit_entry(mod_client, lobby):
    """Changing name and topic together is one room_update entry listing both."""
    mod_client.post(
        reverse("admin:rooms_room_change", args=[lobby.pk]), room_form(lobby, name="The Lobby", topic="Say hi")
    )
    entry = AuditLog.objects.get()
    assert entry.detail == {"name": "The Lobby", "topic": "Say hi"}


def test_rooms_cannot_be_deleted_in_the_admin(client, lobby, user_factory):
    """No one deletes rooms in the admin (no service for it): 403 even for a superuser."""
    client.force_login(user_factory("root", is_staff=True, is_superuser=True))
    assert client.post(reverse("admin:rooms_room_delete", args=[lobby.pk]), {"post": "yes"}).status_code == 403


def test_moderator_cannot_create_rooms_in_the_admin(mod_client):
    """Room creation in the admin is for superusers; a moderator gets 403."""
    assert mod_client.get(reverse("admin:rooms_room_add")).status_code == 403


def test_superuser_creates_a_room_through_the_service(client, user_factory):
    """A superuser's new room is made by room_create: the owner is its first member."""
    from rooms.models import Membership, Room

    owner = user_factory("owner")
    client.force_login(user_factory("root", is_staff=True, is_superuser=True))
    response = client.post(
        reverse("admin:rooms_room_add"),
        {"slug": "news", "name": "News", "topic": "", "owner": owner.pk, "slow_mode_seconds": 0},
    )
    assert response.status_code == 302
    room = Room.objects.get(slug="news")
    assert Membership.objects.filter(room=room, user=owner).exists()


def test_membership_list_is_read_only(mod_client, lobby, alice):
    """Memberships are listed for moderators; adding one in the admin is refused."""
    assert mod_client.get(reverse("admin:rooms_membership_changelist")).status_code == 200
    assert mod_client.get(reverse("admin:rooms_membership_add")).status_code == 403


def test_mute_created_via_service_shows_in_admin_list(mod_client, lobby, alice, moderator):
    """A mute made through the REST path appears in the admin mute list with its reason."""
    room_mute(actor=moderator, room=lobby, username="alice", reason="caps lock")
    page = mod_client.get(reverse("admin:rooms_roommute_changelist")).content.decode()
    assert "caps lock" in page and "alice" in page


def test_ban_form_finds_users_by_name_for_moderators(mod_client, lobby, alice):
    """The ban form's user autocomplete answers a moderator with matching usernames."""
    response = mod_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "rooms", "model_name": "roomban", "field_name": "user", "term": "ali"},
    )
    assert response.status_code == 200
    assert [item["text"] for item in response.json()["results"]] == ["alice"]


def test_ban_form_autocomplete_refuses_plain_staff(client, user_factory, alice):
    """The user autocomplete is refused (403) to staff outside Moderators."""
    client.force_login(user_factory("staffer", is_staff=True))
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "rooms", "model_name": "roomban", "field_name": "user", "term": "ali"},
    )
    assert response.status_code == 403
