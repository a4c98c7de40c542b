"""The clock of rules that expire by wall time outside the database (tickets, ...).

One function, looked up at call time (`clock.now()`), so a test moves time with the `clock`
fixture (tests/conftest.py) instead of sleeping. Database rows use `django.utils.timezone.now`,
which the same fixture moves in step.
"""

from __future__ import annotations

import time


def now() -> float:
    """Seconds since the epoch."""
    return time.time()
