"""Serializers of the account endpoints: register, token pair and refresh, me, ws-ticket."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from accounts.authentication import refuse_if_site_banned

User = get_user_model()


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class RegisterSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(write_only=True, max_length=128, trim_whitespace=False)
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)

    def validate_username(self, value: str) -> str:
        for validator in User._meta.get_field("username").validators:
            try:
                validator(value)
            except DjangoValidationError as error:
                raise serializers.ValidationError(list(error.messages)) from None
        if User.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError("This username is taken; choose another.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        candidate = User(username=attrs.get("username", ""), email=attrs.get("email", ""))
        try:
            validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as error:
            raise serializers.ValidationError({"password": list(error.messages)}) from None
        return attrs

    def create(self, validated_data: dict[str, Any]):
        """The new account; a name taken since validation (a concurrent registration) is a field error."""
        try:
            with transaction.atomic():
                return User.objects.create_user(
                    username=validated_data["username"],
                    password=validated_data["password"],
                    email=validated_data.get("email", ""),
                )
        except IntegrityError:
            raise serializers.ValidationError({"username": ["This username is taken; choose another."]}) from None


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
    """simplejwt's pair, refusing site-banned users with 403 once their password checked out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[self.username_field] = StrictCharField(max_length=150, write_only=True)
        self.fields["password"] = StrictCharField(max_length=128, write_only=True, trim_whitespace=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        data = super().validate(attrs)
        refuse_if_site_banned(self.user)
        return data


class TokenPairResponseSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RefreshSerializer(TokenRefreshSerializer):
    """simplejwt's refresh, answering 401 for a vanished user and 403 for a site-banned one."""

    refresh = StrictCharField(max_length=4096)

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = self.token_class(attrs["refresh"])
        user_id = refresh.payload.get(jwt_settings.USER_ID_CLAIM)
        user = User.objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first() if user_id else None
        if user is None or not jwt_settings.USER_AUTHENTICATION_RULE(user):
            raise AuthenticationFailed("No active account found for the given token.", "no_active_account")
        refuse_if_site_banned(user)
        return super().validate(attrs)


class AccessResponseSerializer(serializers.Serializer):
    access = serializers.CharField()
