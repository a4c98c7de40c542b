"""Never a 500: arbitrary JSON, pathological bodies and odd paths against every API endpoint."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

pytestmark = pytest.mark.django_db

FIELDS = [
    "username",
    "password",
    "old_password",
    "new_password",
    "email",
    "refresh",
    "name",
    "slug",
    "topic",
    "is_private",
    "slow_mode_seconds",
    "body",
    "client_id",
    "reason",
    "until",
    "before",
    "after",
    "limit",
    "reply_to",
    "emoji",
    "ids",
    "all",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=5),
    json_values,
)

WRITE_ENDPOINTS = [
    ("post", "/api/v1/auth/register/"),
    ("post", "/api/v1/auth/token/"),
    ("post", "/api/v1/auth/token/refresh/"),
    ("post", "/api/v1/auth/logout/"),
    ("post", "/api/v1/auth/password/"),
    ("post", "/api/v1/rooms/"),
    ("patch", "/api/v1/rooms/fuzz/"),
    ("post", "/api/v1/rooms/fuzz/members/"),
    ("post", "/api/v1/rooms/fuzz/messages/"),
    ("patch", "/api/v1/messages/{message_id}/"),
    ("post", "/api/v1/messages/{message_id}/report/"),
    ("post", "/api/v1/messages/{message_id}/reactions/"),
    ("post", "/api/v1/rooms/fuzz/bans/"),
    ("post", "/api/v1/rooms/fuzz/mutes/"),
    ("post", "/api/v1/bans/"),
    ("post", "/api/v1/notifications/read/"),
]


@pytest.fixture
def world(user_factory, moderator_factory, room_factory):
    """A moderator who owns room `fuzz`, holding one message of theirs."""
    from rooms import services

    mod = moderator_factory("fuzzmod")
    user_factory("fuzzvictim")
    room = room_factory("fuzz", owner=mod)
    message, _ = services.message_post(user=mod, room=room, body="hello")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(mod).access_token}")
    return client, message.id


@pytest.mark.parametrize("method,path", WRITE_ENDPOINTS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_any_json_body_is_never_a_500(world, method, path, body):
    """Whatever JSON arrives, the answer is a JSON success or 4xx, never a 5xx."""
    client, message_id = world
    response = getattr(client, method)(
        path.format(message_id=message_id), json.dumps(body), content_type="application/json"
    )
    assert response.status_code < 500, (body, response.content[:300])
    assert response["Content-Type"].startswith("application/json")


@given(query=st.dictionaries(st.sampled_from(["before", "after", "limit", "cursor"]), st.text(max_size=30), max_size=3))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_query_is_never_a_500(world, query):
    """Arbitrary query strings on the listing endpoints answer 200 or 400."""
    client, _ = world
    for path in ("/api/v1/rooms/fuzz/messages/", "/api/v1/rooms/"):
        response = client.get(path, query)
        assert response.status_code in (200, 400), (path, query, response.content[:300])


@given(query=st.dictionaries(st.sampled_from(["q", "room", "before"]), st.text(max_size=210), max_size=3))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_search_query_is_never_a_500(world, query):
    """Arbitrary q, room and before on search/ answer 200, 400 or 404."""
    client, _ = world
    response = client.get("/api/v1/search/", query)
    assert response.status_code in (200, 400, 404), (query, response.content[:300])


@given(query=st.dictionaries(st.sampled_from(["unread", "before"]), st.text(max_size=30), max_size=2))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_notifications_query_is_never_a_500(world, query):
    """Arbitrary unread and before on notifications/ answer 200 or 400."""
    client, _ = world
    response = client.get("/api/v1/notifications/", query)
    assert response.status_code in (200, 400), (query, response.content[:300])


@given(emoji=st.text(max_size=12))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_reaction_path_is_never_a_500(world, emoji):
    """DELETE messages/{id}/reactions/<any text, percent-encoded>/ answers 204, 400 or 404."""
    from urllib.parse import quote

    client, message_id = world
    response = client.delete(f"/api/v1/messages/{message_id}/reactions/{quote(emoji, safe='')}/")
    assert response.status_code in (204, 400, 404), (emoji, response.content[:300])


@pytest.mark.parametrize("method,path", WRITE_ENDPOINTS)
@pytest.mark.parametrize("raw", ["[" * 50_000, '{"a":' * 20_000, "\x00", "\xff\xfe", "null", "1e999999", "NaN"])
def test_pathological_json_is_400(world, method, path, raw):
    """Deep nesting, bad encodings and odd literals answer 4xx."""
    client, message_id = world
    response = getattr(client, method)(
        path.format(message_id=message_id), raw.encode("utf-8", "surrogatepass"), content_type="application/json"
    )
    assert 400 <= response.status_code < 500, response.content[:300]


@pytest.mark.parametrize("method,path", WRITE_ENDPOINTS)
def test_lone_surrogates_never_500(world, method, path):
    """Strings with lone UTF-16 surrogates (valid JSON, not storable text) never cause a 500."""
    client, message_id = world
    raw = json.dumps(dict.fromkeys(FIELDS, "a�b"))  # ensure_ascii writes \\ud800 escapes
    response = getattr(client, method)(path.format(message_id=message_id), raw, content_type="application/json")
    assert response.status_code < 500, response.content[:300]


@pytest.mark.parametrize("method,path", WRITE_ENDPOINTS)
def test_oversized_request_413(world, method, path):
    """A body over 64 KiB is refused with 413 on every endpoint (after the auth throttle)."""
    client, message_id = world
    response = getattr(client, method)(path.format(message_id=message_id), {"body": "x" * 70_000}, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
