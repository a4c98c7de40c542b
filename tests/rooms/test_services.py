"""The service layer (rooms/services.py): every write, its permission checks, audit rows and broadcasts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import override_settings
from django.utils import timezone

from rooms import services
from rooms.exceptions import BadRequest, Conflict, Forbidden, NotFound, RateLimited, SlowMode, TooLarge
from rooms.models import AuditLog, Membership, Message, Report, Room, RoomBan, RoomMute, SiteBan
from rooms.realtime.events import SITE_GROUP, room_group_name

pytestmark = pytest.mark.django_db

IN_MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def member(user_factory):
    return user_factory("member")


@pytest.fixture
def room(room_factory, owner, member):
    return room_factory("svc", owner=owner, members=[member])


@pytest.fixture
def listen():
    """Subscribe a fresh channel to a group on an in-memory layer; returns a receive function."""
    with override_settings(CHANNEL_LAYERS=IN_MEMORY_LAYER):
        layer = get_channel_layer()

        def subscribe(group: str):
            channel = async_to_sync(layer.new_channel)()
            async_to_sync(layer.group_add)(group, channel)
            return lambda: async_to_sync(layer.receive)(channel)

        yield subscribe


# ----- rooms -------------------------------------------------------------------------------------


def test_room_create_makes_owner_member(owner):
    """room_create stores the room, owned by the creator, who is its first member."""
    room = services.room_create(user=owner, name="My Room")
    assert (room.slug, room.owner, room.is_private) == ("my-room", owner, False)
    assert Membership.objects.filter(room=room, user=owner).exists()


def test_room_create_taken_slug_conflict(owner, room):
    """A taken slug raises Conflict and stores nothing."""
    with pytest.raises(Conflict):
        services.room_create(user=owner, name="Again", slug="svc")
    assert Room.objects.count() == 1


def test_room_create_unsluggable_name(owner):
    """A name with no slug characters and no slug raises BadRequest."""
    with pytest.raises(BadRequest):
        services.room_create(user=owner, name="!!!")


def test_room_update_by_owner_audited(owner, room, django_capture_on_commit_callbacks):
    """room_update changes fields and writes an audit row."""
    with django_capture_on_commit_callbacks(execute=True):
        services.room_update(actor=owner, room=room, name="N", topic="T", slow_mode_seconds=3)
    room.refresh_from_db()
    assert (room.name, room.topic, room.slow_mode_seconds) == ("N", "T", 3)
    entry = AuditLog.objects.get(action="room_update")
    assert entry.detail == {"name": "N", "topic": "T", "slow_mode_seconds": 3}


def test_room_update_by_member_forbidden(member, room):
    """Members who do not own the room cannot update it."""
    with pytest.raises(Forbidden):
        services.room_update(actor=member, room=room, name="X")
    assert not AuditLog.objects.exists()


def test_room_update_negative_slow_mode(owner, room):
    """Negative slow mode is refused."""
    with pytest.raises(BadRequest):
        services.room_update(actor=owner, room=room, slow_mode_seconds=-1)


def test_room_join_public_idempotent(user_factory, room):
    """Joining a public room twice keeps one membership."""
    user = user_factory()
    services.room_join(user=user, room=room)
    services.room_join(user=user, room=room)
    assert Membership.objects.filter(room=room, user=user).count() == 1


def test_room_join_private_not_found(user_factory, room_factory):
    """Outsiders cannot join a private room: NotFound."""
    with pytest.raises(NotFound):
        services.room_join(user=user_factory(), room=room_factory("p", is_private=True))


def test_room_join_banned_forbidden(owner, user_factory, room):
    """A banned user cannot join."""
    user = user_factory()
    services.room_ban(actor=owner, room=room, username=user.username)
    with pytest.raises(Forbidden):
        services.room_join(user=user, room=room)


def test_room_invite_audited(owner, user_factory, room_factory):
    """room_invite adds the user and audits once."""
    guest = user_factory()
    room = room_factory("p", owner=owner, is_private=True)
    services.room_invite(actor=owner, room=room, username=guest.username)
    services.room_invite(actor=owner, room=room, username=guest.username)
    assert Membership.objects.filter(room=room, user=guest).exists()
    assert AuditLog.objects.filter(action="member_invite").count() == 1


def test_room_invite_by_member_forbidden(member, user_factory, room):
    """Plain members cannot invite."""
    with pytest.raises(Forbidden):
        services.room_invite(actor=member, room=room, username=user_factory().username)


def test_room_invite_banned_forbidden(owner, user_factory, room):
    """A banned user cannot be invited until the ban is lifted."""
    user = user_factory()
    services.room_ban(actor=owner, room=room, username=user.username)
    with pytest.raises(Forbidden):
        services.room_invite(actor=owner, room=room, username=user.username)


def test_room_invite_unknown_user(owner, room):
    """Inviting an unknown user raises NotFound."""
    with pytest.raises(NotFound):
        services.room_invite(actor=owner, room=room, username="ghost")


def test_room_leave(member, room, listen, django_capture_on_commit_callbacks):
    """room_leave removes the membership and tells the user's sockets."""
    receive = listen(room_group_name(room.id))
    with django_capture_on_commit_callbacks(execute=True):
        services.room_leave(user=member, room=room)
    assert not Membership.objects.filter(room=room, user=member).exists()
    assert receive() == {"type": "chat.room_removed", "room_id": room.id, "user_id": member.id}


