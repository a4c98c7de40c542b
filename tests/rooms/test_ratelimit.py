"""rooms/ratelimit.py: the token bucket of CONTRACT §1 on Redis and in memory (the same answers),
the batch form's one round trip and its order, the per-socket LocalBucket."""

from __future__ import annotations

import pytest

from rooms import ratelimit
from rooms.exceptions import RateLimited
from rooms.ratelimit import LocalBucket, Rule


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request, settings):
    """Either store of the shared buckets (the local one with REDIS_URL unset)."""
    if request.param == "local":
        settings.REDIS_URL = ""
    settings.CHAT_MESSAGE_RATE = (3, 6.0)  # 3 tokens, one back every 2 s
    return request.param


@pytest.fixture
def clock(monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: now[0])
    return now


def test_the_bucket_allows_its_capacity_then_says_when_to_retry(backend, clock):
    """Three posts pass, the fourth is refused with the seconds until a token is back."""
    for _ in range(3):
        ratelimit.consume(user_id=1, action="message")
    with pytest.raises(RateLimited) as refused:
        ratelimit.consume(user_id=1, action="message")
    assert refused.value.retry_after == pytest.approx(2.0, abs=0.01)
    assert "at most 3 per 6 s" in refused.value.detail


def test_tokens_come_back_at_the_refill_rate_and_users_are_separate(backend, clock):
    """After 2 s one token is back (not two); another user's bucket is untouched."""
    for _ in range(3):
        ratelimit.consume(user_id=1, action="message")
    clock[0] += 2.0
    ratelimit.consume(user_id=1, action="message")
    with pytest.raises(RateLimited):
        ratelimit.consume(user_id=1, action="message")
    for _ in range(3):
        ratelimit.consume(user_id=2, action="message")


def test_a_refusal_spends_nothing(backend, clock):
    """Being refused does not push the next token further away."""
    for _ in range(3):
        ratelimit.consume(user_id=1, action="message")
    for _ in range(5):
        with pytest.raises(RateLimited):
            ratelimit.consume(user_id=1, action="message")
    clock[0] += 2.0
    ratelimit.consume(user_id=1, action="message")


def test_consume_many_spends_one_token_per_entry_in_order(backend, clock):
    """A batch with one user four times and another once: the fourth of the first is refused."""
    answers = ratelimit.consume_many(user_ids=[1, 1, 2, 1, 1], action="message")
    assert [answer is None for answer in answers] == [True, True, True, True, False]
    assert answers[4] is not None and answers[4].retry_after == pytest.approx(2.0, abs=0.01)
    with pytest.raises(RateLimited):  # the single form shares the same bucket
        ratelimit.consume(user_id=1, action="message")


@pytest.mark.redis
def test_consume_many_is_one_round_trip_and_survives_a_script_flush(settings, clock, monkeypatch):
    """One pipeline for the whole batch; Redis forgetting the script (restart) reloads it once."""
    from chatsite.redis_clients import get_redis

    settings.CHAT_MESSAGE_RATE = (3, 6.0)
    ratelimit.consume_many(user_ids=[7], action="message")
    get_redis().script_flush()
    executed = []
    client = get_redis()  # the process's one client
    pipeline = client.pipeline

    def counted(*args, **kwargs):
        executed.append(1)
        return pipeline(*args, **kwargs)

    monkeypatch.setattr(client, "pipeline", counted)
    answers = ratelimit.consume_many(user_ids=[7, 7, 7, 8], action="message")
    assert [answer is None for answer in answers] == [True, True, False, True]
    assert len(executed) == 2  # the NoScriptError round, then the reloaded one
    executed.clear()
    ratelimit.consume_many(user_ids=[9, 10, 11], action="message")
    assert len(executed) == 1


def test_an_unknown_action_names_the_fix():
    """A rate rule nobody defined is a programming error that says where to add it."""
    with pytest.raises(ValueError, match=r"rooms\.ratelimit\.rule_for"):
        ratelimit.consume(user_id=1, action="nonsense")


def test_local_bucket_per_socket(monkeypatch):
    """The per-socket bucket (joins): capacity, then a refusal with the wait, refilled with time."""
    now = [50.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    bucket = LocalBucket(Rule(capacity=2, window_seconds=10.0))
    bucket.take("join")
    bucket.take("join")
    with pytest.raises(RateLimited) as refused:
        bucket.take("join")
    assert refused.value.retry_after == pytest.approx(5.0)
    now[0] += 5.0
    bucket.take("join")
