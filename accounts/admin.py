"""Users in the admin: superusers get Django's full UserAdmin; moderators a read-only view.

Moderators can look users up (and ban them site-wide through rooms/services.py) but never edit
them, change a password, or grant groups and permissions: those stay with superusers. A
superuser's deactivation and password reset go through accounts/services.py, so they end the
user's tokens, sessions and connections like the API's password change does.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db.models import Exists, OuterRef, Q
from rest_framework_simplejwt.token_blacklist.admin import BlacklistedTokenAdmin, OutstandingTokenAdmin
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import services as account_services
from accounts.models import User
from rooms import services
from rooms.admin.base import ServiceModelAdmin, restriction_action
from rooms.models import SiteBan

MODERATOR_FIELDSETS = (
    (None, {"fields": ("username", "first_name", "last_name", "email")}),
    ("Standing", {"fields": ("is_active", "is_staff", "moderator", "site_ban_status", "last_login", "date_joined")}),
)


class SiteBannedFilter(admin.SimpleListFilter):
    title = "banned site-wide"
    parameter_name = "site_banned"

    def lookups(self, request, model_admin):
        return [("yes", "banned now"), ("no", "not banned")]

    def queryset(self, request, queryset):
        banned = Exists(SiteBan.objects.active().filter(user=OuterRef("pk")))
        if self.value() == "yes":
            return queryset.filter(banned)
        if self.value() == "no":
            return queryset.filter(~banned)
        return queryset


class PasswordResetForm(AdminPasswordChangeForm):
    """Django's admin password form, saved through accounts.services.password_set."""

    def save(self, commit: bool = True):
        # Django's validate_passwords() turned the "usable_password" choice into this flag.
        usable = self.cleaned_data.get("set_usable_password", True)
        account_services.password_set(user=self.user, new_password=self.cleaned_data["password1"] if usable else None)
        return self.user


@admin.register(User)
class UserAdmin(ServiceModelAdmin, DjangoUserAdmin):
    list_display = ["username", "email", "is_active", "is_staff", "moderator", "site_ban_status", "date_joined"]
    list_filter = ["is_active", "is_staff", "is_superuser", "groups", SiteBannedFilter]
    search_fields = ["username", "email", "first_name", "last_name"]
    actions = ["ban_site_wide", "lift_site_ban", "deactivate_selected"]
    change_password_form = PasswordResetForm

    def save_model(self, request, obj, form, change: bool) -> None:
        """Everything but `is_active` saves as usual; turning it off or on is the service's."""
        toggled = change and "is_active" in form.changed_data
        if toggled:
            obj.is_active = not obj.is_active
        super().save_model(request, obj, form, change)
        if toggled and obj.is_active:
            account_services.user_deactivate(actor=request.user, user=obj)
        elif toggled:
            account_services.user_reactivate(actor=request.user, user=obj)

    @admin.action(description="Deactivate selected users", permissions=["change"])
    def deactivate_selected(self, request, queryset):
        self.apply_each(
            request,
            list(queryset.filter(is_active=True)),
            lambda user: account_services.user_deactivate(actor=request.user, user=user),
            done="Deactivated {count} user(s): their tokens and sessions ended.",
        )

    def get_fieldsets(self, request, obj=None):
        if request.user.is_superuser:
            return super().get_fieldsets(request, obj)
        return MODERATOR_FIELDSETS

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return [*super().get_readonly_fields(request, obj), "moderator", "site_ban_status"]
        return [field for _, options in MODERATOR_FIELDSETS for field in options["fields"]]

    # Only superusers edit accounts: a `change_user` permission would let its holder make
    # themselves superuser, so it is not enough on its own.
    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    @admin.display(description="moderator", boolean=True)
    def moderator(self, user: User) -> bool:
        return user.is_moderator  # the list's queryset prefetches groups, which is_moderator reads

    @admin.display(description="banned site-wide")
    def site_ban_status(self, user: User) -> str:
        ban = SiteBan.objects.with_in_force().filter(user=user).first()
        if ban is None:
            return "—"
        if not ban.in_force:
            return "expired"
        return "banned (no end)" if ban.until is None else f"banned until {ban.until:%Y-%m-%d %H:%M} UTC"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.action(description="Ban selected users site-wide", permissions=["moderate"])
    def ban_site_wide(self, request, queryset):
        usernames = sorted(queryset.values_list("username", flat=True))

        def apply(reason, until):
            self.apply_each(
                request,
                usernames,
                lambda username: services.site_ban(actor=request.user, username=username, until=until, reason=reason),
                done="Banned {count} user(s) site-wide.",
            )

        return restriction_action(self, request, queryset, title="Ban site-wide", targets=usernames, apply=apply)

    @admin.action(description="Lift site-wide bans of selected users", permissions=["moderate"])
    def lift_site_ban(self, request, queryset):
        self.apply_each(
            request,
            sorted(queryset.filter(Q(site_ban__isnull=False)).values_list("username", flat=True)),
            lambda username: services.site_unban(actor=request.user, username=username),
            done="Lifted {count} site-wide ban(s).",
        )


# simplejwt's token admins, without the token column: the outstanding-token table no longer
# stores tokens (accounts/tokens.py), and an admin page must never show a live credential.
admin.site.unregister(OutstandingToken)
admin.site.unregister(BlacklistedToken)


@admin.register(OutstandingToken)
class IssuedRefreshTokenAdmin(OutstandingTokenAdmin):
    list_display = ("jti", "user", "created_at", "expires_at", "revoked")  # type: ignore[assignment]
    fields = ("jti", "user", "created_at", "expires_at")
    list_filter = ("expires_at",)
    search_fields = ("user__username", "jti")

    def get_readonly_fields(self, *args, **kwargs):
        return self.fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("blacklistedtoken")

    @admin.display(description="revoked", boolean=True)
    def revoked(self, token: OutstandingToken) -> bool:
        return hasattr(token, "blacklistedtoken")


@admin.register(BlacklistedToken)
class RevokedRefreshTokenAdmin(BlacklistedTokenAdmin):
    pass
