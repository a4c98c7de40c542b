"""Room versions and `GET rooms/{slug}/changes/?since=V` (CONTRACT §6): paging, deletes as ids,
access, every bad `since`, and versions under concurrent posts, edits and deletes on PostgreSQL."""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from rooms import conversations, services
from rooms.exceptions import NotFound
from rooms.models import Message, Room
from rooms.posting import PostRequest, posts_store

pytestmark = pytest.mark.django_db

UNLIMITED = override_settings(CHAT_MESSAGE_RATE=(100_000, 1.0))


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def post_batch(room, user, count: int) -> list[Message]:
    """`count` messages stored by one batch of the real write path (ids and versions under the lock)."""
    with UNLIMITED:
        outcomes = posts_store(
            [
                PostRequest(user_id=user.id, username=user.username, room_id=room.id, room_slug=room.slug, body=f"m{n}")
                for n in range(count)
            ]
        )
    assert all(outcome.created for outcome in outcomes)
    return [outcome.message for outcome in outcomes if outcome.message is not None]


def changes(client, slug: str, since) -> dict:
    response = client.get(f"/api/v1/rooms/{slug}/changes/", {"since": since})
    assert response.status_code == 200, response.content
    return response.json()


def room_version(room) -> int:
    return Room.objects.get(pk=room.pk).version


# ----- the answer --------------------------------------------------------------------------------


def test_posts_edits_and_deletes_each_take_the_next_version(alice, lobby):
    """Every change raises the room's version by one and the message takes the new value."""
    taken = []
    with UNLIMITED:
        first, _ = services.message_post(user=alice, room=lobby, body="one")
        taken.append(first.version)
        second, _ = services.message_post(user=alice, room=lobby, body="two")
        taken.append(second.version)
        taken.append(services.message_edit(user=alice, message=first, body="one, edited").version)
        services.message_delete(actor=alice, message=second)
    assert taken == [1, 2, 3]
    assert [m.version for m in Message.objects.filter(pk__in=[first.pk, second.pk]).order_by("pk")] == [3, 4]
    assert room_version(lobby) == 4


def test_changes_lists_updated_messages_and_deleted_ids_oldest_change_first(alice, bob, lobby):
    """`updated` holds live messages as message objects, `deleted` only ids, in version order."""
    with UNLIMITED:
        first, _ = services.message_post(user=alice, room=lobby, body="one")
        second, _ = services.message_post(user=alice, room=lobby, body="two")
        third, _ = services.message_post(user=alice, room=lobby, body="three")
        services.message_edit(user=alice, message=first, body="one, edited")
        services.message_delete(actor=alice, message=second)
    answer = changes(bearer(bob), "lobby", 2)
    assert [(m["id"], m["body"], m["version"]) for m in answer["updated"]] == [
        (third.id, "three", 3),
        (first.id, "one, edited", 4),
    ]
    assert answer["updated"][1]["edited"] is not None
    assert answer["deleted"] == [second.id]
    assert (answer["version"], answer["has_more"]) == (5, False)
    assert set(answer) == {"updated", "deleted", "version", "has_more"}


def test_a_restored_message_comes_back_among_the_updated(alice, moderator, lobby):
    """A moderator restoring a message is a change: the message is in `updated` again."""
    with UNLIMITED:
        message, _ = services.message_post(user=alice, room=lobby, body="back soon")
    services.message_delete(actor=alice, message=message)
    client = bearer(alice)
    assert changes(client, "lobby", 1)["deleted"] == [message.id]
    services.message_restore(actor=moderator, message=Message.objects.get(pk=message.pk))
    answer = changes(client, "lobby", 2)
    assert ([m["id"] for m in answer["updated"]], answer["deleted"], answer["version"]) == ([message.id], [], 3)


def test_an_empty_page_answers_the_rooms_current_version(alice, lobby):
    """Nothing newer than `since`: empty lists, has_more false, `version` the room's version."""
    post_batch(lobby, alice, 3)
    client = bearer(alice)
    assert changes(client, "lobby", 3) == {"updated": [], "deleted": [], "version": 3, "has_more": False}
    # A `since` from beyond the room's history (a restored database): the room's real version.
    assert changes(client, "lobby", 99)["version"] == 3
    empty = Room.objects.create(slug="empty", name="Empty")
    assert changes(client, empty.slug, 0) == {"updated": [], "deleted": [], "version": 0, "has_more": False}


