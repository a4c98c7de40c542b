"""Reads with access control (rooms/selectors.py): visibility, membership, history pages, restrictions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from rooms import selectors, services
from rooms.exceptions import Forbidden, NotFound
from rooms.models import RoomBan, SiteBan

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(user_factory):
    return user_factory()


@pytest.fixture
def member(user_factory):
    return user_factory()


def post(room, user, count):
    with override_settings(CHAT_MESSAGE_RATE=(10_000, 1.0)):
        return [services.message_post(user=user, room=room, body=str(i))[0].id for i in range(count)]


def test_room_list_for_user(user_factory, room_factory, member):
    """Public rooms and the user's private rooms, with member counts, each once."""
    room_factory("a", members=[member, user_factory()])
    room_factory("b", is_private=True, members=[member])
    room_factory("c", is_private=True)
    rooms = list(selectors.room_list_for_user(user=member))
    assert [(r.slug, r.member_count) for r in rooms] == [("a", 3), ("b", 2)]


def test_room_get_visible_hides_private(user_factory, room_factory):
    """A private room is NotFound for outsiders, like a missing room."""
    room_factory("p", is_private=True)
    with pytest.raises(NotFound):
        selectors.room_get_visible(user=user_factory(), slug="p")
    with pytest.raises(NotFound):
        selectors.room_get_visible(user=user_factory(), slug="missing")


def test_room_get_visible_moderator(moderator_factory, room_factory):
    """Moderators see private rooms."""
    room_factory("p", is_private=True)
    assert selectors.room_get_visible(user=moderator_factory(), slug="p").slug == "p"


def test_room_get_for_reader_banned(owner, member, room_factory):
    """A banned user may not read; a moderator may."""
    room = room_factory("r", owner=owner, members=[member])
    services.room_ban(actor=owner, room=room, username=member.username)
    with pytest.raises(Forbidden):
        selectors.room_get_for_reader(user=member, slug="r")


def test_room_get_for_reader_moderator_despite_ban(moderator_factory, room_factory):
    """A moderator reads a room even when banned from it."""
    mod = moderator_factory()
    room = room_factory("r")
    RoomBan.objects.create(room=room, user=mod)
    assert selectors.room_get_for_reader(user=mod, slug="r") == room


def test_room_get_for_member(user_factory, member, room_factory):
    """Only members pass room_get_for_member; others get Forbidden on a public room."""
    room_factory("r", members=[member])
    assert selectors.room_get_for_member(user=member, slug="r").slug == "r"
    with pytest.raises(Forbidden):
        selectors.room_get_for_member(user=user_factory(), slug="r")


def test_room_member_count(member, room_factory):
    """Counts memberships, the owner's included."""
    assert selectors.room_member_count(room=room_factory("r", members=[member])) == 2


def test_restrictions_expire(owner, member, room_factory):
    """Bans and mutes past their `until` are inactive."""
    room = room_factory("r", owner=owner, members=[member])
    soon = timezone.now() + timedelta(minutes=1)
    services.room_ban(actor=owner, room=room, username=member.username, until=soon)
    services.room_mute(actor=owner, room=room, username=member.username, until=soon)
    assert selectors.post_access(user_id=member.id, room_id=room.id, client_id=None) == (True, True, True, None, 0)
    assert selectors.user_is_room_muted(user_id=member.id, room_id=room.id)
    RoomBan.objects.update(until=timezone.now() - timedelta(seconds=1))
    assert selectors.post_access(user_id=member.id, room_id=room.id, client_id=None) == (True, False, True, None, 0)
    assert not selectors.user_is_room_banned(user_id=member.id, room_id=room.id)


def test_site_ban_expiry(moderator_factory, member):
    """A site ban is active until its `until`."""
    services.site_ban(actor=moderator_factory(), username=member.username)
    assert selectors.user_is_site_banned(user_id=member.id)
    SiteBan.objects.update(until=timezone.now() - timedelta(seconds=1))
    assert not selectors.user_is_site_banned(user_id=member.id)


