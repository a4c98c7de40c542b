"""The batch write path (rooms/posting.py posts_store) against the real database and Redis:
ordering under the room locks, one bad row among good ones, slow mode and client_id races."""

from __future__ import annotations

import pytest
from django.test import override_settings

from rooms import ratelimit, services
from rooms.models import Message, Report, Room
from rooms.posting import PostRequest, posts_store
from rooms.protocol import message_dict

pytestmark = pytest.mark.django_db


def request(user, room, body: str, **fields) -> PostRequest:
    return PostRequest(
        user_id=user.id, username=user.username, room_id=room.id, room_slug=room.slug, body=body, **fields
    )


def test_a_batch_of_two_rooms_chains_ids_and_versions_per_room_in_send_order(alice, bob, lobby, room_factory):
    """Ids ascend in send order; prev_id and version chain within each room; rooms track the last."""
    other = room_factory("other", members=[alice])
    outcomes = posts_store(
        [request(alice, lobby, "1"), request(alice, other, "2"), request(bob, lobby, "3"), request(alice, other, "4")]
    )
    messages = [outcome.message for outcome in outcomes]
    assert all(outcome.created for outcome in outcomes)
    ids = [message.id for message in messages]
    assert ids == sorted(ids)
    assert (messages[0].prev_id, messages[2].prev_id) == (0, messages[0].id)
    assert (messages[1].prev_id, messages[3].prev_id) == (0, messages[1].id)
    assert messages[2].version == messages[0].version + 1
    lobby.refresh_from_db()
    other.refresh_from_db()
    assert (lobby.last_message_id, other.last_message_id) == (messages[2].id, messages[3].id)
    stored = Message.objects.select_related("room", "author").get(pk=messages[2].id)
    assert outcomes[2].payload == message_dict(stored)


def test_bad_rows_are_answered_alone_and_the_good_ones_stored(alice, bob, carol_factory, lobby):
    """NUL, a lone surrogate, an empty body, a non-member, a muted and a banned author: each answered
    on its own; the two good posts around them are stored."""
    carol = carol_factory()
    services.room_mute(actor=lobby.owner, room=lobby, username=bob.username)
    outcomes = posts_store(
        [
            request(alice, lobby, "good"),
            request(alice, lobby, "nul\x00byte"),
            request(alice, lobby, "x\ud800y"),
            request(alice, lobby, "   "),
            request(carol, lobby, "not a member"),
            request(bob, lobby, "muted"),
            request(alice, lobby, "bad id", client_id="c\x00"),
            request(alice, lobby, "good too"),
        ]
    )
    assert [o.error.code if o.error else "stored" for o in outcomes] == [
        "stored",
        "bad_request",
        "bad_request",
        "bad_request",
        "forbidden",
        "forbidden",
        "bad_request",
        "stored",
    ]
    assert list(Message.objects.values_list("body_raw", flat=True)) == ["good", "good too"]


@pytest.fixture
def carol_factory(user_factory):
    return lambda: user_factory("carol")


def test_a_ban_committed_before_the_batch_is_seen_by_it(alice, bob, lobby):
    """The batch re-checks bans under the room lock, whatever a socket's cache still believes."""
    services.room_ban(actor=lobby.owner, room=lobby, username=bob.username)
    [outcome] = posts_store([request(bob, lobby, "still here?")])
    assert outcome.error is not None and outcome.error.code == "forbidden"
    assert not Message.objects.exists()


def test_slow_mode_accepts_one_of_five_racing_posts(alice, bob, lobby):
    """Five posts by one user in a 60 s slow-mode room in one batch: one stored, four slow_mode."""
    services.room_update(actor=lobby.owner, room=lobby, slow_mode_seconds=60)
    outcomes = posts_store([request(bob, lobby, f"race {n}") for n in range(5)])
    assert [o.error.code if o.error else "stored" for o in outcomes] == ["stored"] + ["slow_mode"] * 4
    assert all(0 < o.error.retry_after <= 60 for o in outcomes[1:] if o.error)
    [later] = posts_store([request(bob, lobby, "later")])
    assert later.error is not None and later.error.code == "slow_mode"


