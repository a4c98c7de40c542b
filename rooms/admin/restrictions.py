"""Room bans, room mutes and site-wide bans: add, change and lift them through the services.

Adding (or changing) calls room_ban / room_mute / site_ban, which upsert the row, so re-banning a
user whose ban expired works; deleting calls room_unban / room_unmute / site_unban. Each is one
AuditLog row and, for bans, one live broadcast.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils import timezone

from rooms import services
from rooms.admin.base import ActiveRestrictionFilter, ServiceModelAdmin, validate_until
from rooms.models import RoomBan, RoomMute, SiteBan


class RestrictionModelForm(forms.ModelForm):
    def clean_until(self):
        until = self.cleaned_data.get("until")
        if "until" in self.changed_data or self.instance.pk is None:
            validate_until(until)
        return until

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None:
            lookup = {name: cleaned.get(name) for name in ("room", "user") if name in self.fields}
            if all(lookup.values()):
                existing = self._meta.model.objects.filter(**lookup).first()
                if existing is not None:
                    # The services upsert on (room, user) / user: adding over an existing (even
                    # expired) row replaces it, so validate the form as a change of that row.
                    self.instance = existing
        return cleaned


class RestrictionAdmin(ServiceModelAdmin):
    form = RestrictionModelForm
    list_filter = [ActiveRestrictionFilter, "room", "created"]
    list_display = ["user", "room", "status", "until", "reason", "created_by", "created"]
    search_fields = ["user__username", "room__slug", "reason"]
    list_select_related = ["user", "room", "created_by"]
    autocomplete_fields = ["user", "room"]
    ordering = ["-created"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["room", "user", "until", "reason"]
        return ["room", "user", "status", "until", "reason", "created_by", "created"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["room", "user", "status", "created_by", "created"]

    @admin.display(description="status")
    def status(self, restriction) -> str:
        if restriction.until is None:
            return "active (no end)"
        return "active" if restriction.until > timezone.now() else "expired"

    def _apply(self, request, obj, form) -> None:
        raise NotImplementedError

    def _lift(self, request, obj) -> None:
        raise NotImplementedError

    def save_model(self, request, obj, form, change: bool) -> None:
        if change and not {"until", "reason"} & set(form.changed_data):
            return  # nothing changed: no service call, no audit entry
        saved = self._apply(request, obj, form)
        # The admin logs and redirects with `obj`: make it the row the service wrote.
        obj.pk, obj.created, obj.created_by = saved.pk, saved.created, saved.created_by

    def delete_model(self, request, obj) -> None:
        self._lift(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        self.apply_each(
            request,
            queryset.select_related(*self.list_select_related),
            lambda obj: self._lift(request, obj),
            done="Lifted {count}.",
        )

    def get_deleted_objects(self, objs, request):
        objs = list(objs)
        return [str(obj) for obj in objs], {self.model._meta.verbose_name_plural: len(objs)}, set(), []


@admin.register(RoomBan)
class RoomBanAdmin(RestrictionAdmin):
    def _apply(self, request, obj, form):
        return services.room_ban(
            actor=request.user, room=obj.room, username=obj.user.username, until=obj.until, reason=obj.reason
        )

    def _lift(self, request, obj) -> None:
        services.room_unban(actor=request.user, room=obj.room, username=obj.user.username)


@admin.register(RoomMute)
class RoomMuteAdmin(RestrictionAdmin):
    def _apply(self, request, obj, form):
        return services.room_mute(
            actor=request.user, room=obj.room, username=obj.user.username, until=obj.until, reason=obj.reason
        )

    def _lift(self, request, obj) -> None:
        services.room_unmute(actor=request.user, room=obj.room, username=obj.user.username)


@admin.register(SiteBan)
class SiteBanAdmin(RestrictionAdmin):
    list_filter = [ActiveRestrictionFilter, "created"]
    list_display = ["user", "status", "until", "reason", "created_by", "created"]
    search_fields = ["user__username", "reason"]
    list_select_related = ["user", "created_by"]
    autocomplete_fields = ["user"]

    def get_fields(self, request, obj=None):
        return [name for name in super().get_fields(request, obj) if name != "room"]

    def get_readonly_fields(self, request, obj=None):
        return [name for name in super().get_readonly_fields(request, obj) if name != "room"]

    def _apply(self, request, obj, form):
        return services.site_ban(actor=request.user, username=obj.user.username, until=obj.until, reason=obj.reason)

    def _lift(self, request, obj) -> None:
        services.site_unban(actor=request.user, username=obj.user.username)
