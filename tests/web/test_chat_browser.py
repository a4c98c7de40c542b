"""The chat page in real headless Chromium against real daphne, PostgreSQL and Redis (CONTRACT §4)."""

from __future__ import annotations

import time

import pytest

from tests.web.conftest import (
    api_call,
    api_token,
    browser_marks,
    in_thread,
    message_items,
    send,
    wait_for_message,
    wait_until,
    watch,
)

pytestmark = browser_marks


def test_two_users_chat_both_ways_within_one_second(daphne_factory, open_chat, lobby, alice, bob):
    """A message typed by one user shows on the other's page within 1 s, in both directions."""
    server = daphne_factory()
    page_a = open_chat(server, alice, "lobby")
    page_b = open_chat(server, bob, "lobby")

    # The clock runs from the Enter key to the row on the other page.
    page_a.fill("#composer-input", "hello bob")
    started = time.monotonic()
    page_a.press("#composer-input", "Enter")
    wait_for_message(page_b, "hello bob", timeout=1000)
    assert time.monotonic() - started < 1.0

    page_b.fill("#composer-input", "hi alice")
    started = time.monotonic()
    page_b.press("#composer-input", "Enter")
    wait_for_message(page_a, "hi alice", timeout=1000)
    assert time.monotonic() - started < 1.0

    row = page_a.locator("#messages li.message", has_text="hi alice")
    assert row.locator(".author").inner_text() == "bob"
    assert row.locator("time").get_attribute("datetime")
    assert page_a.locator("#messages li.message.pending").count() == 0
    assert page_a.watch.problems() == [] and page_b.watch.problems() == []


