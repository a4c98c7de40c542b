"""CONTRACT §7 tokens: rotation with reuse refused, logout, password change, deactivation, the epoch."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts import services as account_services
from accounts.credentials import Credential, credentials_ended
from accounts.tickets import ticket_issue, ticket_redeem
from accounts.tokens import EPOCH_CLAIM, token_pair_issue

User = get_user_model()
pytestmark = pytest.mark.django_db

NEW_PASSWORD = "b-Brand-new-pass-5830"


def post(path: str, body, token: str | None = None):
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    # json.dumps escapes lone surrogates as \udXXX, as a real client's JSON would carry them.
    return client.post(f"/api/v1/{path}", json.dumps(body), content_type="application/json")


def me(token: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get("/api/v1/me/").status_code


def login(user, password) -> dict:
    response = post("auth/token/", {"username": user.username, "password": password})
    assert response.status_code == 200, response.content
    return response.json()


# ----- rotation ---------------------------------------------------------------------------------


def test_refresh_rotates_and_revokes_the_token_given(user_factory, password):
    """A refresh answers a new pair; presenting the old refresh token again answers 401."""
    pair = login(user_factory(), password)
    first = post("auth/token/refresh/", {"refresh": pair["refresh"]})
    assert first.status_code == 200
    rotated = first.json()
    assert set(rotated) == {"access", "refresh"} and rotated["refresh"] != pair["refresh"]
    assert me(rotated["access"]) == 200
    assert post("auth/token/refresh/", {"refresh": pair["refresh"]}).status_code == 401
    assert post("auth/token/refresh/", {"refresh": rotated["refresh"]}).status_code == 200


def test_a_refresh_token_wins_only_one_of_two_refreshes(user_factory):
    """The revocation is a unique row: the second use of one token fails even if it raced the first."""
    from accounts.tokens import token_refresh

    pair = token_pair_issue(user=user_factory())
    token_refresh(pair.refresh)
    from rest_framework_simplejwt.exceptions import TokenError

    with pytest.raises(TokenError):
        token_refresh(pair.refresh)
    assert BlacklistedToken.objects.count() == 1


def test_lifetimes_come_from_settings(user_factory, password, settings):
    """Access tokens live JWT_ACCESS_MINUTES, refresh tokens JWT_REFRESH_DAYS (defaults 5 and 30)."""
    pair = login(user_factory(), password)
    access, refresh = AccessToken(pair["access"]), RefreshToken(pair["refresh"])
    assert access["exp"] - access["iat"] == settings.JWT_ACCESS_MINUTES * 60 == 300
    assert refresh["exp"] - refresh["iat"] == settings.JWT_REFRESH_DAYS * 86400 == 30 * 86400


def test_outstanding_tokens_are_recorded_without_the_token(user_factory, password):
    """The blacklist app's table knows jti and expiry, never the token itself."""
    user = user_factory()
    pair = login(user, password)
    row = OutstandingToken.objects.get(user=user)
    assert row.jti == RefreshToken(pair["refresh"])["jti"]
    assert row.token == ""


def test_token_admin_never_shows_a_token(user_factory, password):
    """Superusers see issued refresh tokens by jti and state, not their text."""
    user = user_factory()
    RefreshToken.for_user(user)  # simplejwt's own path stores the token text: still not shown
    admin = user_factory(is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(admin)
    listing = client.get("/admin/token_blacklist/outstandingtoken/")
    assert listing.status_code == 200
    row = OutstandingToken.objects.get(user=user)
    page = client.get(f"/admin/token_blacklist/outstandingtoken/{row.pk}/change/")
    assert page.status_code == 200
    assert row.token not in page.content.decode() and row.jti in page.content.decode()


# ----- logout -------------------------------------------------------------------------------------


def test_logout_revokes_the_refresh_token(user_factory, password):
    """POST auth/logout/ answers 204 and the refresh token answers 401 afterwards; again: 204."""
    pair = login(user_factory(), password)
    assert post("auth/logout/", {"refresh": pair["refresh"]}).status_code == 204
    assert post("auth/token/refresh/", {"refresh": pair["refresh"]}).status_code == 401
    assert post("auth/logout/", {"refresh": pair["refresh"]}).status_code == 204


def test_logout_keeps_other_devices_signed_in(user_factory, password):
    """Signing out one device leaves the user's other refresh tokens working."""
    user = user_factory()
    phone, tablet = login(user, password), login(user, password)
    post("auth/logout/", {"refresh": phone["refresh"]})
    assert post("auth/token/refresh/", {"refresh": tablet["refresh"]}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"refresh": ""},
        {"refresh": 12},
        {"refresh": ["x"]},
        {"refresh": None},
        {"refresh": "x" * 5000},
        {"refresh": "abc\x00def"},
        {"refresh": "\ud800"},
        [],
        "refresh",
    ],
)
def test_logout_bad_bodies_are_400(body):
    """Wrong types, missing, empty, oversize, NUL or surrogate values: 400, never a 500."""
    response = post("auth/logout/", body)
    assert response.status_code == 400, response.content


