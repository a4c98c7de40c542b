"""Who may use the admin: moderators work there, plain staff and users are refused (CONTRACT §4)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from rooms.models import AuditLog

CHAT_MODELS = ["room", "membership", "message", "report", "roomban", "roommute", "siteban", "auditlog"]


def changelist(model: str) -> str:
    app = "accounts" if model == "user" else "rooms"
    return reverse(f"admin:{app}_{model}_changelist")


def test_moderator_sees_the_chat_models_on_the_admin_index(client, moderator):
    """A moderator's admin index lists rooms, messages, reports, users and the audit log."""
    client.force_login(moderator)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    for label in ["Rooms", "Messages", "Reports", "Users", "Audit logs", "Room bans", "Site bans"]:
        assert label in response.content.decode()


@pytest.mark.parametrize("model", [*CHAT_MODELS, "user"])
def test_moderator_opens_every_change_list(client, moderator, model):
    """Every chat model's list (and the users') answers 200 to a moderator."""
    client.force_login(moderator)
    assert client.get(changelist(model)).status_code == 200


@pytest.mark.parametrize("model", [*CHAT_MODELS, "user"])
def test_plain_staff_is_refused_every_change_list(client, user_factory, model):
    """A staff user outside the Moderators group gets 403 on every model page."""
    client.force_login(user_factory("staffer", is_staff=True))
    assert client.get(changelist(model)).status_code == 403


def test_plain_staff_sees_an_empty_admin_index(client, user_factory):
    """A staff user outside Moderators sees the admin but no model in it."""
    client.force_login(user_factory("staffer", is_staff=True))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "Messages" not in response.content.decode()


@pytest.mark.parametrize("url_name", ["admin:index", "admin:rooms_message_changelist", "admin:rooms_report_changelist"])
def test_normal_user_is_sent_to_the_admin_login(client, user_factory, url_name):
    """A logged-in user who is not staff is redirected to the admin login page."""
    client.force_login(user_factory("alice"))
    response = client.get(reverse(url_name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_anonymous_visitor_is_sent_to_the_admin_login(client, db):
    """Without a session the admin redirects to its login page."""
    response = client.get(changelist("message"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_moderator_views_a_user_read_only_without_password_or_permissions(client, moderator, user_factory):
    """A moderator sees a user's page as a view, with no password, groups or permissions on it."""
    alice = user_factory("alice")
    client.force_login(moderator)
    response = client.get(reverse("admin:accounts_user_change", args=[alice.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "View user" in page
    assert 'name="password' not in page and "user_permissions" not in page and 'name="groups"' not in page


def test_moderator_cannot_change_a_user(client, moderator, user_factory):
    """A moderator's POST to a user's change form is refused with 403 and changes nothing."""
    alice = user_factory("alice")
    client.force_login(moderator)
    response = client.post(
        reverse("admin:accounts_user_change", args=[alice.pk]),
        {"username": "alice", "is_staff": "on", "is_superuser": "on"},
    )
    assert response.status_code == 403
    alice.refresh_from_db()
    assert not alice.is_staff and not alice.is_superuser


def test_moderator_cannot_change_a_password(client, moderator, user_factory):
    """The admin's password form is refused to a moderator (403)."""
    alice = user_factory("alice")
    client.force_login(moderator)
    url = reverse("admin:auth_user_password_change", args=[alice.pk])
    assert client.get(url).status_code == 403
    response = client.post(url, {"password1": "n3w-Pass-word-99", "password2": "n3w-Pass-word-99"})
    assert response.status_code == 403


def test_moderator_cannot_add_users_or_edit_groups(client, moderator):
    """Adding a user or touching groups (where permissions are granted) is refused to a moderator."""
    client.force_login(moderator)
    assert client.get(reverse("admin:accounts_user_add")).status_code == 403
    assert client.get(reverse("admin:auth_group_changelist")).status_code == 403


def test_superuser_keeps_the_full_user_admin(client, superuser, user_factory):
    """A superuser's user page is Django's change form with the password and permissions."""
    alice = user_factory("alice")
    client.force_login(superuser)
    response = client.get(reverse("admin:accounts_user_change", args=[alice.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Change user" in page and "user_permissions" in page and "password/" in page


@pytest.mark.parametrize("who", ["moderator", "superuser"])
def test_audit_log_is_read_only_for_everyone(client, who, moderator, superuser, room_factory):
    """No one, superusers included, may add, change or delete audit entries."""
    from rooms.services import room_update

    room = room_factory("lobby")
    room_update(actor=moderator, room=room, slow_mode_seconds=5)
    entry = AuditLog.objects.get()
    client.force_login(moderator if who == "moderator" else superuser)
    assert client.get(reverse("admin:rooms_auditlog_change", args=[entry.pk])).status_code == 200
    assert client.get(reverse("admin:rooms_auditlog_add")).status_code == 403
    assert client.post(reverse("admin:rooms_auditlog_change", args=[entry.pk]), {"reason": "x"}).status_code == 403
    assert client.post(reverse("admin:rooms_auditlog_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert AuditLog.objects.get().reason == ""


def test_staff_with_permissions_but_not_moderator_is_refused_by_the_service(client, user_factory, room_factory):
    """Staff given the delete permission directly but outside Moderators cannot delete others' messages."""
    from django.contrib.auth.models import Permission

    from rooms.services import message_post

    staffer = user_factory("staffer", is_staff=True)
    staffer.user_permissions.add(*Permission.objects.filter(codename__in=["view_message", "delete_message"]))
    author = user_factory("alice")
    room = room_factory("lobby", members=[author])
    message, _ = message_post(user=author, room=room, body="hello")
    client.force_login(staffer)
    response = client.post(reverse("admin:rooms_message_delete", args=[message.pk]), {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert "Only the room&#x27;s owner or a moderator" in response.content.decode()
    message.refresh_from_db()
    assert message.deleted is None
    assert not AuditLog.objects.exists()
