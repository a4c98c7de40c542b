"""Reactions (CONTRACT §5): the emoji rule, the services and their refusals and limits, the
summary on the message, versions, the REST calls and the socket's `react` frame (in-process;
across two daphne processes in tests/realtime/test_reactions_live.py)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from rooms import conversations, selectors, services
from rooms.exceptions import BadRequest, Forbidden, NotFound, RateLimited
from rooms.models import Membership, Message, Reaction, Room, RoomBan, RoomMute, SiteBan
from rooms.protocol import FrameError, ReactFrame, parse_frame

pytestmark = pytest.mark.django_db


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture(autouse=True)
def roomy_rates(settings):
    settings.CHAT_REACTION_RATE = (10_000, 1.0)
    settings.CHAT_MESSAGE_RATE = (10_000, 1.0)


@pytest.fixture
def message(lobby, alice):
    posted, _ = services.message_post(user=alice, room=lobby, body="react to me")
    return Message.objects.select_related("room", "author").get(pk=posted.pk)


def dm_between(first, second) -> Room:
    """The DM of two users (rooms.conversations.dm_open)."""
    return conversations.dm_open(user=first, username=second.username)[0]


def fresh(message) -> Message:
    return Message.objects.select_related("room", "author").get(pk=message.pk)


# ----- the emoji rule ------------------------------------------------------------------------

VALID = [
    ("👍", "👍"),
    ("❤️", "❤️"),
    ("❤", "❤️"),  # unqualified: stored fully qualified, so both are one reaction
    ("👍🏽", "👍🏽"),
    ("🇫🇷", "🇫🇷"),
    ("👨\u200d👩\u200d👧", "👨\u200d👩\u200d👧"),
    ("🏳️\u200d🌈", "🏳️\u200d🌈"),
    ("1️⃣", "1️⃣"),
    (":thumbsup:", ":thumbsup:"),
    (":+1:", ":+1:"),
    (":a:", ":a:"),
    (":party_parrot-2:", ":party_parrot-2:"),
    (":" + "x" * 32 + ":", ":" + "x" * 32 + ":"),
]

INVALID = [
    "",
    " ",
    "thumbsup",
    "ok",
    "a",
    "1",
    "#",
    "<b>👍</b>",
    "<script>",
    "👍 ",
    " 👍",
    "👍\n",
    "👍👍",
    "👍❤️",
    "🇫",  # half a flag
    "\u200d",
    "::",
    ":" + "x" * 33 + ":",
    ":Thumbsup:",
    ":thumbs up:",
    ":thumbsup",
    "thumbsup:",
    ":thumbs:up:",
    ":é:",
    "\x00",
    "👍\x00",
    "\ud83d",  # a lone surrogate
    "x" * 100,
    None,
    7,
    True,
    ["👍"],
]


@pytest.mark.parametrize(("given", "stored"), VALID, ids=repr)
def test_emoji_rule_accepts_one_emoji_or_a_short_code(given, stored):
    """One emoji sequence (flags, skin tones, ZWJ families, keycaps) or :name: with 1-32 of a-z0-9_+-."""
    assert conversations.emoji_check(given) == stored


@pytest.mark.parametrize("given", INVALID, ids=repr)
def test_emoji_rule_refuses_everything_else(given):
    """Words, markup, whitespace, two emoji, bad short codes, NUL, lone surrogates, non-strings: BadRequest."""
    with pytest.raises(BadRequest):
        conversations.emoji_check(given)


# ----- services ------------------------------------------------------------------------------


def test_add_then_repeat_then_remove(message, bob):
    """Adding answers True, the same again False (no change); removing works once, then NotFound."""
    assert conversations.reaction_add(user=bob, message=message, emoji="👍") is True
    assert conversations.reaction_add(user=bob, message=message, emoji="👍") is False
    assert Reaction.objects.filter(message=message).count() == 1
    conversations.reaction_remove(user=bob, message=message, emoji="👍")
    assert not Reaction.objects.filter(message=message).exists()
    with pytest.raises(NotFound):
        conversations.reaction_remove(user=bob, message=message, emoji="👍")


def test_summary_orders_by_first_use_and_lists_users_in_reaction_order(message, alice, bob, user_factory, lobby):
    """reactions = [{emoji, count, users}] by each emoji's first use; users in reaction order."""
    carol = user_factory("carol")
    Membership.objects.create(room=lobby, user=carol)
    conversations.reaction_add(user=bob, message=message, emoji="🎉")
    conversations.reaction_add(user=alice, message=message, emoji=":ship:")
    conversations.reaction_add(user=carol, message=message, emoji="🎉")
    conversations.reaction_add(user=alice, message=message, emoji="🎉")
    expected = [
        {"emoji": "🎉", "count": 3, "users": ["bob", "carol", "alice"]},
        {"emoji": ":ship:", "count": 1, "users": ["alice"]},
    ]
    assert message.reactions == expected
    assert fresh(message).reactions == expected
    conversations.reaction_remove(user=carol, message=message, emoji="🎉")
    assert fresh(message).reactions[0] == {"emoji": "🎉", "count": 2, "users": ["bob", "alice"]}


