"""Message body sanitiser (CONTRACT §3): XSS neutralised, the small safelist kept, bare links linkified."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from rooms.sanitize import sanitize_body

SAFE_TAGS = {"b", "i", "em", "strong", "code", "pre", "a"}


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_comment(self, data):
        self.elements.append(("!--", {}))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.elements


def assert_inert(html: str) -> None:
    """Only safelisted tags, only href/rel on links, only http/https/mailto (or relative) hrefs."""
    for tag, attrs in elements(html):
        assert tag in SAFE_TAGS, f"{tag!r} survived in {html!r}"
        if tag == "a":
            assert set(attrs) <= {"href", "rel"}, html
            assert attrs.get("rel") == "nofollow noopener", html
            scheme = urlsplit((attrs.get("href") or "").strip()).scheme.lower()
            assert scheme in {"", "http", "https", "mailto"}, html
        else:
            assert attrs == {}, html


XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<b onclick=alert(1)>bold</b>",
    '<a href="https://ok.example" onmouseover="alert(1)">ok</a>',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="  javascript:alert(1)">x</a>',
    '<a href="java\nscript:alert(1)">x</a>',
    '<a href="jav&#x61;script:alert(1)">x</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<iframe src="https://evil.example"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<div style="background:url(javascript:alert(1))">d</div>',
    '<b style="color:red">x</b>',
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    "<object data=javascript:alert(1)>",
    "<embed src=javascript:alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<body onload=alert(1)>",
    '<form action="javascript:alert(1)"><button>go</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "<!--><script>alert(1)</script>-->",
    "<<script>script>alert(1)<</script>/script>",
    '"><script>alert(1)</script>',
    "<img src=`x` onerror=`alert(1)`>",
]


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_xss_payload_neutralised(payload):
    """Every XSS payload comes out with no executable element, attribute or URL."""
    clean = sanitize_body(payload)
    assert_inert(clean)
    lowered = clean.lower()
    assert "<script" not in lowered


def test_script_is_escaped_not_dropped():
    """Unknown tags are escaped so the reader sees what was typed."""
    assert sanitize_body("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_entities_stay_escaped():
    """Escaped markup typed by the user stays escaped text."""
    assert sanitize_body("&lt;script&gt;") == "&lt;script&gt;"


def test_comments_removed():
    """HTML comments are dropped."""
    assert sanitize_body("a<!-- hidden -->b") == "ab"


@pytest.mark.parametrize("tag", sorted(SAFE_TAGS - {"a"}))
def test_safelist_kept(tag):
    """b, i, em, strong, code and pre survive unchanged."""
    html = f"<{tag}>text</{tag}>"
    assert sanitize_body(html) == html


def test_nested_safelist():
    """pre and code nest."""
    assert sanitize_body("<pre><code>x = 1</code></pre>") == "<pre><code>x = 1</code></pre>"


@pytest.mark.parametrize("href", ["http://example.com/", "https://example.com/a?b=c", "mailto:someone@example.com"])
def test_safe_links_kept_with_rel(href):
    """http, https and mailto links are kept with rel="nofollow noopener"."""
    clean = sanitize_body(f'<a href="{href}">link</a>')
    ((tag, attrs),) = elements(clean)
    assert tag == "a"
    assert attrs == {"href": href, "rel": "nofollow noopener"}


def test_link_rel_overridden():
    """A user-given rel or target is replaced by rel="nofollow noopener"."""
    clean = sanitize_body('<a href="https://x.example" rel="opener" target="_blank">t</a>')
    assert elements(clean) == [("a", {"href": "https://x.example", "rel": "nofollow noopener"})]


def test_unsafe_link_keeps_its_text():
    """A link with a refused href is shown as its text only."""
    assert sanitize_body('<a href="javascript:alert(1)">click</a>') == "click"


def test_link_without_href_is_text():
    """An anchor without href becomes its text."""
    assert sanitize_body("<a>plain</a>") == "plain"


@pytest.mark.parametrize(
    "text,href",
    [
        ("see https://example.com now", "https://example.com"),
        ("http://example.org/path?q=1", "http://example.org/path?q=1"),
        ("www.example.com", "http://www.example.com"),
    ],
)
def test_bare_links_linkified(text, href):
    """Bare links become links with rel="nofollow noopener"."""
    links = [attrs for tag, attrs in elements(sanitize_body(text)) if tag == "a"]
    assert links == [{"href": href, "rel": "nofollow noopener"}]


def test_bare_email_linkified():
    """A bare email address becomes a mailto link."""
    links = [attrs for tag, attrs in elements(sanitize_body("write to a@example.com")) if tag == "a"]
    assert links == [{"href": "mailto:a@example.com", "rel": "nofollow noopener"}]


def test_plain_text_unchanged():
    """Text without markup passes unchanged."""
    assert sanitize_body("hello, world") == "hello, world"


def test_ampersand_and_angle_escaped():
    """Stray < > & are escaped."""
    assert sanitize_body("a < b && c > d") == "a &lt; b &amp;&amp; c &gt; d"


def test_unicode_kept():
    """Non-ASCII text is kept as is."""
    assert sanitize_body("héllo 🌍 日本") == "héllo 🌍 日本"


def test_sanitised_output_is_stable():
    """Sanitising twice changes nothing more."""
    once = sanitize_body("<b>x</b> https://e.example <script>1</script>")
    assert sanitize_body(once) == once


def test_only_sanitize_imports_bleach():
    """bleach is imported by rooms/sanitize.py alone (a replacement stays a one-file change)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for folder in ("accounts", "rooms", "chatsite")
        for path in (root / folder).rglob("*.py")
        if "import bleach" in path.read_text() or "from bleach" in path.read_text()
    ]
    assert offenders == ["rooms/sanitize.py"]


