"""The word filter's terms (CONTRACT §7): moderators add, change and remove them here, each change
through rooms/services.py (`filter_term_*`: checked, audited, live on every process within a second)."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from rooms import services, wordfilter
from rooms.admin.base import ServiceModelAdmin
from rooms.models import FilterTerm


class FilterTermForm(forms.ModelForm):
    class Meta:
        model = FilterTerm
        fields = ["term", "action", "room"]

    def clean_term(self):
        term = self.cleaned_data["term"].strip()
        if not wordfilter.term_is_usable(term):
            raise forms.ValidationError("A term needs at least one letter or digit.")
        return term

    def clean(self):
        cleaned = super().clean()
        term = cleaned.get("term")
        if term:
            clash = FilterTerm.objects.filter(normalized=wordfilter.normalize_term(term), room=cleaned.get("room"))
            if self.instance.pk:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                self.add_error("term", "This term (in any case or width) is already on the list for that scope.")
        return cleaned


@admin.register(FilterTerm)
class FilterTermAdmin(ServiceModelAdmin):
    form = FilterTermForm
    list_display = ["term", "action", "scope", "created_by", "created"]
    list_filter = ["action", "room"]
    search_fields = ["term", "normalized", "room__slug"]
    list_select_related = ["room", "created_by"]
    autocomplete_fields = ["room"]
    ordering = ["normalized"]
    actions = ["delete_selected"]

    def get_fields(self, request, obj=None):
        return ["term", "action", "room"] if obj is None else ["term", "action", "room", "created_by", "created"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["created_by", "created"]

    @admin.display(description="where", ordering="room__slug")
    def scope(self, term: FilterTerm) -> str:
        return f"#{term.room.slug}" if term.room is not None else "every room"

    def save_model(self, request, obj: FilterTerm, form, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            saved = services.filter_term_add(
                actor=request.user, term=data["term"], action=data["action"], room=data["room"]
            )
            obj.pk = saved.pk
            return
        if form.changed_data:
            services.filter_term_change(
                actor=request.user, entry=obj, term=data["term"], action=data["action"], room=data["room"]
            )

    def delete_model(self, request, obj: FilterTerm) -> None:
        services.filter_term_delete(actor=request.user, entry=obj)

    def delete_queryset(self, request, queryset) -> None:
        self.apply_each(
            request,
            list(queryset.select_related("room")),
            lambda entry: services.filter_term_delete(actor=request.user, entry=entry),
            done="Removed {count} term(s) from the word filter.",
        )