def test_unqualified_and_qualified_heart_are_one_reaction(message, bob):
    """❤ and ❤️ are the same reaction: the second add changes nothing, either form removes it."""
    assert conversations.reaction_add(user=bob, message=message, emoji="❤") is True
    assert conversations.reaction_add(user=bob, message=message, emoji="❤️") is False
    conversations.reaction_remove(user=bob, message=message, emoji="❤")
    assert fresh(message).reactions is None


def test_each_change_takes_the_rooms_next_version(message, bob, lobby):
    """Adding and removing each raise the room's version; the message takes the new value."""
    before = Room.objects.get(pk=lobby.pk).version
    conversations.reaction_add(user=bob, message=message, emoji="👍")
    assert fresh(message).version == before + 1 == Room.objects.get(pk=lobby.pk).version
    conversations.reaction_add(user=bob, message=message, emoji="👍")  # no change: no new version
    assert Room.objects.get(pk=lobby.pk).version == before + 1
    conversations.reaction_remove(user=bob, message=message, emoji="👍")
    assert fresh(message).version == before + 2 == message.version


def test_an_edit_after_a_reaction_carries_the_current_reactions(message, alice, bob):
    """An edit of a message read before someone reacted answers (and broadcasts) the reactions as stored."""
    stale = fresh(message)
    conversations.reaction_add(user=bob, message=fresh(message), emoji="👍")
    edited = services.message_edit(user=alice, message=stale, body="edited text")
    assert edited.reactions == [{"emoji": "👍", "count": 1, "users": ["bob"]}]
    assert fresh(message).reactions == edited.reactions


def test_at_most_20_distinct_emoji(message, bob, alice):
    """20 distinct emoji are fine, the 21st is 400; another user may still add one of the 20."""
    codes = [f":e{number}:" for number in range(20)]
    for code in codes:
        conversations.reaction_add(user=bob, message=message, emoji=code)
    with pytest.raises(BadRequest, match="at most 20"):
        conversations.reaction_add(user=bob, message=message, emoji=":e20:")
    assert conversations.reaction_add(user=alice, message=message, emoji=":e7:") is True
    assert len(fresh(message).reactions) == 20


def test_users_lists_the_first_50_and_count_all(message, lobby, user_factory):
    """With 55 reactors the count is 55 and users the first 50; when one of them leaves, the 51st moves in."""
    people = [user_factory(f"fan{number:02}") for number in range(55)]
    Membership.objects.bulk_create([Membership(room=lobby, user=person) for person in people])
    for person in people:
        conversations.reaction_add(user=person, message=message, emoji="🔥")
    [entry] = fresh(message).reactions
    assert entry["count"] == 55
    assert entry["users"] == [f"fan{number:02}" for number in range(50)]
    conversations.reaction_remove(user=people[0], message=message, emoji="🔥")
    [entry] = fresh(message).reactions
    assert entry["count"] == 54
    assert entry["users"] == [f"fan{number:02}" for number in range(1, 51)]


