"""Direct messages (CONTRACT §5): POST dms/, one room per pair, and the DM rules everywhere."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from rooms import conversations, services
from rooms.exceptions import BadRequest, Forbidden, NotFound
from rooms.models import DirectPair, Membership, Message, Room, SiteBan
from tests.rooms.test_read_state import bearer

pytestmark = pytest.mark.django_db


def open_dm(client, body) -> tuple[int, dict]:
    response = client.post("/api/v1/dms/", json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


@pytest.fixture
def dm(alice, bob) -> Room:
    return conversations.dm_open(user=alice, username="bob")[0]


# ----- opening -----------------------------------------------------------------------------


def test_open_dm_answers_201_with_a_dm_room(alice, bob):
    """POST dms/ {username}: 201, kind dm, private, owner null, the two names sorted, both members at 0."""
    status, room = open_dm(bearer(bob), {"username": "alice"})
    assert status == 201
    assert (room["kind"], room["is_private"], room["owner"], room["name"]) == ("dm", True, None, "alice, bob")
    assert (room["member_count"], room["joined"], room["last_read_id"], room["unread_count"]) == (2, True, 0, 0)
    assert set(Membership.objects.filter(room__slug=room["slug"]).values_list("user__username", flat=True)) == {
        "alice",
        "bob",
    }


def test_open_dm_again_answers_200_with_the_same_room_from_either_side(alice, bob):
    """One pair, one room: a second call, from either user, answers 200 with it."""
    _, first = open_dm(bearer(alice), {"username": "bob"})
    assert open_dm(bearer(alice), {"username": "bob"}) == (200, first)
    status, second = open_dm(bearer(bob), {"username": "alice"})
    assert (status, second["slug"]) == (200, first["slug"])
    assert Room.objects.filter(kind=Room.Kind.DM).count() == DirectPair.objects.count() == 1


def test_dm_is_listed_for_both_users(alice, bob, user_factory, dm):
    """The DM is in rooms/ and rooms/?joined=1 of both users, and of no one else."""
    carol = user_factory("carol")
    for user in (alice, bob):
        for url in ("/api/v1/rooms/", "/api/v1/rooms/?joined=1"):
            assert dm.slug in [r["slug"] for r in bearer(user).get(url).json()["results"]], (user, url)
    assert dm.slug not in [r["slug"] for r in bearer(carol).get("/api/v1/rooms/").json()["results"]]


def test_open_dm_with_yourself_is_400(alice):
    """A DM with yourself: 400."""
    assert open_dm(bearer(alice), {"username": "alice"})[0] == 400


@pytest.mark.parametrize("setup", ["unknown", "inactive", "site_banned"])
def test_open_dm_with_unknown_inactive_or_banned_user_is_404(setup, alice, user_factory, moderator):
    """An unknown, inactive or site-banned user: 404 (nothing made)."""
    if setup == "inactive":
        user_factory("zed", is_active=False)
    elif setup == "site_banned":
        user_factory("zed")
        services.site_ban(actor=moderator, username="zed")
    status, body = open_dm(bearer(alice), {"username": "zed"})
    assert (status, body["code"]) == (404, "not_found")
    assert not Room.objects.filter(kind=Room.Kind.DM).exists()


@pytest.mark.parametrize(
    "body",
    [{}, {"username": None}, {"username": 7}, {"username": ["bob"]}, {"username": ""}, {"username": "b\x00ob"}],
    ids=["missing", "null", "int", "list", "blank", "nul"],
)
def test_open_dm_bad_bodies_are_400(body, alice, bob):
    """Missing or mistyped username, NUL: 400."""
    assert open_dm(bearer(alice), body)[0] == 400


def test_open_dm_lone_surrogate_and_oversize_are_400(alice, bob):
    """A lone surrogate in the username and a 151-character one: 400, not 500."""
    client = bearer(alice)
    raw = client.post("/api/v1/dms/", '{"username": "b\\ud800"}', content_type="application/json")
    assert raw.status_code == 400
    assert open_dm(client, {"username": "b" * 151})[0] == 400
    with pytest.raises(BadRequest):
        conversations.dm_open(user=alice, username="b\ud800")


def test_open_dm_needs_authentication(bob):
    """Without credentials: 401."""
    assert APIClient().post("/api/v1/dms/", {"username": "bob"}, format="json").status_code == 401


def test_dm_name_is_cut_to_the_column(user_factory):
    """Two 80-character usernames still make a DM (the name cut to 100 characters)."""
    first, second = user_factory("a" * 80), user_factory("b" * 80)
    room, _ = conversations.dm_open(user=first, username=second.username)
    assert len(room.name) == 100 and room.name.startswith("a" * 80 + ", b")


def test_a_legacy_room_holding_the_dm_slug_does_not_block_the_dm(alice, bob):
    """A room made before DM slugs were reserved keeps its slug; the DM takes a suffixed one."""
    low, high = sorted((alice.id, bob.id))
    Room.objects.create(slug=f"dm-{low}-{high}", name="old", owner=alice)
    room, created = conversations.dm_open(user=alice, username="bob")
    assert created and room.slug.startswith(f"dm-{low}-{high}-") and room.kind == Room.Kind.DM


@pytest.mark.parametrize(
    "body", [{"name": "x", "slug": "dm-1-2"}, {"name": "DM 3 4"}, {"name": "x", "slug": "dm-1-2-ab"}]
)
def test_user_made_rooms_cannot_take_a_dm_slug(body, alice):
    """POST rooms/ refuses slugs of the DM form (given or made from the name): 400."""
    response = bearer(alice).post("/api/v1/rooms/", body, format="json")
    assert response.status_code == 400
    assert response.json()["slug"] == ["reserved"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_opens_make_one_room(user_factory):
    """Eight calls at once for one pair (both directions) make one room and one pair row."""
    alice, bob = user_factory("alice"), user_factory("bob")
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def call(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            me, other = (alice, "bob") if index % 2 else (bob, "alice")
            results.append(conversations.dm_open(user=me, username=other)[0].id)
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(results) == 8 and len(set(results)) == 1
    assert DirectPair.objects.count() == 1 and Room.objects.filter(kind=Room.Kind.DM).count() == 1


# ----- the rules of a DM -------------------------------------------------------------------


def test_no_one_can_be_invited_into_a_dm(alice, bob, user_factory, moderator, dm):
    """Inviting into a DM is 403, for its members and for site moderators (REST and service)."""
    carol = user_factory("carol")
    response = bearer(alice).post(f"/api/v1/rooms/{dm.slug}/members/", {"username": "carol"}, format="json")
    assert response.status_code == 403
    with pytest.raises(Forbidden):
        services.room_invite(actor=moderator, room=dm, username="carol")
    assert not Membership.objects.filter(room=dm, user=carol).exists()


def test_leaving_a_dm_is_403(alice, dm):
    """DELETE rooms/{dm}/members/me/ answers 403 and the membership stays."""
    assert bearer(alice).delete(f"/api/v1/rooms/{dm.slug}/members/me/").status_code == 403
    assert Membership.objects.filter(room=dm, user=alice).exists()


def test_outsiders_do_not_see_or_join_a_dm(user_factory, dm):
    """A third user gets 404 for the DM's detail, join, history and read."""
    client = bearer(user_factory("carol"))
    assert client.get(f"/api/v1/rooms/{dm.slug}/").status_code == 404
    assert client.post(f"/api/v1/rooms/{dm.slug}/members/", {}, format="json").status_code == 404
    assert client.get(f"/api/v1/rooms/{dm.slug}/messages/").status_code == 404
    assert client.post(f"/api/v1/rooms/{dm.slug}/read/", {"last_read_id": 1}, format="json").status_code == 404


