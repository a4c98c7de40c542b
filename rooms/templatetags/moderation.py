"""Template tags of the moderators' admin: the open-report count in its header."""

from __future__ import annotations

from django import template

from rooms.models import Report

register = template.Library()


@register.simple_tag
def open_report_count() -> int:
    return Report.objects.filter(resolved__isnull=True).count()
