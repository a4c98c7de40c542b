"""Room bans, room mutes and site-wide bans: add, change and lift them through the services.

Adding (or changing) calls room_ban / room_mute / site_ban, which upsert the row, so re-banning a
user whose ban expired works; deleting calls room_unban / room_unmute / site_unban. Each is one
AuditLog row and, for bans, one live broadcast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin

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
    """One admin for room bans, room mutes and site-wide bans, parametrised at registration by the
    service pair that writes them (`restrict`, `lift`); columns without a room for a site ban."""

    restrict: Callable[..., Any]
    lift: Callable[..., Any]

    form = RestrictionModelForm
    # The site-wide columns; room kinds add their room in the get_* methods below (the class
    # attributes must hold for SiteBan too, which Django's admin checks verify).
    list_filter = [ActiveRestrictionFilter, "created"]
    list_display = ["user", "status", "until", "reason", "created_by", "created"]
    search_fields = ["user__username", "reason"]
    list_select_related = ["user", "created_by"]
    autocomplete_fields = ["user"]
    ordering = ["-created"]

    def __init__(self, model, admin_site) -> None:
        super().__init__(model, admin_site)
        self.is_room_scoped = any(field.name == "room" for field in model._meta.fields)

    def _without_room(self, names: list[str]) -> list[str]:
        return names if self.is_room_scoped else [name for name in names if name != "room"]

    def _with_room(self, names, *, after: int, room: str = "room") -> list:
        names = list(names)
        return [*names[:after], room, *names[after:]] if self.is_room_scoped else names

    def get_list_display(self, request):
        return self._with_room(super().get_list_display(request), after=1)

    def get_list_filter(self, request):
        return self._with_room(super().get_list_filter(request), after=1)

    def get_search_fields(self, request):
        return self._with_room(super().get_search_fields(request), after=1, room="room__slug")

    def get_list_select_related(self, request):
        return self._with_room(super().get_list_select_related(request), after=1)

    def get_autocomplete_fields(self, request):
        return self._with_room(super().get_autocomplete_fields(request), after=1)

    def get_fields(self, request, obj=None):
        if obj is None:
            return self._without_room(["room", "user", "until", "reason"])
        return self._without_room(["room", "user", "status", "until", "reason", "created_by", "created"])

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return self._without_room(["room", "user", "status", "created_by", "created"])

    def get_queryset(self, request):
        return super().get_queryset(request).with_in_force()

    @admin.display(description="status")
    def status(self, restriction) -> str:
        if not restriction.in_force:
            return "expired"
        return "active (no end)" if restriction.until is None else "active"

    def _target(self, obj) -> dict[str, Any]:
        target: dict[str, Any] = {"username": obj.user.username}
        if self.is_room_scoped:
            target["room"] = obj.room
        return target

    def save_model(self, request, obj, form, change: bool) -> None:
        if change and not {"until", "reason"} & set(form.changed_data):
            return  # nothing changed: no service call, no audit entry
        saved = self.restrict(actor=request.user, until=obj.until, reason=obj.reason, **self._target(obj))
        # The admin logs and redirects with `obj`: make it the row the service wrote.
        obj.pk, obj.created, obj.created_by = saved.pk, saved.created, saved.created_by

    def delete_model(self, request, obj) -> None:
        self.lift(actor=request.user, **self._target(obj))

    def delete_queryset(self, request, queryset) -> None:
        self.apply_each(
            request,
            queryset.select_related(*self.get_list_select_related(request)),
            lambda obj: self.delete_model(request, obj),
            done="Lifted {count}.",
        )

    def get_deleted_objects(self, objs, request):
        objs = list(objs)
        return [str(obj) for obj in objs], {self.model._meta.verbose_name_plural: len(objs)}, set(), []


# Registration options become attributes of a subclass Django makes per model; staticmethod keeps
# the service functions unbound.
admin.site.register(
    RoomBan, RestrictionAdmin, restrict=staticmethod(services.room_ban), lift=staticmethod(services.room_unban)
)
admin.site.register(
    RoomMute, RestrictionAdmin, restrict=staticmethod(services.room_mute), lift=staticmethod(services.room_unmute)
)
admin.site.register(
    SiteBan, RestrictionAdmin, restrict=staticmethod(services.site_ban), lift=staticmethod(services.site_unban)
)
