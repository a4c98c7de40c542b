"""URL map: pages, accounts, admin, the REST API under /api/v1/, and operations endpoints."""

from django.contrib import admin
from django.urls import include, path

from chatsite import ops

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("rooms.api_urls")),
    path("accounts/", include("accounts.urls")),
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics_view, name="metrics"),
    path("", include("rooms.urls")),
]