def test_logout_refuses_what_is_no_refresh_token(user_factory):
    """A forged, foreign or access token is 401; nothing is revoked."""
    user = user_factory()
    pair = token_pair_issue(user=user)
    forged = pair.refresh[:-4] + ("AAAA" if not pair.refresh.endswith("AAAA") else "BBBB")
    for token in (forged, "not.a.jwt", pair.access):
        assert post("auth/logout/", {"refresh": token}).status_code == 401
    assert not BlacklistedToken.objects.exists()


# ----- password change ----------------------------------------------------------------------------


def test_password_change_ends_every_other_credential(user_factory, password):
    """200 with a fresh pair; the old access token, every other refresh token, tickets and web
    sessions stop working; the new pair and password work."""
    user = user_factory()
    current, other = login(user, password), login(user, password)
    web = Client()
    web.force_login(user)
    assert web.get("/").status_code == 200
    ticket, _ = ticket_issue(user=user)
    response = post("auth/password/", {"old_password": password, "new_password": NEW_PASSWORD}, current["access"])
    assert response.status_code == 200, response.content
    fresh = response.json()
    assert me(current["access"]) == 401
    assert me(other["access"]) == 401
    assert post("auth/token/refresh/", {"refresh": current["refresh"]}).status_code == 401
    assert post("auth/token/refresh/", {"refresh": other["refresh"]}).status_code == 401
    assert web.get("/").status_code == 302  # the session ended: back to the login page
    redeemed = ticket_redeem(ticket)
    user.refresh_from_db()
    assert redeemed is not None and redeemed[1] != user.token_epoch  # the handshake refuses it
    assert me(fresh["access"]) == 200
    assert post("auth/token/refresh/", {"refresh": fresh["refresh"]}).status_code == 200
    assert user.check_password(NEW_PASSWORD)
    assert BlacklistedToken.objects.filter(token__user=user).count() >= 2


def test_password_change_wrong_old_password_is_400(user_factory, password):
    """A wrong old_password is a 400 field error; nothing changes."""
    user = user_factory()
    pair = login(user, password)
    response = post(
        "auth/password/", {"old_password": "nope-" + password, "new_password": NEW_PASSWORD}, pair["access"]
    )
    assert response.status_code == 400 and "old_password" in response.json()
    assert me(pair["access"]) == 200
    user.refresh_from_db()
    assert user.check_password(password) and user.token_epoch == 0


@pytest.mark.parametrize("new_password", ["short", "password", "1234567890123", "user-name-1"])
def test_password_change_refused_by_validators_is_400(user_factory, password, new_password):
    """A new password Django's validators refuse is a 400 field error."""
    user = user_factory("user-name-1")
    pair = login(user, password)
    response = post("auth/password/", {"old_password": password, "new_password": new_password}, pair["access"])
    assert response.status_code == 400 and "new_password" in response.json()
    assert me(pair["access"]) == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"old_password": "x"},
        {"new_password": "x"},
        {"old_password": 1, "new_password": 2},
        {"old_password": None, "new_password": NEW_PASSWORD},
        {"old_password": ["a"], "new_password": {"b": 1}},
        {"old_password": "x" * 200, "new_password": NEW_PASSWORD},
        {"old_password": "a\x00b", "new_password": NEW_PASSWORD},
        {"old_password": "\udfff", "new_password": NEW_PASSWORD},
        [],
    ],
)
def test_password_change_bad_bodies_are_400(user_factory, password, body):
    """Missing fields, wrong types, oversize, NUL bytes, lone surrogates: 400, never a 500."""
    pair = login(user_factory(), password)
    response = post("auth/password/", body, pair["access"])
    assert response.status_code == 400, response.content
    assert me(pair["access"]) == 200


