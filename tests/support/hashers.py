"""A PBKDF2 hasher with few iterations, for the test process only (tests/settings.py)."""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's pbkdf2_sha256 at 1,000 iterations. The count is written into each hash, so the
    full-strength hasher of a daphne server started by a test still verifies these passwords."""

    iterations = 1000
