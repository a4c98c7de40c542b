"""Each rule has one definition, and every place that applies it agrees with it.

Bans and mutes are in force by `RestrictionQuerySet.active()` (and its SQL form); the body limit is
CHAT_MAX_BODY_CHARS; the moderator test is `User.is_moderator`; a restriction's end must lie ahead.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django import forms
from django.contrib import admin
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from accounts.models import User
from rooms.admin.base import validate_until
from rooms.exceptions import BadRequest, TooLarge
from rooms.models import RoomBan, RoomMute, SiteBan, restriction_active_sql
from rooms.protocol import FrameError, parse_frame
from rooms.services import message_post, restriction_until_check

ENDS = {
    "no end": None,
    "ended an hour ago": timedelta(hours=-1),
    "ended a second ago": timedelta(seconds=-1),
    "ends in a second": timedelta(seconds=1),
    "ends tomorrow": timedelta(days=1),
}


@pytest.fixture
def restrictions(user_factory, room_factory, clock):
    """One row of each kind per end time, on a frozen clock (so "ends in a second" has not ended by
    the time a loaded machine gets to the assertion); returns {model: {label: row}}."""
    now = timezone.now()
    rows: dict = {RoomBan: {}, RoomMute: {}, SiteBan: {}}
    for label, offset in ENDS.items():
        user = user_factory()
        room = room_factory(members=[user])
        until = None if offset is None else now + offset
        rows[RoomBan][label] = RoomBan.objects.create(room=room, user=user, until=until)
        rows[RoomMute][label] = RoomMute.objects.create(room=room, user=user, until=until)
        rows[SiteBan][label] = SiteBan.objects.create(user=user, until=until)
    return rows


@pytest.mark.parametrize("model", [RoomBan, RoomMute, SiteBan], ids=lambda m: m.__name__)
def test_active_sql_agrees_with_active_queryset(restrictions, model):
    """The raw-SQL condition selects exactly the rows `.active()` selects, and those are the right ones."""
    now = timezone.now()
    by_orm = set(model.objects.active(now).values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT t.id FROM {model._meta.db_table} t WHERE {restriction_active_sql('t')}",
            {"now": connection.ops.adapt_datetimefield_value(now)},
        )
        by_sql = {row[0] for row in cursor.fetchall()}
    rows = restrictions[model]
    expected = {rows[label].pk for label in ("no end", "ends in a second", "ends tomorrow")}
    assert by_orm == by_sql == expected
    assert set(model.objects.expired(now).values_list("pk", flat=True)) == set(rows_pk(rows)) - expected


def rows_pk(rows: dict) -> list[int]:
    return [row.pk for row in rows.values()]


@pytest.mark.parametrize("model", [RoomBan, RoomMute, SiteBan], ids=lambda m: m.__name__)
def test_admin_status_column_follows_active(rf, restrictions, model, moderator_factory):
    """The admin's status column says "expired" exactly for the rows `.active()` leaves out."""
    model_admin = admin.site._registry[model]
    request = rf.get("/admin/")
    request.user = moderator_factory()
    listed = {row.pk: model_admin.status(row) for row in model_admin.get_queryset(request)}
    rows = restrictions[model]
    assert listed[rows["no end"].pk] == "active (no end)"
    assert listed[rows["ends tomorrow"].pk] == "active"
    assert listed[rows["ended an hour ago"].pk] == "expired"


@override_settings(CHAT_MAX_BODY_CHARS=10)
def test_body_limit_is_the_setting_on_socket_and_service(user_factory, room_factory):
    """CHAT_MAX_BODY_CHARS alone sets the limit: the frame parser and the service both follow it."""
    alice = user_factory()
    room = room_factory(members=[alice])
    message, _ = message_post(user=alice, room=room, body="x" * 10)
    assert message.body_raw == "x" * 10
    with pytest.raises(TooLarge, match="the limit is 10"):
        message_post(user=alice, room=room, body="x" * 11)
    with pytest.raises(FrameError) as caught:
        parse_frame('{"type": "message", "room": "lobby", "body": "xxxxxxxxxxx"}')
    assert caught.value.code == "too_large"


@pytest.mark.parametrize(
    ("offset", "allowed"),
    [(None, True), (timedelta(minutes=1), True), (timedelta(0), False), (timedelta(minutes=-1), False)],
)
def test_until_check_is_shared_by_service_and_admin(offset, allowed):
    """The service and the admin's forms accept and refuse the same end times."""
    until = None if offset is None else timezone.now() + offset
    if allowed:
        restriction_until_check(until)
        validate_until(until)
    else:
        with pytest.raises(BadRequest):
            restriction_until_check(until)
        with pytest.raises(forms.ValidationError):
            validate_until(until)


def test_admin_moderator_column_is_user_is_moderator(user_factory, moderator_factory):
    """The user admin's "moderator" column is User.is_moderator, for every kind of account."""
    accounts = [
        user_factory(),
        user_factory(is_staff=True),
        moderator_factory(),
        user_factory(is_superuser=True, is_staff=True),
    ]
    inactive = moderator_factory()
    inactive.is_active = False
    inactive.save()
    accounts.append(inactive)
    user_admin = admin.site._registry[User]
    expected = [False, False, True, True, False]
    for account, is_moderator in zip(accounts, expected, strict=True):
        fresh = User.objects.prefetch_related("groups").get(pk=account.pk)
        assert fresh.is_moderator is is_moderator
        assert user_admin.moderator(fresh) is is_moderator


def test_admin_registrations_pass_django_checks():
    """One RestrictionAdmin class serves three models, and Django's admin checks accept each."""
    from django.core import checks

    assert checks.run_checks(tags=[checks.Tags.admin]) == []


# Where each rule may be written: a second spelling anywhere else fails here, with the place to use.
SOURCE_ROOT = Path(__file__).resolve().parents[2]
RULE_SPELLINGS = [
    (re.compile(r"until IS NULL|until__isnull|until__gt"), {"rooms/models.py"}, "RestrictionQuerySet.active()"),
    (re.compile(r"\b4000\b|\b4_000\b"), {"chatsite/settings.py"}, "settings.CHAT_MAX_BODY_CHARS"),
    (re.compile(r"Response\(\s*\{\s*[\"']code[\"']"), set(), "chatsite.api.errors.error_response"),
    (re.compile(r"groups\.filter\(name="), set(), "User.is_moderator"),
]


@pytest.mark.parametrize(("pattern", "home", "use"), RULE_SPELLINGS, ids=lambda value: getattr(value, "pattern", ""))
def test_each_rule_is_spelled_in_one_place(pattern, home, use):
    """The ban/mute test, the body limit, the error JSON and the moderator test are written once."""
    elsewhere = []
    for app in ("accounts", "rooms", "chatsite"):
        for path in sorted((SOURCE_ROOT / app).rglob("*.py")):
            relative = path.relative_to(SOURCE_ROOT).as_posix()
            if "/migrations/" in relative or relative in home:
                continue
            elsewhere += [
                f"{relative}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)
            ]
    assert elsewhere == [], f"use {use} instead of writing the rule again at {elsewhere}"
