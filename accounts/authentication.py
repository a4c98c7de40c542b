"""DRF authentication: simplejwt's bearer JWT, refusing tokens whose credentials ended (401) and
users banned site-wide (403, CONTRACT §2 `bans/`)."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication

from accounts.tokens import token_epoch_matches


class SiteBanned(exceptions.PermissionDenied):
    default_detail = "This account is banned site-wide."
    default_code = "banned"


def refuse_if_site_banned(user) -> None:
    from rooms.selectors import user_is_site_banned

    if user is not None and user.is_authenticated and user_is_site_banned(user_id=user.id):
        raise SiteBanned()


class BanAwareJWTAuthentication(JWTAuthentication):
    def get_user(self, validated_token):
        user = super().get_user(validated_token)  # the user row (401 when gone or inactive)
        # Same row, no extra query: a token from before a password change or deactivation is refused.
        if not token_epoch_matches(validated_token, user):
            raise exceptions.AuthenticationFailed(
                "This token was revoked by a password change or deactivation; sign in again.", code="token_revoked"
            )
        return user

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            refuse_if_site_banned(result[0])
        return result
