"""Mentions and notifications on the real database (CONTRACT §5): what posts (REST and the socket's
batch path), edits and deletes store, who is notified and with which kind, the queries it costs."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from rooms import conversations, services
from rooms.conversations.notifications import RoomKind, messages_plan
from rooms.exceptions import Forbidden
from rooms.models import Membership, Message, Notification, Room
from rooms.posting import PostRequest, posts_store
from rooms.protocol import message_dict
from rooms.realtime import events

pytestmark = pytest.mark.django_db

FAST = override_settings(CHAT_MESSAGE_RATE=(10_000, 1.0))


@pytest.fixture(autouse=True)
def _fast_rate():
    with FAST:
        yield


@pytest.fixture
def carol(user_factory):
    return user_factory("carol")


class Sent(list):
    """Layer events broadcast on commit; `with sent.committing():` runs the commit hooks at its end."""

    def __init__(self, capture) -> None:
        super().__init__()
        self.committing = lambda: capture(execute=True)


@pytest.fixture
def sent(monkeypatch, django_capture_on_commit_callbacks) -> Sent:
    captured = Sent(django_capture_on_commit_callbacks)
    monkeypatch.setattr(events, "_send", captured.append)
    return captured


def user_frames(captured) -> dict[int, list[dict]]:
    frames: dict[int, list[dict]] = {}
    for event in captured:
        if isinstance(event, events.UserFrame):
            frames.setdefault(event.user_id, []).append(event.frame)
        elif isinstance(event, events.UserFrames):
            for user_id, frame in event.frames:
                frames.setdefault(user_id, []).append(frame)
    return frames


def make_dm(first, second) -> Room:
    """The pair's DM, made by the real service (POST dms/)."""
    room, _ = conversations.dm_open(user=first, username=second.username)
    return room


def post(user, room, body: str, reply_to: Message | None = None) -> Message:
    message, _ = services.message_post(
        user=user, room=room, body=body, reply_to=reply_to.id if reply_to is not None else None
    )
    return message


def kinds(message) -> dict[str, str]:
    return dict(Notification.objects.filter(message=message).values_list("user__username", "kind"))


def request(user, room, body: str, **fields) -> PostRequest:
    return PostRequest(
        user_id=user.id, username=user.username, room_id=room.id, room_slug=room.slug, body=body, **fields
    )


# ----- posts --------------------------------------------------------------------------------------


def test_a_mention_is_stored_listed_and_notified(alice, bob, lobby):
    """ "@bob" stores mentions ["bob"] on the row and the object, and one unread mention for bob."""
    message = post(alice, lobby, "hi @Bob, look")
    assert message.mentions == ["bob"]
    assert Message.objects.get(pk=message.pk).mentions == ["bob"]
    assert message_dict(message)["mentions"] == ["bob"]
    [notification] = Notification.objects.all()
    assert (notification.user, notification.kind, notification.room, notification.is_read) == (
        bob,
        "mention",
        lobby,
        False,
    )


def test_a_plain_post_stores_no_mentions_and_no_notification(alice, bob, lobby):
    message = post(alice, lobby, "hello everyone")
    assert Message.objects.get(pk=message.pk).mentions is None
    assert message_dict(message)["mentions"] == []
    assert not Notification.objects.exists()


def test_mentions_keep_the_order_of_first_appearance(alice, bob, carol, lobby):
    message = post(alice, lobby, "@carol @bob @carol @alice")
    assert message.mentions == ["carol", "bob", "alice"]


def test_no_notification_for_oneself(alice, lobby):
    """Mentioning oneself lists the name but notifies no one; replying to oneself neither."""
    first = post(alice, lobby, "note to @alice")
    assert first.mentions == ["alice"]
    post(alice, lobby, "again", reply_to=first)
    assert not Notification.objects.exists()


def test_a_reply_notifies_the_replied_author(alice, bob, lobby):
    original = post(bob, lobby, "question")
    reply = post(alice, lobby, "answer", reply_to=original)
    assert kinds(reply) == {"bob": "reply"}


def test_a_mention_wins_over_a_reply(alice, bob, carol, lobby):
    """Replying to bob and mentioning him: one notification, kind mention; carol mentioned too."""
    original = post(bob, lobby, "question")
    reply = post(alice, lobby, "@bob @carol see", reply_to=original)
    assert kinds(reply) == {"bob": "mention", "carol": "mention"}


