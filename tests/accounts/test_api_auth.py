"""REST auth endpoints (CONTRACT §2): register, token, refresh, ws-ticket, me, and AUTH_THROTTLE."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import override_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.tickets import ticket_redeem
from rooms import services

User = get_user_model()
pytestmark = pytest.mark.django_db


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def throttled(rate: str):
    return override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": rate}})


# ----- register ---------------------------------------------------------------------------------


def test_register_creates_user():
    """A valid registration answers 201 {id, username} and the user can log in."""
    response = APIClient().post(
        "/api/v1/auth/register/", {"username": "carol", "password": "Tr1cky-horse-battery"}, format="json"
    )
    assert response.status_code == 201
    user = User.objects.get(username="carol")
    assert response.json() == {"id": user.id, "username": "carol"}
    assert user.check_password("Tr1cky-horse-battery")


def test_register_with_email():
    """An optional email is stored."""
    response = APIClient().post(
        "/api/v1/auth/register/",
        {"username": "dave", "password": "Tr1cky-horse-battery", "email": "d@example.com"},
        format="json",
    )
    assert response.status_code == 201
    assert User.objects.get(username="dave").email == "d@example.com"


@pytest.mark.parametrize("password", ["short", "password123", "12345678901", "carol1234"])
def test_register_applies_password_validators(password):
    """Django's password validators refuse weak passwords with a 400 field error."""
    response = APIClient().post("/api/v1/auth/register/", {"username": "carol", "password": password}, format="json")
    assert response.status_code == 400
    assert "password" in response.json()
    assert not User.objects.filter(username="carol").exists()


