"""CONTRACT §7 moderation rules: edit history, mutes and bans on edits, edits rate limited,
report snapshots, de-duplication and limit, moderators protected, and what the admin shows."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from rooms import ratelimit, services
from rooms.exceptions import Forbidden, RateLimited
from rooms.models import MessageRevision, Report
from tests.support.ws import access_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def room(room_factory, owner, alice, bob):
    return room_factory("trust", owner=owner, members=[alice, bob])


@pytest.fixture
def mod_client(moderator):
    client = Client()
    client.force_login(moderator)
    return client


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(user)}")
    return client


def post(user, room, body):
    return services.message_post(user=user, room=room, body=body)[0]


# ----- edits -------------------------------------------------------------------------------------


def test_each_edit_keeps_the_text_it_replaced(alice, room):
    """Two edits, two revisions: the original and the first edit, with when each was written."""
    message = post(alice, room, "first")
    services.message_edit(user=alice, message=message, body="second")
    services.message_edit(user=alice, message=message, body="third")
    revisions = list(MessageRevision.objects.filter(message=message))
    assert [revision.body_raw for revision in revisions] == ["first", "second"]
    assert revisions[0].written == message.created
    assert revisions[1].written == revisions[0].replaced
    assert revisions[1].replaced == message.edited


def test_an_edit_to_the_same_text_changes_nothing(alice, room):
    """No revision, no edited time, no rate-limit token for an edit that changes nothing."""
    message = post(alice, room, "same")
    services.message_edit(user=alice, message=message, body="same")
    message.refresh_from_db()
    assert message.edited is None and not message.revisions.exists()


def test_a_muted_user_cannot_edit(owner, alice, room):
    """Muted in the room: PATCH answers 403 forbidden and the text stays."""
    message = post(alice, room, "before the mute")
    services.room_mute(actor=owner, room=room, username="alice")
    response = bearer(alice).patch(f"/api/v1/messages/{message.id}/", {"body": "sneaky"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    message.refresh_from_db()
    assert message.body_raw == "before the mute" and not message.revisions.exists()


def test_an_expired_mute_allows_editing_again(owner, alice, room):
    """Only mutes in force count."""
    message = post(alice, room, "text")
    services.room_mute(actor=owner, room=room, username="alice", until=timezone.now() + timedelta(seconds=30))
    from rooms.models import RoomMute

    RoomMute.objects.update(until=timezone.now() - timedelta(seconds=1))
    assert services.message_edit(user=alice, message=message, body="edited").body_raw == "edited"


def test_a_room_banned_user_cannot_edit(owner, alice, room):
    """Banned from the room: editing there is forbidden."""
    message = post(alice, room, "text")
    services.room_ban(actor=owner, room=room, username="alice")
    with pytest.raises(Forbidden):
        services.message_edit(user=alice, message=message, body="changed")


def test_edits_spend_the_posting_rate_limit(alice, room, settings):
    """Posts and edits share one bucket: beyond it an edit answers 429 and changes nothing."""
    settings.CHAT_MESSAGE_RATE = (2, 60.0)
    ratelimit.reset_local_buckets()
    message = post(alice, room, "one")
    services.message_edit(user=alice, message=message, body="two")
    response = bearer(alice).patch(f"/api/v1/messages/{message.id}/", {"body": "three"}, format="json")
    assert response.status_code == 429 and response.json()["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
    message.refresh_from_db()
    assert message.body_raw == "two"


def test_a_refused_edit_spends_no_token(owner, alice, room, settings):
    """A muted user's refused edits leave their tokens: after three refusals, one edit still fits."""
    settings.CHAT_MESSAGE_RATE = (2, 3600.0)
    message = post(alice, room, "mine")  # one of two tokens left
    services.room_mute(actor=owner, room=room, username="alice")
    for _ in range(3):
        with pytest.raises(Forbidden):
            services.message_edit(user=alice, message=message, body="again")
    services.room_unmute(actor=owner, room=room, username="alice")
    assert services.message_edit(user=alice, message=message, body="now").body_raw == "now"
    with pytest.raises(RateLimited):
        services.message_edit(user=alice, message=message, body="one too many")


# ----- reports -----------------------------------------------------------------------------------


def test_report_keeps_a_snapshot_the_edit_does_not_change(alice, bob, room):
    """The report holds the text at report time; the author's later edit leaves it as it was."""
    message = post(alice, room, "nasty words")
    response = bearer(bob).post(f"/api/v1/messages/{message.id}/report/", {"reason": "abuse"}, format="json")
    assert response.status_code == 201
    services.message_edit(user=alice, message=message, body="all friendly now")
    report = Report.objects.get()
    assert report.snapshot == "nasty words"
    assert report.message.body_raw == "all friendly now"


