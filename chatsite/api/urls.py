"""The REST API under /api/v1/ (CONTRACT §2): each app's own `api_urls`, the OpenAPI schema and its
docs page, and last a JSON 404 for every other path."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from chatsite.api.views import api_not_found

urlpatterns = [
    path("", include("accounts.api_urls")),
    path("", include("rooms.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file, so the page needs no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^.*$", api_not_found),  # last: everything else under /api/v1/ is a JSON 404
]
