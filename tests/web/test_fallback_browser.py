"""The chat page's fallback transport and catching up (CONTRACT §6) in real Chromium against real
daphne, PostgreSQL and Redis.

WebSockets are blocked the way a proxy refuses them: Playwright's WebSocket routing answers the
page's handshakes by closing them before they open (or, once allowed, connects them to the
server). One browser and one server for the module; data per test.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.web.conftest import (
    api_call,
    api_token,
    browser_marks,
    message_items,
    seed,
    send,
    wait_for_message,
    wait_until,
)

pytestmark = browser_marks

# Refused connections are logged by the browser; nothing else may be.
REFUSED = ("Failed to load resource", "WebSocket connection to", "net::ERR_")


def unexpected(page) -> list[str]:
    return [problem for problem in page.watch.problems() if not any(text in problem for text in REFUSED)]


class WebSocketGate:
    """Blocks or lets through the WebSockets of one browser context; `drop()` cuts open ones."""

    def __init__(self, context, *, blocked: bool):
        self.blocked = blocked
        self.open_routes = []
        context.route_web_socket("**/ws/chat/**", self._route)

    def _route(self, ws) -> None:
        if self.blocked:
            ws.close()  # refused before it opens, as a proxy that strips upgrades
            return
        ws.connect_to_server()
        self.open_routes.append(ws)

    def drop(self) -> None:
        """Block from now on and close the connections that are open (the network went away)."""
        self.blocked = True
        from playwright.sync_api import Error as PlaywrightError

        for ws in self.open_routes:
            try:
                ws.close()
            except PlaywrightError:  # already closed by the page or the server
                pass
        self.open_routes.clear()


@pytest.fixture
def members(lobby, alice, bob):
    from rooms.models import Membership

    for user in (alice, bob):
        Membership.objects.get_or_create(room=lobby, user=user)


def connection(page) -> tuple[str, str]:
    return page.evaluate(
        "(() => { const el = document.getElementById('connection'); return [el.dataset.state, el.dataset.transport]; })()"
    )


def test_blocked_websockets_fall_back_to_the_stream_and_switch_back(chat_page, shared_contexts, members, alice, bob):
    """With WebSockets refused, alice's page streams after three failed opens and says so; both
    users chat both ways (alice posting by REST); once WebSockets are allowed again the page
    switches back to one, and chat goes on without a duplicate."""
    context = shared_contexts(alice)
    gate = WebSocketGate(context, blocked=True)
    page_a = chat_page(alice, "lobby", context=context, wait_live=False)
    page_b = chat_page(bob, "lobby")
    wait_until(page_a, "document.getElementById('connection').dataset.transport === 'sse'", timeout=15_000)
    page_a.wait_for_selector("#connection[data-state=live]", timeout=10_000)
    assert "fallback" in page_a.locator("#connection-text").inner_text().lower()

    send(page_a, "from the stream")
    wait_for_message(page_b, "from the stream")
    send(page_b, "to the stream")
    wait_for_message(page_a, "to the stream")
    assert page_a.locator("#messages li.message.pending").count() == 0

    gate.blocked = False
    # The background retry backs off up to a minute; the browser's `online` event skips the wait.
    page_a.evaluate("window.dispatchEvent(new Event('online'))")
    wait_until(page_a, "document.getElementById('connection').dataset.transport === 'ws'", timeout=15_000)
    page_a.wait_for_selector("#connection[data-state=live]")
    assert page_a.locator("#connection-text").inner_text() == "Live"
    send(page_a, "back on the socket")
    wait_for_message(page_b, "back on the socket")
    send(page_b, "welcome back")
    wait_for_message(page_a, "welcome back")
    for page in (page_a, page_b):
        for text in ("from the stream", "to the stream", "back on the socket", "welcome back"):
            assert message_items(page, text).count() == 1
    assert unexpected(page_a) == [] and page_b.watch.problems() == []


def test_a_page_offline_while_messages_were_edited_deleted_and_reacted_to_shows_all_three(
    chat_page, shared_server, shared_contexts, members, lobby, alice, bob, password
):
    """alice's page has old history loaded (beyond the newest page, which a reconnect does not
    reload) when its network goes away; meanwhile bob edits one of those messages, deletes another
    and reacts to a third. Back online, the page rejoins and reads the changes feed: the edit, the
    deletion and the reaction all show, and nothing is doubled."""
    edited, deleted, reacted = seed(lobby, bob, ["will be edited", "will be deleted", "will be reacted to"])
    seed(lobby, bob, [f"newer {n}" for n in range(80)])
    context = shared_contexts(alice)
    gate = WebSocketGate(context, blocked=False)
    page = chat_page(alice, "lobby", context=context, query=f"?message={edited}")
    for text in ("will be edited", "will be deleted", "will be reacted to", "newer 79"):
        wait_for_message(page, text)

    context.set_offline(True)  # no HTTP either: the page cannot fall back, it waits
    gate.drop()
    page.wait_for_selector("#connection[data-state=reconnecting]")
    token = api_token(shared_server, "bob", password)
    api_call(shared_server, "PATCH", f"messages/{edited}/", {"body": "was edited offline"}, token=token)
    api_call(shared_server, "DELETE", f"messages/{deleted}/", token=token)
    api_call(shared_server, "POST", f"messages/{reacted}/reactions/", {"emoji": "🎉"}, token=token)

    context.set_offline(False)
    gate.blocked = False
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_selector("#connection[data-state=live][data-transport=ws]")
    wait_for_message(page, "was edited offline")
    expect(page.locator(f"#message-{deleted}")).to_have_count(0)
    party = page.locator(f"#message-{reacted} button.reaction[data-emoji='🎉'] .reaction-count")
    expect(party).to_have_text("1")
    assert message_items(page, "will be edited").count() == 0
    assert page.locator("#messages li.message").count() == 82  # 83 loaded, one deleted
    assert message_items(page, "newer 79").count() == 1
    assert unexpected(page) == []