def test_room_leave_not_member(user_factory, room):
    """Leaving a room one is not in raises NotFound."""
    with pytest.raises(NotFound):
        services.room_leave(user=user_factory(), room=room)


# ----- messages ----------------------------------------------------------------------------------


def test_message_post_stores_sanitised_and_raw(member, room):
    """message_post stores the sanitised body beside the raw one."""
    message, created = services.message_post(user=member, room=room, body="<script>x</script>")
    assert created
    assert message.body == "&lt;script&gt;x&lt;/script&gt;"
    assert message.body_raw == "<script>x</script>"


def test_message_post_broadcast_on_commit(member, room, listen, django_capture_on_commit_callbacks):
    """The new message is broadcast once the transaction commits."""
    receive = listen(room_group_name(room.id))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        message, _ = services.message_post(user=member, room=room, body="hi")
    assert len(callbacks) == 1
    event = receive()
    assert event["type"] == "chat.messages"
    assert [m["id"] for m in event["messages"]] == [message.id]
    assert event["messages"][0]["room"] == "svc"
    assert event["prev_ids"] == [message.prev_id]


def test_message_post_chains_prev_id(member, room):
    """Each message records the room's previous id; the room tracks the last."""
    first, _ = services.message_post(user=member, room=room, body="1")
    second, _ = services.message_post(user=member, room=room, body="2")
    assert (first.prev_id, second.prev_id) == (0, first.id)
    room.refresh_from_db()
    assert room.last_message_id == second.id


def test_message_post_client_id_idempotent(member, room, listen, django_capture_on_commit_callbacks):
    """A reused client_id returns the stored message, not created, not broadcast again."""
    first, _ = services.message_post(user=member, room=room, body="a", client_id="k1")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again, created = services.message_post(user=member, room=room, body="b", client_id="k1")
    assert (again.id, created, again.body) == (first.id, False, "a")
    assert callbacks == []
    assert Message.objects.count() == 1


@pytest.mark.parametrize("body,error", [("", BadRequest), ("   ", BadRequest), (5, BadRequest), ("x" * 4001, TooLarge)])
def test_message_post_bad_body(member, room, body, error):
    """Empty, mistyped or overlong bodies are refused before anything is stored."""
    with pytest.raises(error):
        services.message_post(user=member, room=room, body=body)
    assert not Message.objects.exists()


def test_message_post_non_member(user_factory, room):
    """Non-members cannot post."""
    with pytest.raises(Forbidden):
        services.message_post(user=user_factory(), room=room, body="x")


def test_message_post_banned(owner, member, room):
    """Banned members cannot post."""
    services.room_ban(actor=owner, room=room, username=member.username)
    with pytest.raises(Forbidden):
        services.message_post(user=member, room=room, body="x")


def test_message_post_muted(owner, member, room):
    """Muted members cannot post."""
    services.room_mute(actor=owner, room=room, username=member.username)
    with pytest.raises(Forbidden):
        services.message_post(user=member, room=room, body="x")


