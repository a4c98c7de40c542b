"""Search (CONTRACT §5): every word of q, newest first, 20 a page with `before`, only rooms the user
may read (access rules in the query: other users' private rooms and DMs never show, not even in
has_more), never deleted messages, any user text answered without a crash."""

from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from rooms import conversations, services
from rooms.exceptions import BadRequest, NotFound
from rooms.models import Message, Room, RoomBan

pytestmark = pytest.mark.django_db

is_postgresql = pytest.mark.postgres


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture(autouse=True)
def roomy_rates(settings):
    settings.CHAT_MESSAGE_RATE = (10_000, 1.0)


def post(room, user, body: str) -> Message:
    return services.message_post(user=user, room=room, body=body)[0]


def dm_between(first, second) -> Room:
    """The DM of two users (rooms.conversations.dm_open): private, kind dm, the two its only members."""
    return conversations.dm_open(user=first, username=second.username)[0]


def search(user, **params):
    return bearer(user).get("/api/v1/search/", params)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [message["id"] for message in response.json()["results"]]


@pytest.fixture
def world(lobby, alice, bob, user_factory, room_factory):
    """lobby (public: alice, bob); alice's private room; a DM of alice and carol; a public room
    bob is banned from; each with a message containing 'secret'."""
    carol = user_factory("carol")
    private = room_factory("alices-den", owner=alice, is_private=True)
    dm = dm_between(alice, carol)
    banned_room = room_factory("banned-room", owner=alice, members=[bob])
    RoomBan.objects.create(room=banned_room, user=bob)
    return {
        "carol": carol,
        "lobby": post(lobby, alice, "the secret plan in the lobby"),
        "private": post(private, alice, "secret of the den"),
        "dm": post(dm, carol, "secret pineapple for us"),
        "banned": post(banned_room, alice, "secret where bob is banned"),
    }


def test_results_only_from_rooms_the_user_may_read(world, alice, bob):
    """bob finds the lobby's message only: not alice's private room, her DM, or a room he is banned from."""
    response = search(bob, q="secret")
    assert ids(response) == [world["lobby"].id]
    assert response.json()["has_more"] is False
    assert set(ids(search(alice, q="secret"))) == {m.id for k, m in world.items() if k != "carol"}
    # carol is in no room but her DM; public rooms are readable without joining.
    assert ids(search(world["carol"], q="secret")) == [world["banned"].id, world["dm"].id, world["lobby"].id]


def test_dm_partner_finds_the_dm_and_others_do_not(world, bob):
    """The DM's two users find its messages; a third user never does."""
    carol = world["carol"]
    assert ids(search(carol, q="pineapple")) == [world["dm"].id]
    assert ids(search(bob, q="pineapple")) == []


def test_has_more_counts_no_message_of_unreadable_rooms(lobby, alice, bob, room_factory):
    """20 matches in alice's private room and one in the lobby: bob gets one result and has_more false."""
    private = room_factory("hidden", owner=alice, is_private=True)
    for number in range(25):
        post(private, alice, f"needle {number}")
    visible = post(lobby, alice, "needle in the lobby")
    response = search(bob, q="needle")
    assert ids(response) == [visible.id]
    assert response.json()["has_more"] is False


def test_newest_first_twenty_a_page_with_before(lobby, alice):
    """45 matches: 20 newest first with has_more, then before=<last id> the next 20, then the last 5."""
    posted = [post(lobby, alice, f"page word {number}").id for number in range(45)]
    post(lobby, alice, "unrelated")
    newest_first = posted[::-1]
    first = search(alice, q="page word")
    assert ids(first) == newest_first[:20] and first.json()["has_more"] is True
    second = search(alice, q="page word", before=ids(first)[-1])
    assert ids(second) == newest_first[20:40] and second.json()["has_more"] is True
    third = search(alice, q="page word", before=ids(second)[-1])
    assert ids(third) == newest_first[40:] and third.json()["has_more"] is False


def test_every_word_must_match_in_any_case(lobby, alice):
    """Messages containing every word of q, whatever their case; a message with only one word is left out."""
    both = post(lobby, alice, "Quick BROWN fox")
    post(lobby, alice, "quick only")
    assert ids(search(alice, q="brown QUICK")) == [both.id]


def test_deleted_messages_never_appear(lobby, alice):
    """A deleted message is not found."""
    message = post(lobby, alice, "ephemeral words")
    services.message_delete(actor=alice, message=message)
    assert ids(search(alice, q="ephemeral")) == []


def test_room_filter(world, lobby, alice, bob):
    """room=<slug>: only that room; a private room the user is not in, a banned room, an unknown or
    invalid slug: 404."""
    post(lobby, bob, "another secret")
    assert len(ids(search(bob, q="secret", room="lobby"))) == 2
    assert ids(search(alice, q="secret", room="alices-den")) == [world["private"].id]
    refused = [("alices-den", 404), (world["dm"].room.slug, 404), ("banned-room", 404), ("nowhere", 404)]
    refused += [("../x", 404), ("a" * 200, 404), ("a" * 201, 400), ("x\x00", 400)]
    for slug, status in refused:
        response = search(bob, q="secret", room=slug)
        assert response.status_code == status, (slug, response.content)
        assert response.json()["code"] == {400: "bad_request", 404: "not_found"}[status]
    assert len(ids(search(bob, q="secret", room=""))) == 2  # an empty field of a form: every room


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 201},
        {"q": "a\x00b"},
        {"q": "ok", "before": "x"},
        {"q": "ok", "before": 0},
    ],
    ids=repr,
)
def test_bad_queries_are_400(alice, params):
    """No q, empty, blank, over 200 characters, NUL, a bad `before`: 400."""
    response = search(alice, **params)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "bad_request"


