"""Security headers Django does not set itself: a Content-Security-Policy without inline script or
style, on every response, the admin and the API docs page included (Swagger UI is served from the
app by drf-spectacular-sidecar, its start-up script as a file; Django's admin needs no inline code)."""

from __future__ import annotations

from django.conf import settings


def content_security_policy() -> str:
    connect = " ".join(["'self'", *[origin.replace("http", "ws", 1) for origin in settings.ALLOWED_ORIGINS]])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
    )


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = content_security_policy()

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response