def test_a_second_report_while_open_answers_200_with_the_first(alice, bob, room, moderator):
    """Same user, same message, first report open: 200 with that report; once resolved, 201 again."""
    message = post(alice, room, "spam")
    client = bearer(bob)
    first = client.post(f"/api/v1/messages/{message.id}/report/", {"reason": "spam"}, format="json")
    again = client.post(f"/api/v1/messages/{message.id}/report/", {"reason": "really spam"}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["reason"] == "spam"
    assert Report.objects.count() == 1
    services.report_resolve(actor=moderator, report=Report.objects.get())
    third = client.post(f"/api/v1/messages/{message.id}/report/", {"reason": "back again"}, format="json")
    assert third.status_code == 201 and Report.objects.count() == 2


def test_other_reporters_each_get_their_own_report(alice, bob, owner, room):
    """De-duplication is per reporter: two users, two reports."""
    message = post(alice, room, "spam")
    assert bearer(bob).post(f"/api/v1/messages/{message.id}/report/", {"reason": "r"}, format="json").status_code == 201
    assert (
        bearer(owner).post(f"/api/v1/messages/{message.id}/report/", {"reason": "r"}, format="json").status_code == 201
    )


def test_ten_reports_an_hour_then_429(alice, bob, room, settings):
    """The 11th new report within an hour answers 429 with Retry-After; duplicates do not count."""
    assert settings.CHAT_REPORTS_PER_HOUR == 10
    settings.CHAT_MESSAGE_RATE = (100, 1.0)
    messages = [post(alice, room, f"m{n}") for n in range(11)]
    client = bearer(bob)
    for message in messages[:10]:
        assert client.post(f"/api/v1/messages/{message.id}/report/", {"reason": "r"}, format="json").status_code == 201
    assert client.post(f"/api/v1/messages/{messages[0].id}/report/", {"reason": "r"}, format="json").status_code == 200
    refused = client.post(f"/api/v1/messages/{messages[10].id}/report/", {"reason": "r"}, format="json")
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert 3500 <= int(refused["Retry-After"]) <= 3600
    assert Report.objects.count() == 10


def test_the_report_window_slides(alice, bob, room, settings):
    """Reports older than an hour no longer count."""
    settings.CHAT_MESSAGE_RATE = (100, 1.0)
    messages = [post(alice, room, f"m{n}") for n in range(11)]
    for message in messages[:10]:
        services.message_report(user=bob, message=message, reason="r")
    Report.objects.update(created=timezone.now() - timedelta(minutes=61))
    assert services.message_report(user=bob, message=messages[10], reason="r")[1] is True
    with pytest.raises(RateLimited):
        for message in messages[:10]:
            Report.objects.filter(message=message).update(resolved=timezone.now())
            services.message_report(user=bob, message=message, reason="r")
            Report.objects.filter(message=message, resolved__isnull=True).update(created=timezone.now())


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": ""},
        {"reason": "   "},
        {"reason": 5},
        {"reason": None},
        {"reason": ["spam"]},
        {"reason": "x" * 501},
        {"reason": "bad\x00byte"},
        {"reason": "\ud800"},
        [],
    ],
)
def test_report_bad_bodies_are_400(alice, bob, room, body):
    """Missing, empty, mistyped, oversize, NUL or surrogate reasons: 400, nothing stored."""
    message = post(alice, room, "x")
    response = bearer(bob).post(
        f"/api/v1/messages/{message.id}/report/", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert not Report.objects.exists()


def test_report_unknown_or_hidden_messages_are_404(alice, bob, room, room_factory, user_factory):
    """An unknown id, an id past bigint, a deleted message or one of a private room you are not in: 404."""
    secret_room = room_factory("secret", is_private=True, owner=user_factory())
    hidden = post(secret_room.owner, secret_room, "hidden")
    deleted = post(alice, room, "gone")
    services.message_delete(actor=alice, message=deleted)
    client = bearer(bob)
    for message_id in (999_999, 2**63, hidden.id, deleted.id):
        response = client.post(f"/api/v1/messages/{message_id}/report/", {"reason": "r"}, format="json")
        assert response.status_code == 404, message_id
    assert not Report.objects.exists()


# ----- moderators protected ----------------------------------------------------------------------


def test_moderators_cannot_site_ban_moderators(moderator, moderator_factory, user_factory):
    """403 from the API; a superuser may."""
    other = moderator_factory("othermod")
    response = bearer(moderator).post("/api/v1/bans/", {"username": "othermod"}, format="json")
    assert response.status_code == 403
    superuser = user_factory("root", is_superuser=True, is_staff=True)
    assert services.site_ban(actor=superuser, username=other.username)


def test_moderators_cannot_site_ban_superusers(moderator, user_factory):
    """Superusers cannot be banned site-wide by anyone."""
    user_factory("boss", is_superuser=True, is_staff=True)
    response = bearer(moderator).post("/api/v1/bans/", {"username": "boss"}, format="json")
    assert response.status_code == 400


@pytest.mark.parametrize("kind", ["bans", "mutes"])
def test_room_owners_cannot_ban_or_mute_site_moderators(owner, room, moderator, kind):
    """A room owner's ban or mute of a site moderator answers 403 and writes nothing."""
    services.room_join(user=moderator, room=room)
    response = bearer(owner).post(f"/api/v1/rooms/trust/{kind}/", {"username": "mod"}, format="json")
    assert response.status_code == 403
    from rooms.models import RoomBan, RoomMute

    assert not RoomBan.objects.exists() and not RoomMute.objects.exists()


# ----- what moderators see in the admin ----------------------------------------------------------


def test_admin_message_page_shows_every_version(mod_client, alice, room):
    """A moderator's message page lists the original, each edit and the current text, escaped."""
    message = post(alice, room, "<i>original</i> insult")
    services.message_edit(user=alice, message=message, body="softened")
    services.message_edit(user=alice, message=message, body="all nice")
    page = mod_client.get(reverse("admin:rooms_message_change", args=[message.pk])).content.decode()
    assert "edit history" in page.lower()
    for text in ("&lt;i&gt;original&lt;/i&gt; insult", "softened", "all nice"):
        assert text in page
    history = page[page.index('class="chat-revisions"') :]
    assert history.index("&lt;i&gt;original") < history.index("softened") < history.index("all nice")
    assert "<i>original</i>" not in page


def test_report_queue_shows_the_snapshot_beside_the_current_text(mod_client, alice, bob, room):
    """The queue and the report page show the text when reported and the text now."""
    message = post(alice, room, "the reported words")
    report, _ = services.message_report(user=bob, message=message, reason="rude")
    services.message_edit(user=alice, message=message, body="innocent now")
    queue = mod_client.get(reverse("admin:rooms_report_changelist")).content.decode()
    assert "text when reported" in queue.lower() and "the reported words" in queue and "innocent now" in queue
    page = mod_client.get(reverse("admin:rooms_report_change", args=[report.pk])).content.decode()
    assert "the reported words" in page and "innocent now" in page and "edited since the report" in page


def test_report_queue_names_the_system_as_reporter(mod_client, moderator, alice, room):
    """A flagged message's report reads "system (word filter)"; its page opens without error."""
    services.filter_term_add(actor=moderator, term="dodgy", action="flag")
    message = post(alice, room, "dodgy stuff")
    report = Report.objects.get(message=message)
    queue = mod_client.get(reverse("admin:rooms_report_changelist"))
    assert queue.status_code == 200 and "system (word filter)" in queue.content.decode()
    page = mod_client.get(reverse("admin:rooms_report_change", args=[report.pk]))
    assert page.status_code == 200 and "system (word filter)" in page.content.decode()
    message_page = mod_client.get(reverse("admin:rooms_message_change", args=[message.pk]))
    assert "system (word filter)" in message_page.content.decode()


def test_admin_header_counts_open_reports(mod_client, alice, bob, room, moderator):
    """Every admin page shows "Open reports: N"; the endpoint it polls answers the live count."""
    for n in range(2):
        services.message_report(user=bob, message=post(alice, room, f"r{n}"), reason="r")
    page = mod_client.get(reverse("admin:index")).content.decode()
    assert 'id="open-reports"' in page and '<span class="count">2</span>' in page
    assert "js/admin-open-reports.js" in page
    count_url = reverse("admin:rooms_report_open_count")
    assert mod_client.get(count_url).json() == {"open": 2}
    services.report_resolve(actor=moderator, report=Report.objects.first())
    assert mod_client.get(count_url).json() == {"open": 1}


def test_open_report_count_is_for_moderators_only(user_factory):
    """Staff without the report permission see no count and may not poll it."""
    client = Client()
    client.force_login(user_factory(is_staff=True))
    assert 'id="open-reports"' not in client.get(reverse("admin:index")).content.decode()
    assert client.get(reverse("admin:rooms_report_open_count")).status_code == 403
    anonymous = Client().get(reverse("admin:rooms_report_open_count"))
    assert anonymous.status_code == 302
