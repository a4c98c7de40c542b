"""REST endpoints of accounts (CONTRACT §2): register, token, refresh, ws-ticket, me.

Thin views: a serializer validates, accounts/tickets.py or simplejwt does the work.
"""

from __future__ import annotations

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenViewBase

from accounts.serializers import (
    AccessResponseSerializer,
    MeSerializer,
    RefreshSerializer,
    RegisterSerializer,
    TokenPairResponseSerializer,
    TokenPairSerializer,
    UserCreatedSerializer,
    WsTicketSerializer,
)
from accounts.throttles import AuthThrottle
from accounts.tickets import ticket_issue
from rooms.api.base import BodyLimitMixin


class BanAwareJWTScheme(SimpleJWTScheme):
    """Document BanAwareJWTAuthentication as the plain bearer JWT it is."""

    target_class = "accounts.authentication.BanAwareJWTAuthentication"


_ERROR = OpenApiResponse(description='`{"code", "detail", ...}` JSON error.')


class RegisterView(BodyLimitMixin, APIView):
    """Create an account; anyone may call it, throttled per client address."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [AuthThrottle]

    @extend_schema(
        request=RegisterSerializer,
        responses={201: UserCreatedSerializer, 400: _ERROR, 429: _ERROR},
        summary="Register",
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = serializer.save()
        return Response({"id": user.id, "username": user.username}, status=status.HTTP_201_CREATED)


class TokenView(BodyLimitMixin, TokenViewBase):
    """Exchange username and password for an access and a refresh JWT."""

    serializer_class = TokenPairSerializer
    throttle_classes = [AuthThrottle]

    @extend_schema(
        responses={200: TokenPairResponseSerializer, 400: _ERROR, 401: _ERROR, 403: _ERROR, 429: _ERROR},
        summary="Obtain a token pair",
        tags=["auth"],
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        return super().post(request, *args, **kwargs)


class TokenRefreshView(BodyLimitMixin, TokenViewBase):
    """Exchange a refresh JWT for a new access JWT."""

    serializer_class = RefreshSerializer
    throttle_classes = [AuthThrottle]

    @extend_schema(
        responses={200: AccessResponseSerializer, 400: _ERROR, 401: _ERROR, 403: _ERROR, 429: _ERROR},
        summary="Refresh an access token",
        tags=["auth"],
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        return super().post(request, *args, **kwargs)


class WsTicketView(BodyLimitMixin, APIView):
    """A single-use ticket for the WebSocket handshake (`/ws/chat/?ticket=...`)."""

    @extend_schema(request=None, responses={200: WsTicketSerializer, 401: _ERROR, 403: _ERROR}, tags=["auth"])
    def post(self, request: Request) -> Response:
        ticket, expires_in = ticket_issue(user=request.user)
        return Response({"ticket": ticket, "expires_in": expires_in})


class MeView(BodyLimitMixin, APIView):
    """Who the credentials belong to."""

    @extend_schema(responses={200: MeSerializer, 401: _ERROR, 403: _ERROR}, tags=["auth"])
    def get(self, request: Request) -> Response:
        user = request.user
        return Response({"id": user.id, "username": user.username, "is_moderator": user.is_moderator})