def test_muted_banned_site_banned_and_non_members_may_not_react(message, lobby, alice, bob, user_factory, moderator):
    """A muted, room-banned or site-banned member and a non-member of a public room: Forbidden."""
    carol, dave, erin = user_factory("carol"), user_factory("dave"), user_factory("erin")
    outsider = user_factory("outsider")
    Membership.objects.bulk_create([Membership(room=lobby, user=u) for u in (carol, dave, erin)])
    RoomMute.objects.create(room=lobby, user=carol)
    RoomBan.objects.create(room=lobby, user=dave)
    SiteBan.objects.create(user=erin)
    for user in (carol, dave, erin, outsider):
        with pytest.raises(Forbidden):
            conversations.reaction_add(user=user, message=message, emoji="👍")
    conversations.reaction_add(user=bob, message=message, emoji="👍")
    Membership.objects.filter(room=lobby, user=bob).delete()
    RoomMute.objects.create(room=lobby, user=bob)
    Membership.objects.create(room=lobby, user=bob)
    with pytest.raises(Forbidden):
        conversations.reaction_remove(user=bob, message=message, emoji="👍")
    assert Reaction.objects.filter(message=message).count() == 1


def test_dm_with_a_site_banned_partner_is_read_only_for_reactions(alice, user_factory):
    """A DM whose other user is banned site-wide or deactivated stays readable and refuses
    reactions (403), as it refuses posts."""
    dana, erin = user_factory("dana"), user_factory("erin")
    for partner, close in ((dana, lambda: SiteBan.objects.create(user=dana)), (erin, None)):
        dm = dm_between(alice, partner)
        message = fresh(services.message_post(user=partner, room=dm, body="hello")[0])
        assert conversations.reaction_add(user=alice, message=message, emoji="👋") is True
        if close is not None:
            close()
        else:
            type(partner).objects.filter(pk=partner.pk).update(is_active=False)
        with pytest.raises(Forbidden):
            conversations.reaction_add(user=alice, message=message, emoji="👍")
        with pytest.raises(Forbidden):
            conversations.reaction_remove(user=alice, message=message, emoji="👋")


def test_private_room_and_deleted_message_are_not_found(room_factory, alice, bob, message):
    """A message of a private room the user is not in, or a deleted one: NotFound."""
    secret_room = room_factory("secret", owner=alice, is_private=True)
    secret, _ = services.message_post(user=alice, room=secret_room, body="s")
    with pytest.raises(NotFound):
        conversations.reaction_set(user=bob, room_slug="secret", message_id=secret.id, emoji="👍")
    with pytest.raises(NotFound):
        conversations.reaction_add(user=bob, message=fresh(secret), emoji="👍")
    services.message_delete(actor=alice, message=message)
    with pytest.raises(NotFound):
        conversations.reaction_add(user=bob, message=fresh(message), emoji="👍")


def test_reaction_set_checks_the_room_of_the_message(message, bob, room_factory):
    """react with a room slug that is not the message's room: NotFound."""
    room_factory("other", members=[bob])
    with pytest.raises(NotFound):
        conversations.reaction_set(user=bob, room_slug="other", message_id=message.id, emoji="👍")


def test_reactions_spend_their_own_rate_limit_only_on_changes(message, bob, settings):
    """CHAT_REACTION_RATE is its own bucket; a repeated add spends nothing; beyond it: RateLimited."""
    settings.CHAT_REACTION_RATE = (2, 60.0)
    conversations.reaction_add(user=bob, message=message, emoji="👍")
    for _ in range(3):
        conversations.reaction_add(user=bob, message=message, emoji="👍")  # no change, no token
    conversations.reaction_add(user=bob, message=message, emoji="🎉")
    with pytest.raises(RateLimited):
        conversations.reaction_add(user=bob, message=message, emoji="🔥")
    assert len(fresh(message).reactions) == 2
    services.message_post(user=bob, room=message.room, body="posting still works")