def test_a_reply_to_carol_mentioning_bob(alice, bob, carol, lobby):
    Membership.objects.create(room=lobby, user=carol)
    original = post(carol, lobby, "question")
    reply = post(alice, lobby, "@bob knows", reply_to=original)
    assert kinds(reply) == {"bob": "mention", "carol": "reply"}


def test_a_dm_notifies_the_other_member_with_the_first_kind_that_applies(alice, bob):
    """In a DM: a plain message is `dm`, a reply `reply`, a mention `mention`."""
    dm = make_dm(alice, bob)
    plain = post(alice, dm, "hi")
    assert kinds(plain) == {"bob": "dm"}
    reply = post(alice, dm, "and", reply_to=post(bob, dm, "yo"))
    assert kinds(reply) == {"bob": "reply"}
    assert kinds(post(alice, dm, "@bob!")) == {"bob": "mention"}


def test_a_dm_with_a_site_banned_user_notifies_no_one(alice, bob, moderator):
    """The DM refuses the post (CONTRACT §5, rooms/posting.py), so no one is notified."""
    dm = make_dm(alice, bob)
    services.site_ban(actor=moderator, username=bob.username)
    with pytest.raises(Forbidden):
        post(alice, dm, "hello @bob")
    assert not Notification.objects.filter(room=dm).exists()


def test_a_dm_partner_who_cannot_read_is_not_notified(alice, bob, moderator):
    """The readers rule on its own: a site-banned DM member is neither listed nor notified."""
    dm = make_dm(alice, bob)
    message = Message.objects.select_related("reply_to").get(pk=post(alice, dm, "hello @bob").pk)
    services.site_ban(actor=moderator, username=bob.username)
    plans = messages_plan([message], {dm.id: RoomKind.of(dm)})
    assert (plans[message.id].mentions, plans[message.id].kinds) == ([], {})


def test_a_non_member_is_not_a_mention_in_a_private_room(alice, bob, carol, room_factory):
    """Private room: only members count; carol is neither listed nor notified."""
    private = room_factory("secret", owner=alice, is_private=True, members=[bob])
    message = post(alice, private, "@carol @bob")
    assert message.mentions == ["bob"]
    assert kinds(message) == {"bob": "mention"}


def test_a_non_member_of_a_public_room_is_mentioned(alice, carol, lobby):
    """Anyone may read a public room: carol (not a member) is mentioned and notified."""
    message = post(alice, lobby, "@carol come over")
    assert message.mentions == ["carol"]
    assert kinds(message) == {"carol": "mention"}


def test_banned_inactive_and_site_banned_users_are_not_mentions(alice, bob, carol, user_factory, lobby, moderator):
    """Banned from the room, banned site-wide, deactivated: not listed, not notified."""
    dave = user_factory("dave", is_active=False)
    services.room_ban(actor=lobby.owner, room=lobby, username=bob.username)
    services.site_ban(actor=moderator, username=carol.username)
    message = post(alice, lobby, f"@bob @carol @{dave.username} @nobody @mod")
    assert message.mentions == ["mod"]
    assert kinds(message) == {"mod": "mention"}


def test_no_reply_notification_for_an_author_who_cannot_read_the_room(alice, bob, lobby):
    original = post(bob, lobby, "question")
    services.room_ban(actor=lobby.owner, room=lobby, username=bob.username)
    assert kinds(post(alice, lobby, "answer", reply_to=original)) == {}


def test_a_mention_inside_code_or_a_link_is_not_one(alice, bob, lobby):
    message = post(alice, lobby, "<code>@bob</code> http://x/@bob <a href='http://y'>@bob</a>")
    assert message.mentions is None
    assert not Notification.objects.exists()


def test_the_rest_post_announces_the_notification_after_commit(alice, bob, lobby, sent):
    """services.message_post: bob's sockets get `notification` with the message object."""
    with sent.committing():
        message = post(alice, lobby, "@bob hi")
        assert user_frames(sent) == {}, "nothing before commit"
    notification = Notification.objects.get()
    [frame] = user_frames(sent)[bob.id]
    assert frame == {
        "type": "notification",
        "notification": {
            "id": notification.id,
            "kind": "mention",
            "room": "lobby",
            "message": message_dict(Message.objects.select_related("room", "author").get(pk=message.pk)),
            "created": frame["notification"]["created"],
            "read": False,
        },
    }
    assert frame["notification"]["message"]["mentions"] == ["bob"]
    assert set(user_frames(sent)) == {bob.id}


