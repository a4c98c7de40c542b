"""Messages and the report queue: find, read in context, delete or restore, ban the authors."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, F, OuterRef, Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from rooms import services
from rooms.admin.base import (
    ServiceModelAdmin,
    excerpt,
    message_context_html,
    message_excerpt,
    message_revisions_html,
    moderation_links_html,
    reporter_label,
    restriction_action,
)
from rooms.exceptions import ChatError
from rooms.models import Message, Report


class ReportedFilter(admin.SimpleListFilter):
    title = "reported"
    parameter_name = "reported"

    def lookups(self, request, model_admin):
        return [("open", "open reports"), ("any", "any report"), ("no", "never reported")]

    def queryset(self, request, queryset):
        any_report = Exists(Report.objects.filter(message=OuterRef("pk")))
        open_report = Exists(Report.objects.filter(message=OuterRef("pk"), resolved__isnull=True))
        return {
            "open": queryset.filter(open_report),
            "any": queryset.filter(any_report),
            "no": queryset.filter(~any_report),
        }.get(self.value(), queryset)


class DeletedFilter(admin.SimpleListFilter):
    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request, model_admin):
        return [("no", "live"), ("yes", "deleted")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(deleted__isnull=True)
        if self.value() == "yes":
            return queryset.filter(deleted__isnull=False)
        return queryset


def _ban_authors_from_rooms(modeladmin, request, queryset, message_list: list[Message]):
    pairs = sorted({(message.room, message.author.username) for message in message_list}, key=str)
    targets = [f"{username} from {room.slug}" for room, username in pairs]

    def apply(reason, until):
        modeladmin.apply_each(
            request,
            pairs,
            lambda pair: services.room_ban(
                actor=request.user, room=pair[0], username=pair[1], until=until, reason=reason
            ),
            done="Banned {count} author(s) from their room.",
        )

    return restriction_action(
        modeladmin, request, queryset, title="Ban authors from the room", targets=targets, apply=apply
    )


def _ban_authors_site_wide(modeladmin, request, queryset, message_list: list[Message]):
    usernames = sorted({message.author.username for message in message_list})

    def apply(reason, until):
        modeladmin.apply_each(
            request,
            usernames,
            lambda username: services.site_ban(actor=request.user, username=username, until=until, reason=reason),
            done="Banned {count} author(s) site-wide.",
        )

    return restriction_action(
        modeladmin, request, queryset, title="Ban authors site-wide", targets=usernames, apply=apply
    )


@admin.register(Message)
class MessageAdmin(ServiceModelAdmin):
    """Messages are never edited here; a delete hides the message from history (message_delete)."""

    list_display = ["id", "room", "author", "excerpt", "created", "edited", "is_deleted", "open_reports"]
    list_display_links = ["id", "excerpt"]
    list_filter = ["room", "created", ReportedFilter, DeletedFilter]
    search_fields = ["body_raw", "author__username"]
    date_hierarchy = "created"
    list_select_related = ["room", "author"]
    ordering = ["-id"]
    fields = readonly_fields = (
        "id",
        "room",
        "author",
        "body_raw",
        "revisions",
        "moderate",
        "created",
        "edited",
        "deleted",
        "deleted_by",
        "client_id",
        "reports_list",
        "context",
    )
    actions = ["delete_selected", "restore_selected", "ban_authors_from_room", "ban_authors_site_wide"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(open_report_count=Count("reports", filter=Q(reports__resolved__isnull=True)))
        )

    def has_add_permission(self, request):
        return False  # messages are posted by their authors, through the chat

    def has_change_permission(self, request, obj=None):
        return False  # no one edits another's words; moderators delete, restore and ban

    @admin.display(description="message")
    def excerpt(self, message: Message) -> str:
        return message_excerpt(message)

    @admin.display(description="deleted", boolean=True, ordering="deleted")
    def is_deleted(self, message: Message) -> bool:
        return message.is_deleted

    @admin.display(description="open reports", ordering="open_report_count")
    def open_reports(self, message: Message) -> int:
        return message.open_report_count  # type: ignore[attr-defined]  # annotated by get_queryset

    @admin.display(description="reports")
    def reports_list(self, message: Message) -> str:
        reports = list(message.reports.select_related("reporter"))
        if not reports:
            return "—"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                '<li><a href="{}">{} by {}: {}</a>{}</li>',
                (
                    (
                        reverse("admin:rooms_report_change", args=[report.pk]),
                        report.created.strftime("%Y-%m-%d %H:%M"),
                        reporter_label(report),
                        report.reason,
                        " (resolved)" if report.resolved else "",
                    )
                    for report in reports
                ),
            ),
        )

    @admin.display(description="in context")
    def context(self, message: Message) -> str:
        return message_context_html(message)

    @admin.display(description="edit history")
    def revisions(self, message: Message) -> str:
        return message_revisions_html(message)

    @admin.display(description="act")
    def moderate(self, message: Message) -> str:
        return moderation_links_html(message)

    # ----- writes, all through rooms/services.py -----

    def get_deleted_objects(self, objs, request):
        # A delete hides the message (its reports stay): list only the messages themselves.
        objs = list(objs)
        return [f"{message}: {message_excerpt(message, 60)}" for message in objs], {"messages": len(objs)}, set(), []

    def delete_model(self, request, obj: Message) -> None:
        services.message_delete(actor=request.user, message=obj)

    def delete_queryset(self, request, queryset) -> None:
        self.apply_each(
            request,
            queryset.filter(deleted__isnull=True).select_related("room", "author"),
            lambda message: services.message_delete(actor=request.user, message=message),
            done="Deleted {count} message(s) from history.",
        )

    @admin.action(description="Restore selected messages", permissions=["moderate"])
    def restore_selected(self, request, queryset):
        self.apply_each(
            request,
            queryset.filter(deleted__isnull=False).select_related("room", "author"),
            lambda message: services.message_restore(actor=request.user, message=message),
            done="Restored {count} message(s).",
        )

    @admin.action(description="Ban authors from this room", permissions=["moderate"])
    def ban_authors_from_room(self, request, queryset):
        return _ban_authors_from_rooms(self, request, queryset, list(queryset.select_related("room", "author")))

    @admin.action(description="Ban authors site-wide", permissions=["moderate"])
    def ban_authors_site_wide(self, request, queryset):
        return _ban_authors_site_wide(self, request, queryset, list(queryset.select_related("room", "author")))


class OpenReportFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "open"), ("resolved", "resolved")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(resolved__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved__isnull=False)
        return queryset


@admin.register(Report)
class ReportAdmin(ServiceModelAdmin):
    """The report queue: open reports first, newest first; the message shown in its context."""

    list_display = [
        "id",
        "is_open",
        "message_link",
        "message_author",
        "room",
        "reporter_name",
        "reason",
        "text_when_reported",
        "text_now",
        "created",
        "message_deleted",
    ]
    list_display_links = ["id", "reason"]
    list_filter = [OpenReportFilter, "message__room", "created"]
    search_fields = [
        "reason",
        "snapshot",
        "message__body_raw",
        "reporter__username",
        "message__author__username",
    ]
    list_select_related = ["message__room", "message__author", "reporter"]
    # Open (resolved is NULL) first on every database, then the newest.
    ordering = [F("resolved").desc(nulls_first=True), "-created"]
    fields = readonly_fields = (
        "id",
        "message_link",
        "message_author",
        "room",
        "reporter_name",
        "reason",
        "snapshot",
        "current_text",
        "revisions",
        "moderate",
        "created",
        "resolved",
        "resolved_by",
        "context",
    )
    actions = ["resolve_selected", "delete_reported_messages", "ban_authors_from_room", "ban_authors_site_wide"]

    def has_add_permission(self, request):
        return False  # readers report through the chat (POST messages/{id}/report/)

    def has_change_permission(self, request, obj=None):
        return False  # read-only; the actions resolve and act

    def has_delete_permission(self, request, obj=None):
        return False  # reports are kept as a record; resolve them instead

    @admin.display(description="open", boolean=True, ordering="resolved")
    def is_open(self, report: Report) -> bool:
        return report.resolved is None

    @admin.display(description="message")
    def message_link(self, report: Report) -> str:
        return format_html(
            '<a href="{}">#{}</a> {}',
            reverse("admin:rooms_message_change", args=[report.message_id]),
            report.message_id,
            message_excerpt(report.message, 60),
        )

    @admin.display(description="author", ordering="message__author__username")
    def message_author(self, report: Report) -> str:
        return report.message.author.username

    @admin.display(description="room", ordering="message__room__slug")
    def room(self, report: Report) -> str:
        return report.message.room.slug

    @admin.display(description="message deleted", boolean=True)
    def message_deleted(self, report: Report) -> bool:
        return report.message.is_deleted

    @admin.display(description="reporter", ordering="reporter__username")
    def reporter_name(self, report: Report) -> str:
        return reporter_label(report)

    @admin.display(description="text when reported")
    def text_when_reported(self, report: Report) -> str:
        return excerpt(report.snapshot, 60)

    @admin.display(description="text now")
    def text_now(self, report: Report) -> str:
        current = report.message.body_raw or report.message.body
        if report.message.is_deleted:
            return "(deleted)"
        return "(unchanged)" if current == report.snapshot else excerpt(current, 60)

    @admin.display(description="text now")
    def current_text(self, report: Report) -> str:
        message = report.message
        current = message.body_raw or message.body
        state = " (deleted)" if message.is_deleted else ""
        changed = "unchanged since the report" if current == report.snapshot else "edited since the report"
        return format_html("{}{} <em>({})</em>", current, state, changed)

    @admin.display(description="edit history")
    def revisions(self, report: Report) -> str:
        return message_revisions_html(report.message)

    @admin.display(description="in context")
    def context(self, report: Report) -> str:
        return message_context_html(report.message)

    @admin.display(description="act")
    def moderate(self, report: Report) -> str:
        resolve_url = None if report.resolved else reverse("admin:rooms_report_resolve", args=[report.pk])
        return moderation_links_html(report.message, resolve_url=resolve_url)

    def get_urls(self):
        resolve = path(
            "<path:object_id>/resolve/", self.admin_site.admin_view(self.resolve_view), name="rooms_report_resolve"
        )
        open_count = path(
            "open-count/", self.admin_site.admin_view(self.open_count_view), name="rooms_report_open_count"
        )
        return [open_count, resolve, *super().get_urls()]

    def open_count_view(self, request):
        """`{"open": N}`: what the admin header's live count polls (static/js/admin-open-reports.js)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        response = JsonResponse({"open": Report.objects.filter(resolved__isnull=True).count()})
        response["Cache-Control"] = "no-store"
        return response

    def resolve_view(self, request, object_id):
        """POST only: resolve one report from its page, then back to the queue."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_moderate_permission(request):
            raise PermissionDenied
        report = self.get_object(request, unquote(object_id))
        if report is None:
            raise Http404(f"No report {object_id}.")
        try:
            services.report_resolve(actor=request.user, report=report)
        except ChatError as error:
            self.message_user(request, error.detail, messages.ERROR)
        else:
            self.message_user(request, f"Resolved report {report.pk}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:rooms_report_changelist"))

    def _messages(self, queryset) -> list[Message]:
        ids = queryset.values_list("message_id", flat=True)
        return list(Message.objects.filter(pk__in=ids).select_related("room", "author").order_by("id"))

    @admin.action(description="Resolve selected reports", permissions=["moderate"])
    def resolve_selected(self, request, queryset):
        self.apply_each(
            request,
            queryset.filter(resolved__isnull=True).select_related("message__room"),
            lambda report: services.report_resolve(actor=request.user, report=report),
            done="Resolved {count} report(s).",
        )

    @admin.action(description="Delete reported messages", permissions=["moderate"])
    def delete_reported_messages(self, request, queryset):
        self.apply_each(
            request,
            [message for message in self._messages(queryset) if not message.is_deleted],
            lambda message: services.message_delete(actor=request.user, message=message),
            done="Deleted {count} message(s) from history.",
        )

    @admin.action(description="Ban authors of reported messages from the room", permissions=["moderate"])
    def ban_authors_from_room(self, request, queryset):
        return _ban_authors_from_rooms(self, request, queryset, self._messages(queryset))

    @admin.action(description="Ban authors of reported messages site-wide", permissions=["moderate"])
    def ban_authors_site_wide(self, request, queryset):
        return _ban_authors_site_wide(self, request, queryset, self._messages(queryset))
