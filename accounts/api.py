"""REST endpoints of accounts (CONTRACT §2, §7): register, token, refresh, logout, password,
ws-ticket, me.

Thin views: a serializer checks types, accounts/services.py, accounts/tokens.py or
accounts/tickets.py does the work.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.views import TokenViewBase

from accounts import services
from accounts.models import User
from accounts.serializers import (
    LogoutSerializer,
    MeSerializer,
    PasswordChangeSerializer,
    RefreshSerializer,
    RegisterSerializer,
    TokenPairResponseSerializer,
    TokenPairSerializer,
    UserCreatedSerializer,
    WsTicketSerializer,
)
from accounts.throttles import AuthThrottle
from accounts.tickets import ticket_issue
from accounts.tokens import refresh_token_revoke, token_pair_issue
from chatsite.api.views import ERROR, BodyLimitMixin, validated


class BanAwareJWTScheme(SimpleJWTScheme):
    """Document BanAwareJWTAuthentication as the plain bearer JWT it is."""

    target_class = "accounts.authentication.BanAwareJWTAuthentication"


def _field_errors(error: DjangoValidationError) -> serializers.ValidationError:
    """A service's field errors as DRF's 400 with the same keys."""
    return serializers.ValidationError(error.message_dict if hasattr(error, "error_dict") else error.messages)


class RegisterView(BodyLimitMixin, APIView):
    """Create an account; anyone may call it, throttled per client address."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [AuthThrottle]

    @extend_schema(
        request=RegisterSerializer,
        responses={201: UserCreatedSerializer, 400: ERROR, 429: ERROR},
        summary="Register",
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        data = validated(RegisterSerializer, request.data)
        try:
            user = services.user_register(
                username=data["username"], password=data["password"], email=data.get("email", "")
            )
        except DjangoValidationError as error:
            raise _field_errors(error) from None
        return Response({"id": user.id, "username": user.username}, status=status.HTTP_201_CREATED)


class TokenView(BodyLimitMixin, TokenViewBase):
    """Exchange username and password for an access and a refresh JWT."""

    serializer_class = TokenPairSerializer
    throttle_classes = [AuthThrottle]

    @extend_schema(
        responses={200: TokenPairResponseSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 429: ERROR},
        summary="Obtain a token pair",
        tags=["auth"],
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        return super().post(request, *args, **kwargs)


class TokenRefreshView(BodyLimitMixin, TokenViewBase):
    """Exchange a refresh JWT for a new pair; the one given is revoked."""

    serializer_class = RefreshSerializer
    throttle_classes = [AuthThrottle]

    @extend_schema(
        responses={200: TokenPairResponseSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 429: ERROR},
        summary="Rotate a refresh token",
        description="Answers a new access and refresh token. The refresh token given is revoked: "
        "presenting it again answers 401. So is one issued before a password change or deactivation.",
        tags=["auth"],
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        return super().post(request, *args, **kwargs)


class LogoutView(BodyLimitMixin, APIView):
    """Sign a device out: revoke its refresh token."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [AuthThrottle]

    def get_authenticate_header(self, request: Request) -> str:
        # Like simplejwt's token views: a refused token is 401 with WWW-Authenticate, not 403.
        return 'Bearer realm="api"'

    @extend_schema(
        request=LogoutSerializer,
        responses={204: None, 400: ERROR, 401: ERROR, 429: ERROR},
        summary="Revoke a refresh token (sign out)",
        description="204 once the token is revoked, also when it already was. 401 for a token that is "
        "not a valid refresh token of this server (bad signature, expired, an access token). Access "
        "tokens issued with it stay valid until they expire (JWT_ACCESS_MINUTES).",
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        data = validated(LogoutSerializer, request.data)
        try:
            refresh_token_revoke(data["refresh"])
        except TokenError as error:
            raise AuthenticationFailed(str(error), code="token_not_valid") from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeView(BodyLimitMixin, APIView):
    """Change the caller's password; every other credential of theirs ends."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [AuthThrottle]

    @extend_schema(
        request=PasswordChangeSerializer,
        responses={200: TokenPairResponseSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 429: ERROR},
        summary="Change your password",
        description="200 with a fresh token pair for the caller. Every other refresh token of the user "
        "is revoked, access tokens and WebSocket tickets issued before answer 401, and the user's web "
        "sessions end. A wrong `old_password`, or a `new_password` the password validators refuse: 400 "
        "with the field's errors.",
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        data = validated(PasswordChangeSerializer, request.data)
        try:
            services.password_change(
                user=request.user, old_password=data["old_password"], new_password=data["new_password"]
            )
        except DjangoValidationError as error:
            raise _field_errors(error) from None
        return Response(token_pair_issue(user=request.user).as_dict())


class WsTicketView(BodyLimitMixin, APIView):
    """A single-use ticket for the WebSocket handshake (`/ws/chat/?ticket=...`)."""

    @extend_schema(request=None, responses={200: WsTicketSerializer, 401: ERROR, 403: ERROR}, tags=["auth"])
    def post(self, request: Request) -> Response:
        ticket, expires_in = ticket_issue(user=request.user)
        return Response({"ticket": ticket, "expires_in": expires_in})


class MeView(BodyLimitMixin, APIView):
    """Who the credentials belong to."""

    @extend_schema(responses={200: MeSerializer, 401: ERROR, 403: ERROR}, tags=["auth"])
    def get(self, request: Request) -> Response:
        user = request.user  # IsAuthenticated (the default permission): never AnonymousUser here
        assert isinstance(user, User)
        return Response({"id": user.id, "username": user.username, "is_moderator": user.is_moderator})
