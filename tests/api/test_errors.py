"""The `{code, detail}` error JSON (chatsite/api/errors.py) and JSON errors everywhere under /api/."""

from __future__ import annotations

import json

import pytest
from django.test import Client, RequestFactory
from rest_framework import exceptions as drf_exceptions

from chatsite.api import views
from chatsite.api.errors import api_exception_handler, error_body, error_response
from rooms.exceptions import BadRequest, RateLimited


def test_error_body_keeps_code_and_detail_against_same_named_fields():
    """A field called "code" or "detail" cannot replace the error's own keys."""
    body = error_body("bad_request", "Some fields are invalid.", code=["bad"], detail=["bad"], name=["required"])
    assert body == {"code": "bad_request", "detail": "Some fields are invalid.", "name": ["required"]}


def test_error_response_sets_retry_after_header_rounded_up():
    """`retry_after` of 1.2 s is 1.2 in the body and `Retry-After: 2` on the response."""
    response = error_response("rate_limited", "Slow down.", status=429, retry_after=1.2)
    assert response.status_code == 429
    assert json.loads(response.content) == {"code": "rate_limited", "detail": "Slow down.", "retry_after": 1.2}
    assert response["Retry-After"] == "2"


@pytest.mark.parametrize(
    ("exc", "status", "body"),
    [
        (BadRequest("Nope."), 400, {"code": "bad_request", "detail": "Nope."}),
        (RateLimited("Wait.", retry_after=0.2), 429, {"code": "rate_limited", "detail": "Wait.", "retry_after": 0.2}),
        (drf_exceptions.NotAuthenticated(), 401, {"code": "not_authenticated"}),
        (drf_exceptions.MethodNotAllowed("PUT"), 405, {"code": "method_not_allowed"}),
        (drf_exceptions.UnsupportedMediaType("text/xml"), 415, {"code": "unsupported_media_type"}),
    ],
)
def test_handler_maps_exceptions_to_error_objects(exc, status, body):
    """Chat errors and DRF's own exceptions all answer the error object with the contract's code."""
    response = api_exception_handler(exc, {})
    assert response is not None
    assert response.status_code == status
    assert body.items() <= response.data.items()
    assert isinstance(response.data["detail"], str)


def test_handler_keeps_field_errors_top_level_and_under_errors():
    """A ValidationError answers bad_request with each field's messages twice (top level, `errors`)."""
    response = api_exception_handler(drf_exceptions.ValidationError({"name": ["required"]}), {})
    assert response.status_code == 400
    assert response.data["code"] == "bad_request"
    assert response.data["name"] == ["required"]
    assert response.data["errors"] == {"name": ["required"]}


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "get"])
def test_unknown_api_path_with_bearer_is_json_404_not_csrf_403(method):
    """Any method to an unknown /api/v1/ path, with a Bearer token and CSRF enforced, is a JSON 404."""
    client = Client(enforce_csrf_checks=True)
    response = client.generic(
        method.upper(), "/api/v1/no-such-endpoint/", "{}", "application/json", HTTP_AUTHORIZATION="Bearer abc"
    )
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_api_path_outside_v1_is_json_404():
    """/api/ itself names nothing: Django's 404 there is JSON too."""
    response = Client().get("/api/")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "No API endpoint at /api/."}


@pytest.mark.django_db
def test_page_404_stays_html():
    """Outside /api/ a missing page is Django's HTML 404."""
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("view", "args", "status", "code"),
    [
        (views.csrf_failure, (), 403, "forbidden"),
        (views.bad_request, (Exception(),), 400, "bad_request"),
        (views.permission_denied, (Exception(),), 403, "forbidden"),
        (views.server_error, (), 500, "server_error"),
    ],
)
def test_django_error_views_answer_json_under_api(view, args, status, code):
    """Django's CSRF-failure, 400, 403 and 500 views answer the error object under /api/."""
    response = view(RequestFactory().post("/api/v1/rooms/"), *args)
    assert response.status_code == status
    assert json.loads(response.content)["code"] == code


@pytest.mark.parametrize("view", [views.csrf_failure, views.server_error])
def test_django_error_views_stay_html_for_pages(view):
    """Outside /api/ the same views answer Django's HTML pages."""
    response = view(RequestFactory().post("/rooms/lobby/"))
    assert response["Content-Type"].startswith("text/html")