def test_changes_page_200_at_a_time_and_the_version_is_the_next_since(alice, lobby):
    """203 changes of 201 messages: 200 with has_more, then the rest; every message once, last state."""
    messages = post_batch(lobby, alice, 201)
    with UNLIMITED:
        services.message_edit(user=alice, message=messages[0], body="edited")
    services.message_delete(actor=alice, message=messages[1])
    assert room_version(lobby) == 203
    client = bearer(alice)
    first = changes(client, "lobby", 0)
    assert (len(first["updated"]), first["deleted"], first["has_more"], first["version"]) == (200, [], True, 202)
    assert [m["version"] for m in first["updated"]] == list(range(3, 203))
    assert (first["updated"][-1]["id"], first["updated"][-1]["body"]) == (messages[0].id, "edited")
    second = changes(client, "lobby", first["version"])
    assert second == {"updated": [], "deleted": [messages[1].id], "version": 203, "has_more": False}
    seen = [m["id"] for m in first["updated"] + second["updated"]] + second["deleted"]
    assert sorted(seen) == sorted(m.id for m in messages) and len(seen) == len(set(seen))
    assert changes(client, "lobby", second["version"]) == {
        "updated": [],
        "deleted": [],
        "version": 203,
        "has_more": False,
    }


def test_changes_is_a_range_scan_with_no_query_per_message(alice, bob, lobby):
    """The page costs the same queries for 3 or 60 messages (authors and replies loaded with them)."""
    client = bearer(bob)

    def queries_for_page() -> int:
        with CaptureQueriesContext(connection) as captured:
            changes(client, "lobby", 0)
        return len(captured)

    with UNLIMITED:
        target, _ = services.message_post(user=alice, room=lobby, body="target")
        for n in range(2):
            services.message_post(user=bob, room=lobby, body=f"reply {n}", reply_to=target.id)
    few = queries_for_page()
    with UNLIMITED:
        for n in range(57):
            services.message_post(user=bob if n % 2 else alice, room=lobby, body=f"reply {n}", reply_to=target.id)
    answer = changes(client, "lobby", 0)
    assert len(answer["updated"]) == 60 and answer["updated"][-1]["reply_to"]["author"]["username"] == "alice"
    assert queries_for_page() == few


@pytest.mark.postgres
def test_the_changes_query_uses_the_room_version_index(alice, lobby):
    """PostgreSQL plans `version > since` in one room as a scan of message_room_version."""
    post_batch(lobby, alice, 300)
    queryset = Message.objects.filter(room=lobby, version__gt=10).order_by("version")[:201]
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Message._meta.db_table}")
        # A table this small would be read whole, or through the room's foreign-key index and sorted;
        # what is checked is that the (room, version) index serves the query, as it does at scale.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        plan = queryset.explain()
    assert "message_room_version" in plan, plan


# ----- who may read, and bad input ---------------------------------------------------------------


def test_a_public_rooms_changes_are_readable_without_joining(user_factory, alice, lobby):
    """Any authenticated user reads a public room's changes, like its history."""
    post_batch(lobby, alice, 2)
    assert len(changes(bearer(user_factory("outsider")), "lobby", 0)["updated"]) == 2


@pytest.mark.parametrize(
    ("caller", "status", "code"),
    [("stranger", 404, "not_found"), ("banned", 403, "forbidden"), ("anonymous", 401, "not_authenticated")],
)
def test_who_may_not_read_changes(user_factory, room_factory, owner, caller, status, code):
    """A private room the caller is not in: 404 (as a missing one); banned: 403; no credentials: 401."""
    banned = user_factory("banned")
    room_factory("secret", owner=owner, is_private=True, members=[banned])
    services.room_ban(actor=owner, room=Room.objects.get(slug="secret"), username="banned")
    client = APIClient() if caller == "anonymous" else bearer(banned if caller == "banned" else user_factory(caller))
    response = client.get("/api/v1/rooms/secret/changes/", {"since": 0})
    assert (response.status_code, response.json()["code"]) == (status, code)


def test_an_unknown_room_is_404(alice):
    """A room that does not exist answers 404 JSON."""
    response = bearer(alice).get("/api/v1/rooms/nope/changes/", {"since": 0})
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    "query",
    [
        "",
        "since=",
        "since=-1",
        "since=1.5",
        "since=1e3",
        "since=abc",
        "since=%00",
        "since=1%000",
        "since=%D9%A3",  # an Arabic-Indic digit: not an ASCII integer
        "since=%ED%A0%80",
        "since=" + "9" * 19,
        "since=" + "9" * 2000,
        "since=true",
    ],
)
def test_a_bad_or_missing_since_is_400(alice, lobby, query):
    """`since` is required and must be an integer from 0 to 2**63-1: anything else is 400, never a 500."""
    response = bearer(alice).get(f"/api/v1/rooms/lobby/changes/?{query}")
    assert (response.status_code, response.json()["code"]) == (400, "bad_request")
    assert "since" in response.json()


def test_the_largest_since_is_an_empty_page(alice, lobby):
    """since = 2**63-1 (the largest bigint) is valid and answers an empty page."""
    answer = changes(bearer(alice), "lobby", 2**63 - 1)
    assert (answer["updated"], answer["deleted"], answer["has_more"]) == ([], [], False)


