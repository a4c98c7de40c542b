"""rooms/conversations/mentions.py, table-driven: which `@username`s a raw body names (CONTRACT §5),
against a fixed set of users, without the database."""

from __future__ import annotations

import pytest

from rooms.conversations.mentions import (
    MAX_NAMES_PER_MESSAGE,
    mention_names,
    mention_tokens,
    mentions_resolve,
    username_key,
    visible_text,
)

USERS = ["bob", "Alice", "carol.smith", "dan-o", "émile", "李雷", "a@b", "bob."]
LOOKUP = {username_key(name): name for name in USERS if name != "bob."}
WITH_DOTTED_BOB = {username_key(name): name for name in USERS}

# (raw text, mentioned usernames in order)
CASES = [
    ("@bob", ["bob"]),
    ("@bob hi", ["bob"]),
    ("hi @bob", ["bob"]),
    ("hi\n@bob\tthere", ["bob"]),
    ("(@bob)", ["bob"]),
    ("[@bob]", ["bob"]),
    ('"@bob"', ["bob"]),
    ("cc:@bob", ["bob"]),
    ("x,@bob", ["bob"]),
    ("/@bob", ["bob"]),
    ("@bob, @alice: look", ["bob", "Alice"]),
    ("thanks @bob.", ["bob"]),
    ("thanks @bob!", ["bob"]),
    ("thanks @bob?", ["bob"]),
    ("@bob...", ["bob"]),
    ("@bob-", ["bob"]),
    ("@bob+", ["bob"]),
    ("@bob;", ["bob"]),
    ("@carol.smith said", ["carol.smith"]),
    ("@carol.smith.", ["carol.smith"]),
    ("@dan-o.", ["dan-o"]),
    ("@BOB and @Bob", ["bob"]),
    ("@ALICE", ["Alice"]),
    ("@bob @alice @bob", ["bob", "Alice"]),
    ("@alice then @bob then @alice", ["Alice", "bob"]),
    ("@émile", ["émile"]),
    ("salut @émile!", ["émile"]),
    ("你好 @李雷。", ["李雷"]),
    ("@李雷", ["李雷"]),
    ("@a@b", ["a@b"]),
    # Not mentions: inside a word, after another @, e-mail addresses, unknown names.
    ("a@bob.com", []),
    ("mail bob@example.com now", []),
    ("x@bob", []),
    ("@@bob", []),
    ("@@@bob", []),
    ("_@bob", []),
    ("1@bob", []),
    ("@nobody", []),
    ("@bobby", []),
    ("@ bob", []),
    ("@", []),
    ("just text", []),
    ("@bo", []),
    # Not inside links, code or pre.
    ("see http://x/@bob", []),
    ("see https://example.com/users/@bob now", []),
    ("see example.com/@bob", []),
    ("see www.example.org/@bob", []),
    ("mailto:x@bob", []),
    ('<a href="http://x">@bob</a>', []),
    ('<A HREF="http://x">hi @bob</A> and @alice', ["Alice"]),
    ("<a>@bob</a>", []),
    ("<code>@bob</code>", []),
    ("<code>@bob</code> @alice", ["Alice"]),
    ("<pre>@bob\n@alice</pre>", []),
    ("<pre><code>@bob</code> @alice</pre> @carol.smith", ["carol.smith"]),
    ("<code>@bob", []),
    ("<code>x</code>@bob", ["bob"]),
    ("<CODE>@bob</CODE>", []),
    ("<codex>@bob</codex>", ["bob"]),
    ("<b>@bob</b>", ["bob"]),
    ("<i>hi</i>@bob", ["bob"]),
    ("<!-- @bob --> @alice", ["Alice"]),
    ("<code/>@bob", ["bob"]),
    ("</code>@bob", ["bob"]),
]


@pytest.mark.parametrize(("raw", "expected"), CASES, ids=[raw[:40] for raw, _ in CASES])
def test_mentions_of_a_body(raw, expected):
    """The usernames a body mentions, in order of first appearance, no repeats."""
    assert mentions_resolve(mention_tokens(raw), LOOKUP) == expected


def test_the_longest_name_that_is_a_user_wins():
    """ "@bob." names the user `bob.` when there is one, `bob` otherwise."""
    assert mentions_resolve(mention_tokens("hi @bob."), WITH_DOTTED_BOB) == ["bob."]
    assert mentions_resolve(mention_tokens("hi @bob."), LOOKUP) == ["bob"]


def test_a_user_who_may_not_read_the_room_is_not_listed():
    """The lookup holds only the users who count: others are not mentions."""
    readers = {key: name for key, name in LOOKUP.items() if name != "bob"}
    assert mentions_resolve(mention_tokens("@bob @alice"), readers) == ["Alice"]


def test_names_to_look_up_include_the_variants_without_trailing_punctuation():
    """What the database is asked for: each token as typed and without its trailing . + -."""
    assert mention_names(mention_tokens("@Bob.. and @carol.smith!")) == {"Bob..", "Bob.", "Bob", "carol.smith"}


def test_no_at_sign_no_tokens():
    """The hot path's test: a body without `@` yields nothing, without parsing."""
    assert mention_tokens("plain text with a link http://example.com") == []


def test_at_most_max_names_per_message_tokens():
    """A body naming hundreds of users is cut at MAX_NAMES_PER_MESSAGE distinct names."""
    raw = " ".join(f"@u{number}" for number in range(300))
    tokens = mention_tokens(raw)
    assert len(tokens) == MAX_NAMES_PER_MESSAGE
    assert tokens[0].variants == ("u0",)


def test_a_name_longer_than_a_username_is_only_looked_up_without_its_tail():
    """Usernames have at most 150 characters; a longer token only as its stripped form."""
    tokens = mention_tokens("@bob" + "." * 200)
    assert tokens[0].variants[-1] == "bob"
    assert all(len(variant) <= 150 for variant in tokens[0].variants)


def test_visible_text_blanks_links_and_code_but_keeps_word_boundaries():
    """Blanked parts become a space, so the words around them stay apart."""
    assert visible_text("a<code>b</code>c").split() == ["a", "c"]
    assert visible_text("x http://y/@z w").split() == ["x", "w"]
    assert visible_text("plain @bob") == "plain @bob"
