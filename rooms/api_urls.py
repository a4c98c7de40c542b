"""URL map of the REST API under /api/v1/ (CONTRACT §2), its OpenAPI schema and docs page."""

from django.urls import path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import api as accounts_api
from rooms import api
from rooms.api.base import api_not_found


class UsernameConverter:
    """Django's username characters only, so no NUL byte or other junk reaches the database."""

    regex = r"[\w.@+-]{1,150}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(UsernameConverter, "username")

urlpatterns = [
    path("auth/register/", accounts_api.RegisterView.as_view(), name="api-register"),
    path("auth/token/", accounts_api.TokenView.as_view(), name="api-token"),
    path("auth/token/refresh/", accounts_api.TokenRefreshView.as_view(), name="api-token-refresh"),
    path("auth/logout/", accounts_api.LogoutView.as_view(), name="api-logout"),
    path("auth/password/", accounts_api.PasswordChangeView.as_view(), name="api-password"),
    path("auth/ws-ticket/", accounts_api.WsTicketView.as_view(), name="api-ws-ticket"),
    path("me/", accounts_api.MeView.as_view(), name="api-me"),
    path("rooms/", api.RoomListView.as_view(), name="api-rooms"),
    path("rooms/<slug:slug>/", api.RoomDetailView.as_view(), name="api-room"),
    path("rooms/<slug:slug>/members/", api.MembershipView.as_view(), name="api-room-members"),
    path("rooms/<slug:slug>/members/me/", api.MembershipMeView.as_view(), name="api-room-members-me"),
    path("rooms/<slug:slug>/messages/", api.MessageListView.as_view(), name="api-room-messages"),
    path("rooms/<slug:slug>/bans/", api.RoomBanListView.as_view(), name="api-room-bans"),
    path("rooms/<slug:slug>/bans/<username:username>/", api.RoomBanDetailView.as_view(), name="api-room-ban"),
    path("rooms/<slug:slug>/mutes/", api.RoomMuteListView.as_view(), name="api-room-mutes"),
    path("rooms/<slug:slug>/mutes/<username:username>/", api.RoomMuteDetailView.as_view(), name="api-room-mute"),
    path("messages/<int:message_id>/", api.MessageDetailView.as_view(), name="api-message"),
    path("messages/<int:message_id>/report/", api.MessageReportView.as_view(), name="api-message-report"),
    path("bans/", api.SiteBanListView.as_view(), name="api-site-bans"),
    path("bans/<username:username>/", api.SiteBanDetailView.as_view(), name="api-site-ban"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file, so the page needs no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^.*$", api_not_found),  # last: everything else under /api/v1/ is a JSON 404
]
