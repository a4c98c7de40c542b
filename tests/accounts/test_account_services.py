"""accounts/services.py behind every front end: sign-up page and API, admin deactivation and
password reset, web and admin logout, and the admin login throttle."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.tokens import token_pair_issue
from rooms.models import AuditLog

User = get_user_model()
pytestmark = pytest.mark.django_db

NEW_PASSWORD = "c-Another-pass-2291"


def me(token: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get("/api/v1/me/").status_code


@pytest.fixture
def root_client(superuser):
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def ended(monkeypatch):
    """Every rooms.realtime.events.user_credentials_ended call: (user_id, session_key)."""
    from rooms.realtime import events

    calls = []
    monkeypatch.setattr(
        events, "user_credentials_ended", lambda *, user_id, session_key=None: calls.append((user_id, session_key))
    )
    return calls


# ----- one registration rule for the page and the API --------------------------------------------


@pytest.mark.parametrize(
    ("username", "password", "field"),
    [
        ("Taken", "a-Fresh-pass-7391", "username"),
        ("fresh", "password", "password"),
        ("bad name!", "a-Fresh-pass-7391", "username"),
    ],
)
def test_signup_page_and_api_refuse_the_same_way(user_factory, username, password, field):
    """The sign-up page and auth/register/ refuse a taken name (any case), a weak password and a bad
    name with the same message: both call accounts.services.user_register."""
    user_factory("taken")
    api = APIClient().post("/api/v1/auth/register/", {"username": username, "password": password}, format="json")
    page = Client().post("/accounts/signup/", {"username": username, "password1": password, "password2": password})
    assert api.status_code == 400 and page.status_code == 400
    message = api.json()[field][0]
    assert message.replace("'", "&#x27;").encode() in page.content
    assert User.objects.count() == 1


def test_register_service_creates_a_usable_account():
    """user_register stores the user with a hashed password."""
    user = account_services.user_register(username="newbie", password="a-Fresh-pass-7391", email="n@example.com")
    assert user.check_password("a-Fresh-pass-7391") and user.email == "n@example.com"


# ----- the admin ---------------------------------------------------------------------------------


def test_admin_deactivation_ends_tokens_and_is_audited(root_client, superuser, user_factory, ended):
    """Unticking `active` in the admin: the user's tokens answer 401, one audit row, one announcement."""
    user = user_factory("leaver")
    pair = token_pair_issue(user=user)
    page = root_client.get(f"/admin/accounts/user/{user.pk}/change/")
    form = page.context["adminform"].form
    data = {key: value for key, value in form.initial.items() if value is not None and not isinstance(value, list)}
    data.update(
        {
            "username": "leaver",
            "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
            "is_active": "",
            "first_name": "Lea",
        }
    )
    data = {key: value for key, value in data.items() if key not in ("is_active", "password", "last_login")}
    response = root_client.post(f"/admin/accounts/user/{user.pk}/change/", data)
    assert response.status_code == 302, response.content[:2000]
    user.refresh_from_db()
    assert not user.is_active and user.first_name == "Lea" and user.token_epoch == 1
    assert me(pair.access) == 401
    assert AuditLog.objects.filter(action="user_deactivate", target_user=user, actor=superuser).count() == 1
    assert ended == [(user.pk, None)]


def test_admin_deactivate_action(root_client, user_factory, ended):
    """The user list's "Deactivate selected users" ends each one's credentials."""
    users = [user_factory() for _ in range(2)]
    pairs = [token_pair_issue(user=user) for user in users]
    response = root_client.post(
        "/admin/accounts/user/",
        {"action": "deactivate_selected", "_selected_action": [user.pk for user in users]},
    )
    assert response.status_code == 302
    assert [me(pair.access) for pair in pairs] == [401, 401]
    assert sorted(user_id for user_id, _ in ended) == sorted(user.pk for user in users)


