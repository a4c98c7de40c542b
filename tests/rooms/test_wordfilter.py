"""The word filter of CONTRACT §7: block and flag terms, normalised whole-word matching, caching,
the admin, and the `filtered` answers on REST and WebSocket."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from rooms import ratelimit, services, wordfilter
from rooms.exceptions import Filtered
from rooms.models import AuditLog, FilterTerm, Message, Report
from tests.support.ws import access_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def author(user_factory):
    return user_factory("writer")


@pytest.fixture
def room(room_factory, author):
    return room_factory("words", members=[author])


def fullwidth(text: str) -> str:
    """The full-width forms (U+FF01..) of ASCII letters, as an East Asian keyboard types them."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def circled(text: str) -> str:
    """Circled small letters (U+24D0..), a compatibility form NFKC maps back to a-z."""
    return "".join(chr(0x24D0 + ord(ch) - ord("a")) for ch in text)


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(user)}")
    return client


def block(moderator, term, room=None):
    return services.filter_term_add(actor=moderator, term=term, action="block", room=room)


def flag(moderator, term, room=None):
    return services.filter_term_add(actor=moderator, term=term, action="flag", room=room)


# ----- matching ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "you are a badword",
        "BADWORD!",
        "BaDwOrD, really",
        fullwidth("badword"),
        fullwidth("BadWord") + "!",
        circled("badword"),
        "bad\u200bword",  # a zero-width space inside
        "bad\u00adword",  # a soft hyphen inside
        "<b>bad</b>word",  # markup splitting the word
        "&#98;adword",  # an entity spelling a letter
        "(badword)",
    ],
)
def test_block_terms_match_normalised_variants(moderator, text):
    """Case, width, compatibility forms, invisible characters and markup do not hide a term."""
    block(moderator, "badword")
    with pytest.raises(Filtered):
        wordfilter.screen(text=text, room_id=None)


@pytest.mark.parametrize("text", ["badwords", "notbadword", "bad word", "bad_word_x", "badword2", "xbadwordx"])
def test_block_terms_match_whole_words_only(moderator, text):
    """A term inside a longer word (or split by a space) is no match."""
    block(moderator, "badword")
    assert wordfilter.screen(text=text, room_id=None).flagged == ()


def test_case_folding_covers_sharp_s_and_ligatures(moderator):
    """Case folding, not lowercasing: STRASSE matches "strasse" spelt with a sharp s, the fi ligature matches "fi"."""
    block(moderator, "stra\u00dfe")
    block(moderator, "fine")
    for text in ("STRASSE", "Strasse", "\ufb01ne", "\ufb01NE"):
        with pytest.raises(Filtered):
            wordfilter.screen(text=text, room_id=None)


def test_phrases_match_across_any_whitespace(moderator):
    """A term of several words matches with any run of whitespace between them."""
    block(moderator, "very bad")
    with pytest.raises(Filtered):
        wordfilter.screen(text="this is VERY \n  bad", room_id=None)
    assert wordfilter.screen(text="very badly", room_id=None).flagged == ()


def test_room_terms_apply_only_in_their_room(moderator, room, room_factory):
    """A term with a room blocks there and nowhere else."""
    block(moderator, "lobbyonly", room=room)
    other = room_factory("elsewhere")
    with pytest.raises(Filtered):
        wordfilter.screen(text="lobbyonly", room_id=room.id)
    assert wordfilter.screen(text="lobbyonly", room_id=other.id).flagged == ()


def test_flag_terms_are_reported_not_refused(moderator):
    """Flag terms come back in the verdict, each once, as moderators wrote them."""
    flag(moderator, "Suspicious")
    flag(moderator, "shady deal")
    verdict = wordfilter.screen(text="suspicious SUSPICIOUS shady   deal", room_id=None)
    assert verdict.flagged == ("Suspicious", "shady deal")


def test_terms_need_a_letter_or_digit(moderator):
    """A term of punctuation or spaces only is refused (it would match everywhere)."""
    from rooms.exceptions import BadRequest

    for term in ("", "   ", "!!!", "\u200b"):
        with pytest.raises(BadRequest):
            block(moderator, term)