def test_user_can_moderate_room(owner, member, moderator_factory, room_factory):
    """Owner and moderators moderate; members do not."""
    room = room_factory("r", owner=owner, members=[member])
    assert selectors.user_can_moderate_room(user=owner, room=room)
    assert selectors.user_can_moderate_room(user=moderator_factory(), room=room)
    assert not selectors.user_can_moderate_room(user=member, room=room)


def test_staff_outside_group_is_not_moderator(user_factory):
    """Staff status alone does not make a moderator; superusers are."""
    assert not selectors.user_is_moderator(user_factory(is_staff=True))
    assert selectors.user_is_moderator(user_factory(is_superuser=True, is_staff=True))


def test_message_get_visible(user_factory, member, room_factory):
    """A message in a private room is NotFound to outsiders and once deleted."""
    room = room_factory("r", is_private=True, members=[member])
    (message_id,) = post(room, member, 1)
    assert selectors.message_get_visible(user=member, message_id=message_id).id == message_id
    with pytest.raises(NotFound):
        selectors.message_get_visible(user=user_factory(), message_id=message_id)
    services.message_delete(actor=member, message=selectors.message_get_visible(user=member, message_id=message_id))
    with pytest.raises(NotFound):
        selectors.message_get_visible(user=member, message_id=message_id)


@pytest.mark.parametrize(
    "kwargs,expected,has_more",
    [
        ({"limit": 3}, slice(7, 10), True),
        ({"limit": 10}, slice(0, 10), False),
        ({"limit": 50}, slice(0, 10), False),
        ({"before": 5, "limit": 2}, slice(3, 5), True),
        ({"before": 2, "limit": 5}, slice(0, 2), False),
        ({"before": 0, "limit": 5}, slice(0, 0), False),
        ({"after": 0, "limit": 4}, slice(0, 4), True),
        ({"after": 6, "limit": 3}, slice(7, 10), False),
        ({"after": 9, "limit": 3}, slice(10, 10), False),
    ],
)
def test_message_history_pages(member, room_factory, kwargs, expected, has_more):
    """Pages ascend by id; before/after/limit select the documented window; has_more looks ahead."""
    room = room_factory("r", members=[member])
    ids = post(room, member, 10)
    # Cursors in the table are positions; turn them into real ids.
    for key in ("before", "after"):
        if key in kwargs:
            position = kwargs[key]
            kwargs = {**kwargs, key: ids[position] if position < len(ids) else ids[-1] + 1}
            if key == "after" and position == 0:
                kwargs[key] = 0
            if key == "before" and position == 0:
                kwargs[key] = ids[0]
    page, more = selectors.message_history(room=room, **kwargs)
    assert [m.id for m in page] == ids[expected]
    assert more is has_more


def test_messages_after_includes_deleted(member, room_factory):
    """The replay read includes deleted rows (the consumer filters them)."""
    room = room_factory("r", members=[member])
    ids = post(room, member, 3)
    services.message_delete(actor=member, message=selectors.message_get_visible(user=member, message_id=ids[1]))
    assert [m.id for m in selectors.messages_after(room_id=room.id, after=ids[0], limit=10)] == ids[1:]


def test_post_access_finds_an_earlier_client_id_in_any_room(owner, member, room_factory):
    """post_access reports the user's earlier message with the same client_id, whatever its room."""
    first = room_factory("r1", owner=owner, members=[member])
    second = room_factory("r2", owner=owner, members=[member])
    message, _ = services.message_post(user=member, room=first, body="hi", client_id="c-1")
    assert selectors.post_access(user_id=member.id, room_id=second.id, client_id="c-1")[3] == message.id
    assert selectors.post_access(user_id=owner.id, room_id=second.id, client_id="c-1")[3] is None


def test_post_access_of_a_non_member(owner, user_factory, room_factory):
    """A user outside the room is reported as not a member, with no restrictions."""
    room = room_factory("r", owner=owner)
    outsider = user_factory()
    assert selectors.post_access(user_id=outsider.id, room_id=room.id, client_id=None) == (False, False, False, None, 0)
