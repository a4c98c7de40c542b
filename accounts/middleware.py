"""HTTP middleware: a site-banned user's session gets 403 on the API and is logged out on pages."""

from __future__ import annotations

from django.contrib.auth import logout

from chatsite.api.errors import error_response
from chatsite.ops import OPS_PATHS


class SiteBanMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Probes and scrapes must not reach the session table.
        if request.path in OPS_PATHS:
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            from rooms.selectors import user_is_site_banned

            if user_is_site_banned(user_id=user.id):
                if request.path.startswith("/api/"):
                    return error_response("forbidden", "This account is banned site-wide.", status=403)
                logout(request)
        return self.get_response(request)
