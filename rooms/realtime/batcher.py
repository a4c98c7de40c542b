"""The process's post batcher (group commit): many sockets' posts, one transaction.

A socket's `message` frame is checked against its standing cache and handed here; the consumer
goes on reading at once. One batch is in flight per process: while it is in the database, new
posts queue, and the next batch takes them all (at most CHAT_BATCH_MAX_POSTS, gathered for at
most CHAT_BATCH_WAIT_SECONDS), so under load the cost of a transaction, a Redis round trip and a
layer message is shared by many posts, and at low load a post waits only a few milliseconds.

After a batch commits its messages are delivered on this process at once, in the order the
posts came (each socket's answers in its send order), then one layer event per room goes to the
other processes through one sender task, in batch order. More than CHAT_MAX_POSTS_IN_FLIGHT
posts waiting: refused at once with `rate_limited` and `retry_after` (backpressure). An outage
answers every post of the batch with `rate_limited` (nothing of it was stored).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from chatsite.logs import log_event
from rooms.exceptions import RateLimited
from rooms.posting import PostOutcome, PostRequest, posts_store
from rooms.realtime import events
from rooms.realtime.db import run_in_db_thread
from rooms.realtime.feed import FeedMessage

logger = logging.getLogger(__name__)

UNAVAILABLE_RETRY_SECONDS = 1.0
OVERLOAD_RETRY_SECONDS = 0.5

Answer = Callable[[PostOutcome], None]
Store = Callable[[Sequence[PostRequest]], list[PostOutcome]]
LocalDelivery = Callable[[int, FeedMessage], None]  # (room_id, message): this process's feeds


def unavailable(post: PostRequest) -> PostOutcome:
    return PostOutcome(
        request=post,
        error=RateLimited(
            "The server cannot store this right now (database or Redis unavailable); "
            "retry after retry_after seconds with the same client_id.",
            retry_after=UNAVAILABLE_RETRY_SECONDS,
        ),
    )


@dataclass
class _Queued:
    post: PostRequest
    answer: Answer


class Batcher:
    """One per event loop (the hub owns it). `submit` is synchronous; answers are callbacks."""

    def __init__(
        self,
        *,
        deliver_local: LocalDelivery,
        origin: Callable[[], str | None] = lambda: None,
        store: Store = posts_store,
        send: Callable[[events.Event], Awaitable[None]] = events.send_async,
    ) -> None:
        self._deliver_local = deliver_local
        self._origin = origin
        self._store = run_in_db_thread(store)
        self._send = send
        self._queue: list[_Queued] = []
        self._in_flight = 0
        self._task: asyncio.Task | None = None
        self._outgoing: asyncio.Queue[events.Event] = asyncio.Queue()
        self._sender: asyncio.Task | None = None
        self.batches = 0  # how many transactions ran (tests, metrics)

    @property
    def waiting(self) -> int:
        """Posts queued or in the database now."""
        return len(self._queue) + self._in_flight

    def submit(self, post: PostRequest, answer: Answer) -> None:
        """Queue a post; `answer(outcome)` is called on the event loop once it is decided.
        RateLimited at once (nothing queued) when the process already has too many waiting."""
        if self.waiting >= settings.CHAT_MAX_POSTS_IN_FLIGHT:
            raise RateLimited(
                "The server is busy; retry shortly with the same client_id.", retry_after=OVERLOAD_RETRY_SECONDS
            )
        self._queue.append(_Queued(post, answer))
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="post-batcher")

    async def _run(self) -> None:
        try:
            while self._queue:
                if len(self._queue) < settings.CHAT_BATCH_MAX_POSTS:
                    # Gather what the other sockets send in the same moment; under load the batch
                    # in flight already did the gathering and this wait is skipped.
                    await asyncio.sleep(settings.CHAT_BATCH_WAIT_SECONDS)
                batch = self._queue[: settings.CHAT_BATCH_MAX_POSTS]
                del self._queue[: len(batch)]
                self._in_flight = len(batch)
                outcomes = await self._write(batch)
                self._in_flight = 0
                self.batches += 1
                self._complete(batch, outcomes)
        finally:
            self._task = None
            self._in_flight = 0

    async def _write(self, batch: list[_Queued]) -> list[PostOutcome]:
        posts = [queued.post for queued in batch]
        try:
            outcomes = await self._store(posts)
        except (DatabaseError, RedisError):
            log_event(logger, "post_batch_unavailable", level=logging.WARNING, exc_info=True, posts=len(posts))
            return [unavailable(post) for post in posts]
        except Exception:
            # A bug, not bad input (that is answered per post): every post still gets an answer.
            logger.exception("storing a batch of %d posts failed", len(posts))
            return [unavailable(post) for post in posts]
        if len(outcomes) != len(posts):
            raise RuntimeError(f"the store answered {len(outcomes)} outcomes for {len(posts)} posts")
        return outcomes

    def _complete(self, batch: list[_Queued], outcomes: list[PostOutcome]) -> None:
        """Deliver and answer in submission order, then hand the layer events to the sender."""
        room_events = events.messages_created_events(outcomes, origin=self._origin() or "")
        accepted_at = room_events[0].accepted_at if room_events else None
        for queued, outcome in zip(batch, outcomes, strict=True):
            if outcome.created and outcome.message is not None and outcome.payload is not None:
                self._deliver_local(
                    outcome.message.room_id,
                    FeedMessage(
                        id=outcome.message.id,
                        prev_id=outcome.message.prev_id,
                        payload=outcome.payload,
                        accepted_at=accepted_at,
                    ),
                )
            try:
                queued.answer(outcome)
            except Exception:  # one socket's failure must not cost the others their answers
                logger.exception("answering a post failed")
        # Notifications go the same way, after the messages they are about: from this task, never
        # from the database thread (whose on-commit hooks would block it on the event loop).
        for event in [*room_events, *events.notification_events(outcomes)]:
            self._outgoing.put_nowait(event)
        if not self._outgoing.empty() and self._sender is None:
            self._sender = asyncio.create_task(self._send_loop(), name="post-batcher-sender")

    async def _send_loop(self) -> None:
        """One layer message per room per batch, in batch order (other processes' feeds order by
        prev_id anyway; in order they need no gap fill)."""
        try:
            while not self._outgoing.empty():
                await self._send(self._outgoing.get_nowait())
        finally:
            self._sender = None