# ----- the batch path ------------------------------------------------------------------------------


def test_a_batch_stores_each_messages_notifications_and_carries_their_frames(alice, bob, carol, lobby):
    """posts_store: mentions, replies and DMs of many posts; each outcome carries its frames."""
    dm = make_dm(alice, carol)
    Membership.objects.create(room=lobby, user=carol)
    original = post(bob, lobby, "question")
    outcomes = posts_store(
        [
            request(alice, lobby, "@bob one"),
            request(alice, lobby, "plain"),
            request(alice, dm, "private"),
            request(carol, lobby, "answer", reply_to_id=original.id),
            request(bob, lobby, "@bob @alice @carol"),
        ]
    )
    assert all(outcome.created for outcome in outcomes)
    assert [kinds(outcome.message) for outcome in outcomes] == [
        {"bob": "mention"},
        {},
        {"carol": "dm"},
        {"bob": "reply"},
        {"alice": "mention", "carol": "mention"},
    ]
    assert [outcome.payload["mentions"] for outcome in outcomes] == [["bob"], [], [], [], ["bob", "alice", "carol"]]
    notices = [[(user_id, frame["notification"]["kind"]) for user_id, frame in o.notices] for o in outcomes]
    assert notices == [
        [(bob.id, "mention")],
        [],
        [(carol.id, "dm")],
        [(bob.id, "reply")],
        [(alice.id, "mention"), (carol.id, "mention")],
    ]
    frame = outcomes[2].notices[0][1]
    assert frame["notification"]["room"] == dm.slug and frame["notification"]["message"] == outcomes[2].payload
    [event] = events.notification_events(outcomes)
    assert [user_id for user_id, _ in event.frames] == [bob.id, carol.id, bob.id, alice.id, carol.id]
    assert events.parse(event.to_layer()) == event
    assert events.notification_events(outcomes[1:2]) == [], "no notification, no event"


def test_a_resent_client_id_notifies_no_one_again(alice, bob, lobby):
    posts_store([request(alice, lobby, "@bob", client_id="c1")])
    [again] = posts_store([request(alice, lobby, "@bob", client_id="c1")])
    assert not again.created and again.notices == []
    assert Notification.objects.count() == 1


@pytest.fixture
def hook_queries(monkeypatch):
    """The number of queries each call of conversations.messages_stored made."""
    counts: list[int] = []
    real = conversations.messages_stored

    def counting(messages, **kwargs):
        with CaptureQueriesContext(connection) as context:
            result = real(messages, **kwargs)
        counts.append(len(context.captured_queries))
        return result

    monkeypatch.setattr(conversations, "messages_stored", counting)
    return counts


def test_a_batch_of_plain_posts_costs_no_query(alice, bob, lobby, hook_queries):
    """The hot path: no `@`, no reply, no DM: the hook makes no query at all."""
    outcomes = posts_store([request(alice if n % 2 else bob, lobby, f"plain {n} a.b") for n in range(20)])
    assert all(outcome.created for outcome in outcomes)
    assert hook_queries == [0]


def test_an_at_sign_that_names_no_one_costs_one_query(alice, lobby, hook_queries):
    posts_store([request(alice, lobby, "mail me at a@b.example or @nobody")])
    assert hook_queries == [1]


def test_the_hook_makes_a_constant_number_of_queries_per_batch(alice, bob, carol, user_factory, lobby, hook_queries):
    """Mentions, replies and DMs: the same few queries for 3 posts as for 60."""
    Membership.objects.create(room=lobby, user=carol)
    others = [user_factory(f"user{n}x") for n in range(10)]
    dm = make_dm(alice, bob)
    original = post(carol, lobby, "question")

    def batch(size: int) -> list[PostRequest]:
        posts = []
        for n in range(size):
            kind = n % 3
            if kind == 0:
                posts.append(request(alice, lobby, f"@{others[n % 10].username} @bob {n}"))
            elif kind == 1:
                posts.append(request(bob, lobby, f"reply {n}", reply_to_id=original.id))
            else:
                posts.append(request(alice, dm, f"dm {n} @bob"))
        return posts

    hook_queries.clear()
    posts_store(batch(3))
    posts_store(batch(60))
    assert hook_queries[0] == hook_queries[1] <= 4, hook_queries
    assert Notification.objects.filter(user=carol, kind="reply").count() == 21


