"""Account pages: Django's login view, a sign-up page, a logout that confirms on GET, and the
admin's login and logout routed through the same throttle and the same session end."""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminPasswordChangeForm
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters

from accounts import services
from accounts.forms import SignupForm
from accounts.throttles import AuthThrottle


def _throttled(request: HttpRequest) -> HttpResponse | None:
    """429 once the client address spent its AUTH_THROTTLE budget (shared with the API's
    register/token/refresh and the admin login: no form may be a way around it); None while within it."""
    throttle = AuthThrottle()
    # DRF's throttle reads only the client address from META, which a plain HttpRequest has too.
    if throttle.allow_request(request, None):  # type: ignore[arg-type]
        return None
    retry_after = max(1, math.ceil(throttle.wait() or 1))
    response = render(request, "registration/throttled.html", {"retry_after": retry_after}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def _safe_next(request: HttpRequest) -> str:
    """The `next` parameter if it points back into this site, else the default landing page."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return settings.LOGIN_REDIRECT_URL


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return _throttled(request) or super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        # A wrong password is bad input: answer 400 with the form and its error, like the API.
        response = super().form_invalid(form)
        response.status_code = 400
        return response


@sensitive_post_parameters("password1", "password2")
def signup(request: HttpRequest) -> HttpResponse:
    """Create an account and sign in at once; a signed-in visitor is sent on."""
    if request.user.is_authenticated:
        return redirect(_safe_next(request))
    if request.method == "POST" and (refusal := _throttled(request)):
        return refusal
    form = SignupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid() and (user := form.register()) is not None:
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(_safe_next(request))
    status = 400 if request.method == "POST" else 200
    return render(request, "registration/signup.html", {"form": form, "next": _safe_next(request)}, status=status)


class LogoutView(auth_views.LogoutView):
    """POST logs out through accounts.services.session_logout (the session's connections end
    too); GET shows a confirmation form instead of a 405. Serves /admin/logout/ as well."""

    http_method_names = ["get", "post", "options"]
    template_name = "registration/logged_out.html"

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect(settings.LOGIN_URL)
        return render(request, "registration/logout_confirm.html")

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        services.session_logout(request)
        redirect_to = self.get_success_url()
        if redirect_to != request.get_full_path():
            return HttpResponseRedirect(redirect_to)
        return render(request, self.template_name)


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login page under the same AUTH_THROTTLE budget as every other login."""
    if request.method == "POST" and (refusal := _throttled(request)):
        return refusal
    return admin.site.login(request)


class AdminPasswordChangeView(auth_views.PasswordChangeView):
    """The admin's "Change password" (its form checks the old password and the validators), saved
    through accounts.services.password_set: the user's tokens, tickets and other web sessions end;
    this session stays signed in, as Django's own view does."""

    form_class = AdminPasswordChangeForm
    template_name = "registration/password_change_form.html"  # the admin's
    success_url = reverse_lazy("admin:password_change_done")

    def get_context_data(self, **kwargs):
        return {**admin.site.each_context(self.request), **super().get_context_data(**kwargs)}

    def form_valid(self, form):
        services.password_set(user=form.user, new_password=form.cleaned_data["new_password1"])
        update_session_auth_hash(self.request, form.user)
        return HttpResponseRedirect(self.get_success_url())
