"""Connection handshakes: full origin check, then authentication into `scope["user"]`.

One definition for both long-lived connections: the WebSocket `/ws/chat/` (CONTRACT §3) and the
Server-Sent Events stream `/api/v1/stream/` (§6), which must follow the same origin rules.

Credentials, in order: `?ticket=` (single use), `Authorization: Bearer <access JWT>`, the Django
session cookie. The cookie counts only from a page of an allowed origin (`cookie_is_trusted`): a
native client that sends no Origin must use a header or a ticket (CONTRACT §3). A token or ticket
issued before the user's credentials last ended (password change, deactivation: the token epoch)
is refused, on the user row the handshake loads anyway. State lives only in the scope: `user`,
`auth_method`, and `credential` (accounts/credentials.py, what the engine re-checks); the consumer
and the stream refuse the connection when `scope["user"]` is not authenticated.
"""

from __future__ import annotations

import json
from functools import cache
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
from chatsite.api.errors import error_body, retry_after_header
from rooms.realtime.db import run_in_db_thread


def header(scope, name: bytes) -> str | None:
    """The first value of a request header (`name` in lower case), or None."""
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


@cache
def _normalised_origins(origins: tuple[str, ...]) -> frozenset[str]:
    return frozenset(origin.rstrip("/").lower() for origin in origins)


def origin_is_allowed(origin: str | None) -> bool:
    """No Origin (a native client), or one of ALLOWED_ORIGINS compared in full: scheme, host, port."""
    return origin is None or origin.rstrip("/").lower() in _normalised_origins(tuple(settings.ALLOWED_ORIGINS))


def cookie_is_trusted(scope) -> bool:
    """May the session cookie authenticate this connection (after the origin check passed)?

    With an Origin it was one of ALLOWED_ORIGINS. Without one, a WebSocket handshake is a native
    client (browsers always send Origin on upgrades): never by cookie. A same-origin `EventSource`
    GET, though, carries no Origin (Fetch: only CORS-mode and non-GET requests do), and browsers
    mark it `Sec-Fetch-Site: same-origin`; any cross-site request a page can trigger says otherwise.
    """
    if scope.get("origin") is not None:
        return True
    return scope.get("type") == "http" and header(scope, b"sec-fetch-site") == "same-origin"


async def refuse_http(send, *, status: int, code: str, detail: str, retry_after: float | None = None) -> None:
    """Answer an HTTP connection request (the stream) with the API's error object, before any event."""
    body = json.dumps(error_body(code, detail, retry_after=retry_after)).encode()
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="api"'))
    if retry_after is not None:
        headers.append((b"retry-after", retry_after_header(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FullOriginValidator:
    """Refuse a connection whose Origin is not one of ALLOWED_ORIGINS (scheme, host and port).

    Unlike channels' AllowedHostsOriginValidator this compares the whole origin and lets through
    clients that send no Origin at all (native apps), marking them so cookies are not trusted. A
    refused WebSocket is closed before accept (HTTP 403); a refused stream request answers 403 JSON.
    """

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        origin = header(scope, b"origin")
        if not origin_is_allowed(origin):
            metrics.HANDSHAKES_REFUSED.labels(reason="origin").inc()
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4001})
            else:
                await refuse_http(
                    send,
                    status=403,
                    code="forbidden",
                    detail=f"Origin {origin!r} is not allowed; connect from a page of ALLOWED_ORIGINS, "
                    "or send no Origin and authenticate by Authorization header or ?ticket=.",
                )
            return
        return await self.inner({**scope, "origin": origin}, receive, send)


@run_in_db_thread
def _user_for_id(user_id: int):
    """The active, not site-banned user with this id, in one query; None otherwise."""
    from rooms.selectors import user_for_handshake

    return user_for_handshake(user_id=user_id)


@run_in_db_thread
def _refusal_for(user_id: int) -> str:
    """Why `_user_for_id` found no user, on the refusal path only: a site ban or an inactive account
    (REST answers the first 403 and the second 401; the stream does the same)."""
    from rooms.selectors import user_is_site_banned

    return "site_banned" if user_is_site_banned(user_id=user_id) else "inactive"


@run_in_db_thread
def _session_for_key(session_key: str):
    engine = import_module(settings.SESSION_ENGINE)
    return engine.SessionStore(session_key)


async def authenticate_scope(scope) -> tuple[object, str, Credential | None]:
    """(user or None, how, credential) for a handshake; `how` names the credential or why none was
    accepted (`no_credentials`, `bad_ticket`, `bad_header`, `bad_token`, `bad_session`, `revoked`,
    `inactive`, `site_banned`)."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if "ticket" in query:
        redeemed = await run_in_db_thread(ticket_redeem)(query["ticket"][0])
        if redeemed is None:
            return None, "bad_ticket", None
        user_id, epoch = redeemed
        user = await _user_for_id(user_id)
        if user is None:
            return None, await _refusal_for(user_id), None
        if user.token_epoch != epoch:
            return None, "revoked", None
        return user, "ticket", Credential(user_id=user.id, token_epoch=epoch)

    authorization = header(scope, b"authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None, "bad_header", None
        try:
            access = AccessToken(token.strip())  # type: ignore[arg-type]  # simplejwt takes the encoded string
            user_id = int(access["user_id"])
        except (TokenError, KeyError, ValueError, TypeError):
            return None, "bad_token", None
        user = await _user_for_id(user_id)
        if user is None:
            return None, await _refusal_for(user_id), None
        if not token_epoch_matches(access, user):
            return None, "revoked", None
        return user, "jwt", Credential(user_id=user.id, token_epoch=user.token_epoch)

    if not cookie_is_trusted(scope):
        return None, "no_credentials", None
    cookie = header(scope, b"cookie")
    session_key = parse_cookie(cookie).get(settings.SESSION_COOKIE_NAME) if cookie else None
    if not session_key:
        return None, "no_credentials", None
    session = await _session_for_key(session_key)
    # Django's get_user also checks the session's password hash: a password change ended it.
    user = await get_session_user({"session": session})
    if not user.is_authenticated:
        return None, "bad_session", None
    found = await _user_for_id(user.id)
    if found is None:
        return None, await _refusal_for(user.id), None
    return found, "session", Credential(user_id=user.id, token_epoch=user.token_epoch, session_key=session.session_key)


class ConnectionAuthMiddleware:
    """Authenticate a WebSocket or stream connection into the scope (behind FullOriginValidator)."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        user, how, credential = await authenticate_scope(scope)
        return await self.inner(
            {**scope, "user": user or AnonymousUser(), "auth_method": how, "credential": credential}, receive, send
        )