def test_the_same_term_twice_in_one_scope_is_a_conflict(moderator, room):
    """Terms are unique per scope whatever their case or width; a room may repeat a global term."""
    from rooms.exceptions import Conflict

    block(moderator, "dup")
    with pytest.raises(Conflict):
        block(moderator, fullwidth("DUP"))
    assert flag(moderator, "dup", room=room).room == room


def test_only_moderators_change_the_list(author):
    """Plain users cannot add terms."""
    from rooms.exceptions import Forbidden

    with pytest.raises(Forbidden):
        block(author, "nope")


# ----- caching -----------------------------------------------------------------------------------


def test_a_change_elsewhere_is_seen_after_the_check_interval(moderator, settings):
    """Another process's change (a new version in the shared cache) is picked up within
    CHAT_WORDFILTER_CHECK_SECONDS; before that the compiled list is reused without a cache read."""
    settings.CHAT_WORDFILTER_CHECK_SECONDS = 3600
    assert wordfilter.screen(text="later", room_id=None).flagged == ()
    # Another process adds the term: a row and a new version, nothing in this process's memory.
    FilterTerm.objects.create(term="later", normalized="later", action="block")
    cache.set(wordfilter.VERSION_KEY, "from-another-process")
    assert wordfilter.screen(text="later", room_id=None).flagged == ()  # still within the interval
    settings.CHAT_WORDFILTER_CHECK_SECONDS = 0
    with pytest.raises(Filtered):
        wordfilter.screen(text="later", room_id=None)


def test_a_change_here_applies_at_once_and_publishes_a_version(moderator, django_capture_on_commit_callbacks):
    """The changing process recompiles at once; on commit a new version reaches the shared cache."""
    before = cache.get(wordfilter.VERSION_KEY)
    with django_capture_on_commit_callbacks(execute=True):
        block(moderator, "instant")
    with pytest.raises(Filtered):
        wordfilter.screen(text="instant", room_id=None)
    assert cache.get(wordfilter.VERSION_KEY) not in (None, before)


# ----- the admin ---------------------------------------------------------------------------------


