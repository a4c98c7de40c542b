"""Serializers of the account endpoints: register, token pair, refresh, logout, password, me, ws-ticket.

They check types and sizes; the rules live in accounts/services.py and accounts/tokens.py.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenObtainSerializer

from accounts.authentication import refuse_if_site_banned
from accounts.tokens import token_pair_issue, token_refresh
from chatsite.api.fields import StrictCharField


def password_field(**kwargs: Any) -> StrictCharField:
    return StrictCharField(write_only=True, max_length=128, trim_whitespace=False, **kwargs)


class RegisterSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = password_field()
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)


class PasswordChangeSerializer(serializers.Serializer):
    old_password = password_field()
    new_password = password_field()


class UserCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_moderator = serializers.BooleanField()


class WsTicketSerializer(serializers.Serializer):
    ticket = serializers.CharField(help_text="Pass as ?ticket= on the /ws/chat/ handshake; single use.")
    expires_in = serializers.IntegerField(help_text="Seconds the ticket stays valid.")


class TokenPairSerializer(TokenObtainPairSerializer):
    """simplejwt's password check, refusing site-banned users with 403 once it passed; the pair
    comes from accounts/tokens.py (with the user's token epoch)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[self.username_field] = StrictCharField(max_length=150, write_only=True)
        self.fields["password"] = password_field()

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        TokenObtainSerializer.validate(self, attrs)  # authenticates into self.user, or 401
        refuse_if_site_banned(self.user)
        return token_pair_issue(user=self.user).as_dict()


class TokenPairResponseSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RefreshSerializer(serializers.Serializer):
    """A refresh token in, a new pair out; the token given is revoked (401 when reused), 403 for a
    site-banned user. simplejwt's TokenError becomes 401 in TokenViewBase."""

    refresh = StrictCharField(max_length=4096, write_only=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        return token_refresh(attrs["refresh"], before_rotation=refuse_if_site_banned).as_dict()


class LogoutSerializer(serializers.Serializer):
    refresh = StrictCharField(max_length=4096, write_only=True)