# ----- edits and deletes ------------------------------------------------------------------------------


def edit(message: Message, body: str) -> Message:
    fresh = Message.objects.select_related("room", "author", "reply_to__author").get(pk=message.pk)
    return services.message_edit(user=fresh.author, message=fresh, body=body)


def test_an_edit_that_adds_a_mention_notifies_the_new_user(alice, bob, carol, lobby, sent):
    message = post(alice, lobby, "@bob hi")
    with sent.committing():
        edited = edit(message, "@bob and @carol hi")
    assert edited.mentions == ["bob", "carol"]
    assert Message.objects.get(pk=message.pk).mentions == ["bob", "carol"]
    assert kinds(message) == {"bob": "mention", "carol": "mention"}
    frames = user_frames(sent)
    assert set(frames) == {carol.id}, "bob was mentioned already: not notified again"
    assert frames[carol.id][0]["notification"]["message"]["mentions"] == ["bob", "carol"]
    [edited_event] = [event for event in sent if isinstance(event, events.MessageEdited)]
    assert edited_event.message["mentions"] == ["bob", "carol"]


def test_an_edit_that_mentions_the_replied_author_upgrades_the_reply(alice, bob, lobby, sent):
    """bob's read `reply` notification becomes an unread `mention`, announced again."""
    reply = post(alice, lobby, "answer", reply_to=post(bob, lobby, "question"))
    Notification.objects.filter(user=bob).update(is_read=True)
    with sent.committing():
        edit(reply, "answer, @bob")
    [row] = Notification.objects.filter(user=bob)
    assert (row.kind, row.is_read) == ("mention", False)
    [frame, state] = user_frames(sent)[bob.id]
    assert state == {"type": "read_state", "room": "lobby", "last_read_id": 0, "unread_count": 1, "mention_count": 1}
    assert frame["notification"]["id"] == row.id and frame["notification"]["kind"] == "mention"


def test_an_edit_that_drops_a_mention_removes_the_unread_notification(alice, bob, carol, lobby):
    message = post(alice, lobby, "@bob @carol hi")
    Notification.objects.filter(user=carol).update(is_read=True)
    edited = edit(message, "hi all")
    assert edited.mentions is None
    assert message_dict(edited)["mentions"] == []
    assert kinds(message) == {"carol": "mention"}, "bob's unread one is gone, carol's read one stays"


def test_an_edit_that_drops_a_mention_keeps_the_reply_it_still_is(alice, bob, lobby):
    reply = post(alice, lobby, "@bob answer", reply_to=post(bob, lobby, "question"))
    assert kinds(reply) == {"bob": "mention"}
    edit(reply, "answer")
    [row] = Notification.objects.filter(user=bob)
    assert (row.kind, row.is_read) == ("reply", False)


def test_an_edit_in_a_dm_that_drops_the_mention_downgrades_to_dm(alice, bob):
    dm = make_dm(alice, bob)
    message = post(alice, dm, "@bob hi")
    edit(message, "hi")
    assert kinds(message) == {"bob": "dm"}


def test_a_delete_removes_the_messages_notifications(alice, bob, carol, lobby):
    message = post(alice, lobby, "@bob @carol")
    kept = post(alice, lobby, "@bob again")
    services.message_delete(actor=alice, message=Message.objects.select_related("room").get(pk=message.pk))
    assert list(Notification.objects.values_list("message_id", flat=True)) == [kept.id]


@pytest.mark.postgres
def test_the_name_lookup_can_use_the_lower_username_index(alice):
    """Mentions look names up by LOWER(username): an index scan, not a scan of every user."""
    from rooms.conversations.notifications import users_named_query

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = users_named_query({"Alice", "bob", "émile"}).explain()
    assert "user_username_lower" in plan, plan
    assert list(users_named_query({"ALICE"}).values_list("username", flat=True)) == ["alice"]
