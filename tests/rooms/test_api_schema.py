"""The OpenAPI 3 schema at /api/v1/schema/ and the docs page at /api/v1/docs/."""

from __future__ import annotations

import warnings

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

CONTRACT_PATHS = {
    "/api/v1/auth/register/": {"post"},
    "/api/v1/auth/token/": {"post"},
    "/api/v1/auth/token/refresh/": {"post"},
    "/api/v1/auth/ws-ticket/": {"post"},
    "/api/v1/me/": {"get"},
    "/api/v1/rooms/": {"get", "post"},
    "/api/v1/rooms/{slug}/": {"get", "patch"},
    "/api/v1/rooms/{slug}/members/": {"post"},
    "/api/v1/rooms/{slug}/members/me/": {"delete"},
    "/api/v1/rooms/{slug}/messages/": {"get", "post"},
    "/api/v1/rooms/{slug}/changes/": {"get"},
    "/api/v1/rooms/{slug}/typing/": {"post"},
    "/api/v1/messages/{message_id}/": {"patch", "delete"},
    "/api/v1/messages/{message_id}/report/": {"post"},
    "/api/v1/rooms/{slug}/bans/": {"post"},
    "/api/v1/rooms/{slug}/bans/{username}/": {"delete"},
    "/api/v1/rooms/{slug}/mutes/": {"post"},
    "/api/v1/rooms/{slug}/mutes/{username}/": {"delete"},
    "/api/v1/bans/": {"post"},
    "/api/v1/bans/{username}/": {"delete"},
}


def test_schema_served_as_openapi_3():
    """The schema is served to anyone as OpenAPI 3 JSON."""
    response = APIClient().get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


def test_schema_lists_every_contract_row():
    """Every method and path of CONTRACT §2 is in the schema."""
    paths = APIClient().get("/api/v1/schema/?format=json").json()["paths"]
    for path, methods in CONTRACT_PATHS.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))


def test_schema_documents_the_trust_endpoints():
    """§7: logout, password change, the rotating refresh's pair, the report's 200/429."""
    paths = APIClient().get("/api/v1/schema/?format=json").json()["paths"]
    assert {"post"} <= set(paths["/api/v1/auth/logout/"]) and {"post"} <= set(paths["/api/v1/auth/password/"])
    assert set(paths["/api/v1/auth/logout/"]["post"]["responses"]) >= {"204", "401"}
    password = paths["/api/v1/auth/password/"]["post"]
    assert set(password["responses"]) >= {"200", "400", "401"}
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    body = password["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][body]["properties"]) == {"old_password", "new_password"}
    refresh = paths["/api/v1/auth/token/refresh/"]["post"]["responses"]["200"]["content"]["application/json"]
    pair = refresh["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][pair]["properties"]) == {"access", "refresh"}
    assert set(paths["/api/v1/messages/{message_id}/report/"]["post"]["responses"]) >= {"200", "201", "429"}


def test_schema_room_list_is_a_page():
    """rooms/ is documented as {next, previous, results}."""
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    content = schema["paths"]["/api/v1/rooms/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    name = content["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][name]["properties"]) == {"next", "previous", "results"}


def test_schema_documents_bearer_auth():
    """Bearer JWT is declared as a security scheme."""
    schemes = APIClient().get("/api/v1/schema/?format=json").json()["components"]["securitySchemes"]
    assert any(scheme.get("scheme") == "bearer" for scheme in schemes.values())


def test_schema_generates_without_warnings():
    """drf-spectacular generates the schema without warnings or errors."""
    from drf_spectacular.drainage import GENERATOR_STATS

    GENERATOR_STATS.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SchemaGenerator().get_schema(request=None, public=True)
    assert not GENERATOR_STATS._warn_cache
    assert not GENERATOR_STATS._error_cache


def test_docs_page():
    """A browsable docs page is served."""
    response = APIClient().get("/api/v1/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_schema_documents_read_state():
    """§5: the room object's read-state fields, rooms/?joined=, and POST rooms/{slug}/read/."""
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    room = schema["components"]["schemas"]["Room"]["properties"]
    assert {"kind", "last_message_id", "joined", "last_read_id", "unread_count", "mention_count"} <= set(room)
    listing = schema["paths"]["/api/v1/rooms/"]["get"]
    assert "joined" in {parameter["name"] for parameter in listing["parameters"]}
    read = schema["paths"]["/api/v1/rooms/{slug}/read/"]["post"]
    assert set(read["responses"]) >= {"200", "400", "401", "403", "404"}
    body = read["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][body]["properties"]) == {"last_read_id"}


def test_schema_documents_replies_reactions_and_search():
    """§5: reply_to on the post body, the reaction calls (201/200, 204/404) and search (q, room, before)."""
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    paths, components = schema["paths"], schema["components"]["schemas"]
    post = paths["/api/v1/rooms/{slug}/messages/"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "reply_to" in components[body]["properties"]
    reactions = paths["/api/v1/messages/{message_id}/reactions/"]["post"]
    assert set(reactions["responses"]) >= {"200", "201", "400", "403", "404"}
    body = reactions["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(components[body]["properties"]) == {"emoji"}
    delete = paths["/api/v1/messages/{message_id}/reactions/{emoji}/"]["delete"]
    assert set(delete["responses"]) >= {"204", "404"}
    search = paths["/api/v1/search/"]["get"]
    assert {parameter["name"] for parameter in search["parameters"]} >= {"q", "room", "before"}
    assert set(search["responses"]) >= {"200", "400", "404"}


def test_schema_documents_dms():
    """§5: POST dms/ {username} answers 201 or 200 with a room."""
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/dms/"]["post"]
    assert set(operation["responses"]) >= {"200", "201", "400", "401", "404"}
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][body]["properties"]) == {"username"}


def test_schema_documents_catching_up_and_the_event_stream():
    """§6: changes (required since, its page shape), typing's 204, and the stream served outside DRF."""
    schema = APIClient().get("/api/v1/schema/?format=json").json()
    changes = schema["paths"]["/api/v1/rooms/{slug}/changes/"]["get"]
    assert [(p["name"], p["required"]) for p in changes["parameters"] if p["in"] == "query"] == [("since", True)]
    page = changes["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][page]["properties"]) == {"updated", "deleted", "version", "has_more"}
    assert set(schema["paths"]["/api/v1/rooms/{slug}/typing/"]["post"]["responses"]) >= {"204", "403", "404"}
    stream = schema["paths"]["/api/v1/stream/"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert {p["name"] for p in stream["parameters"]} == {"rooms", "after", "ticket", "Last-Event-ID"}
    assert stream["security"] == schema["paths"]["/api/v1/me/"]["get"]["security"]
