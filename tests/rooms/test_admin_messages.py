"""Messages and reports in the admin: find, read in context, delete, restore, resolve, ban authors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from rooms.models import AuditLog, Message, Report, RoomBan, SiteBan
from rooms.services import message_post, message_report

MESSAGES = reverse("admin:rooms_message_changelist")
REPORTS = reverse("admin:rooms_report_changelist")


@pytest.fixture
def mod_client(client, moderator):
    client.force_login(moderator)
    return client


@pytest.fixture
def bob_client(bob):
    """A second, separate session: bob reading the room through the REST API."""
    from django.test import Client

    reader = Client()
    reader.force_login(bob)
    return reader


def post(user, room, body) -> Message:
    return message_post(user=user, room=room, body=body)[0]


def action(client, url, name, objects, **data):
    return client.post(url, {"action": name, ACTION_CHECKBOX_NAME: [obj.pk for obj in objects], **data}, follow=True)


def listed_ids(response) -> set[int]:
    return {obj.pk for obj in response.context["cl"].result_list}


# ----- finding messages -----------------------------------------------------------------------


def test_messages_are_searchable_by_text(mod_client, lobby, alice, bob):
    """Searching the message list by a word finds the messages containing it."""
    spam = post(alice, lobby, "buy cheap watches")
    post(bob, lobby, "hello all")
    assert listed_ids(mod_client.get(MESSAGES, {"q": "watches"})) == {spam.pk}


def test_messages_are_searchable_by_author(mod_client, lobby, alice, bob):
    """Searching the message list by a username finds that author's messages."""
    post(alice, lobby, "one")
    by_bob = post(bob, lobby, "two")
    assert listed_ids(mod_client.get(MESSAGES, {"q": "bob"})) == {by_bob.pk}


def test_messages_filter_by_room(mod_client, room_factory, lobby, alice):
    """The room filter shows only that room's messages."""
    other = room_factory("other", members=[alice])
    post(alice, lobby, "in lobby")
    elsewhere = post(alice, other, "elsewhere")
    assert listed_ids(mod_client.get(MESSAGES, {"room__id__exact": other.pk})) == {elsewhere.pk}


def test_messages_filter_by_date(mod_client, lobby, alice):
    """The date filter keeps messages of the chosen period."""
    old = post(alice, lobby, "old news")
    Message.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=30))
    today = post(alice, lobby, "fresh")
    start = timezone.now().date().isoformat()
    assert listed_ids(mod_client.get(MESSAGES, {"created__gte": start})) == {today.pk}


def test_messages_filter_by_open_reports(mod_client, lobby, alice, bob):
    """The reported filter shows messages with an open report."""
    reported = post(alice, lobby, "rude")
    post(alice, lobby, "polite")
    message_report(user=bob, message=reported, reason="rude")
    assert listed_ids(mod_client.get(MESSAGES, {"reported": "open"})) == {reported.pk}


def test_messages_filter_by_deleted(mod_client, lobby, alice, moderator):
    """The deleted filter separates deleted messages from live ones."""
    from rooms.services import message_delete

    gone = post(alice, lobby, "gone")
    kept = post(alice, lobby, "kept")
    message_delete(actor=moderator, message=gone)
    assert listed_ids(mod_client.get(MESSAGES, {"deleted": "yes"})) == {gone.pk}
    assert listed_ids(mod_client.get(MESSAGES, {"deleted": "no"})) == {kept.pk}


def test_message_page_is_read_only(mod_client, lobby, alice):
    """A moderator views a message but cannot edit its body (POST answers 403)."""
    message = post(alice, lobby, "original")
    url = reverse("admin:rooms_message_change", args=[message.pk])
    assert mod_client.get(url).status_code == 200
    assert mod_client.post(url, {"body_raw": "edited by mod"}).status_code == 403
    message.refresh_from_db()
    assert message.body_raw == "original"


# ----- deleting and restoring -----------------------------------------------------------------


def test_admin_delete_hides_the_message_from_the_api_history(mod_client, bob_client, lobby, alice):
    """After the admin delete, GET /api/v1/rooms/{slug}/messages/ no longer returns the message."""
    message = post(alice, lobby, "bad words")
    kept = post(alice, lobby, "fine words")
    response = mod_client.post(reverse("admin:rooms_message_delete", args=[message.pk]), {"post": "yes"})
    assert response.status_code == 302
    history = bob_client.get(f"/api/v1/rooms/{lobby.slug}/messages/")
    assert history.status_code == 200
    assert [item["id"] for item in history.json()["results"]] == [kept.pk]