def test_history_loads_reactions_without_a_query_per_message(lobby, alice, bob):
    """Reactions ride on the message row: a page costs the same queries for 2 or 20 reacted messages."""

    def page_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            page, _ = selectors.message_history(room=lobby, limit=100)
            from rooms.protocol import message_dict

            assert all(message_dict(m, room_slug="lobby")["reactions"] for m in page)
        return len(queries)

    def reacted(count: int) -> None:
        for number in range(count):
            posted, _ = services.message_post(user=alice, room=lobby, body=f"m{number}")
            conversations.reaction_add(user=bob, message=fresh(posted), emoji="👍")

    reacted(2)
    few = page_queries()
    reacted(18)
    assert page_queries() == few


# ----- REST ----------------------------------------------------------------------------------


def url(message_id: int, emoji: str | None = None) -> str:
    base = f"/api/v1/messages/{message_id}/reactions/"
    return base if emoji is None else base + quote(emoji, safe="") + "/"


def test_rest_post_201_then_200_with_the_message(message, bob):
    """POST reactions/ answers 201 with the message and its reactions, then 200 for the same emoji."""
    client = bearer(bob)
    first = client.post(url(message.id), {"emoji": "👍"}, format="json")
    assert first.status_code == 201, first.json()
    assert first.json()["reactions"] == [{"emoji": "👍", "count": 1, "users": ["bob"]}]
    assert first.json()["id"] == message.id
    again = client.post(url(message.id), {"emoji": "👍"}, format="json")
    assert again.status_code == 200
    assert again.json()["reactions"] == first.json()["reactions"]
    assert again.json()["version"] == first.json()["version"]


@pytest.mark.parametrize("emoji", ["👍", "❤️", "👍🏽", "🇫🇷", "👨\u200d👩\u200d👧", ":party_parrot:", ":+1:"], ids=repr)
def test_rest_delete_with_the_percent_encoded_emoji(message, bob, emoji):
    """DELETE reactions/{emoji}/ with the emoji percent-encoded (ZWJ sequences, :codes:): 204, then 404."""
    client = bearer(bob)
    assert client.post(url(message.id), {"emoji": emoji}, format="json").status_code == 201
    assert client.delete(url(message.id, emoji)).status_code == 204
    assert not Reaction.objects.filter(message=message).exists()
    response = client.delete(url(message.id, emoji))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("emoji", [value for value in INVALID if isinstance(value, str) and value != ""], ids=repr)
