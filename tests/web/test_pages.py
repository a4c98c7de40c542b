"""The web pages through Django's test client: access rules, forms and their errors, security headers."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def chat_config(response) -> dict:
    match = re.search(rb'<script id="chat-config" type="application/json">(.*?)</script>', response.content, re.S)
    assert match, "the chat page passes its settings with json_script"
    return json.loads(match.group(1))


class InlineCodeFinder(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would block: inline scripts, styles, handlers."""

    def __init__(self):
        super().__init__()
        self.problems: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and "src" not in attributes and attributes.get("type") != "application/json":
            self._in_inline_script = True
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("inline <style>")
        for name in attributes:
            if name == "style" or name.startswith("on"):
                self.problems.append(f"{name}= on <{tag}>")


def inline_code(response) -> list[str]:
    finder = InlineCodeFinder()
    finder.feed(response.content.decode())
    return finder.problems


# ----- login required -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/rooms/lobby/"])
def test_pages_need_login(client, path):
    """Anonymous visitors are sent to the login page with `next`."""
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_login_page_has_the_standard_fields(client):
    """The login form posts `username` and `password`."""
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="password"' in response.content


def test_login_with_a_wrong_password_answers_400_with_the_reason(client, alice):
    """A wrong password re-shows the form with an error and status 400."""
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 400
    assert b"correct username and password" in response.content


def test_login_signs_in_and_follows_next(client, alice, password):
    """Good credentials sign in and go to `next`."""
    response = client.post(
        "/accounts/login/?next=/rooms/lobby/", {"username": "alice", "password": password, "next": "/rooms/lobby/"}
    )
    assert response.status_code == 302 and response["Location"] == "/rooms/lobby/"
    assert client.session["_auth_user_id"] == str(alice.id)


# ----- signup -----------------------------------------------------------------------------


def test_signup_creates_the_account_and_signs_in(client):
    """A valid signup creates the user, signs them in and lands on the room list."""
    response = client.post(
        "/accounts/signup/",
        {"username": "newcomer", "password1": "a-Fresh-pass-7391", "password2": "a-Fresh-pass-7391"},
    )
    assert response.status_code == 302 and response["Location"] == "/"
    user = get_user_model().objects.get(username="newcomer")
    assert client.session["_auth_user_id"] == str(user.id)
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "x1", "password1": "a-Fresh-pass-7391", "password2": "a-Fresh-pass-7392"}, b"didn"),
        ({"username": "x2", "password1": "password", "password2": "password"}, b"too common"),
        ({"username": "x3", "password1": "short", "password2": "short"}, b"too short"),
        (
            {"username": "bad name!", "password1": "a-Fresh-pass-7391", "password2": "a-Fresh-pass-7391"},
            b"valid username",
        ),
        ({"username": "", "password1": "a-Fresh-pass-7391", "password2": "a-Fresh-pass-7391"}, b"required"),
        ({}, b"required"),
    ],
)
def test_signup_refuses_bad_input_with_400(client, data, message):
    """Mismatched, common, short passwords and bad usernames re-show the form with the error."""
    response = client.post("/accounts/signup/", data)
    assert response.status_code == 400
    assert message in response.content
    assert not get_user_model().objects.filter(username=data.get("username", "")).exists()


def test_signup_refuses_a_taken_username(client, alice):
    """A username already in use is a form error, not a crash."""
    response = client.post(
        "/accounts/signup/", {"username": "alice", "password1": "a-Fresh-pass-7391", "password2": "a-Fresh-pass-7391"}
    )
    assert response.status_code == 400
    assert b"This username is taken" in response.content