def test_register_taken_username(user_factory):
    """A taken username (any case) is a 400 field error."""
    user_factory("erin")
    response = APIClient().post(
        "/api/v1/auth/register/", {"username": "ERIN", "password": "Tr1cky-horse-battery"}, format="json"
    )
    assert response.status_code == 400
    assert "username" in response.json()
    assert User.objects.filter(username__iexact="erin").count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "frank"},
        {"password": "Tr1cky-horse-battery"},
        {"username": 12345, "password": "Tr1cky-horse-battery"},
        {"username": ["frank"], "password": "Tr1cky-horse-battery"},
        {"username": "frank", "password": 123456789012},
        {"username": "bad name!", "password": "Tr1cky-horse-battery"},
        {"username": "x" * 151, "password": "Tr1cky-horse-battery"},
        {"username": "frank", "password": "p" * 5_000},
        {"username": "fr\x00ank", "password": "Tr1cky-horse-battery"},
        {"username": "frank", "password": "Tr1cky-horse-battery", "email": "not-an-email"},
        ["frank", "Tr1cky-horse-battery"],
    ],
)
def test_register_bad_bodies(body):
    """Missing fields, wrong types, huge strings and non-objects are 400 and create nothing."""
    before = User.objects.count()
    response = APIClient().post("/api/v1/auth/register/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert User.objects.count() == before


def test_register_malformed_json():
    """A body that is not JSON is a 400 JSON error."""
    response = APIClient().post("/api/v1/auth/register/", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


def test_register_throttled_per_address():
    """Beyond AUTH_THROTTLE, register answers 429 with Retry-After."""
    client = APIClient()
    with throttled("2/60s"):
        for i in range(2):
            assert (
                client.post("/api/v1/auth/register/", {"username": f"u{i}", "password": "x"}, format="json").status_code
                == 400
            )
        response = client.post(
            "/api/v1/auth/register/", {"username": "u9", "password": "Tr1cky-horse-battery"}, format="json"
        )
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["code"] == "rate_limited"
    assert not User.objects.filter(username="u9").exists()


def test_throttle_is_per_address():
    """Another client address keeps its own budget."""
    with throttled("1/60s"):
        assert APIClient(REMOTE_ADDR="10.0.0.1").post("/api/v1/auth/token/", {}, format="json").status_code == 400
        assert APIClient(REMOTE_ADDR="10.0.0.1").post("/api/v1/auth/token/", {}, format="json").status_code == 429
        assert APIClient(REMOTE_ADDR="10.0.0.2").post("/api/v1/auth/token/", {}, format="json").status_code == 400


def test_throttle_ignores_forged_forwarded_for_from_public_peer():
    """A direct public client cannot dodge the throttle by inventing X-Forwarded-For values."""
    with throttled("1/60s"):
        first = APIClient(REMOTE_ADDR="93.184.216.34", HTTP_X_FORWARDED_FOR="1.1.1.1")
        second = APIClient(REMOTE_ADDR="93.184.216.34", HTTP_X_FORWARDED_FOR="2.2.2.2")
        assert first.post("/api/v1/auth/token/", {}, format="json").status_code == 400
        assert second.post("/api/v1/auth/token/", {}, format="json").status_code == 429


def test_throttle_uses_address_seen_by_local_proxy():
    """Behind nginx on loopback, clients are told apart by the address nginx appended."""
    with throttled("1/60s"):

        def via_proxy(chain: str) -> int:
            client = APIClient(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=chain)
            return client.post("/api/v1/auth/token/", {}, format="json").status_code

        assert via_proxy("198.51.100.1") == 400
        assert via_proxy("9.9.9.9, 198.51.100.1") == 429  # a forged first entry changes nothing
        assert via_proxy("198.51.100.2") == 400
        assert via_proxy("not-an-address") == 400  # falls back to the proxy's own address
        assert via_proxy("also-junk") == 429


def test_throttle_rate_parsing():
    """The auth throttle reads '30/60s' style rates, no rate as no limit, and refuses garbage loudly."""
    from accounts.throttles import AuthThrottle

    throttle = AuthThrottle()
    assert throttle.parse_rate("30/60s") == (30, 60)
    assert throttle.parse_rate("5/min") == (5, 60)
    assert throttle.parse_rate(None) == (None, None)
    with pytest.raises(ValueError):
        throttle.parse_rate("often")


def test_register_race_on_username_is_400(user_factory, monkeypatch):
    """If the name is taken between validation and insert, the answer is still a 400 field error."""
    from accounts import services as account_services

    user_factory("racer")
    monkeypatch.setattr(account_services, "username_taken", lambda username: False)
    response = APIClient().post(
        "/api/v1/auth/register/", {"username": "racer", "password": "Tr1cky-horse-battery"}, format="json"
    )
    assert response.status_code == 400
    assert "username" in response.json()


@pytest.mark.redis
def test_throttle_counts_live_in_redis():
    """With REDIS_URL the throttle history is in Redis, so every process shares one budget."""
    from chatsite.redis_clients import get_redis

    APIClient().post("/api/v1/auth/token/", {}, format="json")
    assert any(b"throttle_auth_" in key for key in get_redis().keys("*"))


# ----- token and refresh ------------------------------------------------------------------------


def test_token_pair(user_factory, password):
    """Good credentials answer 200 {access, refresh}, and the access token works."""
    user = user_factory("gina")
    response = APIClient().post("/api/v1/auth/token/", {"username": "gina", "password": password}, format="json")
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert client.get("/api/v1/me/").json()["id"] == user.id


def test_token_bad_password(user_factory):
    """Wrong credentials answer 401 with a WWW-Authenticate header."""
    user_factory("hank")
    response = APIClient().post("/api/v1/auth/token/", {"username": "hank", "password": "wrong"}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "not_authenticated"


def test_token_unknown_user():
    """An unknown username answers 401."""
    response = APIClient().post("/api/v1/auth/token/", {"username": "nobody", "password": "whatever"}, format="json")
    assert response.status_code == 401


def test_token_inactive_user(user_factory, password):
    """An inactive user gets 401."""
    user_factory("ivan", is_active=False)
    response = APIClient().post("/api/v1/auth/token/", {"username": "ivan", "password": password}, format="json")
    assert response.status_code == 401


@pytest.mark.parametrize(
    "body", [{}, {"username": "x"}, {"username": 1, "password": 2}, [1, 2], {"username": "x" * 10_000, "password": "y"}]
)
def test_token_bad_bodies(body):
    """Missing or mistyped credentials answer 400."""
    assert APIClient().post("/api/v1/auth/token/", body, format="json").status_code == 400


def test_token_site_banned(user_factory, moderator_factory, password):
    """A site-banned user gets 403 from token."""
    user_factory("judy")
    services.site_ban(actor=moderator_factory(), username="judy")
    response = APIClient().post("/api/v1/auth/token/", {"username": "judy", "password": password}, format="json")
    assert response.status_code == 403


def test_refresh(user_factory):
    """A refresh token answers 200 {access} and the new access token works."""
    user = user_factory()
    response = APIClient().post(
        "/api/v1/auth/token/refresh/", {"refresh": str(RefreshToken.for_user(user))}, format="json"
    )
    assert response.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert client.get("/api/v1/me/").status_code == 200


@pytest.mark.parametrize("refresh", ["garbage", "a.b.c", "x" * 3000])
def test_refresh_invalid(refresh):
    """An invalid refresh token answers 401."""
    assert APIClient().post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json").status_code == 401


def test_refresh_with_access_token_refused(user_factory):
    """An access token is not a refresh token: 401."""
    access = str(RefreshToken.for_user(user_factory()).access_token)
    assert APIClient().post("/api/v1/auth/token/refresh/", {"refresh": access}, format="json").status_code == 401


@pytest.mark.parametrize("body", [{}, {"refresh": 5}, {"refresh": None}, ["x"]])
def test_refresh_bad_bodies(body):
    """A missing or mistyped refresh answers 400."""
    assert APIClient().post("/api/v1/auth/token/refresh/", body, format="json").status_code == 400


def test_refresh_site_banned(user_factory, moderator_factory):
    """A site-banned user's refresh token answers 403."""
    user = user_factory()
    refresh = str(RefreshToken.for_user(user))
    services.site_ban(actor=moderator_factory(), username=user.username)
    assert APIClient().post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json").status_code == 403


def test_refresh_deleted_user(user_factory):
    """A refresh token of a deleted user answers 401, not 500."""
    user = user_factory()
    refresh = str(RefreshToken.for_user(user))
    user.delete()
    assert APIClient().post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json").status_code == 401


def test_refresh_inactive_user(user_factory):
    """A refresh token of a deactivated user answers 401."""
    user = user_factory()
    refresh = str(RefreshToken.for_user(user))
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert APIClient().post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json").status_code == 401


def test_refresh_throttled():
    """Refresh shares the per-address auth throttle."""
    client = APIClient()
    with throttled("1/60s"):
        client.post("/api/v1/auth/token/refresh/", {"refresh": "x"}, format="json")
        response = client.post("/api/v1/auth/token/refresh/", {"refresh": "x"}, format="json")
    assert response.status_code == 429
    assert "Retry-After" in response


# ----- me, credentials --------------------------------------------------------------------------


def test_me(user_factory):
    """me/ answers {id, username, is_moderator}."""
    user = user_factory("kate")
    assert bearer(user).get("/api/v1/me/").json() == {"id": user.id, "username": "kate", "is_moderator": False}


def test_me_moderator(moderator_factory):
    """A moderator's me/ says is_moderator true."""
    assert bearer(moderator_factory()).get("/api/v1/me/").json()["is_moderator"] is True


def test_me_anonymous_401():
    """No credentials answer 401 with WWW-Authenticate, not 403."""
    response = APIClient().get("/api/v1/me/")
    assert response.status_code == 401
    assert "WWW-Authenticate" in response
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "header", ["Bearer nonsense", "Bearer ", "Bearer a.b.c", "Basic Zm9vOmJhcg==", "Bearer " + "x" * 5000]
)
def test_me_bad_credentials_401(header):
    """A malformed or wrong Authorization header answers 401."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/v1/me/").status_code == 401


def test_me_expired_access_token_401(user_factory):
    """An expired access token answers 401."""
    from datetime import timedelta

    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken.for_user(user_factory())
    token.set_exp(lifetime=-timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/me/").status_code == 401


def test_me_token_of_deleted_user_401(user_factory):
    """A still-valid token of a deleted user answers 401."""
    user = user_factory()
    client = bearer(user)
    user.delete()
    assert client.get("/api/v1/me/").status_code == 401


def test_me_token_of_inactive_user_401(user_factory):
    """A still-valid token of a deactivated user answers 401."""
    user = user_factory()
    client = bearer(user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert client.get("/api/v1/me/").status_code == 401


def test_me_refresh_token_as_access_401(user_factory):
    """A refresh token cannot be used as an access token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user_factory())}")
    assert client.get("/api/v1/me/").status_code == 401