def test_rest_post_refuses_a_bad_emoji_with_400(message, bob, emoji):
    """Every invalid emoji of the table answers 400 bad_request by REST, nothing stored."""
    # json.dumps escapes a lone surrogate as \\ud83d, as a client's JSON would carry it.
    response = bearer(bob).post(url(message.id), json.dumps({"emoji": emoji}), content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "bad_request"
    assert not Reaction.objects.exists()


@pytest.mark.parametrize("body", [{}, {"emoji": None}, {"emoji": 1}, {"emoji": ["👍"]}, {"emoji": ""}, []], ids=repr)
def test_rest_post_missing_or_mistyped_emoji_is_400(message, bob, body):
    """No emoji, null, a number, a list, empty, or a body that is no object: 400."""
    response = bearer(bob).post(url(message.id), body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


@pytest.mark.parametrize(
    ("path_emoji", "status"),
    [
        ("thumbsup", 400),
        ("%F0%9F%91%8D%F0%9F%91%8D", 400),
        ("%00", 400),
        ("%FF", 400),
        ("%20", 400),
        ("%3Cb%3E", 400),
        ("a%2Fb", 404),  # decodes to a/b: no such path
    ],
)
def test_rest_delete_with_a_bad_emoji_is_refused_never_500(message, bob, path_emoji, status):
    """A path emoji that is no emoji (a word, two emoji, NUL, invalid UTF-8, a space, markup): 400."""
    response = bearer(bob).delete(f"/api/v1/messages/{message.id}/reactions/{path_emoji}/")
    assert response.status_code == status, response.content
    assert response.json()["code"] == {400: "bad_request", 404: "not_found"}[status]


def test_rest_unknown_private_and_deleted_messages_are_404(message, alice, bob, room_factory, user_factory):
    """Unknown ids (past bigint too), another user's private room or DM, a deleted message: 404."""
    secret_room = room_factory("secret", owner=alice, is_private=True)
    secret, _ = services.message_post(user=alice, room=secret_room, body="s")
    gone, _ = services.message_post(user=alice, room=message.room, body="gone")
    services.message_delete(actor=alice, message=gone)
    in_dm, _ = services.message_post(user=alice, room=dm_between(alice, user_factory("dana")), body="dm")
    client = bearer(bob)
    for message_id in (secret.id, gone.id, in_dm.id, message.id + 1000, 2**63, 10**30):
        assert client.post(url(message_id), {"emoji": "👍"}, format="json").status_code == 404, message_id
        assert client.delete(url(message_id, "👍")).status_code == 404, message_id


def test_rest_muted_and_non_member_are_403(message, lobby, user_factory):
    """A muted member and a non-member of the public room: 403."""
    muted, outsider = user_factory("muted"), user_factory("outsider")
    Membership.objects.create(room=lobby, user=muted)
    RoomMute.objects.create(room=lobby, user=muted)
    for user in (muted, outsider):
        response = bearer(user).post(url(message.id), {"emoji": "👍"}, format="json")
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"


def test_rest_21st_distinct_emoji_is_400(message, bob):
    """The 21st distinct emoji of a message answers 400 by REST."""
    client = bearer(bob)
    for number in range(20):
        assert client.post(url(message.id), {"emoji": f":e{number}:"}, format="json").status_code == 201
    response = client.post(url(message.id), {"emoji": ":e20:"}, format="json")
    assert response.status_code == 400
    assert "20" in response.json()["detail"]


def test_rest_rate_limit_is_429(message, bob, settings):
    """Beyond CHAT_REACTION_RATE: 429 with Retry-After."""
    settings.CHAT_REACTION_RATE = (1, 60.0)
    client = bearer(bob)
    assert client.post(url(message.id), {"emoji": "👍"}, format="json").status_code == 201
    response = client.post(url(message.id), {"emoji": "🎉"}, format="json")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1


# ----- the WebSocket frame -------------------------------------------------------------------


def test_react_frame_parses():
    """react carries room, message_id, emoji and remove (default false)."""
    assert parse_frame('{"type":"react","room":"lobby","message_id":3,"emoji":"👍"}') == ReactFrame(
        room="lobby", message_id=3, emoji="👍", remove=False
    )
    frame = parse_frame('{"type":"react","room":"lobby","message_id":3,"emoji":":x:","remove":true}')
    assert frame.remove is True


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"react","room":"lobby","emoji":"👍"}',
        '{"type":"react","room":"lobby","message_id":"3","emoji":"👍"}',
        '{"type":"react","room":"lobby","message_id":true,"emoji":"👍"}',
        '{"type":"react","room":"lobby","message_id":3.5,"emoji":"👍"}',
        '{"type":"react","room":"lobby","message_id":-1,"emoji":"👍"}',
        '{"type":"react","room":"lobby","message_id":99999999999999999999,"emoji":"👍"}',
        '{"type":"react","room":"lobby","message_id":3}',
        '{"type":"react","room":"lobby","message_id":3,"emoji":5}',
        '{"type":"react","room":"lobby","message_id":3,"emoji":"👍","remove":"yes"}',
        '{"type":"react","room":"lobby","message_id":3,"emoji":"👍","remove":1}',
        '{"type":"react","message_id":3,"emoji":"👍"}',
        '{"type":"react","room":"../x","message_id":3,"emoji":"👍"}',
    ],
)
def test_react_frame_with_missing_or_mistyped_fields_is_bad_request(text):
    """Missing or mistyped room, message_id, emoji or remove: FrameError bad_request."""
    with pytest.raises(FrameError) as raised:
        parse_frame(text)
    assert raised.value.code == "bad_request"


