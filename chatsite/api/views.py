"""The base of every API view: a body cap checked before parsing, safe parsers, validation, the
schema's error response, and the JSON 404 for paths under /api/v1/ that name no endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from chatsite.api.errors import error_response
from chatsite.api.parsers import API_PARSERS
from rooms.exceptions import TooLarge

# Well above a 4,000-character body in JSON (even \uXXXX-escaped), far below what hurts.
MAX_REQUEST_BYTES = 64 * 1024

ERROR = OpenApiResponse(description='`{"code", "detail", ...}` JSON error; field errors as extra keys.')


class BodyLimitMixin:
    """Refuse request bodies over MAX_REQUEST_BYTES with 413 before parsing; parse JSON safely."""

    parser_classes: Sequence[type[BaseParser]] = API_PARSERS

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_REQUEST_BYTES:
            raise TooLarge(f"Request body is {length} bytes; the limit is {MAX_REQUEST_BYTES}.")


class ChatAPIView(BodyLimitMixin, APIView):
    """An authenticated JSON view of the API (default authentication and permission classes)."""


def validated(serializer_class: type[BaseSerializer], data: Any) -> dict[str, Any]:
    """Validate `data` (JSON body or query) or raise DRF's ValidationError (400 with field errors)."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


@csrf_exempt
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """JSON 404 for any path under /api/v1/ that names no endpoint, whatever the method.

    Being a match, it also stops CommonMiddleware's APPEND_SLASH, which would answer a POST to
    `rooms` (no slash) with a 500 under DEBUG and a body-dropping 301 otherwise. CSRF-exempt
    because it changes nothing: a POST with a Bearer token (no cookie) gets this 404, not
    Django's HTML "CSRF verification failed" page.
    """
    detail = f"No API endpoint at {request.path}."
    if not request.path.endswith("/"):
        detail += f" Paths end with a slash: try {request.path}/."
    return error_response("not_found", detail, status=404)


# Django's own error paths (settings CSRF_FAILURE_VIEW, chatsite/urls.py handler400/403/404/500):
# JSON under /api/, Django's pages elsewhere, so an API client never has to parse HTML.


def is_api_path(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if is_api_path(request):
        return error_response(
            "forbidden", "CSRF check failed: send the csrftoken cookie's value as X-CSRFToken.", status=403
        )
    return django_csrf_failure(request, reason=reason)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request):
        return error_response("bad_request", "The request could not be read.", status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request):
        return error_response("forbidden", "You may not do this.", status=403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request):
        return error_response("not_found", f"No API endpoint at {request.path}.", status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_path(request):
        return error_response("server_error", "The server failed on this request; it is logged.", status=500)
    return defaults.server_error(request)