def test_message_post_expired_mute_allows(owner, member, room):
    """A mute past its `until` no longer applies."""
    services.room_mute(actor=owner, room=room, username=member.username, until=timezone.now() + timedelta(minutes=1))
    RoomMute.objects.update(until=timezone.now() - timedelta(seconds=1))
    assert services.message_post(user=member, room=room, body="x")[1]


def test_message_post_slow_mode(owner, member, room):
    """Slow mode refuses a second message within the interval with a retry_after."""
    services.room_update(actor=owner, room=room, slow_mode_seconds=30)
    services.message_post(user=member, room=room, body="1")
    with pytest.raises(SlowMode) as info:
        services.message_post(user=member, room=room, body="2")
    assert 0 < info.value.retry_after <= 30


def test_message_post_slow_mode_spares_owner(owner, room):
    """The room's owner is not slowed down."""
    services.room_update(actor=owner, room=room, slow_mode_seconds=30)
    services.message_post(user=owner, room=room, body="1")
    assert services.message_post(user=owner, room=room, body="2")[1]


@override_settings(CHAT_MESSAGE_RATE=(3, 60.0))
def test_message_post_rate_limited(member, room):
    """Beyond the bucket, posting raises RateLimited; refused frames spend nothing."""
    with pytest.raises(BadRequest):
        services.message_post(user=member, room=room, body="")
    for i in range(3):
        services.message_post(user=member, room=room, body=str(i))
    with pytest.raises(RateLimited) as info:
        services.message_post(user=member, room=room, body="4")
    assert info.value.retry_after > 0
    assert Message.objects.count() == 3


def test_message_edit(member, room, listen, django_capture_on_commit_callbacks):
    """The author edits: body re-sanitised, edited set, message_edited broadcast."""
    message, _ = services.message_post(user=member, room=room, body="old")
    receive = listen(room_group_name(room.id))
    with django_capture_on_commit_callbacks(execute=True):
        services.message_edit(user=member, message=message, body="<b>new</b><script>")
    message.refresh_from_db()
    assert message.body == "<b>new</b>&lt;script&gt;"
    assert message.edited is not None
    event = receive()
    assert event["type"] == "chat.message_edited"
    assert event["message"]["edited"] is not None


def test_message_edit_not_author(owner, member, room):
    """Nobody but the author edits, not even the room's owner."""
    message, _ = services.message_post(user=member, room=room, body="x")
    with pytest.raises(Forbidden):
        services.message_edit(user=owner, message=message, body="y")


def test_message_edit_deleted(member, room):
    """A deleted message cannot be edited."""
    message, _ = services.message_post(user=member, room=room, body="x")
    services.message_delete(actor=member, message=message)
    with pytest.raises(NotFound):
        services.message_edit(user=member, message=message, body="y")


def test_message_edit_banned(owner, member, room):
    """A user banned from the room cannot edit there."""
    message, _ = services.message_post(user=member, room=room, body="x")
    services.room_ban(actor=owner, room=room, username=member.username)
    with pytest.raises(Forbidden):
        services.message_edit(user=member, message=message, body="y")


def test_message_edit_too_large(member, room):
    """An edit over the limit raises TooLarge and keeps the old body."""
    message, _ = services.message_post(user=member, room=room, body="x")
    with pytest.raises(TooLarge):
        services.message_edit(user=member, message=message, body="y" * 4001)
    message.refresh_from_db()
    assert message.body == "x"


def test_message_delete_by_author_not_audited(member, room, listen, django_capture_on_commit_callbacks):
    """The author deletes their own message: broadcast, no audit row."""
    message, _ = services.message_post(user=member, room=room, body="x")
    receive = listen(room_group_name(room.id))
    with django_capture_on_commit_callbacks(execute=True):
        services.message_delete(actor=member, message=message)
    assert Message.objects.get(pk=message.pk).deleted is not None
    assert not AuditLog.objects.exists()
    assert receive() == {
        "type": "chat.message_deleted",
        "room_id": room.id,
        "slug": "svc",
        "id": message.id,
        "version": message.version,
    }
    assert message.version == Room.objects.get(pk=room.pk).version == 2