@pytest.fixture
def in_process_services(settings):
    """The consumer in-process on the in-memory layer (tests/rooms/test_consumer.py explains why)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REDIS_URL = ""


def communicator(user):
    from channels.testing import WebsocketCommunicator

    from chatsite.asgi import application
    from tests.support.ws import access_token

    return WebsocketCommunicator(
        application, "/ws/chat/", headers=[(b"authorization", f"Bearer {access_token(user)}".encode())]
    )


async def receive_type(ws, frame_type: str) -> dict:
    while True:
        frame = await ws.receive_json_from(timeout=3)
        if frame["type"] == frame_type:
            return frame


@pytest.mark.django_db(transaction=True)
async def test_ws_react_broadcasts_and_refusals_are_error_frames(in_process_services, user_factory, room_factory):
    """react is broadcast as `reaction` to the joined sockets (the sender's too); remove likewise;
    bad emoji, unknown ids, another user's private room, a muted user: error frames, socket open."""
    alice, bob, muted = [await sync_to_async(user_factory)(name) for name in ("alice", "bob", "muted")]
    den = await sync_to_async(room_factory)("den", owner=alice, members=[bob, muted])
    secret_room = await sync_to_async(room_factory)("secret", owner=alice, is_private=True)
    target, _ = await sync_to_async(services.message_post)(user=alice, room=den, body="hi")
    secret, _ = await sync_to_async(services.message_post)(user=alice, room=secret_room, body="s")
    dm = await sync_to_async(dm_between)(alice, muted)
    in_dm, _ = await sync_to_async(services.message_post)(user=alice, room=dm, body="just us")
    await sync_to_async(RoomMute.objects.create)(room=den, user=muted)
    alice_ws, bob_ws, muted_ws = communicator(alice), communicator(bob), communicator(muted)
    for ws in (alice_ws, bob_ws, muted_ws):
        assert (await ws.connect())[0]
    for ws in (alice_ws, bob_ws):
        await ws.send_json_to({"type": "join", "room": "den"})
        await receive_type(ws, "joined")
    await bob_ws.send_json_to({"type": "react", "room": "den", "message_id": target.id, "emoji": "🎉"})
    expected = {
        "type": "reaction",
        "room": "den",
        "message_id": target.id,
        "emoji": "🎉",
        "user": "bob",
        "added": True,
        "count": 1,
    }
    for ws in (alice_ws, bob_ws):
        frame = await receive_type(ws, "reaction")
        assert {key: frame[key] for key in expected} == expected
        version = frame["version"]
    assert version == (await sync_to_async(Message.objects.get)(pk=target.pk)).version
    await bob_ws.send_json_to({"type": "react", "room": "den", "message_id": target.id, "emoji": "🎉", "remove": True})
    for ws in (alice_ws, bob_ws):
        frame = await receive_type(ws, "reaction")
        assert (frame["added"], frame["count"], frame["version"]) == (False, 0, version + 1)
    refusals = [
        (bob_ws, {"message_id": target.id, "emoji": "thumbs up"}, "bad_request"),
        (bob_ws, {"message_id": target.id, "emoji": "👍👍"}, "bad_request"),
        (bob_ws, {"message_id": target.id, "emoji": "🎉", "remove": True}, "not_found"),
        (bob_ws, {"message_id": target.id + 1000, "emoji": "👍"}, "not_found"),
        (bob_ws, {"message_id": secret.id, "emoji": "👍", "room": "secret"}, "not_found"),
        (bob_ws, {"message_id": in_dm.id, "emoji": "👍", "room": dm.slug}, "not_found"),
        (bob_ws, {"message_id": "x", "emoji": "👍"}, "bad_request"),
        (bob_ws, {"message_id": target.id, "emoji": "👍\x00"}, "bad_request"),
        (bob_ws, {"message_id": target.id, "emoji": "\udc00"}, "bad_request"),
        (bob_ws, {"message_id": target.id, "emoji": "👍" * 5000}, "bad_request"),
        (bob_ws, {"message_id": target.id}, "bad_request"),
        (muted_ws, {"message_id": target.id, "emoji": "👍"}, "forbidden"),
    ]
    for ws, fields, code in refusals:
        await ws.send_json_to({"type": "react", "room": "den", **fields})
        error = await receive_type(ws, "error")
        assert error["code"] == code, (fields, error)
    for ws in (bob_ws, muted_ws):
        await ws.send_json_to({"type": "ping"})
        await receive_type(ws, "pong")
    assert not await sync_to_async(Reaction.objects.exists)()
    for ws in (alice_ws, bob_ws, muted_ws):
        await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_ws_react_without_joining_is_answered_to_the_sender(in_process_services, user_factory, room_factory):
    """A socket not joined to the room still reacts (as by REST) and gets the `reaction` frame itself;
    a repeated add changes nothing and is answered with the current state."""
    alice = await sync_to_async(user_factory)("alice")
    den = await sync_to_async(room_factory)("den", owner=alice)
    target, _ = await sync_to_async(services.message_post)(user=alice, room=den, body="hi")
    ws = communicator(alice)
    assert (await ws.connect())[0]
    for _ in range(2):
        await ws.send_json_to({"type": "react", "room": "den", "message_id": target.id, "emoji": ":ok:"})
        frame = await receive_type(ws, "reaction")
        assert (frame["user"], frame["added"], frame["count"]) == ("alice", True, 1)
    await ws.disconnect()


# ----- concurrency and the summary against a brute-force model -------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_reactions_keep_the_summary_and_versions_exact(user_factory, room_factory, settings):
    """Eight users reacting and un-reacting at once on one message: the stored summary equals the
    rows, every change took its own room version, and the message has the last one."""
    import threading

    from django.db import connections

    settings.CHAT_REACTION_RATE = (10_000, 1.0)
    people = [user_factory(f"p{number}") for number in range(8)]
    room = room_factory("busy", members=people)
    target = services.message_post(user=people[0], room=room, body="race")[0]
    start = threading.Barrier(len(people))
    errors: list[BaseException] = []

    def react(person, number: int) -> None:
        try:
            message = fresh(target)
            start.wait(timeout=10)
            for emoji in ("👍", ":ok:", "🎉"):
                conversations.reaction_add(user=person, message=message, emoji=emoji)
            if number % 2:
                conversations.reaction_remove(user=person, message=message, emoji=":ok:")
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=react, args=(person, n)) for n, person in enumerate(people)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    stored = fresh(target)
    assert stored.reactions == conversations.reaction_summary(message_id=target.id)
    counts = {entry["emoji"]: entry["count"] for entry in stored.reactions}
    assert counts == {"👍": 8, ":ok:": 4, "🎉": 8}
    changes = 8 * 3 + 4
    assert Room.objects.get(pk=room.pk).version == stored.version == target.version + changes