def test_signup_ignores_an_offsite_next(client):
    """`next` pointing to another site is ignored (no open redirect)."""
    response = client.post(
        "/accounts/signup/?next=https://evil.example/",
        {
            "username": "newcomer",
            "password1": "a-Fresh-pass-7391",
            "password2": "a-Fresh-pass-7391",
            "next": "https://evil.example/",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/"


# ----- logout -----------------------------------------------------------------------------


def test_logout_get_asks_for_confirmation(alice_client):
    """GET /accounts/logout/ shows a confirmation form instead of logging out."""
    response = alice_client.get("/accounts/logout/")
    assert response.status_code == 200
    assert b'method="post" action="/accounts/logout/"' in response.content
    assert "_auth_user_id" in alice_client.session


def test_logout_post_signs_out(alice_client):
    """POST /accounts/logout/ signs out."""
    response = alice_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert "_auth_user_id" not in alice_client.session
    assert alice_client.get("/").status_code == 302


def test_logout_post_needs_the_csrf_token(alice):
    """Logging out by POST without the CSRF token is refused (no cross-site logout)."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/accounts/logout/").status_code == 403
    assert "_auth_user_id" in client.session


# ----- room list --------------------------------------------------------------------------


def test_room_list_shows_public_rooms_and_own_private_ones(alice_client, alice, room_factory):
    """Public rooms and alice's private rooms are listed; others' private rooms are not."""
    room_factory("public-one", name="Public one")
    room_factory("mine", is_private=True, members=[alice])
    room_factory("secret", is_private=True)
    response = alice_client.get("/")
    assert response.status_code == 200
    assert b'data-slug="public-one"' in response.content
    assert b'data-slug="mine"' in response.content
    assert b'data-slug="secret"' not in response.content


def test_create_room_form_creates_and_opens_the_room(alice_client, alice):
    """Posting the form creates the room owned by alice and redirects to its chat page."""
    from rooms.models import Membership, Room

    response = alice_client.post("/", {"name": "Book club", "topic": "Reading", "is_private": "on"})
    assert response.status_code == 302 and response["Location"] == "/rooms/book-club/"
    room = Room.objects.get(slug="book-club")
    assert room.owner == alice and room.is_private and room.topic == "Reading"
    assert Membership.objects.filter(room=room, user=alice).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, b"This field is required"),
        ({"name": ""}, b"This field is required"),
        ({"name": "ok", "slug": "not a slug!"}, b"valid"),
        ({"name": "!!!"}, b"slug"),
        ({"name": "x" * 101}, b"at most 100"),
    ],
)
def test_create_room_refuses_bad_input_with_400(alice_client, data, message):
    """Missing names, bad slugs and over-long names re-show the form with the error."""
    from rooms.models import Room

    response = alice_client.post("/", data)
    assert response.status_code == 400
    assert message in response.content
    assert not Room.objects.exists()


def test_create_room_with_a_taken_slug_says_so(alice_client, room_factory):
    """A taken slug is a form error on the slug field."""
    room_factory("taken")
    response = alice_client.post("/", {"name": "Another", "slug": "taken"})
    assert response.status_code == 400
    assert b"taken" in response.content


# ----- chat page ----------------------------------------------------------------------------


def test_chat_page_of_a_public_room(alice_client, alice, room_factory):
    """A public room's page renders for any signed-in user with its settings for the client."""
    room_factory("lobby", name="Lobby", topic="Say hello!")
    response = alice_client.get("/rooms/lobby/")
    assert response.status_code == 200
    config = chat_config(response)
    assert config["room"] == "lobby" and config["username"] == "alice" and config["userId"] == alice.id
    assert config["isMuted"] is False and config["canModerate"] is False
    assert b'aria-live="polite"' in response.content and b"Say hello!" in response.content


def test_chat_page_of_a_private_room_is_404_for_outsiders(alice_client, room_factory):
    """A private room alice is not in answers 404, exactly like a missing one."""
    room_factory("secret", is_private=True)
    hidden = alice_client.get("/rooms/secret/")
    missing = alice_client.get("/rooms/no-such-room/")
    assert hidden.status_code == missing.status_code == 404


def test_chat_page_of_a_private_room_for_a_member(alice_client, alice, room_factory):
    """Members open their private room."""
    room_factory("mine", is_private=True, members=[alice])
    assert alice_client.get("/rooms/mine/").status_code == 200


def test_chat_page_of_a_dm_is_named_after_the_other_person(alice_client, alice, bob):
    """A DM's page (its name is both usernames) is titled, headed and labelled with the other
    person's name; outsiders get 404 as for any private room."""
    from rooms.models import Membership, Room

    dm = Room.objects.create(slug="dm-test", name="alice, bob", kind=Room.Kind.DM, is_private=True)
    for user in (alice, bob):
        Membership.objects.create(room=dm, user=user)
    response = alice_client.get("/rooms/dm-test/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "<title>bob · chatsite</title>" in text
    assert re.search(r"<h1><span class=\"badge private\">direct</span> bob</h1>", text)
    assert 'placeholder="Message bob"' in text and "alice, bob" not in text


def test_chat_page_when_banned_is_403_with_the_reason(alice_client, room_factory):
    """A user banned from a room gets 403 and the reason, not the page."""
    from rooms.services import room_ban

    room = room_factory("lobby")
    room_ban(actor=room.owner, room=room, username="alice")
    response = alice_client.get("/rooms/lobby/")
    assert response.status_code == 403
    assert b"banned" in response.content


def test_chat_page_tells_the_client_when_muted(alice_client, room_factory):
    """A muted user's page starts with the composer disabled (isMuted)."""
    from rooms.services import room_mute

    room = room_factory("lobby")
    room_mute(actor=room.owner, room=room, username="alice")
    assert chat_config(alice_client.get("/rooms/lobby/"))["isMuted"] is True


def test_chat_page_lets_owners_moderate(alice_client, alice, room_factory):
    """The room's owner gets the moderator's delete buttons (canModerate)."""
    room_factory("mine", owner=alice)
    assert chat_config(alice_client.get("/rooms/mine/"))["canModerate"] is True


def test_chat_page_refuses_post(alice_client, room_factory):
    """The chat page is read-only: POST answers 405."""
    room_factory("lobby")
    assert alice_client.post("/rooms/lobby/").status_code == 405


# ----- security headers, no inline code -----------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/rooms/lobby/", "/accounts/logout/"])
def test_signed_in_pages_have_no_inline_code_and_a_strict_csp(alice_client, room_factory, path):
    """Pages carry a CSP without 'unsafe-inline' and contain nothing it would block."""
    room_factory("lobby")
    response = alice_client.get(path)
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert inline_code(response) == []


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/signup/"])
def test_anonymous_pages_have_no_inline_code(client, path):
    """Login and signup pages contain no inline script or style either."""
    response = client.get(path)
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert inline_code(response) == []


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/rooms/report/",
        "/admin/rooms/message/",
        "/admin/rooms/roomban/add/",
        "/admin/rooms/filterterm/add/",
        "/admin/accounts/user/",
        "/api/v1/docs/",
    ],
)
def test_admin_and_api_docs_have_the_strict_csp(client, moderator_factory, room_factory, path):
    """The admin and the API docs page carry the same strict policy as every page, and nothing it blocks."""
    client.force_login(moderator_factory())
    room_factory("lobby")
    response = client.get(path)
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
    assert inline_code(response) == []


def test_api_docs_load_swagger_ui_from_the_app(client):
    """Swagger UI's files are static files of this app, its start-up script a same-origin file."""
    page = client.get("/api/v1/docs/").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(source.startswith("/") for source in sources), sources
    assert any("swagger-ui-bundle.js" in source for source in sources)
    script = client.get("/api/v1/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()
    bundle = next(source for source in sources if "swagger-ui-bundle.js" in source)
    assert client.get(bundle).status_code == 200


def test_admin_login_page_has_the_strict_csp(client):
    """Even the admin's login page, seen by anyone."""
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert inline_code(response) == []


def test_user_text_in_pages_is_escaped(alice_client, room_factory):
    """A room's name and topic with markup appear escaped on the list and the chat page."""
    room_factory("xss", name="<script>alert(1)</script>", topic="<img src=x onerror=alert(2)>")
    for path in ("/", "/rooms/xss/"):
        content = alice_client.get(path).content
        assert b"<script>alert(1)" not in content and b"<img src=x" not in content
        assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in content


@pytest.mark.parametrize(
    "path", ["/static/js/chat-socket.js", "/static/js/chat-page.js", "/static/js/render.js", "/static/css/site.css"]
)
def test_static_files_are_served(client, path):
    """The client's modules and stylesheet are served by the app itself (whitenoise)."""
    response = client.get(path)
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert len(body) > 500


# ----- throttling -------------------------------------------------------------------------

THROTTLE_2 = {"DEFAULT_THROTTLE_RATES": {"auth": "2/60s"}}


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/signup/"])
def test_login_and_signup_forms_share_the_auth_throttle(client, settings, path):
    """Beyond AUTH_THROTTLE the forms answer 429 with Retry-After, like the API's auth calls."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, **THROTTLE_2}
    data = {"username": "nobody", "password": "x", "password1": "x", "password2": "x"}
    assert [client.post(path, data).status_code for _ in range(2)] == [400, 400]
    refused = client.post(path, data)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert b"Too many" in refused.content
    assert client.get(path).status_code == 200  # reading the form is never throttled


def test_the_form_throttle_counts_api_calls_too(client, settings):
    """Token calls to the API and login form posts spend one budget per address."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, **THROTTLE_2}
    for _ in range(2):
        client.post("/api/v1/auth/token/", {"username": "nobody", "password": "x"}, content_type="application/json")
    assert client.post("/accounts/login/", {"username": "nobody", "password": "x"}).status_code == 429