def test_message_delete_by_owner_audited(owner, member, room):
    """The room's owner deletes a member's message: audited."""
    message, _ = services.message_post(user=member, room=room, body="x")
    services.message_delete(actor=owner, message=message)
    entry = AuditLog.objects.get(action="message_delete")
    assert (entry.actor, entry.target_user, entry.message_id) == (owner, member, message.id)


def test_message_delete_by_other(user_factory, member, room):
    """Other users cannot delete."""
    message, _ = services.message_post(user=member, room=room, body="x")
    with pytest.raises(Forbidden):
        services.message_delete(actor=user_factory(), message=message)


def test_message_delete_twice(member, room):
    """Deleting twice raises NotFound."""
    message, _ = services.message_post(user=member, room=room, body="x")
    services.message_delete(actor=member, message=message)
    with pytest.raises(NotFound):
        services.message_delete(actor=member, message=message)


def test_message_restore(moderator_factory, member, room):
    """A moderator restores a deleted message, keeping its id; audited."""
    message, _ = services.message_post(user=member, room=room, body="x")
    services.message_delete(actor=member, message=message)
    services.message_restore(actor=moderator_factory(), message=message)
    assert Message.objects.get(pk=message.id).deleted is None
    assert AuditLog.objects.filter(action="message_restore", message_id=message.id).exists()


def test_message_restore_non_moderator(owner, member, room):
    """Only moderators restore."""
    message, _ = services.message_post(user=member, room=room, body="x")
    services.message_delete(actor=member, message=message)
    with pytest.raises(Forbidden):
        services.message_restore(actor=owner, message=message)


def test_message_report(owner, member, room):
    """A member reports a message."""
    message, _ = services.message_post(user=member, room=room, body="x")
    report, _ = services.message_report(user=owner, message=message, reason="spam")
    assert (report.reporter, report.reason, report.resolved) == (owner, "spam", None)


def test_message_report_moderator_outside_room(moderator_factory, member, room):
    """Moderators may report in rooms they are not in."""
    message, _ = services.message_post(user=member, room=room, body="x")
    assert services.message_report(user=moderator_factory(), message=message, reason="r")


@pytest.mark.parametrize("reason", ["", "  ", None])
def test_message_report_needs_reason(owner, member, room, reason):
    """A report needs a reason."""
    message, _ = services.message_post(user=member, room=room, body="x")
    with pytest.raises(BadRequest):
        services.message_report(user=owner, message=message, reason=reason)


def test_message_report_non_member(user_factory, member, room):
    """Non-members cannot report."""
    message, _ = services.message_post(user=member, room=room, body="x")
    with pytest.raises(Forbidden):
        services.message_report(user=user_factory(), message=message, reason="r")


def test_report_resolve(moderator_factory, owner, member, room):
    """A moderator resolves a report once; audited once."""
    message, _ = services.message_post(user=member, room=room, body="x")
    report, _ = services.message_report(user=owner, message=message, reason="r")
    mod = moderator_factory()
    services.report_resolve(actor=mod, report=report)
    services.report_resolve(actor=mod, report=report)
    assert Report.objects.get().resolved_by == mod
    assert AuditLog.objects.filter(action="report_resolve").count() == 1


def test_report_resolve_non_moderator(owner, member, room):
    """Only moderators resolve reports."""
    message, _ = services.message_post(user=member, room=room, body="x")
    report, _ = services.message_report(user=owner, message=message, reason="r")
    with pytest.raises(Forbidden):
        services.report_resolve(actor=owner, report=report)


# ----- moderation --------------------------------------------------------------------------------


def test_room_ban_broadcast_and_audit(owner, member, room, listen, django_capture_on_commit_callbacks):
    """room_ban stores the ban, audits it and tells the room's sockets."""
    receive = listen(room_group_name(room.id))
    until = timezone.now() + timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        services.room_ban(actor=owner, room=room, username=member.username, until=until, reason="spam")
    ban = RoomBan.objects.get()
    assert (ban.user, ban.until, ban.reason, ban.created_by) == (member, until, "spam", owner)
    assert AuditLog.objects.get(action="room_ban").detail == {"until": until.isoformat()}
    assert receive() == {"type": "chat.room_ban", "room_id": room.id, "user_id": member.id}