def test_admin_delete_leaves_one_audit_entry(mod_client, lobby, alice, moderator):
    """Deleting a message in the admin writes exactly one message_delete audit entry."""
    message = post(alice, lobby, "bad words")
    mod_client.post(reverse("admin:rooms_message_delete", args=[message.pk]), {"post": "yes"})
    entry = AuditLog.objects.get()
    assert (entry.action, entry.actor, entry.target_user, entry.message_id, entry.room) == (
        "message_delete",
        moderator,
        alice,
        message.pk,
        lobby,
    )


def test_admin_delete_schedules_one_live_broadcast(mod_client, lobby, alice, django_capture_on_commit_callbacks):
    """The admin delete schedules the message_deleted broadcast on commit, once."""
    message = post(alice, lobby, "bad words")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        mod_client.post(reverse("admin:rooms_message_delete", args=[message.pk]), {"post": "yes"})
    assert len(callbacks) == 1


def test_delete_confirmation_lists_only_the_message(mod_client, lobby, alice, bob):
    """The delete page lists the message alone: its reports are kept, not deleted with it."""
    message = post(alice, lobby, "bad words")
    message_report(user=bob, message=message, reason="rude")
    page = mod_client.get(reverse("admin:rooms_message_delete", args=[message.pk])).content.decode()
    assert "bad words" in page and "Report:" not in page