def test_lone_surrogates_and_blank_are_refused_by_the_rule():
    """The service's rule refuses lone surrogates (a URL cannot carry one), NUL, blank and long q."""
    for bad in ("\ud800", "x\udfffy", "a\x00", " \t ", "", "x" * 201, None, 5):
        with pytest.raises(BadRequest):
            conversations.search_query_check(bad)
    assert conversations.search_query_check("x" * 200) == "x" * 200


@pytest.mark.parametrize(
    "q",
    [
        '"unclosed',
        '"the plan"',
        "-plan",
        "plan or nothing",
        "plan & | ! ( ) : * <-> ''",
        "\\",
        "%_",
        "'; DROP TABLE rooms_message; --",
        "🙂 émoji naïve 北京",
        "%ED%A0%80",
        "a" * 200,
        "the",
    ],
)
def test_any_user_text_is_answered(lobby, alice, q):
    """Quotes, operators, tsquery syntax, LIKE wildcards, SQL, unicode, stop words: 200, never a 500."""
    post(lobby, alice, "the plan")
    response = search(alice, q=q)
    assert response.status_code == 200, response.content
    assert isinstance(response.json()["results"], list)


def test_invalid_utf8_in_the_query_string_is_answered(alice):
    """Percent-encoded bytes that are no UTF-8 (a surrogate's WTF-8 form, 0xFF) answer 200, not a 500."""
    response = bearer(alice).get("/api/v1/search/?q=%ED%A0%80%FF")
    assert response.status_code == 200


def test_like_wildcards_are_literal(lobby, alice):
    """% and _ in q match themselves only (SQLite LIKE fallback), and match nothing else."""
    post(lobby, alice, "plain text")
    assert ids(search(alice, q="%")) == []
    assert ids(search(alice, q="_")) == []


def test_results_are_message_objects(lobby, alice, bob):
    """Each result is the message object, reply_to and reactions included."""
    original = post(lobby, alice, "original findme")
    reply = services.message_post(user=bob, room=lobby, body="reply findme", reply_to=original.id)[0]
    [first, second] = search(alice, q="findme").json()["results"]
    assert first["id"] == reply.id and first["room"] == "lobby"
    assert first["reply_to"]["id"] == original.id
    assert second["reply_to"] is None and second["reactions"] == []


def test_service_room_slug_not_readable_is_not_found(world, bob):
    """message_search with a room the user may not read raises NotFound."""
    with pytest.raises(NotFound):
        conversations.message_search(user=bob, q="secret", room_slug="alices-den")


# ----- PostgreSQL full text ------------------------------------------------------------------


@is_postgresql
def test_other_word_forms_match_on_postgresql(lobby, alice):
    """'running' finds 'run' and 'runs', and not a message without the word."""
    run = post(lobby, alice, "we run every day")
    runs = post(lobby, alice, "she runs fast")
    post(lobby, alice, "walking only")
    assert set(ids(search(alice, q="running"))) == {run.id, runs.id}


@is_postgresql
def test_websearch_syntax_on_postgresql(lobby, alice):
    """Quoted phrases and -word work as in a web search engine."""
    phrase = post(lobby, alice, "blue moon rising")
    other = post(lobby, alice, "moon is blue")
    assert ids(search(alice, q='"blue moon"')) == [phrase.id]
    assert ids(search(alice, q="moon -rising")) == [other.id]


@is_postgresql
def test_the_query_uses_the_gin_index(lobby, alice):
    """The search's match condition is the GIN index `message_search`'s expression: EXPLAIN of it
    (sequential and plain index scans off, leaving bitmap scans) uses the index. (On a page with the
    access rules the planner may pick another index for tiny tables; the expression is the same.)"""
    post(lobby, alice, "index me")
    from rooms.conversations.search import _matching

    queryset = _matching(Message.objects.all(), "index")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        sql, params = queryset.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "message_search" in plan, plan


def test_a_page_is_one_query(world, bob):
    """The access rules are part of the query: a page of results is one SQL statement (two with `room`)."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        conversations.message_search(user=bob, q="secret")
    assert len(queries) == 1
    with CaptureQueriesContext(connection) as queries:
        conversations.message_search(user=bob, q="secret", room_slug="lobby")
    assert len(queries) == 2


@is_postgresql
def test_a_rare_word_in_a_big_history_is_found_through_the_gin_index(lobby, alice):
    """With 5,000 messages and an analysed table, the planner answers the real search page (access
    rules included) from the GIN index `message_search`."""
    Message.objects.bulk_create(
        [
            Message(room=lobby, author=alice, body=f"common chatter {n}", body_raw=f"common chatter {n}")
            for n in range(5000)
        ]
    )
    rare = post(lobby, alice, "a zanzibar sighting")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Message._meta.db_table}")
    from rooms.conversations.search import _matching, rooms_readable_by

    queryset = _matching(
        Message.objects.filter(room__in=rooms_readable_by(alice).values("pk"), deleted__isnull=True), "zanzibar"
    ).order_by("-id")[:21]
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "message_search" in plan, plan
    assert ids(search(alice, q="zanzibar")) == [rare.id]
