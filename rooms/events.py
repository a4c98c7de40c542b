"""Broadcasts to WebSocket subscribers: the only module that calls `group_send`.

Every broadcast is scheduled with `transaction.on_commit`, so no frame ever announces a row that
could still roll back. Group names are built from ids, never from user text. The layer is only a
hint that something is new: ids, replay and `resync` (rooms/hub.py) make delivery exact.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from chatsite import metrics
from chatsite.logs import log_event
from rooms.protocol import message_dict

logger = logging.getLogger(__name__)

SITE_GROUP = "chat.site"


def room_group_name(room_id: int) -> str:
    return f"chat.room.{room_id}"


def _send(group: str, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:  # the layer being down must not fail a committed write; clients resync
        logger.exception("group_send to %s failed", group)
        return
    metrics.LAYER_MESSAGES.labels(direction="send").inc()


def _send_on_commit(group: str, event: dict[str, Any]) -> None:
    transaction.on_commit(lambda: _send(group, event))


def message_created(message) -> None:
    _send_on_commit(
        room_group_name(message.room_id),
        {
            "type": "chat.message",
            "room_id": message.room_id,
            "message": message_dict(message),
            "prev_id": message.prev_id,
            "accepted_at": time.time(),
        },
    )


def message_edited(message) -> None:
    _send_on_commit(
        room_group_name(message.room_id),
        {"type": "chat.message_edited", "room_id": message.room_id, "message": message_dict(message)},
    )


def message_deleted(message) -> None:
    _send_on_commit(
        room_group_name(message.room_id),
        {"type": "chat.message_deleted", "room_id": message.room_id, "slug": message.room.slug, "id": message.id},
    )


def room_user_banned(*, room, user_id: int) -> None:
    """Sockets of that user in the room get `left` with reason `banned`."""
    _send_on_commit(room_group_name(room.id), {"type": "chat.room_ban", "room_id": room.id, "user_id": user_id})


def room_user_removed(*, room, user_id: int) -> None:
    """A member left or was removed from a private room: their sockets leave it."""
    _send_on_commit(room_group_name(room.id), {"type": "chat.room_removed", "room_id": room.id, "user_id": user_id})


def room_updated(room) -> None:
    _send_on_commit(
        room_group_name(room.id),
        {"type": "chat.room_updated", "room_id": room.id, "slow_mode_seconds": room.slow_mode_seconds},
    )


def user_site_banned(*, user_id: int) -> None:
    """Every socket of the user, on every process, closes with 4003."""
    _send_on_commit(SITE_GROUP, {"type": "chat.site_ban", "user_id": user_id})


def user_credentials_ended(*, user_id: int, session_key: str | None = None) -> None:
    """A user's credentials ended: with `session_key`, the connections that web session
    authenticated (logout); without, all of the user's (password change, deactivation). They
    must close with 4001 within one second on every process (CONTRACT §7).

    CONNECTION POINT, NOT WIRED YET: the real-time engine's per-user path
    `user_close(user_id, 4001, session_key)` is to be called from here, on commit. Today's hub has
    no such event, so open sockets stay open until they reconnect; what already holds is that every
    new handshake, REST call, refresh and ticket with the ended credential is refused. Called by
    accounts/services.py (password_change, password_set, user_deactivate, session_logout) only.
    """
    scope = "session" if session_key else "all"
    # The session key itself is a credential: it is never logged.
    transaction.on_commit(
        lambda: log_event(logger, "credentials_ended", user_id=user_id, scope=scope, connections_closed="not wired")
    )


async def send_async(group: str, event: dict[str, Any]) -> None:
    """An ephemeral broadcast with no row behind it (typing, presence), from async code."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(group, event)
    except Exception:  # ephemeral: a lost typing or presence hint is repaired by the next one
        logger.warning("group_send to %s failed", group, exc_info=True)
        return
    metrics.LAYER_MESSAGES.labels(direction="send").inc()