def test_moderators_keep_terms_in_the_admin_with_audit(moderator, room):
    """Add, change and delete a term in the admin: each is one audit row and takes effect."""
    client = Client()
    client.force_login(moderator)
    assert client.get("/admin/rooms/filterterm/").status_code == 200
    response = client.post("/admin/rooms/filterterm/add/", {"term": "Heck", "action": "block", "room": ""})
    assert response.status_code == 302, response.content[:1500]
    term = FilterTerm.objects.get()
    assert (term.term, term.normalized, term.room, term.created_by) == ("Heck", "heck", None, moderator)
    with pytest.raises(Filtered):
        wordfilter.screen(text="HECK", room_id=room.id)
    response = client.post(
        f"/admin/rooms/filterterm/{term.pk}/change/", {"term": "Heck", "action": "flag", "room": room.pk}
    )
    assert response.status_code == 302, response.content[:1500]
    assert wordfilter.screen(text="heck", room_id=room.id).flagged == ("Heck",)
    response = client.post(f"/admin/rooms/filterterm/{term.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not FilterTerm.objects.exists()
    assert wordfilter.screen(text="heck", room_id=room.id).flagged == ()
    actions = list(AuditLog.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["filter_term_add", "filter_term_change", "filter_term_delete"]
    change = AuditLog.objects.get(action="filter_term_change")
    assert change.detail["before"]["term_action"] == "block" and change.detail["term_action"] == "flag"


def test_admin_refuses_duplicates_and_empty_terms(moderator):
    """The add form shows an error for a duplicate (any case or width) or a term without letters."""
    block(moderator, "once")
    client = Client()
    client.force_login(moderator)
    for term in ("ONCE", "...", "nul\x00byte"):
        response = client.post("/admin/rooms/filterterm/add/", {"term": term, "action": "block", "room": ""})
        assert response.status_code == 200 and b"errorlist" in response.content
    assert FilterTerm.objects.count() == 1


def test_plain_staff_cannot_see_the_list(user_factory):
    """Staff outside Moderators get no access to the filter terms."""
    client = Client()
    client.force_login(user_factory(is_staff=True))
    assert client.get("/admin/rooms/filterterm/").status_code == 403


# ----- posting and editing -----------------------------------------------------------------------


def test_rest_post_with_a_block_term_is_400_filtered_and_spends_nothing(moderator, author, room, settings):
    """400 {"code":"filtered"}, nothing stored, no rate-limit token spent."""
    settings.CHAT_MESSAGE_RATE = (1, 60.0)
    ratelimit.reset_local_buckets()
    block(moderator, "forbiddenword")
    client = bearer(author)
    for body in ("a FORBIDDENWORD here", fullwidth("forbiddenword")):
        response = client.post("/api/v1/rooms/words/messages/", {"body": body, "client_id": "c1"}, format="json")
        assert response.status_code == 400
        assert response.json()["code"] == "filtered"
    assert not Message.objects.exists()
    # The one token of the bucket is still there: a clean message goes through.
    assert (
        client.post("/api/v1/rooms/words/messages/", {"body": "clean", "client_id": "c1"}, format="json").status_code
        == 201
    )


def test_rest_edit_with_a_block_term_is_400_filtered(moderator, author, room):
    """An edit into a blocked word is refused; the message and its history are unchanged."""
    message, _ = services.message_post(user=author, room=room, body="harmless")
    block(moderator, "forbiddenword")
    response = bearer(author).patch(f"/api/v1/messages/{message.id}/", {"body": "forbiddenword"}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "filtered"
    message.refresh_from_db()
    assert message.body_raw == "harmless" and message.edited is None and not message.revisions.exists()


def test_a_flag_term_stores_the_message_and_opens_a_system_report(moderator, author, room):
    """The message goes through; a report by the system (no reporter) holds the text and the term."""
    flag(moderator, "sketchy")
    response = bearer(author).post("/api/v1/rooms/words/messages/", {"body": "a Sketchy offer"}, format="json")
    assert response.status_code == 201
    report = Report.objects.get()
    assert report.reporter is None and report.is_by_system
    assert report.message_id == response.json()["id"]
    assert report.snapshot == "a Sketchy offer" and "sketchy" in report.reason


def test_a_flagged_edit_opens_one_system_report(moderator, author, room):
    """Editing into a flag term reports the message once, however many flagged edits follow."""
    flag(moderator, "sketchy")
    message, _ = services.message_post(user=author, room=room, body="fine")
    services.message_edit(user=author, message=message, body="sketchy now")
    services.message_edit(user=author, message=message, body="still sketchy")
    report = Report.objects.get()
    assert report.reporter is None and report.snapshot == "sketchy now"


async def test_websocket_post_with_a_block_term_answers_filtered(moderator, author, room, settings):
    """Over the socket: an `error` frame `filtered` carrying the client_id; the socket stays open."""
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from chatsite.asgi import application

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REDIS_URL = ""
    await sync_to_async(block)(moderator, "forbiddenword")
    token = await sync_to_async(access_token)(author)
    ws = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"authorization", f"Bearer {token}".encode())])
    connected, _ = await ws.connect()
    assert connected
    await ws.send_json_to({"type": "join", "room": "words"})
    assert (await ws.receive_json_from(timeout=3))["type"] == "joined"
    await ws.send_json_to({"type": "message", "room": "words", "body": fullwidth("Forbiddenword!"), "client_id": "k9"})
    frame = await ws.receive_json_from(timeout=3)
    while frame["type"] == "presence":
        frame = await ws.receive_json_from(timeout=3)
    assert (frame["type"], frame["code"], frame["client_id"]) == ("error", "filtered", "k9")
    await ws.send_json_to({"type": "ping"})
    frame = await ws.receive_json_from(timeout=3)
    assert frame["type"] == "pong"
    assert not await sync_to_async(Message.objects.exists)()
    await ws.disconnect()


test_websocket_post_with_a_block_term_answers_filtered = pytest.mark.django_db(transaction=True)(
    test_websocket_post_with_a_block_term_answers_filtered
)
