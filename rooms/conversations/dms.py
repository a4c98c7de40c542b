"""Direct messages (CONTRACT §5): one private room of kind "dm" per pair of users.

The pair is the key (`DirectPair`, unique per ordered pair of user ids); the room's slug is
`dm-<low id>-<high id>`, a form `room_create` refuses for user-made rooms (`slug_is_reserved`),
so only a room made before that rule could hold it, and then the DM takes a suffixed slug. The
rules of DMs elsewhere: no invites and no leaving (rooms/services.py), moderation only by site
moderators (rooms.selectors.user_can_moderate_room), no new messages while the other user is
site-banned or deactivated (rooms/posting.py, the batch's access query).
"""

from __future__ import annotations

import re
import secrets

from django.db import IntegrityError, transaction

from rooms.exceptions import BadRequest, NotFound
from rooms.models import DirectPair, Membership, Room
from rooms.protocol import storable_text_check

DM_SLUG_RE = re.compile(r"^dm-\d+-\d+(-[0-9a-f]+)?$")
NAME_MAX = Room._meta.get_field("name").max_length or 100
SLUG_RETRIES = 3


def slug_is_reserved(slug: str) -> bool:
    """Whether `slug` has the form of a DM's slug, which user-made rooms may not take."""
    return bool(DM_SLUG_RE.match(slug))


def dm_name(first: str, second: str) -> str:
    """The two usernames, sorted, joined by ", " (cut to the column's 100 characters: usernames
    may have 150 each; docs/contract-notes.md)."""
    name = ", ".join(sorted([first, second]))
    return name if len(name) <= NAME_MAX else name[: NAME_MAX - 1] + "…"


def _dm_partner(*, user, username: str):
    if not isinstance(username, str):
        raise BadRequest('"username" must be a string.')
    storable_text_check(username, field="username")
    if username == user.username:
        raise BadRequest("You cannot open a DM with yourself.")
    from rooms.selectors import user_for_dm  # selectors imports this package

    partner = user_for_dm(username=username)
    if partner is None:
        raise NotFound(f"No user {username!r}.")
    if partner.id == user.id:  # the same account under another spelling of its name
        raise BadRequest("You cannot open a DM with yourself.")
    return partner


def dm_open(*, user, username: str) -> tuple[Room, bool]:
    """The DM room of `user` and `username`: (room, created). Creates it (both users members,
    markers at 0) unless the pair has one. Yourself: BadRequest; an unknown, inactive or
    site-banned user: NotFound.

    Race-safe: two calls for the same pair at once insert the same slug and the same pair row;
    the loser's unique violation rolls its savepoint back and it returns the winner's room.
    """
    partner = _dm_partner(user=user, username=username)
    low, high = sorted((user.id, partner.id))
    slug = f"dm-{low}-{high}"
    for _ in range(SLUG_RETRIES):
        existing = DirectPair.objects.select_related("room").filter(user_low_id=low, user_high_id=high).first()
        if existing is not None:
            return existing.room, False
        try:
            with transaction.atomic():
                room = Room.objects.create(
                    slug=slug,
                    name=dm_name(user.username, partner.username),
                    kind=Room.Kind.DM,
                    is_private=True,
                    owner=None,
                )
                DirectPair.objects.create(room=room, user_low_id=low, user_high_id=high)
                Membership.objects.bulk_create(
                    [Membership(room=room, user_id=low), Membership(room=room, user_id=high)]
                )
            return room, True
        except IntegrityError:
            if DirectPair.objects.filter(user_low_id=low, user_high_id=high).exists():
                continue  # another call made it: the loop's first line returns it
            # A room made before DM slugs were reserved holds this one.
            slug = f"dm-{low}-{high}-{secrets.token_hex(3)}"
    raise IntegrityError(f"Could not make the DM room of users {low} and {high}.")
