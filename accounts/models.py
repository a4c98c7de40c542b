"""The custom user model, in place from migration 0001 so it can grow without a table swap."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower

MODERATORS_GROUP = "Moderators"


class User(AbstractUser):
    """A chatsite account; moderators are staff users in the `Moderators` group."""

    # Copied into every JWT (the `epoch` claim) and compared on every request and handshake, on the
    # row those already load: a password change or deactivation bumps it, which refuses every
    # token issued before in one cheap comparison (accounts/tokens.py).
    token_epoch = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Raised when the user's credentials end (password change, deactivation): older tokens are refused.",
    )

    class Meta(AbstractUser.Meta):
        # Mentions look names up ignoring case, many per batch of posts (rooms/conversations/
        # notifications.py): without this index each lookup would scan the whole table.
        indexes = [models.Index(Lower("username"), name="user_username_lower")]

    @property
    def is_moderator(self) -> bool:
        """The one moderator test: active, and superuser or staff in the Moderators group."""
        if not self.is_active:
            return False
        if self.is_superuser:
            return True
        if not self.is_staff:
            return False
        cached = getattr(self, "_is_moderator_cache", None)
        if cached is None:
            # groups.all() reads a prefetch when there is one (the admin's user list), else one query.
            cached = any(group.name == MODERATORS_GROUP for group in self.groups.all())
            self._is_moderator_cache = cached
        return cached