def test_shift_enter_adds_a_line_and_enter_sends(daphne_factory, open_chat, lobby, alice):
    """Shift+Enter puts a newline in the composer; Enter sends the two lines as one message."""
    server = daphne_factory()
    page = open_chat(server, alice, "lobby")
    page.type("#composer-input", "first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    assert page.input_value("#composer-input") == "first line\nsecond line"
    page.keyboard.press("Enter")
    wait_for_message(page, "second line")
    assert message_items(page, "first line").inner_text() == "first line\nsecond line"
    assert page.input_value("#composer-input") == ""


def test_typing_indicator_and_presence_show(daphne_factory, open_chat, lobby, alice, bob):
    """Bob sees alice come online, sees "alice is typing…" that fades, and sees her leave."""
    server = daphne_factory()
    page_b = open_chat(server, bob, "lobby")
    assert page_b.locator("#online-list li", has_text="bob").count() == 1

    page_a = open_chat(server, alice, "lobby")
    page_b.locator("#online-list li", has_text="alice").wait_for(timeout=3000)
    assert page_a.locator("#online-list li", has_text="bob").count() == 1

    page_a.type("#composer-input", "typing away")
    wait_until(page_b, "document.getElementById('typing').textContent === 'alice is typing…'", timeout=3000)
    # Without another keystroke the notice fades and clears within a few seconds.
    wait_until(page_b, "document.getElementById('typing').textContent === ''", timeout=8000)

    page_a.context.close()
    page_b.locator("#online-list li", has_text="alice").wait_for(state="detached", timeout=5000)
    assert page_b.watch.problems() == []


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_restart_resumes_and_outage_messages_appear_exactly_once(
    daphne_factory, open_chat, lobby, alice, bob, password, how
):
    """The server restarts on the same port (stopped gracefully with 4012, or killed); both pages
    reconnect, and messages posted meanwhile over REST, and one queued in a page, each show
    exactly once on both pages."""
    server = daphne_factory()
    page_a = open_chat(server, alice, "lobby")
    page_b = open_chat(server, bob, "lobby")
    send(page_a, "before the restart")
    wait_for_message(page_b, "before the restart")

    # A second process keeps the REST API up while the first one is down.
    helper = daphne_factory()
    token = api_token(helper, "bob", password)
    port = server.port
    if how == "stop":
        server.stop()
    else:
        server.kill()
    for page in (page_a, page_b):
        wait_until(
            page,
            "['reconnecting','connecting'].includes(document.getElementById('connection').dataset.state)",
            timeout=5000,
        )
    wait_until(
        page_a, "document.getElementById('connection-text').textContent.startsWith('Reconnecting in')", timeout=5000
    )

    outage = [f"during the outage {n}" for n in range(3)]
    for text in outage:
        api_call(helper, "POST", "rooms/lobby/messages/", {"body": text}, token=token)
    # Typed while offline: queued with its client_id, shown as pending, sent after reconnecting.
    send(page_a, "queued while offline")
    page_a.locator("#messages li.message.pending", has_text="queued while offline").wait_for()
    assert "waiting for the connection" in page_a.locator("li.pending .pending-note").inner_text()

    daphne_factory(port=port)
    for page in (page_a, page_b):
        page.wait_for_selector("#connection[data-state=live]", timeout=40_000)
        for text in [*outage, "queued while offline"]:
            wait_for_message(page, text)
    # A socket delivers in id order, so once a message posted after all of them shows, any
    # duplicate of an earlier one would already be on the page: count then, no sleeping.
    api_call(helper, "POST", "rooms/lobby/messages/", {"body": "the last one"}, token=token)
    for page in (page_a, page_b):
        wait_for_message(page, "the last one")
    for page in (page_a, page_b):
        for text in ["before the restart", *outage, "queued while offline", "the last one"]:
            assert message_items(page, text).count() == 1, (text, page.url)
        assert page.locator("#messages li.message.pending").count() == 0
        ids = [int(i) for i in page.locator("#messages li.message").evaluate_all("els => els.map(e => e.dataset.id)")]
        assert ids == sorted(ids) and len(ids) == len(set(ids))

    send(page_b, "after the restart")
    wait_for_message(page_a, "after the restart", timeout=2000)
    # While the server is down the browser logs refused connections; nothing else may appear.
    problems = [
        p
        for p in page_a.watch.problems() + page_b.watch.problems()
        if "WebSocket" not in p and "ERR_CONNECTION_REFUSED" not in p
    ]
    assert problems == []


def test_edits_and_deletions_made_while_disconnected_show_after_reconnect(
    daphne_factory, open_chat, lobby, alice, bob, password
):
    """The socket replays only new messages; the page reconciles edits and deletions it missed."""
    server = daphne_factory()
    page = open_chat(server, alice, "lobby")
    page_bob = open_chat(server, bob, "lobby")
    send(page_bob, "will be deleted")
    send(page_bob, "will be edited")
    wait_for_message(page, "will be edited")
    ids = {
        text: int(page.locator("li.message", has_text=text).get_attribute("data-id"))
        for text in ("will be deleted", "will be edited")
    }
    page_bob.context.close()
    helper = daphne_factory()
    token = api_token(helper, "bob", password)
    port = server.port
    server.stop()
    api_call(helper, "DELETE", f"messages/{ids['will be deleted']}/", token=token)
    api_call(helper, "PATCH", f"messages/{ids['will be edited']}/", {"body": "was edited"}, token=token)
    daphne_factory(port=port)
    page.wait_for_selector("#connection[data-state=live]", timeout=40_000)
    wait_for_message(page, "was edited")
    page.locator("li.message", has_text="will be deleted").wait_for(state="detached")
    assert page.locator("li.message", has_text="was edited").locator(".edited").is_visible()


def test_long_outage_ends_in_resync_and_a_clean_reload(daphne_factory, open_chat, lobby, alice, bob):
    """Over 500 messages missed: the server answers resync, and the page shows the newest history
    with no gap pretending to be continuous, and older pages still load on scroll."""
    server = daphne_factory()
    page = open_chat(server, alice, "lobby")
    send(page, "before the outage")
    wait_for_message(page, "before the outage")
    port = server.port
    server.stop()
    _seed_history(lobby, bob, 600)
    daphne_factory(port=port)
    page.wait_for_selector("#connection[data-state=live]", timeout=40_000)
    wait_for_message(page, "history 599")
    # The list restarted from the newest page: the old message is no longer next to the new ones.
    wait_until(page, "document.querySelectorAll('#messages li.message').length === 50")
    assert message_items(page, "before the outage").count() == 0
    assert message_items(page, "history 550").count() == 1
    assert page.locator("#load-older").is_visible()
    send(page, "after the outage")
    wait_for_message(page, "after the outage")
    ids = [int(i) for i in page.locator("#messages li.message").evaluate_all("els => els.map(e => e.dataset.id)")]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == 51


XSS_PAYLOAD = (
    '<img src=x onerror="alert(1)"> <script>alert(2)</script> '
    '<a href="javascript:alert(3)">click me</a> <svg onload=alert(4)></svg> '
    '"><iframe src="javascript:alert(5)"></iframe> <b onmouseover="alert(6)">bold</b> '
    '<style>body{display:none}</style> {{7*7}} <a href="https://example.com/ok">fine link</a>'
)


def test_xss_payload_renders_as_text_and_runs_nothing(daphne_factory, open_chat, room_factory, alice, bob):
    """Markup in a message (and in a room's name and topic) shows as text; no script runs."""
    room_factory("xss", name="<img src=x onerror=alert(8)>", topic="<script>alert(9)</script>", members=[alice, bob])
    server = daphne_factory()
    page_a = open_chat(server, alice, "xss")
    page_b = open_chat(server, bob, "xss")
    send(page_a, XSS_PAYLOAD)
    wait_for_message(page_b, "fine link")
    body = message_items(page_b, "fine link")
    text = body.inner_text()
    assert '<img src=x onerror="alert(1)">' in text
    assert "<script>alert(2)</script>" in text
    assert "<svg onload=alert(4)></svg>" in text
    for page in (page_a, page_b):
        messages = page.locator("#messages")
        assert messages.locator("img, script, svg, iframe, style").count() == 0
        hrefs = messages.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
        assert hrefs == ["https://example.com/ok"]
        assert messages.locator("b").evaluate_all("els => els.map(e => e.attributes.length)") == [0]
        messages.locator("b").hover()  # an onmouseover that survived would fire now
        assert page.locator("h1").inner_text().startswith("<img src=x onerror=alert(8)>")
        assert page.locator(".topic").inner_text() == "<script>alert(9)</script>"
    page_b.reload()
    page_b.wait_for_selector("#connection[data-state=live]")
    wait_for_message(page_b, "fine link")  # history over REST renders the same way
    assert page_b.locator("#messages").locator("img, script, svg, iframe").count() == 0
    for page in (page_a, page_b):  # a frame's round trip: script queued so far has run
        page.evaluate("() => new Promise(resolve => requestAnimationFrame(() => setTimeout(resolve)))")
    assert page_a.watch.problems() == []
    assert page_b.watch.problems() == []


def _seed_history(room, author, count: int) -> list[int]:
    """`count` messages straight into the table (bypassing the rate limit): test data only."""
    from rooms.models import Message, Room

    rows = Message.objects.bulk_create(
        [Message(room=room, author=author, body=f"history {n:03d}", body_raw=f"history {n:03d}") for n in range(count)]
    )
    ids = [row.id for row in rows]
    Room.objects.filter(pk=room.pk).update(last_message_id=max(ids))
    return ids


def test_history_loads_on_scroll(daphne_factory, open_chat, lobby, alice):
    """The page shows the newest 50; scrolling up loads older pages until the beginning, once each."""
    _seed_history(lobby, alice, 120)
    server = daphne_factory()
    page = open_chat(server, alice, "lobby", viewport={"width": 800, "height": 600})
    wait_for_message(page, "history 119")
    assert page.locator("#messages li.message").count() == 50
    assert message_items(page, "history 070").count() == 1
    assert message_items(page, "history 069").count() == 0

    for _ in range(20):
        if page.locator("#history-start").is_visible():
            break
        page.locator("#messages-pane").evaluate("pane => { pane.scrollTop = 0; }")
        page.wait_for_timeout(300)
    page.locator("#history-start").wait_for(state="visible")
    texts = page.locator("#messages li.message .body").all_inner_texts()
    assert texts == [f"history {n:03d}" for n in range(120)]
    assert page.watch.problems() == []


def test_short_first_page_loads_older_history_until_the_window_is_full(daphne_factory, open_chat, lobby, alice):
    """In a tall window the first page does not fill the list: older pages load by themselves."""
    _seed_history(lobby, alice, 60)
    server = daphne_factory()
    page = open_chat(server, alice, "lobby", viewport={"width": 800, "height": 4000})
    page.locator("#history-start").wait_for(state="visible")
    assert page.locator("#messages li.message").count() == 60


def test_load_older_button_works_from_the_keyboard(daphne_factory, open_chat, lobby, alice):
    """Keyboard users reach older history with the "Load older messages" button."""
    _seed_history(lobby, alice, 120)
    server = daphne_factory()
    page = open_chat(server, alice, "lobby", viewport={"width": 800, "height": 600})
    wait_for_message(page, "history 119")
    page.focus("#load-older")
    page.keyboard.press("Enter")
    wait_for_message(page, "history 020")
    assert page.locator("#messages li.message").count() >= 100


def test_edit_and_delete_own_message_show_live(daphne_factory, open_chat, lobby, alice, bob):
    """Alice edits then deletes her message; bob's page follows both live."""
    server = daphne_factory()
    page_a = open_chat(server, alice, "lobby")
    page_b = open_chat(server, bob, "lobby")
    send(page_a, "tpyo here")
    wait_for_message(page_b, "tpyo here")
    assert page_b.locator("li.message", has_text="tpyo here").locator(".action-edit").is_hidden()
    assert page_b.locator("li.message", has_text="tpyo here").locator(".action-delete").is_hidden()

    row = page_a.locator("li.message", has_text="tpyo here")
    row.hover()
    row.locator(".action-edit").click()
    editor = row.locator(".edit-form textarea")
    assert editor.input_value() == "tpyo here"
    editor.fill("typo fixed")
    editor.press("Enter")
    wait_for_message(page_b, "typo fixed")
    assert page_b.locator("li.message", has_text="typo fixed").locator(".edited").is_visible()
    assert message_items(page_b, "tpyo here").count() == 0

    row = page_a.locator("li.message", has_text="typo fixed")
    row.hover()
    row.locator(".action-delete").click()
    row.locator(".action-delete", has_text="Confirm delete").click()
    page_b.locator("li.message", has_text="typo fixed").wait_for(state="detached", timeout=3000)
    assert page_a.locator("li.message", has_text="typo fixed").count() == 0
    assert page_a.watch.problems() == [] and page_b.watch.problems() == []


def test_moderator_deletes_someone_elses_message(daphne_factory, open_chat, lobby, alice, moderator_factory):
    """A moderator has Delete on every message and removing one removes it from alice's page too."""
    moderator = moderator_factory("mod")
    server = daphne_factory()
    page_a = open_chat(server, alice, "lobby")
    page_m = open_chat(server, moderator, "lobby")
    send(page_a, "spam spam spam")
    wait_for_message(page_m, "spam spam spam")
    row = page_m.locator("li.message", has_text="spam spam spam")
    assert row.locator(".action-edit").is_hidden()
    row.hover()
    row.locator(".action-delete").click()
    row.locator(".action-delete", has_text="Confirm delete").click()
    page_a.locator("li.message", has_text="spam spam spam").wait_for(state="detached", timeout=3000)
    assert page_m.watch.problems() == []


def test_signup_create_room_and_chat(daphne_factory, browser_context):
    """A newcomer signs up with the form, creates a room from the list and chats in it."""
    server = daphne_factory()
    page = browser_context().new_page()
    watch(page)
    page.goto(f"{server.http_url}/")
    page.wait_for_url("**/accounts/login/?next=/")
    page.click("text=Sign up")
    page.fill("#id_username", "newcomer")
    page.fill("#id_password1", "a-Fresh-pass-7391")
    page.fill("#id_password2", "a-Fresh-pass-7391")
    page.click("button:has-text('Sign up')")
    page.wait_for_url(f"{server.http_url}/")
    page.fill("#id_name", "Book club")
    page.fill("#id_topic", "What are you reading?")
    page.click("button:has-text('Create room')")
    page.wait_for_url(f"{server.http_url}/rooms/book-club/")
    page.wait_for_selector("#connection[data-state=live]")
    send(page, "first post")
    wait_for_message(page, "first post")
    assert page.locator("#online-list li").inner_text() == "newcomer (you)"
    page.click("text=← Rooms")
    page.wait_for_url(f"{server.http_url}/")
    assert page.locator(".room-item", has_text="Book club").count() == 1
    assert page.watch.problems() == []


def test_login_form_and_logout(daphne_factory, browser_context, alice, password):
    """The login form signs alice in and back to the page she asked for; Log out signs her out."""
    server = daphne_factory()
    page = browser_context().new_page()
    watch(page)
    page.goto(f"{server.http_url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "wrong password")
    page.click("main button[type=submit]")
    assert "enter a correct username and password" in page.locator(".form-errors").inner_text().lower()
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{server.http_url}/")
    assert "alice" in page.locator(".whoami").inner_text()
    page.click("header button:has-text('Log out')")
    page.wait_for_url("**/accounts/login/?next=/")
    # The wrong password above made the page answer 400, which Chromium logs as a console error.
    assert page.watch.page_errors == [] and page.watch.dialogs == []


def test_room_list_marks_rooms_with_new_messages(daphne_factory, open_chat, lobby, alice, bob):
    """After visiting a room, the list shows "new" next to it once someone else posts."""
    from rooms.services import message_post, room_join

    room_join(user=bob, room=lobby)
    server = daphne_factory()
    page = open_chat(server, alice, "lobby")
    send(page, "seen by me")
    wait_for_message(page, "seen by me")
    page.goto(f"{server.http_url}/")
    assert page.locator(".room-item[data-slug=lobby] .unread").is_hidden()
    in_thread(message_post, user=bob, room=lobby, body="while you were away")
    page.reload()
    assert page.locator(".room-item[data-slug=lobby] .unread").inner_text() == "new"


def test_pages_work_at_360_pixels_wide(daphne_factory, open_chat, room_factory, lobby, alice):
    """At 360 px nothing scrolls sideways and the composer and online list stay on screen."""
    room_factory("long", name="A room with a rather long name indeed", topic="A topic that goes on " * 10)
    server = daphne_factory()
    page = open_chat(server, alice, "lobby", viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    for selector in ("#composer-input", "#composer-send", "#online-list", "#connection"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360 and box["y"] + box["height"] <= 740, selector
    send(page, "from a phone")
    wait_for_message(page, "from a phone")
    page.goto(f"{server.http_url}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_every_control_has_a_name_and_the_keyboard_reaches_the_composer(daphne_factory, open_chat, lobby, alice):
    """Each visible form control has an accessible name, the message list is a live region, and
    Tab from the top of the page reaches the composer without a mouse."""
    server = daphne_factory()
    page = open_chat(server, alice, "lobby")
    send(page, "one of mine")
    wait_for_message(page, "one of mine")
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), textarea, button, a[href]')]
            .filter((el) => el.offsetParent !== null)
            .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || el.textContent.trim()))
            .map((el) => el.outerHTML)"""
    )
    assert unnamed == []
    assert page.locator("#messages").get_attribute("aria-live") == "polite"
    page.evaluate("document.activeElement.blur()")
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "composer-input":
            break
    else:
        raise AssertionError("Tab never reached the composer")
    page.keyboard.type("typed with the keyboard")
    page.keyboard.press("Enter")
    wait_for_message(page, "typed with the keyboard")
