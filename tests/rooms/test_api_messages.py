"""REST message endpoints (CONTRACT §2): history pages, posting, idempotent resends, edit, delete, report."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from rooms import services
from rooms.models import Message, Report

pytestmark = pytest.mark.django_db

MESSAGE_KEYS = {
    "id",
    "room",
    "author",
    "body",
    "created",
    "edited",
    "client_id",
    "reply_to",
    "mentions",
    "reactions",
    "version",
}


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def post_many(room, user, count: int) -> list[int]:
    with override_settings(CHAT_MESSAGE_RATE=(10_000, 1.0)):
        return [services.message_post(user=user, room=room, body=f"m{i}")[0].id for i in range(count)]


def ids(response) -> list[int]:
    return [message["id"] for message in response.json()["results"]]


@pytest.fixture
def member(user_factory):
    return user_factory("member")


@pytest.fixture
def room(room_factory, member):
    return room_factory("chat", members=[member])


# ----- history -----------------------------------------------------------------------------------


def test_history_newest_page_ascending(member, room):
    """No cursor: the newest `limit` messages, ascending by id, has_more when older exist."""
    posted = post_many(room, member, 5)
    response = bearer(member).get("/api/v1/rooms/chat/messages/?limit=3")
    assert response.status_code == 200
    assert ids(response) == posted[2:]
    assert response.json()["has_more"] is True


def test_history_message_shape(member, room):
    """Each message is {id, room, author {id, username}, body, created, edited, client_id} plus §5/§6's
    reply_to, mentions, reactions and version."""
    _message, _ = services.message_post(user=member, room=room, body="hello", client_id="c1")
    result = bearer(member).get("/api/v1/rooms/chat/messages/").json()["results"][0]
    assert set(result) == MESSAGE_KEYS
    assert result["room"] == "chat"
    assert result["author"] == {"id": member.id, "username": "member"}
    assert result["body"] == "hello"
    assert result["edited"] is None
    assert result["client_id"] == "c1"
    assert result["created"].endswith("Z")


def test_history_default_limit_50(member, room):
    """Without limit a page holds 50."""
    post_many(room, member, 55)
    response = bearer(member).get("/api/v1/rooms/chat/messages/")
    assert len(ids(response)) == 50
    assert response.json()["has_more"] is True


def test_history_limit_100(member, room):
    """limit=100 is the maximum accepted."""
    post_many(room, member, 3)
    assert bearer(member).get("/api/v1/rooms/chat/messages/?limit=100").status_code == 200


def test_history_exact_fit_has_no_more(member, room):
    """A page that holds everything says has_more false."""
    posted = post_many(room, member, 3)
    response = bearer(member).get("/api/v1/rooms/chat/messages/?limit=3")
    assert ids(response) == posted
    assert response.json()["has_more"] is False


def test_history_empty_room(member, room):
    """An empty room answers an empty page."""
    assert bearer(member).get("/api/v1/rooms/chat/messages/").json() == {"results": [], "has_more": False}


def test_history_before(member, room):
    """before=N: the newest `limit` with id < N, ascending."""
    posted = post_many(room, member, 6)
    response = bearer(member).get(f"/api/v1/rooms/chat/messages/?before={posted[4]}&limit=2")
    assert ids(response) == posted[2:4]
    assert response.json()["has_more"] is True


def test_history_before_reaches_start(member, room):
    """Walking back with before reaches the first message and has_more false."""
    posted = post_many(room, member, 5)
    client = bearer(member)
    seen, before, has_more = [], None, True
    while has_more:
        url = "/api/v1/rooms/chat/messages/?limit=2" + (f"&before={before}" if before else "")
        page = client.get(url).json()
        seen = [m["id"] for m in page["results"]] + seen
        before, has_more = page["results"][0]["id"], page["has_more"]
    assert seen == posted


def test_history_after(member, room):
    """after=N: the oldest `limit` with id > N, ascending; has_more when newer exist."""
    posted = post_many(room, member, 6)
    response = bearer(member).get(f"/api/v1/rooms/chat/messages/?after={posted[1]}&limit=2")
    assert ids(response) == posted[2:4]
    assert response.json()["has_more"] is True


def test_history_after_last_is_empty(member, room):
    """after the newest id: nothing, has_more false."""
    posted = post_many(room, member, 2)
    response = bearer(member).get(f"/api/v1/rooms/chat/messages/?after={posted[-1]}")
    assert response.json() == {"results": [], "has_more": False}


def test_history_after_zero_is_from_start(member, room):
    """after=0 pages from the very first message."""
    posted = post_many(room, member, 4)
    assert ids(bearer(member).get("/api/v1/rooms/chat/messages/?after=0&limit=2")) == posted[:2]


def test_history_hides_deleted(member, room):
    """Deleted messages disappear from history."""
    posted = post_many(room, member, 3)
    services.message_delete(actor=member, message=Message.objects.get(pk=posted[1]))
    assert ids(bearer(member).get("/api/v1/rooms/chat/messages/")) == [posted[0], posted[2]]


def test_history_only_this_room(member, room, room_factory):
    """History holds only the room's own messages."""
    other = room_factory("other", members=[member])
    post_many(other, member, 2)
    mine = post_many(room, member, 2)
    assert ids(bearer(member).get("/api/v1/rooms/chat/messages/")) == mine


