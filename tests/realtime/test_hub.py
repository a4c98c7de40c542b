"""The hub (rooms/realtime/hub.py) in-process with fakes: a join that fails half-way leaves
nothing behind; per-user frames and closes; lost moderation events repaired by revalidation."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from rooms.realtime import events
from rooms.realtime import hub as hub_module
from rooms.realtime.hub import Hub, RoomRules
from tests.realtime.test_feed import FakeConnection


@pytest.fixture
def hub(settings, monkeypatch):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REDIS_URL = ""
    rules = {7: RoomRules(last_id=0)}

    async def room_rules(room_ids):
        return {room_id: rules[room_id] for room_id in room_ids if room_id in rules}

    ended: dict = {}  # what the database says of the connections' credentials

    async def credentials_ended(credentials):
        return {credential: code for credential, code in ended.items() if credential in credentials}

    monkeypatch.setattr(hub_module, "_room_rules", room_rules)
    monkeypatch.setattr(hub_module, "_credentials_ended", credentials_ended)
    made = Hub()
    made.test_rules = rules  # type: ignore[attr-defined]
    made.test_ended = ended  # type: ignore[attr-defined]
    return made


class Recorder(FakeConnection):
    def __init__(self, user_id: int = 1, session_key: str | None = None) -> None:
        super().__init__(user_id)
        self.session_key = session_key
        self.closed_with: int | None = None
        self.left: list[tuple[int, str | None]] = []

    async def leave_room(self, room_id: int, *, reason: str | None = None) -> None:
        self.left.append((room_id, reason))

    async def close_with(self, code: int) -> None:
        self.closed_with = code


async def test_a_join_that_fails_after_subscribing_leaves_nothing_behind(hub, monkeypatch):
    """Redis fails at the presence step of a join: no feed, no room record, no presence entry."""
    await hub.start()
    connection = Recorder()
    hub.add(connection)

    async def failing_join(**kwargs):
        raise RedisConnectionError("Redis went away")

    monkeypatch.setattr(hub.presence, "join", failing_join)
    with pytest.raises(RedisConnectionError):
        await hub.subscribe(connection, room_id=7, slug="lobby")
    assert hub.feeds == {}
    assert hub._rooms_of[connection] == set()
    assert await hub.presence.online(room_id=7) == []
    monkeypatch.undo()
    await hub.shutdown(timeout=0.1)


async def test_a_successful_join_and_remove_clean_up(hub):
    """Join then disconnect: the feed, its group and the presence entry are gone."""
    await hub.start()
    connection = Recorder()
    hub.add(connection)
    await hub.subscribe(connection, room_id=7, slug="lobby")
    assert list(hub.feeds) == [7] and await hub.online(7) == ["user1"]
    await hub.remove(connection)
    assert hub.feeds == {} and connection not in hub._rooms_of
    await hub.shutdown(timeout=0.5)
    assert await hub.online(7) == []


async def test_user_frame_reaches_every_connection_of_that_user_only(hub):
    """`UserFrame` is delivered to all of the user's connections on the process and nobody else's."""
    first, second, other = Recorder(1), Recorder(1), Recorder(2)
    for connection in (first, second, other):
        hub.add(connection)
    await hub.dispatch(events.UserFrame(user_id=1, frame={"type": "notification", "n": 1}).to_layer())
    assert len(first.events) == len(second.events) == 1 and other.events == []


async def test_user_frames_deliver_each_frame_to_its_users_connections(hub):
    """`UserFrames` (a batch's notifications in one layer message): each frame to its user only."""
    first, second, other, bystander = Recorder(1), Recorder(1), Recorder(2), Recorder(3)
    for connection in (first, second, other, bystander):
        hub.add(connection)
    frames = [[1, {"type": "notification", "n": 1}], [2, {"type": "notification", "n": 2}], [9, {"type": "x"}]]
    await hub.dispatch(events.UserFrames(frames=frames).to_layer())
    assert len(first.events) == len(second.events) == len(other.events) == 1 and bystander.events == []


async def test_user_close_with_a_session_key_closes_only_that_sessions_connections(hub):
    """`UserClose` with a session key closes the connections of that session; without, all of them."""
    web, app, other = Recorder(1, "s-1"), Recorder(1, None), Recorder(2, "s-1")
    for connection in (web, app, other):
        hub.add(connection)
    await hub.dispatch(events.UserClose(user_id=1, code=4001, session_key="s-1").to_layer())
    assert (web.closed_with, app.closed_with, other.closed_with) == (4001, None, None)
    await hub.dispatch(events.UserClose(user_id=1, code=4003).to_layer())
    assert app.closed_with == 4003


async def test_an_unreadable_layer_event_is_dropped_not_fatal(hub):
    """A layer message of an unknown type or with missing fields is logged and ignored."""
    await hub.dispatch({"type": "chat.nonsense"})
    await hub.dispatch({"type": "chat.user_close", "user_id": 1})  # no code
    await hub.dispatch({"type": "chat.user_frame"})


async def test_revalidation_applies_a_lost_ban_and_mute(hub):
    """The heartbeat's re-read kicks a user whose ban event was lost and refreshes mutes and slow mode."""
    await hub.start()
    banned, muted = Recorder(1), Recorder(2)
    for connection in (banned, muted):
        hub.add(connection)
        await hub.subscribe(connection, room_id=7, slug="lobby")
    hub.test_rules[7] = RoomRules(last_id=0, slow_mode_seconds=30, muted_user_ids={2}, banned_user_ids={1})
    await hub.revalidate()
    feed = hub.feed(7)
    assert banned.left == [(7, "banned")] and muted.left == []
    assert feed is not None and feed.muted_user_ids == {2} and feed.slow_mode_seconds == 30
    await hub.shutdown(timeout=0.5)


async def test_revalidation_closes_connections_whose_credential_ended(hub):
    """A lost logout, password change or site ban: the heartbeat's one re-check closes exactly
    those connections (4001, 4003); one without any credential is closed too (fail closed)."""
    fine, logged_out, banned, unvouched = Recorder(1), Recorder(2, "s-2"), Recorder(3), Recorder(4)
    unvouched.credential = None  # type: ignore[assignment]
    for connection in (fine, logged_out, banned, unvouched):
        hub.add(connection)
    hub.test_ended.update({logged_out.credential: 4001, banned.credential: 4003})
    await hub.revalidate()
    assert [c.closed_with for c in (fine, logged_out, banned, unvouched)] == [None, 4001, 4003, 4001]


async def test_the_credential_recheck_runs_while_redis_is_away(hub, monkeypatch):
    """Redis down (so the layer's close event was lost too): the heartbeat still closes a
    connection whose credential ended, since that check needs only the database."""
    ended = Recorder(5)
    hub.add(ended)
    hub.test_ended[ended.credential] = 4001

    async def redis_down(entries):
        raise RedisConnectionError("Redis is away")

    monkeypatch.setattr(hub.presence, "refresh", redis_down)
    await hub.heartbeat()
    assert ended.closed_with == 4001


async def test_mute_and_slow_mode_events_update_the_standing_cache(hub):
    """RoomMuted and RoomUpdated change the feed's cached rules at once."""
    await hub.start()
    connection = Recorder(3)
    hub.add(connection)
    await hub.subscribe(connection, room_id=7, slug="lobby")
    await hub.dispatch(events.RoomMuted(room_id=7, user_id=3, is_muted=True).to_layer())
    await hub.dispatch(events.RoomUpdated(room_id=7, slow_mode_seconds=5).to_layer())
    feed = hub.feed(7)
    assert feed is not None and feed.muted_user_ids == {3} and feed.slow_mode_seconds == 5
    await hub.dispatch(events.RoomMuted(room_id=7, user_id=3, is_muted=False).to_layer())
    assert feed.muted_user_ids == set()
    await hub.shutdown(timeout=0.5)


async def test_the_hub_skips_its_own_batches_coming_back_from_the_layer(hub):
    """A `chat.messages` event whose origin is this hub was delivered at commit: its copy is
    dropped before parsing; another process's event is delivered."""
    await hub.start()
    connection = Recorder(4)
    hub.add(connection)
    await hub.subscribe(connection, room_id=7, slug="lobby")
    delivered: list[int] = []
    connection.deliver_message = lambda room_id, message_id, frame: delivered.append(message_id)  # type: ignore[method-assign]
    own = events.MessagesCreated(room_id=7, messages=[{"id": 1}], prev_ids=[0], origin=hub.channel)
    await hub.dispatch(own.to_layer())
    assert delivered == []
    other = events.MessagesCreated(room_id=7, messages=[{"id": 1}], prev_ids=[0], origin="chat.hub.elsewhere")
    await hub.dispatch(other.to_layer())
    assert delivered == [1]
    await hub.shutdown(timeout=0.5)
