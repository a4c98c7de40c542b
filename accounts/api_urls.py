"""URL map of the accounts API under /api/v1/ (CONTRACT §2): auth and `me/`."""

from django.urls import path

from accounts import api

urlpatterns = [
    path("auth/register/", api.RegisterView.as_view(), name="api-register"),
    path("auth/token/", api.TokenView.as_view(), name="api-token"),
    path("auth/token/refresh/", api.TokenRefreshView.as_view(), name="api-token-refresh"),
    path("auth/logout/", api.LogoutView.as_view(), name="api-logout"),
    path("auth/password/", api.PasswordChangeView.as_view(), name="api-password"),
    path("auth/ws-ticket/", api.WsTicketView.as_view(), name="api-ws-ticket"),
    path("me/", api.MeView.as_view(), name="api-me"),
]
