"""JWT pairs for mobile clients (CONTRACT §2, §7): issue, rotate, revoke, and the token epoch.

simplejwt signs and verifies; this module decides what a token may still do:

- Every pair carries the user's `token_epoch` (the `epoch` claim). A password change or a
  deactivation raises the epoch (accounts/services.py), so every token issued before is refused by
  one integer comparison on the user row that authentication loads anyway: no extra query per
  request or WebSocket handshake.
- Refresh tokens rotate: each use blacklists the one given (simplejwt's blacklist app) and issues a
  new pair. The blacklist row is created with get_or_create on a unique column, so of two concurrent
  refreshes with one token exactly one wins; the other answers 401.
- The outstanding-token table keeps jti, user and expiry only, never the token itself: a copy of the
  database is no stash of live refresh tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch

EPOCH_CLAIM = "epoch"


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str

    def as_dict(self) -> dict[str, str]:
        return {"access": self.access, "refresh": self.refresh}


def token_epoch_matches(token: Any, user) -> bool:
    """Whether a verified token (or its payload) was issued at the user's current epoch.

    Tokens minted before epochs existed carry no claim and count as epoch 0.
    """
    claim = token.get(EPOCH_CLAIM, 0)
    return isinstance(claim, int) and not isinstance(claim, bool) and claim == user.token_epoch


def _outstand(refresh: RefreshToken, *, user) -> OutstandingToken:
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=refresh[jwt_settings.JTI_CLAIM],
        defaults={
            "user": user,
            "token": "",  # deliberately not stored: jti identifies the token
            "created_at": refresh.current_time,
            "expires_at": datetime_from_epoch(refresh["exp"]),
        },
    )
    return outstanding


def token_pair_issue(*, user) -> TokenPair:
    """A fresh access and refresh token for `user` at its current epoch, recorded as outstanding."""
    refresh = RefreshToken()
    refresh[jwt_settings.USER_ID_CLAIM] = str(getattr(user, jwt_settings.USER_ID_FIELD))
    refresh[EPOCH_CLAIM] = user.token_epoch
    _outstand(refresh, user=user)
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


def _user_of(token: RefreshToken):
    """The active user a refresh token names, or TokenError (401)."""
    User = get_user_model()
    user_id = token.get(jwt_settings.USER_ID_CLAIM)
    user = None
    if isinstance(user_id, (str, int)) and str(user_id).isdigit():
        user = User.objects.filter(**{jwt_settings.USER_ID_FIELD: int(user_id)}).first()
    if user is None or not user.is_active:
        raise TokenError("No active account found for the given token.")
    return user


def token_refresh(raw: str, *, before_rotation=None) -> TokenPair:
    """Rotate a refresh token: revoke it and answer a new pair.

    TokenError (401) when the token is invalid, expired, revoked (already used), of an inactive user
    or issued before the user's credentials last ended. `before_rotation(user)` runs once the user
    is known and may refuse (the API refuses site-banned users with 403 there).
    """
    # simplejwt annotates the encoded token as Token; it is the string.
    refresh = RefreshToken(raw)  # type: ignore[arg-type]  # signature, expiry, type, and the blacklist
    user = _user_of(refresh)
    if before_rotation is not None:
        before_rotation(user)
    if not token_epoch_matches(refresh, user):
        raise TokenError("This token was revoked by a password change or deactivation; sign in again.")
    with transaction.atomic():
        _, revoked_now = BlacklistedToken.objects.get_or_create(token=_outstand(refresh, user=user))
        if not revoked_now:
            # A concurrent refresh with the same token won the race.
            raise TokenError("Token is blacklisted")
        return token_pair_issue(user=user)


class _RefreshTokenEvenIfRevoked(RefreshToken):
    """Verified like any refresh token (signature, expiry, type) except the blacklist, so that
    signing out with an already revoked token is not an error."""

    def check_blacklist(self) -> None:
        return None


def refresh_token_revoke(raw: str) -> None:
    """Revoke one refresh token (sign out of one device); TokenError when it is not a valid one."""
    refresh = _RefreshTokenEvenIfRevoked(raw)  # type: ignore[arg-type]
    User = get_user_model()
    user_id = refresh.get(jwt_settings.USER_ID_CLAIM)
    user = User.objects.filter(pk=int(user_id)).first() if str(user_id).isdigit() else None
    with transaction.atomic():
        BlacklistedToken.objects.get_or_create(token=_outstand(refresh, user=user))


def refresh_tokens_revoke_all(*, user) -> int:
    """Revoke every unexpired refresh token recorded for `user`; how many were still live.

    Belt and braces: the raised epoch already refuses them; the blacklist rows make it visible in
    the admin and hold even for tokens minted before epochs existed.
    """
    live = list(
        OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True)
    )
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token=token) for token in live], ignore_conflicts=True)
    return len(live)
