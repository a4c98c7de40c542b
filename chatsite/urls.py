"""URL map: pages, accounts, admin, the REST API under /api/v1/, and operations endpoints."""

from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views
from chatsite import ops

urlpatterns = [
    # Before the admin's own: its login shares AUTH_THROTTLE; its logout and password change go
    # through accounts/services.py like the site's, so they end what they must.
    path("admin/login/", account_views.admin_login, name="admin-login"),
    path("admin/logout/", account_views.LogoutView.as_view(next_page="/admin/login/"), name="admin-logout"),
    path(
        "admin/password_change/",
        admin.site.admin_view(account_views.AdminPasswordChangeView.as_view()),
        name="admin-password-change",
    ),
    path("admin/", admin.site.urls),
    path("api/v1/", include("chatsite.api.urls")),
    path("accounts/", include("accounts.urls")),
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics_view, name="metrics"),
    path("", include("rooms.urls")),
]

# Django's error views, JSON under /api/ (chatsite/api/views.py).
handler400 = "chatsite.api.views.bad_request"
handler403 = "chatsite.api.views.permission_denied"
handler404 = "chatsite.api.views.page_not_found"
handler500 = "chatsite.api.views.server_error"
