"""Rooms (name, topic, slow mode through room_update) and memberships (read-only)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count

from rooms import services
from rooms.admin.base import ServiceModelAdmin
from rooms.models import Membership, Room

ROOM_EDITABLE = ["name", "topic", "slow_mode_seconds"]


@admin.register(Room)
class RoomAdmin(ServiceModelAdmin):
    list_display = [
        "slug",
        "name",
        "owner",
        "is_private",
        "slow_mode_seconds",
        "member_count",
        "last_message_id",
        "created",
    ]
    list_filter = ["is_private", "created"]
    search_fields = ["slug", "name", "topic", "owner__username"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_total=Count("memberships", distinct=True))

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["slug", "name", "topic", "is_private", "owner", "slow_mode_seconds"]
        return ["slug", *ROOM_EDITABLE, "is_private", "owner", "created", "last_message_id"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # Privacy and ownership have no service to change them; slug is in every URL and group name.
        return ["slug", "is_private", "owner", "created", "last_message_id"]

    def has_delete_permission(self, request, obj=None):
        return False  # no room_delete service: a deletion would vanish under open sockets unannounced

    @admin.display(description="members", ordering="member_total")
    def member_count(self, room: Room) -> int:
        return room.member_total  # type: ignore[attr-defined]  # annotated by get_queryset

    def save_model(self, request, obj: Room, form, change: bool) -> None:
        if not change:
            room = services.room_create(
                user=obj.owner, name=obj.name, slug=obj.slug, topic=obj.topic, is_private=obj.is_private
            )
            obj.pk = room.pk
            if obj.slow_mode_seconds:
                services.room_update(actor=request.user, room=room, slow_mode_seconds=obj.slow_mode_seconds)
            return
        changed = {name: form.cleaned_data[name] for name in ROOM_EDITABLE if name in form.changed_data}
        if changed:
            services.room_update(actor=request.user, room=obj, **changed)


@admin.register(Membership)
class MembershipAdmin(ServiceModelAdmin):
    """Who is in which room; joins and leaves happen in the chat (room_join, room_leave, room_invite)."""

    list_display = ["user", "room", "joined", "last_read_id"]
    list_filter = ["room"]
    search_fields = ["user__username", "room__slug"]
    list_select_related = ["user", "room"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
