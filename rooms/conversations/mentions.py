"""Mentions (CONTRACT §5): which `@username`s a message's raw text names, and which count.

Parsing is pure (no database): `mention_tokens(raw)` finds the `@` tokens in what the author
typed, outside links (`<a>` elements, bare URLs as bleach would link them) and `<code>`/`<pre>`;
`mentions_resolve(tokens, lookup)` turns them into real usernames. The database side (who may read
the room, one query per batch) is rooms/conversations/notifications.py.

A token starts with `@` at the start of the text or after a character that is neither a word
character nor `@` (whitespace, punctuation, symbols), and runs over the characters Django's
username validator allows (`\\w . @ + -`). Sentence punctuation stuck to a name ("@bob." "@bob-")
is taken off when the longer form names no user: the longest variant that names a user wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rooms.sanitize import LINKIFIED_URL_RE

# Django's UnicodeUsernameValidator: `^[\w.@+-]+\Z`, at most 150 characters (AbstractUser).
USERNAME_MAX = 150
_TOKEN = re.compile(r"(?<![\w@])@([\w.@+-]+)")
_TRAILING = ".+-"
# Beyond this many distinct names in one message the rest are ignored: a body of 4,000 characters
# could otherwise make one lookup of thousands of names (docs/contract-notes.md).
MAX_NAMES_PER_MESSAGE = 50

# The elements whose text is never a mention, and the tags that open or close them.
_SKIPPED_ELEMENTS = ("a", "code", "pre")
_SKIPPED_TAG = re.compile(r"<(/?)\s*(a|code|pre)(?=[\s/>])[^>]*>", re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)  # bleach strips comments: never shown
# Links with a scheme ("http://x/@bob", even without a dot in the host), then what bleach's
# linkifier makes a link of without one ("example.com/@bob").
_SCHEME_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S*|\bmailto:\S+")


@dataclass(frozen=True)
class MentionToken:
    """One `@` token: the names it may stand for, longest first (trailing `.`/`+`/`-` dropped one
    by one), each in the case the author typed."""

    variants: tuple[str, ...]


def visible_text(raw: str) -> str:
    """`raw` with what can hold no mention blanked out: comments, `<a>`, `<code>` and `<pre>`
    elements (an unclosed one runs to the end, as the HTML parser reads it) and bare URLs. Each
    blanked part becomes one space, so it still separates the words around it."""
    if "<" in raw:
        raw = _COMMENT.sub(" ", raw)
        parts: list[str] = []
        depth = dict.fromkeys(_SKIPPED_ELEMENTS, 0)
        position = 0
        for tag in _SKIPPED_TAG.finditer(raw):
            if not any(depth.values()):
                parts.append(raw[position : tag.start()])
            parts.append(" ")
            name = tag.group(2).lower()
            if tag.group(1):
                depth[name] = max(0, depth[name] - 1)
            elif not tag.group(0).rstrip(">").rstrip().endswith("/"):
                depth[name] += 1
            position = tag.end()
        if not any(depth.values()):
            parts.append(raw[position:])
        raw = "".join(parts)
    raw = _SCHEME_URL.sub(" ", raw)
    if "." in raw:
        raw = LINKIFIED_URL_RE.sub(" ", raw)
    return raw


def mention_tokens(raw: str) -> list[MentionToken]:
    """The `@` tokens of a raw body in order of appearance, at most one per distinct spelling
    (case-insensitive) and MAX_NAMES_PER_MESSAGE of them. No `@`, no work."""
    if "@" not in raw:
        return []
    tokens: list[MentionToken] = []
    seen: set[str] = set()
    for match in _TOKEN.finditer(visible_text(raw)):
        word = match.group(1)
        key = word.lower()
        if key in seen:
            continue
        seen.add(key)
        variants = []
        while word:
            if len(word) <= USERNAME_MAX:
                variants.append(word)
            if word[-1] not in _TRAILING:
                break
            word = word[:-1]
        if variants:
            tokens.append(MentionToken(variants=tuple(variants)))
            if len(tokens) >= MAX_NAMES_PER_MESSAGE:
                break
    return tokens


def mention_names(tokens: Iterable[MentionToken]) -> set[str]:
    """Every name the tokens may stand for, as typed: what to look up."""
    return {variant for token in tokens for variant in token.variants}


def username_key(username: str) -> str:
    """The case-insensitive key of a username (registration keeps them unique ignoring case)."""
    return username.lower()


def mentions_resolve(tokens: Iterable[MentionToken], lookup: Mapping[str, str]) -> list[str]:
    """The real usernames the tokens name, in order of first appearance, no repeats. `lookup`
    maps `username_key(name)` to the real username of each user who counts (exists and may read
    the room); a token naming no one in it is not a mention."""
    usernames: list[str] = []
    for token in tokens:
        for variant in token.variants:
            username = lookup.get(username_key(variant))
            if username is not None:
                if username not in usernames:
                    usernames.append(username)
                break
    return usernames