def test_deleting_an_already_deleted_message_explains_and_audits_nothing(mod_client, lobby, alice, moderator):
    """A second admin delete of one message answers with an error message, no second audit entry."""
    from rooms.services import message_delete

    message = post(alice, lobby, "bad words")
    message_delete(actor=moderator, message=message)
    response = mod_client.post(reverse("admin:rooms_message_delete", args=[message.pk]), {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert f"No message {message.pk}" in response.content.decode()
    assert AuditLog.objects.count() == 1


def test_delete_selected_messages_audits_each(mod_client, lobby, alice, bob):
    """The bulk delete action deletes each live message through the service: one audit entry each."""
    first, second = post(alice, lobby, "one"), post(bob, lobby, "two")
    response = action(mod_client, MESSAGES, "delete_selected", [first, second], post="yes")
    assert response.status_code == 200
    assert Message.objects.filter(deleted__isnull=False).count() == 2
    assert list(AuditLog.objects.values_list("action", flat=True)) == ["message_delete"] * 2


def test_restore_selected_messages_brings_them_back(mod_client, bob_client, lobby, alice, moderator):
    """Restoring a deleted message puts it back into the history, with one audit entry."""
    from rooms.services import message_delete

    message = post(alice, lobby, "misjudged")
    message_delete(actor=moderator, message=message)
    action(mod_client, MESSAGES, "restore_selected", [message])
    message.refresh_from_db()
    assert message.deleted is None
    assert AuditLog.objects.filter(action="message_restore", message_id=message.pk).count() == 1
    history = bob_client.get(f"/api/v1/rooms/{lobby.slug}/messages/").json()
    assert [item["id"] for item in history["results"]] == [message.pk]


def test_plain_staff_cannot_delete_a_message(client, user_factory, lobby, alice):
    """A staff user outside Moderators gets 403 on the delete page."""
    message = post(alice, lobby, "hello")
    client.force_login(user_factory("staffer", is_staff=True))
    assert client.post(reverse("admin:rooms_message_delete", args=[message.pk]), {"post": "yes"}).status_code == 403
    message.refresh_from_db()
    assert message.deleted is None


# ----- banning authors ------------------------------------------------------------------------


def test_ban_authors_action_asks_for_end_time_and_reason(mod_client, lobby, alice):
    """The ban action first shows a page with an end time and a reason, banning no one yet."""
    message = post(alice, lobby, "spam")
    response = action(mod_client, MESSAGES, "ban_authors_from_room", [message])
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="until"' in page and 'name="reason"' in page and "alice from lobby" in page
    assert not RoomBan.objects.exists()


def test_ban_authors_from_room_bans_with_reason_and_end(mod_client, lobby, alice, moderator):
    """Confirming the ban action bans each author from the message's room, with one audit entry."""
    message = post(alice, lobby, "spam")
    until = (timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0)
    action(
        mod_client,
        MESSAGES,
        "ban_authors_from_room",
        [message, post(alice, lobby, "more spam")],
        apply="1",
        reason="spam",
        until=until.strftime("%Y-%m-%d %H:%M"),
    )
    ban = RoomBan.objects.get()
    assert (ban.user, ban.room, ban.reason, ban.until, ban.created_by) == (alice, lobby, "spam", until, moderator)
    assert AuditLog.objects.filter(action="room_ban").count() == 1


def test_ban_action_refuses_an_end_time_in_the_past(mod_client, lobby, alice):
    """An end time already past is answered on the same page with an error; no one is banned."""
    message = post(alice, lobby, "spam")
    past = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    response = action(mod_client, MESSAGES, "ban_authors_from_room", [message], apply="1", until=past)
    assert response.status_code == 200
    assert "must be in the future" in response.content.decode()
    assert not RoomBan.objects.exists() and not AuditLog.objects.exists()


def test_ban_authors_site_wide(mod_client, lobby, alice):
    """The site-wide action bans the authors everywhere, one audit entry each."""
    message = post(alice, lobby, "spam")
    action(mod_client, MESSAGES, "ban_authors_site_wide", [message], apply="1", reason="spammer", until="")
    ban = SiteBan.objects.get()
    assert (ban.user, ban.until, ban.reason) == (alice, None, "spammer")
    assert AuditLog.objects.filter(action="site_ban", target_user=alice).count() == 1


def test_banning_the_room_owner_is_refused_with_a_message(mod_client, lobby):
    """The room's owner cannot be banned from it: the action says why and writes nothing."""
    message = post(lobby.owner, lobby, "owner speaks")
    response = action(mod_client, MESSAGES, "ban_authors_from_room", [message], apply="1", reason="x")
    assert "cannot be banned" in response.content.decode()
    assert not RoomBan.objects.exists() and not AuditLog.objects.exists()


# ----- the report queue -----------------------------------------------------------------------


def test_report_queue_lists_open_reports_first(mod_client, lobby, alice, bob, moderator):
    """Open reports come before resolved ones, the newest first."""
    from rooms.services import report_resolve

    older, _ = message_report(user=bob, message=post(alice, lobby, "a"), reason="r1")
    resolved, _ = message_report(user=bob, message=post(alice, lobby, "b"), reason="r2")
    newer, _ = message_report(user=bob, message=post(alice, lobby, "c"), reason="r3")
    report_resolve(actor=moderator, report=resolved)
    results = mod_client.get(REPORTS).context["cl"].result_list
    assert [report.pk for report in results] == [newer.pk, older.pk, resolved.pk]


def test_report_page_shows_the_message_in_context(mod_client, lobby, alice, bob):
    """A report's page shows the reported message with messages before and after it."""
    for number in range(5):
        post(bob, lobby, f"before-{number}")
    reported = post(alice, lobby, "the offending line")
    for number in range(5):
        post(bob, lobby, f"after-{number}")
    report, _ = message_report(user=bob, message=reported, reason="offensive")
    page = mod_client.get(reverse("admin:rooms_report_change", args=[report.pk])).content.decode()
    assert "the offending line" in page
    assert "before-4" in page and "before-2" in page and "before-1" not in page
    assert "after-0" in page and "after-2" in page and "after-3" not in page


def test_report_context_escapes_markup(mod_client, lobby, alice, bob):
    """A message's text is shown escaped in the report page, never as live markup."""
    reported = post(alice, lobby, "<script>alert(1)</script>")
    report, _ = message_report(user=bob, message=reported, reason="xss")
    page = mod_client.get(reverse("admin:rooms_report_change", args=[report.pk])).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_resolve_selected_reports(mod_client, lobby, alice, bob, moderator):
    """Resolving reports marks them resolved by the moderator, one audit entry each."""
    reports = [message_report(user=bob, message=post(alice, lobby, f"m{n}"), reason="r")[0] for n in range(2)]
    action(mod_client, REPORTS, "resolve_selected", reports)
    assert Report.objects.filter(resolved__isnull=False, resolved_by=moderator).count() == 2
    assert AuditLog.objects.filter(action="report_resolve").count() == 2


def test_delete_reported_messages(mod_client, lobby, alice, bob):
    """The report action deletes each reported message once, even when reported twice."""
    message = post(alice, lobby, "rude")
    first, _ = message_report(user=bob, message=message, reason="rude")
    second, _ = message_report(user=lobby.owner, message=message, reason="very rude")
    action(mod_client, REPORTS, "delete_reported_messages", [first, second])
    message.refresh_from_db()
    assert message.deleted is not None
    assert AuditLog.objects.filter(action="message_delete").count() == 1


def test_ban_authors_from_the_report_queue(mod_client, lobby, alice, bob):
    """From the report queue a moderator bans the reported message's author from its room."""
    report, _ = message_report(user=bob, message=post(alice, lobby, "rude"), reason="rude")
    action(mod_client, REPORTS, "ban_authors_from_room", [report], apply="1", reason="rude", until="")
    assert RoomBan.objects.filter(room=lobby, user=alice, until__isnull=True).count() == 1


def test_plain_staff_cannot_see_reports(client, user_factory, lobby, alice, bob):
    """A staff user outside Moderators gets 403 on a report's page."""
    report, _ = message_report(user=bob, message=post(alice, lobby, "rude"), reason="rude")
    client.force_login(user_factory("staffer", is_staff=True))
    assert client.get(reverse("admin:rooms_report_change", args=[report.pk])).status_code == 403


def test_report_page_links_to_delete_and_ban_the_author(mod_client, lobby, alice, bob):
    """A report's page offers delete, ban, mute and site-ban links for the reported message's author."""
    message = post(alice, lobby, "rude")
    report, _ = message_report(user=bob, message=message, reason="rude")
    page = mod_client.get(reverse("admin:rooms_report_change", args=[report.pk])).content.decode()
    assert reverse("admin:rooms_message_delete", args=[message.pk]) in page
    assert f"{reverse('admin:rooms_roomban_add')}?room={lobby.pk}&amp;user={alice.pk}" in page
    assert f"{reverse('admin:rooms_siteban_add')}?user={alice.pk}" in page


def test_ban_form_opened_from_a_report_is_prefilled(mod_client, lobby, alice):
    """The ban link's form arrives with the room and the author already chosen."""
    response = mod_client.get(reverse("admin:rooms_roomban_add"), {"room": lobby.pk, "user": alice.pk})
    form = response.context["adminform"].form
    assert (str(form.initial["room"]), str(form.initial["user"])) == (str(lobby.pk), str(alice.pk))


def test_resolve_button_resolves_one_report(mod_client, lobby, alice, bob, moderator):
    """The report page's resolve button resolves it (one audit entry) and returns to the queue."""
    report, _ = message_report(user=bob, message=post(alice, lobby, "rude"), reason="rude")
    response = mod_client.post(reverse("admin:rooms_report_resolve", args=[report.pk]))
    assert response.status_code == 302 and response["Location"] == REPORTS
    report.refresh_from_db()
    assert report.resolved_by == moderator
    assert AuditLog.objects.filter(action="report_resolve").count() == 1


def test_resolve_url_refuses_get(mod_client, lobby, alice, bob):
    """Resolving needs a POST: a GET answers 405 and changes nothing."""
    report, _ = message_report(user=bob, message=post(alice, lobby, "rude"), reason="rude")
    assert mod_client.get(reverse("admin:rooms_report_resolve", args=[report.pk])).status_code == 405
    report.refresh_from_db()
    assert report.resolved is None


def test_resolve_url_refuses_plain_staff(client, user_factory, lobby, alice, bob):
    """A staff user outside Moderators cannot resolve a report (403)."""
    report, _ = message_report(user=bob, message=post(alice, lobby, "rude"), reason="rude")
    client.force_login(user_factory("staffer", is_staff=True))
    assert client.post(reverse("admin:rooms_report_resolve", args=[report.pk])).status_code == 403


def test_resolve_url_of_a_missing_report_is_404(mod_client, db):
    """Resolving a report that does not exist answers 404."""
    assert mod_client.post(reverse("admin:rooms_report_resolve", args=[999999])).status_code == 404
