"""Single-use WebSocket tickets (CONTRACT §2 `auth/ws-ticket/`), redeemable by any process.

Stored in the Django cache, which is Redis when REDIS_URL is set. Single use rests on the cache's
`delete` answering whether the key was there: of two concurrent redeemers only one sees True. A
ticket remembers the user's token epoch, so one issued before a password change is refused, and
its expiry time by `chatsite.clock`: the cache's timeout only frees the key, the check is ours.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.cache import cache

from chatsite import clock

_PREFIX = "wsticket:"


def ticket_issue(*, user) -> tuple[str, int]:
    """A fresh ticket for `user` and its lifetime in seconds."""
    ticket = secrets.token_urlsafe(32)
    ttl = settings.CHAT_TICKET_TTL_SECONDS
    cache.set(_PREFIX + ticket, (user.id, user.token_epoch, clock.now() + ttl), timeout=ttl)
    return ticket, ttl


def ticket_redeem(ticket: str) -> tuple[int, int] | None:
    """(user id, token epoch) behind a ticket, consuming it; None if unknown, expired or already used."""
    if not isinstance(ticket, str) or not 20 <= len(ticket) <= 100:
        return None
    key = _PREFIX + ticket
    value = cache.get(key)
    if value is None or not cache.delete(key):
        return None
    if isinstance(value, int):  # issued by a process from before epochs existed
        return value, 0
    user_id, epoch, *expires = value  # tickets of processes from before the expiry field have none
    if expires and clock.now() >= expires[0]:
        return None
    return int(user_id), int(epoch)