def test_me_site_banned_403(user_factory, moderator_factory):
    """A site-banned user's still valid access token answers 403."""
    user = user_factory()
    client = bearer(user)
    services.site_ban(actor=moderator_factory(), username=user.username)
    assert client.get("/api/v1/me/").status_code == 403


def test_me_session(user_factory, password):
    """The Django session authenticates too."""
    user = user_factory()
    client = APIClient()
    assert client.login(username=user.username, password=password)
    assert client.get("/api/v1/me/").json()["username"] == user.username


def test_session_site_banned_403(user_factory, moderator_factory, password):
    """A site-banned user's session answers 403 on the API."""
    user = user_factory()
    client = APIClient()
    client.login(username=user.username, password=password)
    services.site_ban(actor=moderator_factory(), username=user.username)
    assert client.get("/api/v1/me/").status_code == 403


def test_session_unsafe_method_needs_csrf(user_factory, password):
    """A session POST without the CSRF token is refused with 403."""
    user = user_factory()
    client = APIClient(enforce_csrf_checks=True)
    client.login(username=user.username, password=password)
    response = client.post("/api/v1/rooms/", {"name": "Csrf"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


# ----- ws-ticket --------------------------------------------------------------------------------


def test_ws_ticket_issued(user_factory):
    """ws-ticket answers {ticket, expires_in <= 60} redeemable for the user's id."""
    user = user_factory()
    response = bearer(user).post("/api/v1/auth/ws-ticket/")
    assert response.status_code == 200
    body = response.json()
    assert 0 < body["expires_in"] <= 60
    assert ticket_redeem(body["ticket"]) == (user.id, user.token_epoch)


def test_ws_ticket_single_use(user_factory):
    """A ticket redeems once; the second redemption fails."""
    ticket = bearer(user_factory()).post("/api/v1/auth/ws-ticket/").json()["ticket"]
    assert ticket_redeem(ticket) is not None
    assert ticket_redeem(ticket) is None


def test_ws_tickets_are_distinct(user_factory):
    """Every call issues a new ticket."""
    client = bearer(user_factory())
    assert (
        client.post("/api/v1/auth/ws-ticket/").json()["ticket"]
        != client.post("/api/v1/auth/ws-ticket/").json()["ticket"]
    )


@override_settings(CHAT_TICKET_TTL_SECONDS=30)
def test_ws_ticket_expires(user_factory, clock):
    """A ticket redeems until its lifetime is over, and is refused from then on."""
    client = bearer(user_factory())
    early, late = (client.post("/api/v1/auth/ws-ticket/").json() for _ in range(2))
    assert early["expires_in"] == 30
    clock.advance(29.9)
    assert ticket_redeem(early["ticket"]) is not None
    clock.advance(0.1)
    assert ticket_redeem(late["ticket"]) is None


@pytest.mark.redis
def test_ws_ticket_stored_in_redis_for_at_most_60s(user_factory):
    """With REDIS_URL a ticket is a Redis key that expires within 60 s, so any process redeems it and none after."""
    from django.core.cache import cache

    from chatsite.redis_clients import get_redis

    ticket = bearer(user_factory()).post("/api/v1/auth/ws-ticket/").json()["ticket"]
    key = cache.make_key("wsticket:" + ticket)
    assert 0 < get_redis().pttl(key) <= 60_000


def test_ws_ticket_default_ttl_is_60s(user_factory):
    """By default a ticket lives 60 s."""
    assert bearer(user_factory()).post("/api/v1/auth/ws-ticket/").json()["expires_in"] == 60


@pytest.mark.parametrize("ticket", ["", "short", "x" * 500, None, 123])
def test_ws_ticket_unknown_refused(ticket):
    """Unknown, malformed or mistyped tickets redeem to nothing."""
    assert ticket_redeem(ticket) is None


def test_ws_ticket_anonymous_401():
    """ws-ticket needs credentials."""
    assert APIClient().post("/api/v1/auth/ws-ticket/").status_code == 401


def test_ws_ticket_site_banned_403(user_factory, moderator_factory):
    """A site-banned user gets no ticket."""
    user = user_factory()
    client = bearer(user)
    services.site_ban(actor=moderator_factory(), username=user.username)
    assert client.post("/api/v1/auth/ws-ticket/").status_code == 403


def test_ws_ticket_get_not_allowed(user_factory):
    """ws-ticket is POST only: GET answers 405 JSON."""
    response = bearer(user_factory()).get("/api/v1/auth/ws-ticket/")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
