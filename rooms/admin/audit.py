"""The audit log: read-only for everyone, superusers included; rows come only from the services."""

from __future__ import annotations

from django.contrib import admin

from rooms.models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["created", "actor", "action", "room", "target_user", "message_id", "reason", "detail"]
    list_filter = ["action", "created", "room"]
    search_fields = ["actor__username", "target_user__username", "reason", "room__slug"]
    list_select_related = ["actor", "room", "target_user"]
    date_hierarchy = "created"
    fields = readonly_fields = ("created", "actor", "action", "room", "target_user", "message_id", "reason", "detail")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