def test_password_change_needs_credentials():
    """Anonymous callers get 401."""
    assert post("auth/password/", {"old_password": "a", "new_password": NEW_PASSWORD}).status_code == 401


# ----- deactivation and the epoch -----------------------------------------------------------------


def test_deactivated_user_tokens_answer_401(user_factory, password):
    """A user made inactive: access 401, refresh 401, token 401."""
    user = user_factory()
    pair = login(user, password)
    admin = user_factory(is_superuser=True, is_staff=True)
    account_services.user_deactivate(actor=admin, user=user)
    assert me(pair["access"]) == 401
    assert post("auth/token/refresh/", {"refresh": pair["refresh"]}).status_code == 401
    assert post("auth/token/", {"username": user.username, "password": password}).status_code == 401


def test_reactivation_does_not_revive_old_tokens(user_factory, password):
    """Tokens from before a deactivation stay refused after the account is reactivated."""
    user = user_factory()
    pair = login(user, password)
    admin = user_factory(is_superuser=True, is_staff=True)
    account_services.user_deactivate(actor=admin, user=user)
    account_services.user_reactivate(actor=admin, user=user)
    assert me(pair["access"]) == 401
    assert post("auth/token/refresh/", {"refresh": pair["refresh"]}).status_code == 401
    assert me(login(user, password)["access"]) == 200


def test_tokens_without_an_epoch_claim_count_as_epoch_zero(user_factory):
    """Tokens minted before epochs existed keep working until the user's first credential change."""
    user = user_factory()
    legacy = str(AccessToken.for_user(user))
    assert EPOCH_CLAIM not in AccessToken(legacy).payload
    assert me(legacy) == 200
    account_services.password_set(user=user, new_password=NEW_PASSWORD)
    assert me(legacy) == 401


def test_only_superusers_deactivate(user_factory, moderator_factory):
    """Moderators and users cannot deactivate accounts; nobody deactivates themselves."""
    from rooms.exceptions import BadRequest, Forbidden

    target = user_factory()
    with pytest.raises(Forbidden):
        account_services.user_deactivate(actor=moderator_factory(), user=target)
    admin = user_factory(is_superuser=True, is_staff=True)
    with pytest.raises(BadRequest):
        account_services.user_deactivate(actor=admin, user=admin)
    target.refresh_from_db()
    assert target.is_active


def test_credentials_ended_names_what_no_longer_holds(user_factory, moderator_factory):
    """The heartbeat helper: raised epoch, inactive user, ended session -> 4001; site ban -> 4003."""
    from rooms.services import site_ban

    fine, changed, gone, banned, logged_out = (user_factory() for _ in range(5))
    web = Client()
    web.force_login(logged_out)
    session_key = web.session.session_key
    live = Client()
    live.force_login(fine)
    credentials = {
        "fine": Credential(user_id=fine.id, token_epoch=0, session_key=live.session.session_key),
        "changed": Credential(user_id=changed.id, token_epoch=0),
        "gone": Credential(user_id=gone.id, token_epoch=0),
        "banned": Credential(user_id=banned.id, token_epoch=0),
        "logged_out": Credential(user_id=logged_out.id, token_epoch=0, session_key=session_key),
    }
    account_services.password_set(user=changed, new_password=NEW_PASSWORD)
    User.objects.filter(pk=gone.pk).update(is_active=False)
    site_ban(actor=moderator_factory(), username=banned.username)
    web.post("/accounts/logout/")
    ended = credentials_ended(credentials.values())
    assert ended == {
        credentials["changed"]: 4001,
        credentials["gone"]: 4001,
        credentials["banned"]: 4003,
        credentials["logged_out"]: 4001,
    }
    assert session_key not in repr(credentials["logged_out"])
