"""Settings for the test run: chatsite's own, with one Redis database per pytest-xdist worker.

Tests flush their Redis database, so parallel workers must not share one. Worker gwN uses the
database below REDIS_URL's by N. Subprocesses (daphne servers, settings checks) inherit the
adjusted REDIS_URL and the marker, so they are not shifted twice.
"""

import os

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw") and os.environ.get("REDIS_URL") and "CHATSITE_TEST_REDIS_WORKER" not in os.environ:
    _base, _, _db = os.environ["REDIS_URL"].rpartition("/")
    os.environ["REDIS_URL"] = f"{_base}/{int(_db or 0) - int(_worker[2:])}"
    os.environ["CHATSITE_TEST_REDIS_WORKER"] = _worker

from chatsite.settings import *  # noqa: E402, F403

# Tests never run collectstatic; find static files on each request instead of warning about STATIC_ROOT.
WHITENOISE_AUTOREFRESH = True

# Hashing at full strength costs about half a second per user or login on a busy 2-core machine.
PASSWORD_HASHERS = [
    "tests.support.hashers.FastPBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
