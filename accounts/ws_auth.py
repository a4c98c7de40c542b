"""WebSocket handshake middleware: full origin check, then authentication into `scope["user"]`.

Credentials, in order: `?ticket=` (single use), `Authorization: Bearer <access JWT>`, the Django
session cookie. The cookie counts only when the handshake carries an allowed `Origin`: a native
client that sends no Origin must use a header or a ticket (CONTRACT §3). A token or ticket issued
before the user's credentials last ended (password change, deactivation: the token epoch) is
refused, on the user row the handshake loads anyway. State lives only in the scope: `user`,
`auth_method`, and `credential` (accounts/credentials.py, what the engine re-checks); the consumer
refuses the handshake when `scope["user"]` is not authenticated.
"""

from __future__ import annotations

from importlib import import_module
from urllib.parse import parse_qs

from channels.auth import get_user as get_session_user
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from accounts.credentials import Credential
from accounts.tickets import ticket_redeem
from accounts.tokens import token_epoch_matches
from chatsite import metrics
from rooms.db import run_in_db_thread


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


class FullOriginValidator:
    """Refuse a handshake whose Origin is not one of ALLOWED_ORIGINS (scheme, host and port).

    Unlike channels' AllowedHostsOriginValidator this compares the whole origin and lets through
    clients that send no Origin at all (native apps), marking them so cookies are not trusted.
    """

    def __init__(self, inner):
        self.inner = inner
        self.allowed = {origin.rstrip("/").lower() for origin in settings.ALLOWED_ORIGINS}

    async def __call__(self, scope, receive, send):
        origin = _header(scope, b"origin")
        if origin is not None and origin.rstrip("/").lower() not in self.allowed:
            metrics.HANDSHAKES_REFUSED.labels(reason="origin").inc()
            await send({"type": "websocket.close", "code": 4001})
            return
        return await self.inner({**scope, "origin": origin}, receive, send)


@run_in_db_thread
def _user_for_id(user_id: int):
    """The active, not site-banned user with this id, in one query; None otherwise."""
    from rooms.selectors import user_for_handshake

    return user_for_handshake(user_id=user_id)


@run_in_db_thread
def _session_for_key(session_key: str):
    engine = import_module(settings.SESSION_ENGINE)
    return engine.SessionStore(session_key)


async def authenticate_scope(scope) -> tuple[object, str, Credential | None]:
    """(user or None, how, credential) for a handshake; `how` names the credential or why none was accepted."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if "ticket" in query:
        redeemed = await run_in_db_thread(ticket_redeem)(query["ticket"][0])
        if redeemed is None:
            return None, "bad_ticket", None
        user_id, epoch = redeemed
        user = await _user_for_id(user_id)
        if user is None:
            return None, "inactive_or_banned", None
        if user.token_epoch != epoch:
            return None, "revoked", None
        return user, "ticket", Credential(user_id=user.id, token_epoch=epoch)

    authorization = _header(scope, b"authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None, "bad_header", None
        try:
            access = AccessToken(token.strip())
            user_id = int(access["user_id"])
        except (TokenError, KeyError, ValueError, TypeError):
            return None, "bad_token", None
        user = await _user_for_id(user_id)
        if user is None:
            return None, "inactive_or_banned", None
        if not token_epoch_matches(access, user):
            return None, "revoked", None
        return user, "jwt", Credential(user_id=user.id, token_epoch=user.token_epoch)

    if scope.get("origin") is None:
        return None, "no_credentials", None
    cookie = _header(scope, b"cookie")
    session_key = parse_cookie(cookie).get(settings.SESSION_COOKIE_NAME) if cookie else None
    if not session_key:
        return None, "no_credentials", None
    session = await _session_for_key(session_key)
    # Django's get_user also checks the session's password hash: a password change ended it.
    user = await get_session_user({"session": session})
    if not user.is_authenticated:
        return None, "bad_session", None
    user = await _user_for_id(user.id)
    if user is None:
        return None, "inactive_or_banned", None
    return user, "session", Credential(user_id=user.id, token_epoch=user.token_epoch, session_key=session.session_key)


class WebSocketAuthMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        user, how, credential = await authenticate_scope(scope)
        return await self.inner(
            {**scope, "user": user or AnonymousUser(), "auth_method": how, "credential": credential}, receive, send
        )
