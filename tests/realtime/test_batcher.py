"""The post batcher (rooms/realtime/batcher.py) with a fake store, layer and feeds: batching,
answer order, a bad row among good ones, an outage mid-batch, backpressure."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from django.db import OperationalError

from rooms.exceptions import BadRequest, RateLimited
from rooms.models import Message
from rooms.posting import PostOutcome, PostRequest
from rooms.realtime import events
from rooms.realtime.batcher import Batcher


def post(user_id: int, room_id: int, body: str) -> PostRequest:
    return PostRequest(user_id=user_id, username=f"u{user_id}", room_id=room_id, room_slug=f"r{room_id}", body=body)


class FakeStore:
    """Stores posts in memory like posts_store: ids in order, prev_id per room; 'bad' bodies refused."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.last_id: dict[int, int] = {}
        self.next_id = 1
        self.fail_next = False
        self.release: asyncio.Event | None = None

    def __call__(self, posts: Sequence[PostRequest]) -> list[PostOutcome]:
        self.batches.append([p.body for p in posts])
        if self.fail_next:
            self.fail_next = False
            raise OperationalError("connection to server lost")
        outcomes = []
        for p in posts:
            if p.body == "bad":
                outcomes.append(PostOutcome(request=p, error=BadRequest("bad body")))
                continue
            message = Message(id=self.next_id, room_id=p.room_id, author_id=p.user_id, body=p.body)
            message.prev_id = self.last_id.get(p.room_id, 0)
            self.last_id[p.room_id] = self.next_id
            self.next_id += 1
            payload = {"id": message.id, "body": p.body}
            outcomes.append(PostOutcome(request=p, message=message, created=True, payload=payload))
        return outcomes


@pytest.fixture
def harness(settings):
    settings.CHAT_BATCH_WAIT_SECONDS = 0.001
    settings.CHAT_BATCH_MAX_POSTS = 4
    settings.CHAT_MAX_POSTS_IN_FLIGHT = 100
    store = FakeStore()
    log: list[tuple] = []
    sent: list[events.Event] = []

    async def send(event: events.Event) -> None:
        sent.append(event)

    batcher = Batcher(deliver_local=lambda room_id, message: log.append(("delivered", message.id)), send=send)
    batcher._store = _in_thread(store)
    return batcher, store, log, sent


def _in_thread(store):
    async def run(posts):
        return await asyncio.to_thread(store, posts)

    return run


async def settle(batcher: Batcher) -> None:
    while batcher.waiting or batcher._task is not None or batcher._sender is not None:
        await asyncio.sleep(0.001)


async def test_posts_submitted_together_share_one_transaction(harness):
    """Posts queued in the same moment are stored by one store call (up to the batch size)."""
    batcher, store, _log, _sent = harness
    for number in range(3):
        batcher.submit(post(1, 1, f"m{number}"), lambda outcome: None)
    await settle(batcher)
    assert store.batches == [["m0", "m1", "m2"]]


async def test_batches_are_bounded_and_answered_in_submission_order(harness):
    """Ten posts of two sockets in two rooms: batches of at most 4, every answer in send order,
    each message delivered locally just before its own answer."""
    batcher, store, log, _sent = harness
    for number in range(10):
        user_id, room_id = (1, 1) if number % 2 else (2, 2)
        batcher.submit(post(user_id, room_id, f"m{number}"), lambda o, n=number: log.append(("answered", n)))
    await settle(batcher)
    assert [len(batch) for batch in store.batches] == [4, 4, 2]
    assert log == [entry for n in range(10) for entry in (("delivered", n + 1), ("answered", n))]


async def test_one_layer_event_per_room_per_batch(harness):
    """A batch with posts in two rooms sends two layer events, each with that room's messages in order."""
    batcher, _store, _log, sent = harness
    for body, room_id in [("a", 1), ("b", 2), ("c", 1)]:
        batcher.submit(post(1, room_id, body), lambda outcome: None)
    await settle(batcher)
    assert [(e.room_id, [m["body"] for m in e.messages], e.prev_ids) for e in sent] == [
        (1, ["a", "c"], [0, 1]),
        (2, ["b"], [0]),
    ]


async def test_a_bad_row_is_answered_alone(harness):
    """One refused post in a batch is answered with its error; the others are stored."""
    batcher, _store, _log, _sent = harness
    answers: list[PostOutcome] = []
    for body in ["good", "bad", "good too"]:
        batcher.submit(post(1, 1, body), answers.append)
    await settle(batcher)
    assert [(a.created, a.error.code if a.error else None) for a in answers] == [
        (True, None),
        (False, "bad_request"),
        (True, None),
    ]


async def test_an_outage_answers_every_post_of_its_batch_and_the_next_batch_works(harness):
    """The database fails mid-batch: all its posts answer rate_limited with retry_after; later posts are stored."""
    batcher, store, _log, _sent = harness
    store.fail_next = True
    answers: list[PostOutcome] = []
    for body in ["x", "y"]:
        batcher.submit(post(1, 1, body), answers.append)
    await settle(batcher)
    batcher.submit(post(1, 1, "after"), answers.append)
    await settle(batcher)
    assert [a.error.code if a.error else "stored" for a in answers] == ["rate_limited", "rate_limited", "stored"]
    assert answers[0].error is not None and answers[0].error.retry_after == 1.0


async def test_backpressure_refuses_at_once_beyond_the_bound(harness, settings):
    """With CHAT_MAX_POSTS_IN_FLIGHT posts waiting, the next is refused with rate_limited at once."""
    batcher, _store, _log, _sent = harness
    settings.CHAT_MAX_POSTS_IN_FLIGHT = 3
    answers: list[PostOutcome] = []
    for body in ["1", "2", "3"]:
        batcher.submit(post(1, 1, body), answers.append)
    with pytest.raises(RateLimited) as refused:
        batcher.submit(post(1, 1, "4"), answers.append)
    assert refused.value.retry_after and refused.value.retry_after > 0
    await settle(batcher)
    assert len(answers) == 3 and all(a.created for a in answers)
    batcher.submit(post(1, 1, "5"), answers.append)  # room again once the queue drained
    await settle(batcher)
    assert answers[-1].created


async def test_a_failing_answer_does_not_cost_the_others_theirs(harness):
    """A socket whose answer callback raises does not stop the rest of the batch being answered."""
    batcher, _store, _log, _sent = harness
    answers: list[PostOutcome] = []

    def broken(outcome: PostOutcome) -> None:
        raise RuntimeError("socket gone")

    batcher.submit(post(1, 1, "a"), broken)
    batcher.submit(post(2, 1, "b"), answers.append)
    await settle(batcher)
    assert [a.request.body for a in answers] == ["b"]
