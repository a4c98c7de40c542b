"""The word filter of CONTRACT §7: moderators' `block` and `flag` terms, matched in one place.

`screen(text=..., room_id=...)` is the one entry point. The post and edit services call it after
their access checks and before anything is stored or a rate-limit token spent: a `block` term
raises `Filtered` (code `filtered`), `flag` terms come back in the verdict and the service opens a
report by the system on the stored message.

Matching. Text and terms are compared after `normalize`: format characters (zero-width space,
soft hyphen, joiners) removed, then NFKC, case folding and NFKC again (Unicode's
NFKC_Casefold, near enough), so full-width letters, compatibility forms (circled letters, the
"fi" ligature) and any case ("STRASSE" for "strasse" with a sharp s) match. A term matches as whole words: not
preceded or followed by a letter, digit or underscore (Unicode `\\w`), so "ass" does not match
"class"; the words of a phrase match across any whitespace. The text is tried as typed and as it
shows (markup stripped, entities decoded), so "<b>b</b>ad" or "&#98;ad" hide nothing.

Caching. The compiled patterns live in each process. A change of the list (rooms/services.py
`filter_term_*`) forgets them in the changing process at once and, on commit, writes a new version
into the Django cache (Redis with REDIS_URL). Every process looks at that version at most once per
CHAT_WORDFILTER_CHECK_SECONDS (default 1 s) and recompiles when it changed: a change reaches every
process within about a second, for one cache read per second per process rather than per message.
"""

from __future__ import annotations

import html
import logging
import re
import threading
import time
import unicodedata
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from redis.exceptions import RedisError

from rooms.exceptions import Filtered

logger = logging.getLogger(__name__)

VERSION_KEY = "wordfilter:version"
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_UNSEEN = object()


def normalize(text: str) -> str:
    """The form text and terms are compared in: no format characters, NFKC, case folded."""
    visible = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", visible).casefold())


def normalize_term(term: str) -> str:
    """A term's matching key: normalized, whitespace collapsed to single spaces."""
    return _SPACE.sub(" ", normalize(term)).strip()


def term_is_usable(term: str) -> bool:
    """A term needs at least one letter or digit: a term of punctuation alone would match anywhere."""
    return any(ch.isalnum() for ch in normalize_term(term))


@dataclass(frozen=True)
class Verdict:
    """What the filter found in a text that may be stored: the `flag` terms (none: a clean text)."""

    flagged: tuple[str, ...] = ()


@dataclass
class _Rules:
    """Compiled patterns by scope (room id, None for every room) and action, and term names."""

    patterns: dict[tuple[int | None, str], re.Pattern[str]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # matched key -> the term as moderators wrote it


def _pattern(keys: list[str]) -> re.Pattern[str]:
    # Longest first, so a phrase wins over a word it starts with.
    alternatives = "|".join(
        r"\s+".join(re.escape(word) for word in key.split(" ")) for key in sorted(keys, key=len, reverse=True)
    )
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def _compile() -> _Rules:
    from rooms.models import FilterTerm

    grouped: dict[tuple[int | None, str], list[str]] = {}
    rules = _Rules()
    for room_id, action, key, term in FilterTerm.objects.values_list("room_id", "action", "normalized", "term"):
        grouped.setdefault((room_id, action), []).append(key)
        rules.names.setdefault(key, term)
    rules.patterns = {scope: _pattern(keys) for scope, keys in grouped.items()}
    return rules


_lock = threading.Lock()
_rules: _Rules | None = None
_version: object = _UNSEEN
_checked_at = 0.0


def _current_rules() -> _Rules:
    global _rules, _version, _checked_at
    now = time.monotonic()
    with _lock:
        if _rules is not None and now - _checked_at < settings.CHAT_WORDFILTER_CHECK_SECONDS:
            return _rules
        _checked_at = now
        try:
            version = cache.get(VERSION_KEY)
        except RedisError:
            # Redis away: keep the list we have (posting is refused by the rate limit meanwhile anyway).
            logger.warning("word filter: cannot read the list version; keeping the compiled list", exc_info=True)
            version = _version
        if _rules is not None and version == _version:
            return _rules
        # Read the version before the terms: a change committed in between bumps it again.
        _rules, _version = _compile(), version
        return _rules


def forget_compiled() -> None:
    """Make this process recompile at its next screen (after a change here, and in tests)."""
    global _rules, _version, _checked_at
    with _lock:
        _rules, _version, _checked_at = None, _UNSEEN, 0.0


def list_changed() -> None:
    """Call inside the transaction that changed the list: this process recompiles at once, every
    other one within CHAT_WORDFILTER_CHECK_SECONDS of the commit."""
    forget_compiled()

    def bump() -> None:
        forget_compiled()
        try:
            cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)
        except RedisError:
            logger.warning("word filter: cannot publish the new list version", exc_info=True)

    transaction.on_commit(bump)


def _variants(text: str) -> set[str]:
    typed = normalize(text)
    shown = normalize(html.unescape(_TAG.sub("", text)))
    return {typed, shown}


def screen(*, text: str, room_id: int | None) -> Verdict:
    """Check a message text for room `room_id`: raise Filtered on a `block` term, else the verdict
    naming the `flag` terms found. Terms of every room apply, and those of this room."""
    rules = _current_rules()
    if not rules.patterns:
        return Verdict()
    variants = _variants(text)
    for scope in ((None, "block"), (room_id, "block")):
        pattern = rules.patterns.get(scope)
        if pattern is None:
            continue
        for variant in variants:
            match = pattern.search(variant)
            if match:
                term = rules.names.get(_SPACE.sub(" ", match.group(0)), match.group(0))
                raise Filtered(f'The word filter does not allow "{term}" here; rewrite the message without it.')
    flagged: list[str] = []
    for scope in ((None, "flag"), (room_id, "flag")):
        pattern = rules.patterns.get(scope)
        if pattern is None:
            continue
        for variant in variants:
            for found in pattern.findall(variant):
                term = rules.names.get(_SPACE.sub(" ", found), found)
                if term not in flagged:
                    flagged.append(term)
    return Verdict(flagged=tuple(flagged))
