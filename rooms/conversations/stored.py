"""The hook the post write path calls inside its transaction, once the rows of a batch are stored."""

from __future__ import annotations

from collections.abc import Sequence

from rooms.models import Message


def messages_stored(messages: Sequence[Message]) -> None:
    """Called by rooms/posting.py inside the batch transaction, after the rows are inserted and
    before commit, with the new messages in id order (room rows still locked). The place for what
    must be stored with a message in the same transaction (mentions, notifications). Nothing yet."""
    return None