@pytest.mark.parametrize(
    "query",
    [
        "limit=101",
        "limit=0",
        "limit=-5",
        "limit=abc",
        "limit=1.5",
        "before=abc",
        "before=0",
        "before=-1",
        "after=-1",
        "after=1e3",
        "after=99999999999999999999999",
        "before=9223372036854775808",
        "before=1&after=1",
        "after=%00",
        "limit=" + "9" * 2000,
    ],
)
def test_history_bad_query_400(member, room, query):
    """Out-of-range or non-integer before/after/limit answer 400."""
    response = bearer(member).get(f"/api/v1/rooms/chat/messages/?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


def test_history_largest_id_ok(member, room):
    """The largest bigint is a valid cursor."""
    assert bearer(member).get("/api/v1/rooms/chat/messages/?before=9223372036854775807").status_code == 200


def test_history_public_room_non_member(user_factory, member, room):
    """Anyone authenticated reads a public room's history."""
    post_many(room, member, 1)
    assert len(ids(bearer(user_factory()).get("/api/v1/rooms/chat/messages/"))) == 1


def test_history_private_room_non_member_404(user_factory, room_factory):
    """A private room's history answers 404 to outsiders."""
    room_factory("closed", is_private=True)
    assert bearer(user_factory()).get("/api/v1/rooms/closed/messages/").status_code == 404


def test_history_private_room_bad_query_still_404(user_factory, room_factory):
    """A bad query on a hidden private room answers 404, not 400: existence is not revealed."""
    room_factory("closed", is_private=True)
    assert bearer(user_factory()).get("/api/v1/rooms/closed/messages/?limit=abc").status_code == 404


def test_history_private_room_member(user_factory, room_factory):
    """A member reads a private room's history."""
    member = user_factory()
    room = room_factory("closed", is_private=True, members=[member])
    post_many(room, member, 2)
    assert len(ids(bearer(member).get("/api/v1/rooms/closed/messages/"))) == 2


def test_history_banned_403(user_factory, room_factory):
    """A user banned from the room cannot read it."""
    owner, banned = user_factory(), user_factory()
    room = room_factory("chat2", owner=owner, members=[banned])
    services.room_ban(actor=owner, room=room, username=banned.username)
    assert bearer(banned).get("/api/v1/rooms/chat2/messages/").status_code == 403


def test_history_missing_room_404(member):
    """An unknown room answers 404."""
    assert bearer(member).get("/api/v1/rooms/nope/messages/").status_code == 404


def test_history_anonymous_401(room):
    """History needs credentials."""
    assert APIClient().get("/api/v1/rooms/chat/messages/").status_code == 401


# ----- post ------------------------------------------------------------------------------------


def test_post_message(member, room):
    """A member posts: 201 message, stored sanitised."""
    response = bearer(member).post("/api/v1/rooms/chat/messages/", {"body": "hi <b>there</b>"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == MESSAGE_KEYS
    assert body["body"] == "hi <b>there</b>"
    assert body["room"] == "chat"
    assert Message.objects.get(pk=body["id"]).body_raw == "hi <b>there</b>"


def test_post_sanitises(member, room):
    """Executable markup never comes back."""
    body = (
        bearer(member).post("/api/v1/rooms/chat/messages/", {"body": "<script>alert(1)</script>"}, format="json").json()
    )
    assert "<script" not in body["body"]


def test_post_ids_increase(member, room):
    """Each accepted message gets a larger id."""
    client = bearer(member)
    first = client.post("/api/v1/rooms/chat/messages/", {"body": "1"}, format="json").json()["id"]
    second = client.post("/api/v1/rooms/chat/messages/", {"body": "2"}, format="json").json()["id"]
    assert second > first > 0


def test_post_client_id_resend_answers_stored(member, room):
    """A resend with the same client_id answers 200 with the stored message, and stores nothing new."""
    client = bearer(member)
    first = client.post("/api/v1/rooms/chat/messages/", {"body": "once", "client_id": "abc"}, format="json")
    again = client.post("/api/v1/rooms/chat/messages/", {"body": "once", "client_id": "abc"}, format="json")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert Message.objects.count() == 1


def test_post_client_id_is_per_user(user_factory, member, room):
    """Another user's same client_id is a different message."""
    other = user_factory()
    services.room_join(user=other, room=room)
    bearer(member).post("/api/v1/rooms/chat/messages/", {"body": "a", "client_id": "same"}, format="json")
    response = bearer(other).post("/api/v1/rooms/chat/messages/", {"body": "b", "client_id": "same"}, format="json")
    assert response.status_code == 201
    assert Message.objects.count() == 2


@override_settings(CHAT_MESSAGE_RATE=(2, 60.0))
def test_post_resend_not_counted(member, room):
    """Resends do not spend rate-limit tokens."""
    client = bearer(member)
    client.post("/api/v1/rooms/chat/messages/", {"body": "a", "client_id": "k"}, format="json")
    for _ in range(3):
        assert (
            client.post("/api/v1/rooms/chat/messages/", {"body": "a", "client_id": "k"}, format="json").status_code
            == 200
        )
    assert client.post("/api/v1/rooms/chat/messages/", {"body": "b"}, format="json").status_code == 201


@override_settings(CHAT_MESSAGE_RATE=(2, 60.0))
def test_post_rate_limited_429(member, room):
    """Beyond RATE_LIMIT_MESSAGES, posting answers 429 with Retry-After."""
    client = bearer(member)
    for i in range(2):
        assert client.post("/api/v1/rooms/chat/messages/", {"body": str(i)}, format="json").status_code == 201
    response = client.post("/api/v1/rooms/chat/messages/", {"body": "3"}, format="json")
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
    assert Message.objects.count() == 2


def test_post_slow_mode_429(user_factory, room_factory):
    """Slow mode refuses a second message within the interval with slow_mode 429."""
    owner, member = user_factory(), user_factory()
    services.room_update(actor=owner, room=room_factory("slow", owner=owner, members=[member]), slow_mode_seconds=60)
    client = bearer(member)
    assert client.post("/api/v1/rooms/slow/messages/", {"body": "1"}, format="json").status_code == 201
    response = client.post("/api/v1/rooms/slow/messages/", {"body": "2"}, format="json")
    assert response.status_code == 429
    assert response.json()["code"] == "slow_mode"
    assert "Retry-After" in response


def test_post_too_large_413(member, room):
    """A body over 4,000 characters answers 413 too_large and stores nothing."""
    response = bearer(member).post("/api/v1/rooms/chat/messages/", {"body": "x" * 4001}, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert not Message.objects.exists()


def test_post_exactly_4000_ok(member, room):
    """A body of exactly 4,000 characters is accepted."""
    assert bearer(member).post("/api/v1/rooms/chat/messages/", {"body": "x" * 4000}, format="json").status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"body": ""},
        {"body": "   "},
        {"body": None},
        {"body": 42},
        {"body": ["x"]},
        {"body": {"x": 1}},
        {"body": "ok", "client_id": 5},
        {"body": "ok", "client_id": "c" * 65},
        {"body": "ok", "client_id": ""},
        {"body": "a\x00b"},
        ["body"],
        "body",
    ],
)
def test_post_bad_bodies_400(member, room, body):
    """Missing, empty or mistyped fields answer 400 and store nothing."""
    response = bearer(member).post("/api/v1/rooms/chat/messages/", body, format="json")
    assert response.status_code == 400
    assert not Message.objects.exists()


def test_post_non_member_public_403(user_factory, room):
    """A non-member of a public room must join first: 403."""
    assert bearer(user_factory()).post("/api/v1/rooms/chat/messages/", {"body": "x"}, format="json").status_code == 403
    assert not Message.objects.exists()


def test_post_private_non_member_404(user_factory, room_factory):
    """A non-member of a private room gets 404."""
    room_factory("closed", is_private=True)
    assert (
        bearer(user_factory()).post("/api/v1/rooms/closed/messages/", {"body": "x"}, format="json").status_code == 404
    )


def test_post_muted_403(user_factory, room_factory):
    """A muted member gets 403 and may still read."""
    owner, muted = user_factory(), user_factory()
    room = room_factory("m", owner=owner, members=[muted])
    services.room_mute(actor=owner, room=room, username=muted.username)
    client = bearer(muted)
    assert client.post("/api/v1/rooms/m/messages/", {"body": "x"}, format="json").status_code == 403
    assert client.get("/api/v1/rooms/m/messages/").status_code == 200
    assert not Message.objects.exists()


def test_post_banned_403(user_factory, room_factory):
    """A banned member gets 403."""
    owner, banned = user_factory(), user_factory()
    room = room_factory("b", owner=owner, members=[banned])
    services.room_ban(actor=owner, room=room, username=banned.username)
    assert bearer(banned).post("/api/v1/rooms/b/messages/", {"body": "x"}, format="json").status_code == 403


def test_post_anonymous_401(room):
    """Posting needs credentials."""
    assert APIClient().post("/api/v1/rooms/chat/messages/", {"body": "x"}, format="json").status_code == 401


def test_post_missing_room_404(member):
    """Posting to an unknown room answers 404."""
    assert bearer(member).post("/api/v1/rooms/nope/messages/", {"body": "x"}, format="json").status_code == 404


def test_post_form_encoded(member, room):
    """A form-encoded body works like JSON."""
    assert (
        bearer(member)
        .post("/api/v1/rooms/chat/messages/", "body=form", content_type="application/x-www-form-urlencoded")
        .status_code
        == 201
    )


def test_post_unsupported_media_type_415(member, room):
    """A body in an unsupported media type answers 415 JSON."""
    response = bearer(member).post("/api/v1/rooms/chat/messages/", "<body/>", content_type="application/xml")
    assert response.status_code == 415
    assert not Message.objects.exists()


# ----- edit --------------------------------------------------------------------------------------


def test_edit_by_author(member, room):
    """The author edits: 200 message with `edited` set and a sanitised body."""
    message, _ = services.message_post(user=member, room=room, body="old")
    response = bearer(member).patch(f"/api/v1/messages/{message.id}/", {"body": "new <i>x</i>"}, format="json")
    assert response.status_code == 200
    assert response.json()["body"] == "new <i>x</i>"
    assert response.json()["edited"] is not None
    message.refresh_from_db()
    assert message.body_raw == "new <i>x</i>"


def test_edit_by_other_member_403(user_factory, member, room):
    """Someone else's message cannot be edited: 403."""
    message, _ = services.message_post(user=member, room=room, body="mine")
    other = user_factory()
    services.room_join(user=other, room=room)
    assert bearer(other).patch(f"/api/v1/messages/{message.id}/", {"body": "x"}, format="json").status_code == 403
    message.refresh_from_db()
    assert message.body == "mine"


def test_edit_by_moderator_403(moderator_factory, member, room):
    """Moderators delete but do not edit others' messages."""
    message, _ = services.message_post(user=member, room=room, body="mine")
    assert (
        bearer(moderator_factory()).patch(f"/api/v1/messages/{message.id}/", {"body": "x"}, format="json").status_code
        == 403
    )


def test_edit_private_room_outsider_404(user_factory, room_factory):
    """A message in a private room the user is not in answers 404."""
    author = user_factory()
    room = room_factory("closed", is_private=True, members=[author])
    message, _ = services.message_post(user=author, room=room, body="secret")
    assert (
        bearer(user_factory()).patch(f"/api/v1/messages/{message.id}/", {"body": "x"}, format="json").status_code == 404
    )


def test_edit_deleted_404(member, room):
    """A deleted message cannot be edited."""
    message, _ = services.message_post(user=member, room=room, body="x")
    services.message_delete(actor=member, message=message)
    assert bearer(member).patch(f"/api/v1/messages/{message.id}/", {"body": "y"}, format="json").status_code == 404


@pytest.mark.parametrize("body", [{}, {"body": ""}, {"body": 1}, {"body": None}, ["x"]])
def test_edit_bad_bodies_400(member, room, body):
    """Bad edit bodies answer 400 and change nothing."""
    message, _ = services.message_post(user=member, room=room, body="same")
    assert bearer(member).patch(f"/api/v1/messages/{message.id}/", body, format="json").status_code == 400
    message.refresh_from_db()
    assert (message.body, message.edited) == ("same", None)


def test_edit_too_large_413(member, room):
    """An edit over 4,000 characters answers 413."""
    message, _ = services.message_post(user=member, room=room, body="same")
    assert (
        bearer(member).patch(f"/api/v1/messages/{message.id}/", {"body": "x" * 4001}, format="json").status_code == 413
    )


@pytest.mark.parametrize("message_id", ["999999", "9223372036854775808", "99999999999999999999999999", "0"])
def test_edit_unknown_ids_404(member, message_id):
    """Unknown ids, including ones past bigint, answer 404."""
    assert bearer(member).patch(f"/api/v1/messages/{message_id}/", {"body": "x"}, format="json").status_code == 404


def test_edit_anonymous_401(member, room):
    """Editing needs credentials."""
    message, _ = services.message_post(user=member, room=room, body="x")
    assert APIClient().patch(f"/api/v1/messages/{message.id}/", {"body": "y"}, format="json").status_code == 401


# ----- delete ------------------------------------------------------------------------------------


def test_delete_by_author(member, room):
    """The author deletes: 204 and the message leaves history."""
    message, _ = services.message_post(user=member, room=room, body="x")
    client = bearer(member)
    assert client.delete(f"/api/v1/messages/{message.id}/").status_code == 204
    assert client.get("/api/v1/rooms/chat/messages/").json()["results"] == []


def test_delete_by_moderator(moderator_factory, member, room):
    """A moderator deletes anyone's message, audited."""
    message, _ = services.message_post(user=member, room=room, body="x")
    assert bearer(moderator_factory()).delete(f"/api/v1/messages/{message.id}/").status_code == 204
    message.refresh_from_db()
    assert message.deleted is not None
    assert services.AuditLog.objects.filter(action="message_delete", message_id=message.id).exists()


def test_delete_by_room_owner(user_factory, room_factory):
    """The room's owner deletes messages in it."""
    owner, author = user_factory(), user_factory()
    room = room_factory("own", owner=owner, members=[author])
    message, _ = services.message_post(user=author, room=room, body="x")
    assert bearer(owner).delete(f"/api/v1/messages/{message.id}/").status_code == 204


def test_delete_by_other_member_403(user_factory, member, room):
    """Another member cannot delete: 403, message kept."""
    message, _ = services.message_post(user=member, room=room, body="x")
    other = user_factory()
    services.room_join(user=other, room=room)
    assert bearer(other).delete(f"/api/v1/messages/{message.id}/").status_code == 403
    message.refresh_from_db()
    assert message.deleted is None


def test_delete_twice_404(member, room):
    """A deleted message answers 404 the second time."""
    message, _ = services.message_post(user=member, room=room, body="x")
    client = bearer(member)
    client.delete(f"/api/v1/messages/{message.id}/")
    assert client.delete(f"/api/v1/messages/{message.id}/").status_code == 404


def test_delete_unknown_404(member):
    """An unknown id answers 404."""
    assert bearer(member).delete("/api/v1/messages/12345678/").status_code == 404


def test_delete_anonymous_401(member, room):
    """Deleting needs credentials."""
    message, _ = services.message_post(user=member, room=room, body="x")
    assert APIClient().delete(f"/api/v1/messages/{message.id}/").status_code == 401


# ----- report ------------------------------------------------------------------------------------


def test_report_by_member(user_factory, member, room):
    """A member reports a message: 201, stored for moderators."""
    message, _ = services.message_post(user=member, room=room, body="rude")
    reporter = user_factory()
    services.room_join(user=reporter, room=room)
    response = bearer(reporter).post(f"/api/v1/messages/{message.id}/report/", {"reason": "spam"}, format="json")
    assert response.status_code == 201
    assert response.json()["message"] == message.id
    assert Report.objects.get().reporter == reporter


def test_report_by_non_member_403(user_factory, member, room):
    """A non-member of the (public) room cannot report: 403."""
    message, _ = services.message_post(user=member, room=room, body="x")
    assert (
        bearer(user_factory())
        .post(f"/api/v1/messages/{message.id}/report/", {"reason": "r"}, format="json")
        .status_code
        == 403
    )
    assert not Report.objects.exists()


def test_report_private_outsider_404(user_factory, room_factory):
    """A message in a private room answers 404 to outsiders."""
    author = user_factory()
    room = room_factory("closed", is_private=True, members=[author])
    message, _ = services.message_post(user=author, room=room, body="x")
    assert (
        bearer(user_factory())
        .post(f"/api/v1/messages/{message.id}/report/", {"reason": "r"}, format="json")
        .status_code
        == 404
    )


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "  "}, {"reason": 3}, {"reason": "r" * 501}, ["r"]])
def test_report_bad_bodies_400(member, room, body):
    """A missing, blank, mistyped or overlong reason answers 400."""
    message, _ = services.message_post(user=member, room=room, body="x")
    assert bearer(member).post(f"/api/v1/messages/{message.id}/report/", body, format="json").status_code == 400
    assert not Report.objects.exists()


