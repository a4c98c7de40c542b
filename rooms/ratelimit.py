"""Per-user token buckets shared by WebSocket and REST (CONTRACT §1 RATE_LIMIT_MESSAGES).

A bucket holds N tokens and refills at N per window. With REDIS_URL the bucket lives in Redis
(one Lua call, atomic across processes); without it, in this process's memory, which is exact
because without Redis there is only one process. No library here: the ones available count
fixed or sliding windows, not the token bucket the contract specifies.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from redis.exceptions import NoScriptError

from chatsite.redis_clients import get_redis
from rooms.exceptions import RateLimited


@dataclass(frozen=True)
class Rule:
    capacity: int
    window_seconds: float

    @property
    def refill_per_second(self) -> float:
        return self.capacity / self.window_seconds


def rule_for(action: str) -> Rule:
    if action == "message":
        return Rule(*settings.CHAT_MESSAGE_RATE)
    if action == "typing":
        # One typing notice per interval, with a little burst.
        interval = settings.CHAT_TYPING_INTERVAL_SECONDS
        return Rule(capacity=2, window_seconds=2 * interval)
    if action == "join":
        return Rule(*settings.CHAT_JOIN_RATE)
    if action == "reaction":
        # Its own bucket: reacting to many messages must not stop a user from posting.
        return Rule(*settings.CHAT_REACTION_RATE)
    raise ValueError(f"no rate rule for action {action!r}; add one to rooms.ratelimit.rule_for")


class LocalBucket:
    """A token bucket held by one connection (per-socket throttles: no other process shares it)."""

    __slots__ = ("_rule", "_tokens", "_ts")

    def __init__(self, rule: Rule) -> None:
        self._rule = rule
        self._tokens = float(rule.capacity)
        self._ts = time.monotonic()

    def take(self, action: str) -> None:
        """Take a token, or raise RateLimited with the seconds until one is back."""
        now = time.monotonic()
        rate = self._rule.refill_per_second
        self._tokens = min(self._rule.capacity, self._tokens + (now - self._ts) * rate)
        self._ts = now
        if self._tokens < 1:
            raise _refusal(action, self._rule, (1 - self._tokens) / rate)
        self._tokens -= 1


# KEYS[1] bucket; ARGV capacity, refill/s, now, cost. Returns {allowed, retry_after*1000}.
_TOKEN_BUCKET_LUA = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = capacity; ts = now end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return {allowed, math.ceil(retry * 1000)}
"""

_local_buckets: dict[str, tuple[float, float]] = {}
_local_lock = threading.Lock()
_script = None


def _consume_local(key: str, rule: Rule, now: float) -> float:
    with _local_lock:
        tokens, ts = _local_buckets.get(key, (float(rule.capacity), now))
        tokens = min(rule.capacity, tokens + max(0.0, now - ts) * rule.refill_per_second)
        if tokens >= 1:
            _local_buckets[key] = (tokens - 1, now)
            return 0.0
        _local_buckets[key] = (tokens, now)
        return (1 - tokens) / rule.refill_per_second


def _consume_redis(key: str, rule: Rule, now: float) -> float:
    global _script
    client = get_redis()
    if _script is None:
        _script = client.register_script(_TOKEN_BUCKET_LUA)
    allowed, retry_ms = _script(keys=[key], args=[rule.capacity, rule.refill_per_second, now, 1], client=client)
    return 0.0 if int(allowed) else int(retry_ms) / 1000


def consume(*, user_id: int, action: str) -> None:
    """Take one token from the user's bucket for `action`, or raise RateLimited(retry_after)."""
    rule = rule_for(action)
    key = f"chatsite:rl:{action}:{user_id}"
    now = time.time()
    retry_after = _consume_redis(key, rule, now) if settings.REDIS_URL else _consume_local(key, rule, now)
    if retry_after > 0:
        raise _refusal(action, rule, retry_after)


def _refusal(action: str, rule: Rule, retry_after: float) -> RateLimited:
    return RateLimited(
        f"Too many {action}s: at most {rule.capacity} per {rule.window_seconds:g} s. Try again in {retry_after:.1f} s.",
        retry_after=round(retry_after, 3),
    )


_script_sha: str | None = None


def _consume_redis_many(keys: list[str], rule: Rule, now: float) -> list[float]:
    """One pipelined round trip for many buckets (EVALSHA; the script is loaded once if missing)."""
    global _script_sha
    client = get_redis()
    if _script_sha is None:
        _script_sha = str(client.script_load(_TOKEN_BUCKET_LUA))
    args = (rule.capacity, rule.refill_per_second, now, 1)
    for _attempt in range(2):
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.evalsha(_script_sha, 1, key, *args)
            results = pipe.execute(raise_on_error=False)
        if not any(isinstance(result, NoScriptError) for result in results):
            break
        _script_sha = str(client.script_load(_TOKEN_BUCKET_LUA))  # Redis restarted or flushed its scripts
    for result in results:
        if isinstance(result, Exception):
            raise result
    return [0.0 if int(allowed) else int(retry_ms) / 1000 for allowed, retry_ms in results]


def consume_many(*, user_ids: list[int], action: str) -> list[RateLimited | None]:
    """Take one token for each entry of `user_ids` (a user may appear several times, spending one
    token each, in order): None where one was taken, else the RateLimited to answer. One Redis
    round trip for all of them (the batch write path)."""
    if not user_ids:
        return []
    rule = rule_for(action)
    keys = [f"chatsite:rl:{action}:{user_id}" for user_id in user_ids]
    now = time.time()
    if settings.REDIS_URL:
        waits = _consume_redis_many(keys, rule, now)
    else:
        waits = [_consume_local(key, rule, now) for key in keys]
    return [_refusal(action, rule, wait) if wait > 0 else None for wait in waits]


def reset_local_buckets() -> None:
    """Forget in-process buckets (tests)."""
    with _local_lock:
        _local_buckets.clear()