def test_room_moderators_are_exempt_from_slow_mode(alice, lobby):
    """`can_moderate` posts are not slowed."""
    services.room_update(actor=lobby.owner, room=lobby, slow_mode_seconds=60)
    owner = lobby.owner
    outcomes = posts_store([request(owner, lobby, f"{n}", can_moderate=True) for n in range(3)])
    assert all(o.created for o in outcomes)


def test_a_client_id_twice_in_one_batch_stores_once(alice, lobby):
    """The second post with the same client_id is answered with the first one's message."""
    first, second = posts_store(
        [request(alice, lobby, "once", client_id="c-1"), request(alice, lobby, "again", client_id="c-1")]
    )
    assert first.created and not second.created
    assert second.message is first.message
    assert Message.objects.count() == 1


def test_a_client_id_stored_earlier_answers_the_stored_message(alice, lobby):
    """A resend of a stored client_id answers with the stored row: not stored, not counted."""
    [first] = posts_store([request(alice, lobby, "once", client_id="c-1")])
    [again] = posts_store([request(alice, lobby, "different text", client_id="c-1")])
    assert not again.created and again.message is not None and again.message.id == first.message.id
    assert again.payload is not None and again.payload["body"] == "once"


@override_settings(RATE_LIMIT_MESSAGES="3/60s", CHAT_MESSAGE_RATE=(3, 60.0))
def test_the_rate_limit_refuses_beyond_the_bucket_and_refused_posts_spend_nothing(alice, lobby, settings):
    """With 3 tokens: a filtered-free batch of 5 stores 3 and answers 2 rate_limited; a post refused
    before the rate limit (not a member) spends no token."""
    outcomes = posts_store([request(alice, lobby, f"{n}") for n in range(5)])
    assert [o.error.code if o.error else "stored" for o in outcomes] == ["stored"] * 3 + ["rate_limited"] * 2
    assert all(o.error.retry_after > 0 for o in outcomes[3:] if o.error)


@override_settings(CHAT_MESSAGE_RATE=(2, 60.0))
def test_consume_many_spends_one_token_per_entry_in_order(alice, bob):
    """consume_many: a user listed three times with two tokens gets the third refused; others unaffected."""
    refusals = ratelimit.consume_many(user_ids=[alice.id, bob.id, alice.id, alice.id], action="message")
    assert [r is None for r in refusals] == [True, True, True, False]


def test_flag_terms_open_a_system_report_in_the_batch(alice, lobby, moderator):
    """A `flag` term lets the post through and opens a report by the system, in the same transaction."""
    services.filter_term_add(actor=moderator, term="sketchy", action="flag")
    outcomes = posts_store([request(alice, lobby, "a sketchy offer"), request(alice, lobby, "fine")])
    assert all(o.created for o in outcomes)
    report = Report.objects.get()
    assert report.message_id == outcomes[0].message.id and report.reporter is None


def test_block_terms_answer_filtered_and_store_nothing(alice, lobby, moderator):
    """A `block` term answers `filtered` for that post only."""
    services.filter_term_add(actor=moderator, term="forbidden-word", action="block")
    outcomes = posts_store([request(alice, lobby, "say forbidden-word"), request(alice, lobby, "fine")])
    assert [o.error.code if o.error else "stored" for o in outcomes] == ["filtered", "stored"]


def test_a_reply_to_another_room_is_refused(alice, lobby, room_factory):
    """reply_to must name a live message of the same room."""
    other = room_factory("other", members=[alice])
    [elsewhere] = posts_store([request(alice, other, "there")])
    outcomes = posts_store(
        [
            request(alice, lobby, "reply", reply_to_id=elsewhere.message.id),
            request(alice, lobby, "x", reply_to_id=10**9),
        ]
    )
    assert [o.error.code if o.error else "stored" for o in outcomes] == ["bad_request", "bad_request"]
    # Ids beyond PostgreSQL's bigint are bad input, not an outage.
    [huge] = posts_store([request(alice, lobby, "x", reply_to_id=2**70)])
    assert huge.error is not None and huge.error.code == "bad_request"


def test_a_deleted_room_answers_not_found(alice, lobby):
    """A post for a room deleted in between is answered not_found."""
    post = request(alice, lobby, "hello")
    Room.objects.filter(pk=lobby.pk).delete()
    [outcome] = posts_store([post])
    assert outcome.error is not None and outcome.error.code == "not_found"
