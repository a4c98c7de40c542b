"""Users who may not post see why, in real Chromium against real daphne: mutes, rate limits, slow
mode, room bans and site-wide bans (CONTRACT §2, §3)."""

from __future__ import annotations

from tests.web.conftest import browser_marks, in_thread, message_items, send, wait_for_message

pytestmark = browser_marks


def test_muted_user_sees_why_they_cannot_send(daphne_factory, open_chat, lobby, alice, bob):
    """Muted while the page is open, the next message is refused: the composer is disabled with the
    reason, and the refused text is back in the composer; after a reload the reason shows at once."""
    from rooms.services import room_mute

    server = daphne_factory()
    page = open_chat(server, bob, "lobby")
    in_thread(room_mute, actor=lobby.owner, room=lobby, username="bob")
    send(page, "can anyone hear me")
    page.wait_for_selector("#composer-input:disabled")
    status = page.locator("#composer-status").inner_text()
    assert "muted" in status
    assert page.locator("#composer-send").is_disabled()
    assert page.input_value("#composer-input") == "can anyone hear me"
    assert message_items(page, "can anyone hear me").count() == 0

    page.reload()
    page.wait_for_selector("#connection[data-state=live]")
    assert page.locator("#composer-input").is_disabled()
    assert "muted" in page.locator("#composer-status").inner_text()


def test_rate_limited_user_sees_a_countdown(daphne_factory, open_chat, lobby, alice):
    """Over the rate limit the composer is disabled with "wait N s" and comes back by itself."""
    server = daphne_factory(env={"RATE_LIMIT_MESSAGES": "2/4s"})
    page = open_chat(server, alice, "lobby")
    for n in range(3):
        send(page, f"burst {n}")
        if n < 2:
            wait_for_message(page, f"burst {n}")
    page.wait_for_selector("#composer-input:disabled")
    assert "too fast" in page.locator("#composer-status").inner_text()
    assert "You can send again in" in page.locator("#composer-status").inner_text()
    assert page.input_value("#composer-input") == "burst 2"
    page.wait_for_selector("#composer-input:enabled", timeout=8000)
    page.press("#composer-input", "Enter")
    wait_for_message(page, "burst 2")


def test_slow_mode_locks_the_composer_between_messages(daphne_factory, open_chat, room_factory, alice):
    """In a slow-mode room the composer counts down after each message, then re-enables."""
    from rooms.services import room_update

    room = room_factory("slow", members=[alice])
    in_thread(room_update, actor=room.owner, room=room, slow_mode_seconds=2)
    server = daphne_factory()
    page = open_chat(server, alice, "slow")
    send(page, "one")
    wait_for_message(page, "one")
    assert page.locator("#composer-input").is_disabled()
    assert "Slow mode" in page.locator("#composer-status").inner_text()
    page.wait_for_selector("#composer-input:enabled", timeout=5000)
    send(page, "two")
    wait_for_message(page, "two")


def test_slow_mode_refusal_from_the_server_counts_down(daphne_factory, open_chat, room_factory, alice, bob):
    """A slow_mode error (the page did not know) disables the composer for retry_after seconds."""
    from rooms.services import message_post, room_update

    room = room_factory("slow", members=[alice, bob])
    server = daphne_factory()
    page = open_chat(server, alice, "slow")
    in_thread(room_update, actor=room.owner, room=room, slow_mode_seconds=30)
    in_thread(message_post, user=alice, room=room, body="from another tab")
    wait_for_message(page, "from another tab")
    send(page, "too soon")
    page.wait_for_selector("#composer-input:disabled")
    status = page.locator("#composer-status").inner_text()
    assert "Slow mode" in status and "You can send again in" in status
    assert page.input_value("#composer-input") == "too soon"


def test_user_banned_from_the_room_is_told_live(daphne_factory, open_chat, lobby, alice, bob):
    """Banned from the room while the page is open: the composer says so and nothing more arrives."""
    from rooms.services import message_post, room_ban

    server = daphne_factory()
    page = open_chat(server, bob, "lobby")
    in_thread(room_ban, actor=lobby.owner, room=lobby, username="bob")
    page.wait_for_selector("#composer-input:disabled", timeout=3000)
    assert "banned" in page.locator("#composer-status").inner_text()
    assert page.locator("#online-list li").count() == 0
    in_thread(message_post, user=lobby.owner, room=lobby, body="not for bob")
    page.wait_for_timeout(1000)
    assert message_items(page, "not for bob").count() == 0


def test_user_banned_site_wide_is_disconnected_and_told(daphne_factory, open_chat, lobby, alice, moderator_factory):
    """Banned site-wide: the socket closes with 4003, the banner says why and it stops retrying."""
    from rooms.services import site_ban

    moderator = moderator_factory("mod")
    server = daphne_factory()
    page = open_chat(server, alice, "lobby")
    in_thread(site_ban, actor=moderator, username="alice")
    page.wait_for_selector("#connection[data-state=offline]", timeout=3000)
    assert "banned" in page.locator("#connection-text").inner_text()
    assert page.locator("#composer-input").is_disabled()
    assert "banned" in page.locator("#composer-status").inner_text()
    page.wait_for_timeout(1500)
    assert page.evaluate("window.chatPage.socket.ws") is None


def test_signed_out_elsewhere_stops_reconnecting_and_offers_login(daphne_factory, open_chat, lobby, alice):
    """Logged out in another tab, the page's next reconnect is refused: it stops retrying, says
    "Signed out" and links to the login page."""
    server = daphne_factory()
    page = open_chat(server, alice, "lobby")
    other_tab = page.context.new_page()
    other_tab.goto(f"{server.http_url}/accounts/logout/")
    other_tab.click("main button:has-text('Log out')")
    other_tab.close()
    port = server.port
    server.stop()
    daphne_factory(port=port)
    page.wait_for_selector("#connection[data-state=offline]", timeout=30_000)
    assert page.locator("#connection-text").inner_text() == "Signed out"
    login = page.locator("#connection-login")
    assert login.is_visible() and login.get_attribute("href") == "/accounts/login/?next=/rooms/lobby/"
    assert page.locator("#composer-input").is_disabled()
