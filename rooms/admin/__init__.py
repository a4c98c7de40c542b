"""The Django admin as the moderators' workplace (CONTRACT §4); see docs/moderation.md.

Every write here calls rooms/services.py, so the admin, the REST API and the WebSocket share one
write path, one audit log and one live broadcast.
"""

from rooms.admin import audit, messages, restrictions, rooms, wordfilter  # noqa: F401  (registers the admins)
from rooms.admin.base import ServiceModelAdmin, restriction_action

__all__ = ["ServiceModelAdmin", "restriction_action"]
