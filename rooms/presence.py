"""Who is online in each room, global across processes (CONTRACT §3 `presence`).

With REDIS_URL: per room, a sorted set of online usernames scored by expiry, and per (room, user)
a sorted set of that user's sockets scored by expiry. Each process refreshes its sockets every
heartbeat; a crashed process's sockets simply expire, and `reap` (run by every process that has
subscribers in the room) announces the users who went offline. All steps are Lua scripts, so a
transition (first socket in, last socket out) is seen by exactly one caller.

Without Redis there is one process, and an in-memory map is exact.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import cast

from django.conf import settings

from chatsite.redis_clients import get_async_redis

_PREFIX = "chatsite:presence"

# KEYS: users zset, conns zset. ARGV: username, conn, expiry, now, ttl_ms. Returns 1 if first socket.
_JOIN_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[1], 'GT', ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
if redis.call('ZCARD', KEYS[2]) == 1 then return 1 end
return 0
"""

# KEYS: users zset, conns zset. ARGV: username, conn, now. Returns 1 if that was the last socket.
_LEAVE_LUA = """
local removed = redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
if removed == 1 and redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
"""

# KEYS: users zset. ARGV: now, conns key prefix. Returns usernames whose every socket expired.
_REAP_LUA = """
local gone = {}
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, name in ipairs(stale) do
  local conns = ARGV[2] .. name
  redis.call('ZREMRANGEBYSCORE', conns, '-inf', ARGV[1])
  if redis.call('ZCARD', conns) == 0 then
    redis.call('ZREM', KEYS[1], name)
    table.insert(gone, name)
  end
end
return gone
"""


def _users_key(room_id: int) -> str:
    return f"{_PREFIX}:{room_id}:users"


def _conns_prefix(room_id: int) -> str:
    return f"{_PREFIX}:{room_id}:conns:"


class RedisPresence:
    def _script(self, source: str):
        # Registered on the current loop's client each time (cheap: it only hashes the source),
        # so a script never outlives the loop its client belongs to.
        return get_async_redis().register_script(source)

    @property
    def ttl(self) -> int:
        return settings.CHAT_PRESENCE_TTL_SECONDS

    async def join(self, *, room_id: int, username: str, conn: str) -> bool:
        """Record a socket in the room; True if it is the user's first (they came online)."""
        now = time.time()
        result = await self._script(_JOIN_LUA)(
            keys=[_users_key(room_id), _conns_prefix(room_id) + username],
            args=[username, conn, now + self.ttl, now, (self.ttl + 60) * 1000],
        )
        return bool(result)

    async def leave(self, *, room_id: int, username: str, conn: str) -> bool:
        """Forget a socket; True if it was the user's last (they went offline)."""
        result = await self._script(_LEAVE_LUA)(
            keys=[_users_key(room_id), _conns_prefix(room_id) + username], args=[username, conn, time.time()]
        )
        return bool(result)

    async def leave_many(self, entries: list[tuple[int, str, str]]) -> list[bool]:
        """Forget many (room_id, username, conn) sockets in one round trip; which went offline."""
        script = self._script(_LEAVE_LUA)
        now = time.time()
        async with get_async_redis().pipeline(transaction=False) as pipe:
            for room_id, username, conn in entries:
                await script(
                    keys=[_users_key(room_id), _conns_prefix(room_id) + username],
                    args=[username, conn, now],
                    client=pipe,
                )
            results = await pipe.execute()
        return [bool(result) for result in results]

    async def online(self, *, room_id: int) -> list[str]:
        names = await get_async_redis().zrangebyscore(_users_key(room_id), time.time(), "+inf")
        # Without scores redis-py answers a flat list of bytes members (its stubs cover every form).
        return sorted(name.decode() for name in cast(list[bytes], names))

    async def refresh(self, entries: list[tuple[int, str, str]]) -> None:
        """Extend the expiry of this process's (room_id, username, conn) sockets."""
        if not entries:
            return
        expiry = time.time() + self.ttl
        ttl_ms = (self.ttl + 60) * 1000
        async with get_async_redis().pipeline(transaction=False) as pipe:
            for room_id, username, conn in entries:
                conns_key = _conns_prefix(room_id) + username
                pipe.zadd(conns_key, {conn: expiry})
                pipe.pexpire(conns_key, ttl_ms)
                pipe.zadd(_users_key(room_id), {username: expiry}, gt=True)
                pipe.pexpire(_users_key(room_id), ttl_ms)
            await pipe.execute()

    async def reap(self, *, room_id: int) -> list[str]:
        """Usernames in the room all of whose sockets expired (a crashed process's users)."""
        gone = await self._script(_REAP_LUA)(keys=[_users_key(room_id)], args=[time.time(), _conns_prefix(room_id)])
        return [name.decode() for name in gone]


class LocalPresence:
    def __init__(self) -> None:
        self._rooms: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))

    async def join(self, *, room_id: int, username: str, conn: str) -> bool:
        conns = self._rooms[room_id][username]
        conns.add(conn)
        return len(conns) == 1

    async def leave(self, *, room_id: int, username: str, conn: str) -> bool:
        users = self._rooms.get(room_id, {})
        conns = users.get(username)
        if not conns or conn not in conns:
            return False
        conns.discard(conn)
        if not conns:
            del users[username]
            return True
        return False

    async def leave_many(self, entries: list[tuple[int, str, str]]) -> list[bool]:
        return [await self.leave(room_id=r, username=u, conn=c) for r, u, c in entries]

    async def online(self, *, room_id: int) -> list[str]:
        return sorted(self._rooms.get(room_id, {}))

    async def refresh(self, entries: list[tuple[int, str, str]]) -> None:
        return None

    async def reap(self, *, room_id: int) -> list[str]:
        return []


def make_presence() -> RedisPresence | LocalPresence:
    return RedisPresence() if settings.REDIS_URL else LocalPresence()
