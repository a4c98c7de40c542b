"""What authenticated a connection, and whether it still holds (CONTRACT §7).

accounts/ws_auth.py puts a `Credential` in `scope["credential"]` at every accepted handshake. A
connection's credential ends when its user is deleted or deactivated, when the user's token epoch
was raised since (password change, deactivation), when the session it came from ended (web
logout), or when the user is banned site-wide. `credentials_ended` checks a whole batch in a few
queries, for the real-time engine's heartbeat re-check: a lost close event can then keep no
connection open for longer than one heartbeat.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model
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


def _live_sessions(keys: set[str]) -> set[str]:
    if not keys:
        return set()
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db":
        from django.contrib.sessions.models import Session

        return set(
            Session.objects.filter(session_key__in=keys, expire_date__gt=timezone.now()).values_list(
                "session_key", flat=True
            )
        )
    store = import_module(settings.SESSION_ENGINE).SessionStore
    return {key for key in keys if store().exists(key)}


def credentials_ended(credentials: Iterable[Credential]) -> dict[Credential, int]:
    """The credentials that no longer hold, each with the close code its connections get
    (4003 for a site ban, 4001 otherwise). Three queries, whatever the batch size."""
    from rooms.models import SiteBan

    batch = set(credentials)
    if not batch:
        return {}
    user_ids = {credential.user_id for credential in batch}
    current = dict(get_user_model().objects.filter(pk__in=user_ids, is_active=True).values_list("pk", "token_epoch"))
    banned = set(SiteBan.objects.active().filter(user_id__in=user_ids).values_list("user_id", flat=True))
    sessions = _live_sessions({credential.session_key for credential in batch if credential.session_key})
    ended: dict[Credential, int] = {}
    for credential in batch:
        if credential.user_id in banned:
            ended[credential] = CLOSE_SITE_BANNED
        elif current.get(credential.user_id) != credential.token_epoch or (
            credential.session_key and credential.session_key not in sessions
        ):
            ended[credential] = CLOSE_CREDENTIALS_ENDED
    return ended
