"""What authenticated a connection, and whether it still holds (CONTRACT §7).

accounts/ws_auth.py puts a `Credential` in `scope["credential"]` at every accepted handshake. A
connection's credential ends when its user is deleted or deactivated, when the user's token epoch
was raised since (password change, deactivation), when the session it came from ended (web
logout), or when the user is banned site-wide. `credentials_ended` checks a whole batch in two
queries, for the real-time engine's heartbeat re-check: a lost close event can then keep no
connection open for longer than one heartbeat.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

CLOSE_CREDENTIALS_ENDED = 4001
CLOSE_SITE_BANNED = 4003


@dataclass(frozen=True)
class Credential:
    """The user, the token epoch seen at the handshake, and the session key for cookie logins."""

    user_id: int
    token_epoch: int
    session_key: str | None = None

    def __repr__(self) -> str:  # never print a session key, not even in a traceback
        return f"Credential(user_id={self.user_id}, token_epoch={self.token_epoch}, session={bool(self.session_key)})"


# SQLite allows a limited number of parameters per statement; PostgreSQL takes one array.
_SQLITE_CHUNK = 900


def _chunks(values: list) -> Iterator[list]:
    """The whole list at once on PostgreSQL (`= ANY(%s)`), SQLite-sized slices elsewhere."""
    size = len(values) if connection.vendor == "postgresql" else _SQLITE_CHUNK
    for start in range(0, len(values), max(size, 1)):
        yield values[start : start + size]


def _one_of(values: list, params: list) -> str:
    if connection.vendor == "postgresql":
        params.append(values)
        return "= ANY(%s)"
    params.extend(values)
    return "IN (" + ", ".join(["%s"] * len(values)) + ")"


def _standing(user_ids: list[int]) -> dict[int, tuple[int | None, bool]]:
    """(token epoch, or None when inactive; site-banned now) of each user among `user_ids` that
    exists: one query (per SQLite-sized slice), the user rows and their site ban together."""
    from rooms.models import SiteBan, restriction_active_sql

    users = get_user_model()._meta.db_table
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    standing: dict[int, tuple[int | None, bool]] = {}
    for chunk in _chunks(user_ids):
        params: list = [now]
        sql = (
            f"SELECT u.id, u.token_epoch, u.is_active, b.id IS NOT NULL AND {restriction_active_sql('b', '%s')} "
            f"FROM {users} u LEFT JOIN {SiteBan._meta.db_table} b ON b.user_id = u.id "
            f"WHERE u.id {_one_of(chunk, params)}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            standing.update({row[0]: (row[1] if row[2] else None, bool(row[3])) for row in cursor.fetchall()})
    return standing


def _live_sessions(keys: list[str]) -> set[str]:
    """The keys among `keys` whose session still exists and has not expired."""
    if not keys:
        return set()
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db":
        from django.contrib.sessions.models import Session

        now = connection.ops.adapt_datetimefield_value(timezone.now())
        live: set[str] = set()
        for chunk in _chunks(keys):
            params: list = []
            sql = (
                f"SELECT session_key FROM {Session._meta.db_table} "
                f"WHERE session_key {_one_of(chunk, params)} AND expire_date > %s"
            )
            params.append(now)
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                live.update(row[0] for row in cursor.fetchall())
        return live
    # Any other engine answers through its own store (cache lookups, not queries).
    store = import_module(settings.SESSION_ENGINE).SessionStore
    return {key for key in keys if store().exists(key)}


def credentials_ended(credentials: Iterable[Credential]) -> dict[Credential, int]:
    """The credentials that no longer hold, each with the close code its connections get
    (4003 for a site ban, 4001 otherwise). Two queries on PostgreSQL whatever the batch size: the
    users with their site bans, and the sessions (only when some credential is a session's)."""
    batch = set(credentials)
    if not batch:
        return {}
    standing = _standing(sorted({credential.user_id for credential in batch}))
    sessions = _live_sessions(sorted({credential.session_key for credential in batch if credential.session_key}))
    ended: dict[Credential, int] = {}
    for credential in batch:
        epoch, is_banned = standing.get(credential.user_id, (None, False))
        if is_banned:
            ended[credential] = CLOSE_SITE_BANNED
        elif epoch != credential.token_epoch or (credential.session_key and credential.session_key not in sessions):
            ended[credential] = CLOSE_CREDENTIALS_ENDED
    return ended
