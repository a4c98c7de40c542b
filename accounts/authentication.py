"""DRF authentication that refuses users banned site-wide with 403 (CONTRACT §2 `bans/`)."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication


class SiteBanned(exceptions.PermissionDenied):
    default_detail = "This account is banned site-wide."
    default_code = "banned"


def refuse_if_site_banned(user) -> None:
    from rooms.selectors import user_is_site_banned

    if user is not None and user.is_authenticated and user_is_site_banned(user_id=user.id):
        raise SiteBanned()


class BanAwareJWTAuthentication(JWTAuthentication):
    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            refuse_if_site_banned(result[0])
        return result