def test_only_get_is_served(alice, lobby):
    """POST to changes answers 405 JSON."""
    response = bearer(alice).post("/api/v1/rooms/lobby/changes/?since=0", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")


# ----- versions under concurrency ------------------------------------------------------------------

WRITERS, OPERATIONS = 4, 40
EMOJI = ["👍", "❤️", ":tada:"]


@pytest.mark.postgres
@pytest.mark.timeout(240)
@UNLIMITED
@override_settings(CHAT_REACTION_RATE=(100_000, 1.0))
def test_versions_under_concurrent_posts_edits_reactions_and_deletes(transactional_db, user_factory, room_factory):
    """Writers post, edit, react and delete at once while a reader follows `changes`: every change
    takes a version of its own (1..N, none shared), each writer's versions increase, the reader
    that kept `since` ends with the server's exact state (versions, deletes, reactions), and a
    sweep from 0 lists every message once."""
    writers = [user_factory() for _ in range(WRITERS)]
    reader_user = user_factory()
    room = room_factory("race", members=[*writers, reader_user])
    versions: list[list[int]] = [[] for _ in writers]
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS + 2)
    writing_done = threading.Event()
    reader_state: dict[int, tuple[int, bool]] = {}  # message id -> (version, deleted), as the reader saw it
    reader_reactions: dict[int, list] = {}

    every_id: list[int] = []  # ids of all writers' messages, for reactions on each other's

    def write(index: int) -> None:
        user, taken, chance = writers[index], versions[index], random.Random(index)
        live: list[Message] = []
        try:
            start.wait()
            for n in range(OPERATIONS):
                roll = chance.random()
                if not live or roll < 0.4:
                    message, _ = services.message_post(user=user, room=room, body=f"w{index}-{n}")
                    live.append(message)
                    every_id.append(message.id)
                elif roll < 0.65:
                    message = services.message_edit(user=user, message=chance.choice(live), body=f"e{index}-{n}")
                elif roll < 0.85:
                    # Anyone's message: it may have been deleted meanwhile (NotFound takes no version).
                    message = Message.objects.select_related("room").get(pk=chance.choice(every_id))
                    emoji = chance.choice(EMOJI)
                    try:
                        if not conversations.reaction_add(user=user, message=message, emoji=emoji):
                            conversations.reaction_remove(user=user, message=message, emoji=emoji)
                    except NotFound:
                        continue
                else:
                    message = live.pop(chance.randrange(len(live)))
                    services.message_delete(actor=user, message=message)
                taken.append(message.version)
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    def follow() -> None:
        client, since = bearer(reader_user), 0
        try:
            start.wait()
            while True:
                finished = writing_done.is_set()  # a read that starts after the writers ended is final
                answer = changes(client, "race", since)
                for message in answer["updated"]:
                    assert message["version"] > since
                    reader_state[message["id"]] = (message["version"], False)
                    reader_reactions[message["id"]] = message["reactions"]
                for message_id in answer["deleted"]:
                    reader_state[message_id] = (reader_state.get(message_id, (0, True))[0], True)
                assert answer["version"] >= since
                since = answer["version"]
                if finished and not answer["has_more"]:
                    return
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(index,)) for index in range(WRITERS)]
    threads.append(threading.Thread(target=follow))
    for thread in threads:
        thread.start()
    start.wait()
    for thread in threads[:WRITERS]:
        thread.join(timeout=200)
    writing_done.set()
    threads[-1].join(timeout=60)
    assert not errors, errors

    taken = [version for per_writer in versions for version in per_writer]
    total = len(taken)
    # Most operations took a version (a reaction or edit may meet a message deleted meanwhile and
    # be refused; how many depends on the interleaving), so the checks below are not vacuous.
    assert total > WRITERS * OPERATIONS * 0.6
    assert sorted(taken) == list(range(1, total + 1)), "a version was shared or skipped"
    for per_writer in versions:
        assert per_writer == sorted(per_writer) and len(set(per_writer)) == len(per_writer)
    assert room_version(room) == total

    final = {m.id: (m.version, m.deleted is not None) for m in Message.objects.filter(room=room)}
    assert {mid: deleted for mid, (_, deleted) in reader_state.items()} == {
        mid: deleted for mid, (_, deleted) in final.items()
    }
    assert {mid: v for mid, (v, d) in reader_state.items() if not d} == {
        mid: v for mid, (v, d) in final.items() if not d
    }

    final_reactions = {m.id: m.reactions or [] for m in Message.objects.filter(room=room, deleted__isnull=True)}
    assert {mid: reader_reactions[mid] for mid in final_reactions} == final_reactions
    assert any(final_reactions.values()), "the writers' reactions should have left some"

    seen: list[int] = []
    since = 0
    while True:
        sweep = conversations.room_changes(room=room, since=since, limit=7)
        seen += [m.id for m in sweep.updated] + sweep.deleted
        since = sweep.version
        if not sweep.has_more:
            break
    assert sorted(seen) == sorted(final) and len(seen) == len(set(seen))
    assert since == total