def test_room_ban_again_updates(owner, member, room):
    """Banning again replaces the ban's terms."""
    services.room_ban(actor=owner, room=room, username=member.username, reason="a")
    services.room_ban(actor=owner, room=room, username=member.username, reason="b")
    assert RoomBan.objects.get().reason == "b"


def test_room_ban_past_until(owner, member, room):
    """An `until` in the past is refused."""
    with pytest.raises(BadRequest):
        services.room_ban(actor=owner, room=room, username=member.username, until=timezone.now() - timedelta(seconds=1))


def test_room_ban_owner_refused(moderator_factory, owner, room):
    """The room's owner cannot be banned from it."""
    with pytest.raises(BadRequest):
        services.room_ban(actor=moderator_factory(), room=room, username=owner.username)


def test_room_ban_by_member(member, user_factory, room):
    """Members cannot ban."""
    with pytest.raises(Forbidden):
        services.room_ban(actor=member, room=room, username=user_factory().username)


def test_room_unban(owner, member, room):
    """room_unban lifts the ban, audited; a second time NotFound."""
    services.room_ban(actor=owner, room=room, username=member.username)
    services.room_unban(actor=owner, room=room, username=member.username)
    assert not RoomBan.objects.exists()
    assert AuditLog.objects.filter(action="room_unban").exists()
    with pytest.raises(NotFound):
        services.room_unban(actor=owner, room=room, username=member.username)


def test_room_mute_and_unmute(owner, member, room):
    """room_mute stores an audited mute; room_unmute lifts it; a second time NotFound."""
    services.room_mute(actor=owner, room=room, username=member.username, reason="loud")
    assert RoomMute.objects.get().reason == "loud"
    services.room_unmute(actor=owner, room=room, username=member.username)
    assert not RoomMute.objects.exists()
    assert {e.action for e in AuditLog.objects.all()} == {"room_mute", "room_unmute"}
    with pytest.raises(NotFound):
        services.room_unmute(actor=owner, room=room, username=member.username)


def test_room_mute_self_refused(owner, room):
    """Muting oneself is refused."""
    with pytest.raises(BadRequest):
        services.room_mute(actor=owner, room=room, username=owner.username)


def test_room_mute_by_member(member, owner, room):
    """Members cannot mute."""
    with pytest.raises(Forbidden):
        services.room_mute(actor=member, room=room, username=owner.username)


def test_site_ban(moderator_factory, member, listen, django_capture_on_commit_callbacks):
    """site_ban stores an audited ban and tells every process to close the user's sockets."""
    receive = listen(SITE_GROUP)
    with django_capture_on_commit_callbacks(execute=True):
        services.site_ban(actor=moderator_factory(), username=member.username, reason="abuse")
    assert SiteBan.objects.get().user == member
    assert AuditLog.objects.filter(action="site_ban", target_user=member).exists()
    assert receive() == {"type": "chat.user_close", "user_id": member.id, "code": 4003, "session_key": None}


def test_site_ban_non_moderator(owner, member):
    """Only moderators ban site-wide."""
    with pytest.raises(Forbidden):
        services.site_ban(actor=owner, username=member.username)


def test_site_ban_unknown_user(moderator_factory):
    """Banning an unknown user raises NotFound."""
    with pytest.raises(NotFound):
        services.site_ban(actor=moderator_factory(), username="ghost")


def test_site_unban(moderator_factory, member):
    """site_unban lifts the ban, audited; a second time NotFound; non-moderators Forbidden."""
    mod = moderator_factory()
    services.site_ban(actor=mod, username=member.username)
    with pytest.raises(Forbidden):
        services.site_unban(actor=member, username=member.username)
    services.site_unban(actor=mod, username=member.username)
    assert not SiteBan.objects.exists()
    assert AuditLog.objects.filter(action="site_unban").exists()
    with pytest.raises(NotFound):
        services.site_unban(actor=mod, username=member.username)


def test_inactive_staff_is_not_moderator(moderator_factory, member):
    """A deactivated moderator has no moderator powers."""
    mod = moderator_factory()
    mod.is_active = False
    with pytest.raises(Forbidden):
        services.site_ban(actor=mod, username=member.username)