def test_concurrent_sanitising_in_threads_gives_each_text_its_own_result():
    """Eight threads sanitising different markup-heavy texts at once each get exactly the result
    of sanitising their text alone (bleach's Cleaner is not thread-safe; one per thread)."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [
        f"<b>t{n}</b> https://example.com/{n} <a href='javascript:x'>t{n}</a> <script>t{n}</script> "
        f"<em>t{n}</em> t{n}@example.com <pre><<<t{n}</pre> " * 20
        for n in range(8)
    ]
    expected = [sanitize_body(text) for text in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(5):
            assert list(pool.map(sanitize_body, texts * 4)) == expected * 4


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=80))
@hypothesis_settings(max_examples=1500, deadline=None)
def test_the_plain_text_fast_path_gives_exactly_bleachs_output(text):
    """Whenever the fast path applies, its output is exactly what bleach returns."""
    from rooms import sanitize

    if sanitize.is_plain(text):
        assert sanitize.sanitize_body(text) == sanitize._new_cleaner().clean(text)


@given(st.from_regex(r"[a-z ]{0,10}([.:/@][a-z]{0,6}){0,3}[ !?,]{0,3}", fullmatch=True))
@hypothesis_settings(max_examples=800, deadline=None)
def test_the_fast_path_on_text_that_looks_almost_like_links(text):
    """Dots, colons, slashes and @ near letters: the fast path still agrees with bleach."""
    from rooms import sanitize

    if sanitize.is_plain(text):
        assert sanitize.sanitize_body(text) == sanitize._new_cleaner().clean(text)


def test_the_fast_path_takes_ordinary_chat_lines():
    """Typical lines skip bleach; anything with markup, entities or links does not."""
    from rooms.sanitize import is_plain

    assert is_plain("hello there, how are you? fine!") and is_plain("see you at 5. ok")
    for text in ("a <b>b</b>", "x & y", "go to example.com", "http://x", "a\r\nb", 'say "hi"'):
        assert not is_plain(text), text
