"""The custom user model, in place from migration 0001 so it can grow without a table swap."""

from django.contrib.auth.models import AbstractUser

MODERATORS_GROUP = "Moderators"


class User(AbstractUser):
    """A chatsite account; moderators are staff users in the `Moderators` group."""

    @property
    def is_moderator(self) -> bool:
        if not self.is_active:
            return False
        if self.is_superuser:
            return True
        if not self.is_staff:
            return False
        cached = getattr(self, "_is_moderator_cache", None)
        if cached is None:
            cached = self.groups.filter(name=MODERATORS_GROUP).exists()
            self._is_moderator_cache = cached
        return cached