def brute_force_summary(events: list[tuple[str, str]]) -> list[dict]:
    """The summary as the contract words it, from the standing (user, emoji) reactions in order."""
    standing: list[tuple[str, str]] = []
    for user, emoji in events:
        if (user, emoji) in standing:
            standing.remove((user, emoji))
        else:
            standing.append((user, emoji))
    summary: dict[str, dict] = {}
    for user, emoji in standing:
        entry = summary.setdefault(emoji, {"emoji": emoji, "count": 0, "users": []})
        entry["count"] += 1
        if len(entry["users"]) < 50:
            entry["users"].append(user)
    return list(summary.values())


def test_summary_matches_a_brute_force_model_on_random_toggles(lobby, user_factory):
    """200 random toggles by 6 users over 5 emoji: after each, the message's summary is the model's."""
    import random

    rng = random.Random(1234)
    people = [user_factory(f"r{number}") for number in range(6)]
    Membership.objects.bulk_create([Membership(room=lobby, user=person) for person in people])
    target = fresh(services.message_post(user=people[0], room=lobby, body="toggle me")[0])
    events: list[tuple[str, str]] = []
    for _ in range(200):
        person, emoji = rng.choice(people), rng.choice(["👍", "❤️", ":a:", "🇫🇷", ":b+:"])
        if (person.username, emoji) in brute_force_summary_pairs(events):
            conversations.reaction_remove(user=person, message=target, emoji=emoji)
        else:
            assert conversations.reaction_add(user=person, message=target, emoji=emoji) is True
        events.append((person.username, emoji))
        assert (fresh(target).reactions or []) == brute_force_summary(events)


def brute_force_summary_pairs(events: list[tuple[str, str]]) -> set[tuple[str, str]]:
    standing: set[tuple[str, str]] = set()
    for pair in events:
        standing ^= {pair}
    return standing