def test_admin_password_reset_ends_tokens(root_client, user_factory, ended):
    """A superuser setting a password in the admin ends the user's tokens, as a password change does."""
    user = user_factory()
    pair = token_pair_issue(user=user)
    response = root_client.post(
        f"/admin/accounts/user/{user.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert me(pair.access) == 401
    assert ended == [(user.pk, None)]


def test_admin_can_disable_a_password_and_that_ends_tokens(root_client, user_factory, password):
    """Choosing "disabled" in the admin's password form leaves no usable password and ends tokens."""
    user = user_factory()
    pair = token_pair_issue(user=user)
    response = root_client.post(
        f"/admin/accounts/user/{user.pk}/password/", {"usable_password": "false", "unset-password": "1"}
    )
    assert response.status_code == 302, response.content[:1500]
    user.refresh_from_db()
    assert not user.has_usable_password() and not user.check_password(password)
    assert me(pair.access) == 401


def test_admin_change_own_password_ends_tokens_keeps_this_session(moderator_factory, password, ended):
    """A moderator's "Change password" in the admin header ends their tokens and other sessions,
    not the session they used."""
    moderator = moderator_factory()
    pair = token_pair_issue(user=moderator)
    other = Client()
    other.force_login(moderator)
    client = Client()
    client.force_login(moderator)
    assert client.get("/admin/password_change/").status_code == 200
    response = client.post(
        "/admin/password_change/",
        {"old_password": password, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302 and response["Location"] == "/admin/password_change/done/"
    assert me(pair.access) == 401
    assert client.get("/admin/").status_code == 200
    assert other.get("/admin/").status_code == 302
    assert ended == [(moderator.pk, None)]
    wrong = client.post(
        "/admin/password_change/", {"old_password": "nope", "new_password1": "x1", "new_password2": "x1"}
    )
    assert wrong.status_code == 200 and b"errorlist" in wrong.content


def test_moderators_cannot_deactivate_in_the_admin(moderator_factory, user_factory):
    """The user admin stays read-only for moderators: no deactivation."""
    target = user_factory()
    client = Client()
    client.force_login(moderator_factory())
    client.post("/admin/accounts/user/", {"action": "deactivate_selected", "_selected_action": [target.pk]})
    target.refresh_from_db()
    assert target.is_active


# ----- logout ------------------------------------------------------------------------------------


def test_web_logout_announces_that_session(user_factory, ended):
    """POST /accounts/logout/ ends the session and names it to the connection point."""
    user = user_factory()
    client = Client()
    client.force_login(user)
    session_key = client.session.session_key
    assert client.post("/accounts/logout/").status_code == 302
    assert ended == [(user.pk, session_key)]
    assert client.get("/").status_code == 302


def test_admin_logout_goes_through_the_same_service(moderator_factory, ended):
    """The admin's logout button (POST /admin/logout/) ends the session the same way."""
    moderator = moderator_factory()
    client = Client()
    client.force_login(moderator)
    session_key = client.session.session_key
    response = client.post("/admin/logout/")
    assert response.status_code == 302 and response["Location"] == "/admin/login/"
    assert ended == [(moderator.pk, session_key)]
    assert client.get("/admin/").status_code == 302


def test_anonymous_logout_announces_nothing(ended):
    """Logging out without a session changes nothing."""
    assert Client().post("/accounts/logout/").status_code == 302
    assert ended == []


def test_credentials_ended_is_announced_on_commit(user_factory, django_capture_on_commit_callbacks, caplog):
    """The connection point runs after the commit and logs no session key."""
    user = user_factory()
    client = Client()
    client.force_login(user)
    session_key = client.session.session_key
    with (
        caplog.at_level("INFO", logger="rooms.realtime.events"),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        client.post("/accounts/logout/")
    assert callbacks
    lines = [record.getMessage() for record in caplog.records if record.name == "rooms.realtime.events"]
    assert any(f"credentials_ended user_id={user.pk} scope=session" in line for line in lines)
    assert session_key not in caplog.text


# ----- the admin login throttle ------------------------------------------------------------------


def test_admin_login_shares_the_auth_throttle(user_factory):
    """POST /admin/login/ spends AUTH_THROTTLE like the API login: beyond it 429 with Retry-After,
    and the API login from the same address is refused too."""
    staff = user_factory("staffer", is_staff=True, is_superuser=True)
    rates = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "3/60s"}}
    with override_settings(REST_FRAMEWORK=rates):
        client = Client()
        statuses = [
            client.post("/admin/login/", {"username": staff.username, "password": f"guess-{n}"}).status_code
            for n in range(3)
        ]
        assert statuses == [200, 200, 200]  # the admin re-shows its form for a wrong password
        refused = client.post("/admin/login/", {"username": staff.username, "password": "a-Strong-pass-4821"})
        assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
        api = APIClient().post("/api/v1/auth/token/", {"username": "staffer", "password": "x"}, format="json")
        assert api.status_code == 429
        assert Client().get("/admin/login/").status_code == 200  # the form itself stays readable