def test_only_site_moderators_patch_ban_or_mute_in_a_dm(alice, bob, moderator, dm):
    """A DM's members may not PATCH it, ban or mute in it (403); a site moderator may."""
    member = bearer(alice)
    assert member.patch(f"/api/v1/rooms/{dm.slug}/", {"topic": "x"}, format="json").status_code == 403
    assert member.post(f"/api/v1/rooms/{dm.slug}/bans/", {"username": "bob"}, format="json").status_code == 403
    assert member.post(f"/api/v1/rooms/{dm.slug}/mutes/", {"username": "bob"}, format="json").status_code == 403
    staff = bearer(moderator)
    assert staff.patch(f"/api/v1/rooms/{dm.slug}/", {"topic": "x"}, format="json").status_code == 200
    assert staff.post(f"/api/v1/rooms/{dm.slug}/mutes/", {"username": "bob"}, format="json").status_code == 201


def test_dm_members_post_and_read(alice, bob, dm):
    """Both users post in their DM and the other sees it unread."""
    response = bearer(alice).post(f"/api/v1/rooms/{dm.slug}/messages/", {"body": "hi"}, format="json")
    assert response.status_code == 201
    assert bearer(bob).get(f"/api/v1/rooms/{dm.slug}/").json()["unread_count"] == 1


@pytest.mark.parametrize("closing", ["site_ban", "deactivate"])
def test_dm_with_a_banned_or_deactivated_user_is_readable_but_refuses_posts(closing, alice, bob, moderator, dm):
    """Once the other user is banned site-wide (or deactivated), the DM reads but posts are 403 forbidden."""
    services.message_post(user=alice, room=dm, body="before")
    if closing == "site_ban":
        services.site_ban(actor=moderator, username="bob")
    else:
        type(bob).objects.filter(pk=bob.pk).update(is_active=False)
    client = bearer(alice)
    history = client.get(f"/api/v1/rooms/{dm.slug}/messages/")
    assert history.status_code == 200 and [m["body"] for m in history.json()["results"]] == ["before"]
    response = client.post(f"/api/v1/rooms/{dm.slug}/messages/", {"body": "after"}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "forbidden")
    assert Message.objects.filter(room=dm).count() == 1
    if closing == "site_ban":
        SiteBan.objects.filter(user=bob).delete()
        assert services.message_post(user=alice, room=dm, body="again")[1] is True


def test_closed_dm_check_is_inside_the_one_access_query(alice, bob, moderator, dm, room_factory):
    """The DM check adds no query to a batch: the DirectPair table is read only inside the batch's
    one access query; and a closed DM refuses only its own posts of a batch."""
    from django.test.utils import CaptureQueriesContext

    from rooms.posting import PostRequest, posts_store

    room = room_factory("plain", owner=alice)

    def request(target: Room, body: str) -> PostRequest:
        return PostRequest(user_id=alice.id, username="alice", room_id=target.id, room_slug=target.slug, body=body)

    with CaptureQueriesContext(connection) as queries:
        posts_store([request(dm, "a"), request(room, "b")])
    reading_pairs = [q["sql"] for q in queries if DirectPair._meta.db_table in q["sql"]]
    assert len(reading_pairs) == 1 and "UNION ALL" in reading_pairs[0]
    services.site_ban(actor=moderator, username="bob")
    closed, open_ = posts_store([request(dm, "c"), request(room, "d")])
    assert isinstance(closed.error, Forbidden) and open_.created


def test_dm_open_service_errors(alice):
    """The service: yourself BadRequest, unknown NotFound."""
    with pytest.raises(BadRequest):
        conversations.dm_open(user=alice, username="alice")
    with pytest.raises(NotFound):
        conversations.dm_open(user=alice, username="nobody")
