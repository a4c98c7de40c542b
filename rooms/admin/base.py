"""What every chat admin shares: service errors shown as admin messages, the `moderate` action
permission, the ban/mute form of the intermediate action page, and list filters.

The admin never writes a chat model itself: each save, delete and action calls a function of
rooms/services.py, which checks permissions, writes one AuditLog row and schedules the broadcast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from rooms.exceptions import BadRequest, ChatError
from rooms.models import Message, Report
from rooms.selectors import user_is_moderator
from rooms.services import restriction_until_check

CONTEXT_MESSAGES = 3  # messages shown before and after a reported one


class ServiceModelAdmin(admin.ModelAdmin):
    """A ModelAdmin whose writes go through services; a refused service call becomes an error message.

    The admin's own views wrap each POST in a transaction: when a service raises ChatError the
    transaction rolls back (no row, no audit entry, no broadcast) and the moderator sees why.
    """

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        """Actions marked `permissions=["moderate"]` need what the services need: a moderator."""
        return user_is_moderator(request.user)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ChatError as error:
            self.message_user(request, error.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ChatError as error:
            self.message_user(request, error.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def apply_each(self, request: HttpRequest, items: Iterable, call: Callable, *, done: str) -> int:
        """Call a service once per item; report how many succeeded and each refusal by name."""
        count = 0
        for item in items:
            try:
                call(item)
            except ChatError as error:
                self.message_user(request, f"{item}: {error.detail}", messages.WARNING)
            else:
                count += 1
        if count:
            self.message_user(request, done.format(count=count), messages.SUCCESS)
        return count


def validate_until(until: datetime | None) -> None:
    """The services' rule (`restriction_until_check`) as a form error on the `until` field."""
    try:
        restriction_until_check(until)
    except BadRequest:
        raise forms.ValidationError("The end time must be in the future; leave it empty for no end.") from None


class RestrictionForm(forms.Form):
    """The intermediate page of the ban and mute actions: an optional end time and a reason."""

    until = forms.DateTimeField(
        required=False,
        help_text="UTC, e.g. 2030-01-31 18:00. Empty: until lifted.",
        widget=forms.DateTimeInput(attrs={"placeholder": "YYYY-MM-DD HH:MM"}),
    )
    reason = forms.CharField(required=False, max_length=500, widget=forms.TextInput(attrs={"size": 60}))

    def clean_until(self):
        until = self.cleaned_data["until"]
        validate_until(until)
        return until


def restriction_action(
    modeladmin: ServiceModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    title: str,
    targets: list[str],
    apply: Callable[[str | None, datetime | None], None],
) -> HttpResponse | None:
    """Show the end-time/reason page for a ban or mute action; on its submit, call `apply(reason, until)`."""
    if "apply" in request.POST:
        form = RestrictionForm(request.POST)
        if form.is_valid():
            apply(form.cleaned_data["reason"], form.cleaned_data["until"])
            return None  # back to the change list
    else:
        form = RestrictionForm()
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": modeladmin.model._meta,
        "form": form,
        "targets": targets,
        "queryset": queryset,
        "action": request.POST.get("action", ""),
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "select_across": request.POST.get("select_across", "0"),
    }
    return TemplateResponse(request, "admin/rooms/restriction_action.html", context)


def excerpt(text: str, length: int = 80) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def message_excerpt(message: Message, length: int = 80) -> str:
    return excerpt(message.body_raw or message.body, length)


def reporter_label(report: Report) -> str:
    return "system (word filter)" if report.reporter is None else report.reporter.username


def message_revisions_html(message: Message) -> str:
    """Every version of a message's text, oldest first, with when it was written and replaced;
    shown escaped, as typed. The last row is the current text (or says the message was deleted)."""
    revisions = list(message.revisions.all())
    if not revisions:
        return "never edited"
    rows = [
        (
            index,
            revision.written.strftime("%Y-%m-%d %H:%M:%S"),
            revision.replaced.strftime("%Y-%m-%d %H:%M:%S"),
            revision.body_raw or revision.body,
        )
        for index, revision in enumerate(revisions, start=1)
    ]
    current = (
        len(rows) + 1,
        (message.edited or message.created).strftime("%Y-%m-%d %H:%M:%S"),
        "deleted" if message.is_deleted else "current",
        message.body_raw or message.body,
    )
    body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", [*rows, current])
    return format_html(
        '<table class="chat-revisions"><thead><tr><th>version</th><th>written</th><th>replaced</th>'
        "<th>text</th></tr></thead><tbody>{}</tbody></table>",
        body,
    )


def message_context_html(message: Message) -> str:
    """The message with a few before and after it in its room, read-only; deleted ones marked."""
    room_messages = Message.objects.filter(room_id=message.room_id).select_related("author")
    before = list(room_messages.filter(id__lt=message.id).order_by("-id")[:CONTEXT_MESSAGES])
    after = list(room_messages.filter(id__gt=message.id).order_by("id")[:CONTEXT_MESSAGES])
    rows = [*reversed(before), message, *after]

    def row(item: Message):
        url = reverse("admin:rooms_message_change", args=[item.pk])
        # A class, not a style attribute: the admin is under the site's strict CSP too.
        css_class = "chat-context-current" if item.pk == message.pk else ""
        state = " (deleted)" if item.is_deleted else ""
        # body_raw is what the author typed: shown escaped, so no markup from a user runs here.
        return (
            css_class,
            url,
            item.pk,
            item.created.strftime("%Y-%m-%d %H:%M:%S"),
            item.author.username,
            item.body_raw or item.body,
            state,
        )

    body = format_html_join(
        "",
        '<tr class="{}"><td><a href="{}">#{}</a></td><td>{}</td><td>{}</td><td>{}{}</td></tr>',
        (row(item) for item in rows),
    )
    return format_html(
        "<table><thead><tr><th>id</th><th>created</th><th>author</th><th>message</th></tr></thead>"
        "<tbody>{}</tbody></table>",
        body,
    )


class ActiveRestrictionFilter(admin.SimpleListFilter):
    """Bans and mutes that are in force now, or that ended on their own (`until` passed)."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("expired", "expired")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.active()
        if self.value() == "expired":
            return queryset.expired()
        return queryset


def moderation_links_html(message: Message, *, resolve_url: str | None = None) -> str:
    """The next steps on a message's (or its report's) page: delete it, ban or mute its author.

    Bans and mutes open their add form prefilled, so the moderator still picks an end time and a
    reason. `resolve_url` adds a button that posts the page's own form (with its CSRF token) there.
    """
    links = []
    if not message.is_deleted:
        links.append((reverse("admin:rooms_message_delete", args=[message.pk]), "Delete this message"))
    in_room = f"?room={message.room_id}&user={message.author_id}"
    links += [
        (reverse("admin:rooms_roomban_add") + in_room, f"Ban {message.author} from {message.room}"),
        (reverse("admin:rooms_roommute_add") + in_room, f"Mute {message.author} in {message.room}"),
        (reverse("admin:rooms_siteban_add") + f"?user={message.author_id}", f"Ban {message.author} site-wide"),
    ]
    html = format_html_join(" | ", '<a href="{}">{}</a>', links)
    if resolve_url:
        html = format_html(
            '<button type="submit" formaction="{}" formmethod="post" class="button">Resolve this report</button> {}',
            resolve_url,
            html,
        )
    return html