def test_report_unknown_404(member):
    """Reporting an unknown message answers 404."""
    assert bearer(member).post("/api/v1/messages/4242/report/", {"reason": "r"}, format="json").status_code == 404


def test_report_anonymous_401(member, room):
    """Reporting needs credentials."""
    message, _ = services.message_post(user=member, room=room, body="x")
    assert APIClient().post(f"/api/v1/messages/{message.id}/report/", {"reason": "r"}, format="json").status_code == 401


# ----- pagination against a reference model -----------------------------------------------------


def reference_page(live: list[int], *, before=None, after=None, limit=50) -> tuple[list[int], bool]:
    """CONTRACT §2's paging rules, written directly over a sorted list of live ids."""
    if after is not None:
        newer = [i for i in live if i > after]
        return newer[:limit], len(newer) > limit
    older = [i for i in live if before is None or i < before]
    return older[-limit:], len(older) > limit


def test_history_matches_reference_model(member, room):
    """For many before/after/limit choices (deleted rows included), pages match the contract's rules."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    posted = post_many(room, member, 25)
    for message_id in posted[3::4]:
        services.message_delete(actor=member, message=Message.objects.get(pk=message_id))
    live = [i for i in posted if i not in posted[3::4]]
    client = bearer(member)
    cursor = st.integers(min_value=posted[0] - 2, max_value=posted[-1] + 2)

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(direction=st.sampled_from(["none", "before", "after"]), position=cursor, limit=st.integers(1, 30))
    def check(direction, position, limit):
        kwargs = {} if direction == "none" else {direction: max(position, 1 if direction == "before" else 0)}
        query = "&".join(f"{key}={value}" for key, value in {**kwargs, "limit": limit}.items())
        response = client.get(f"/api/v1/rooms/chat/messages/?{query}")
        assert response.status_code == 200
        expected_ids, expected_more = reference_page(live, limit=limit, **kwargs)
        assert (ids(response), response.json()["has_more"]) == (expected_ids, expected_more), query

    check()
