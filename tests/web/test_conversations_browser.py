"""The chat page's conversation features (CONTRACT §5) in real Chromium against real daphne,
PostgreSQL and Redis: replies, @ completion, the keyboard and the 360 px layout.

One browser and one server for the module (tests/web/conftest.py `chat_page`); data per test.
History is written straight into the table (`seed`, bypassing the rate limit), live messages
through the service (`post`), which broadcasts to the server's sockets over Redis.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.web.conftest import (
    browser_marks,
    eventually,
    in_thread,
    message_items,
    post,
    seed,
    wait_for_message,
    wait_until,
)

pytestmark = browser_marks

PHONE = {"width": 360, "height": 740}


@pytest.fixture
def members(lobby, alice, bob):
    from rooms.models import Membership

    for user in (alice, bob):
        Membership.objects.get_or_create(room=lobby, user=user)


def row(page, message_id: int):
    return page.locator(f"#message-{message_id}")


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def inside_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    width = page.viewport_size["width"]
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


# Visible controls without an accessible name (aria-label, aria-labelledby, a <label>, their text
# or title); what a screen reader would announce as just "button".
NAMELESS_CONTROLS = """
(() => {
  const named = (el) => {
    if ((el.getAttribute('aria-label') || '').trim()) return true;
    const by = el.getAttribute('aria-labelledby');
    if (by && by.split(' ').some((id) => document.getElementById(id)?.textContent.trim())) return true;
    if (el.labels && [...el.labels].some((label) => label.textContent.trim())) return true;
    return Boolean(el.textContent.trim() || (el.title || '').trim());
  };
  return [...document.querySelectorAll('button, a[href], input, textarea, select, [role=option]')]
    .filter((el) => el.getClientRects().length > 0 && el.type !== 'hidden' && !named(el))
    .map((el) => el.outerHTML.slice(0, 120));
})()
"""


# ----- replies -----------------------------------------------------------------------------------


def test_a_reply_shows_its_quote_and_the_quote_opens_the_replied_message(chat_page, members, lobby, alice, bob):
    """A reply shows the replied message's author and plain-text excerpt above it; the quote is a
    named button that loads older history until the replied message is there, then scrolls to it
    and focuses it."""
    [question] = seed(lobby, bob, ["what about <b>the garden</b>?"])
    seed(lobby, alice, [f"filler {n}" for n in range(80)])
    reply = post(alice, lobby, "the roses are out", reply_to=question)
    page = chat_page(alice, "lobby")
    wait_for_message(page, "the roses are out")
    assert row(page, question).count() == 0  # 81 messages back: not in the first page

    quote = row(page, reply.id).locator(".reply-quote")
    expect(quote).to_be_visible()
    expect(quote.locator(".reply-author")).to_have_text("bob")
    expect(quote.locator(".reply-excerpt")).to_have_text("what about the garden?")
    expect(quote).to_have_accessible_name("In reply to bob: what about the garden?. Show that message")
    quote.focus()
    page.keyboard.press("Enter")
    target = row(page, question)
    expect(target).to_be_focused()
    expect(target).to_be_in_viewport()
    expect(target.locator(".body")).to_have_text("what about the garden?")
    assert page.watch.problems() == []


def test_a_reply_sent_from_the_page_reaches_the_other_page_with_its_quote(chat_page, members, lobby, alice, bob):
    """Reply on bob's row sets the composer's target ("Replying to bob"); the message sent with
    Enter carries `reply_to` (by REST, with its client_id) and shows with its quote on both pages,
    once; the target is cleared after sending."""
    page_a = chat_page(alice, "lobby")
    page_b = chat_page(bob, "lobby")
    question = post(bob, lobby, "which <i>colour</i> for the shed?")
    wait_for_message(page_a, "for the shed?")
    row(page_a, question.id).get_by_role("button", name="Reply to bob", exact=False).click()
    expect(page_a.locator("#reply-text")).to_contain_text("Replying to bob")
    expect(page_a.locator("#reply-text")).to_contain_text("which colour for the shed?")
    page_a.locator("#composer-input").press_sequentially("green, surely")
    page_a.keyboard.press("Enter")
    expect(page_a.locator("#reply-banner")).to_be_hidden()
    for page in (page_a, page_b):
        wait_for_message(page, "green, surely")
        reply_row = page.locator("#messages li.message:not(.pending)", has_text="green, surely")
        expect(reply_row).to_have_count(1)
        expect(reply_row.locator(".reply-quote")).to_be_visible()
        expect(reply_row.locator(".reply-author")).to_have_text("bob")
        expect(reply_row.locator(".reply-excerpt")).to_have_text("which colour for the shed?")
    from rooms.models import Message

    stored = Message.objects.get(body_raw="green, surely")
    assert stored.reply_to_id == question.id and stored.client_id
    assert page_a.locator("#messages li.message.pending").count() == 0
    assert page_a.watch.problems() == [] and page_b.watch.problems() == []


def test_a_reply_to_a_deleted_message_says_so(chat_page, members, lobby, alice, bob):
    """Once the replied message is deleted, the quote reads "(deleted message)" and is disabled,
    live on an open page."""
    from rooms.models import Message
    from rooms.services import message_delete

    [question] = seed(lobby, bob, ["soon gone"])
    reply = post(alice, lobby, "answering it", reply_to=question)
    page = chat_page(alice, "lobby")
    quote = row(page, reply.id).locator(".reply-quote")
    expect(quote.locator(".reply-excerpt")).to_have_text("soon gone")

    in_thread(message_delete, actor=bob, message=Message.objects.get(pk=question))
    expect(row(page, question)).to_have_count(0)
    expect(quote.locator(".reply-excerpt")).to_have_text("(deleted message)")
    expect(quote).to_be_disabled()
    page.reload()
    quote = row(page, reply.id).locator(".reply-quote")
    expect(quote.locator(".reply-excerpt")).to_have_text("(deleted message)")
    expect(quote).to_be_disabled()
    assert page.watch.problems() == []


# ----- @ completion --------------------------------------------------------------------------------


def test_at_completes_usernames_from_the_keyboard(chat_page, members, lobby, alice, bob, user_factory):
    """`@b` in the composer lists the usernames the page knows that start so (shortest first,
    never the viewer): ArrowDown moves, Enter and Tab insert `@name ` without sending, Escape
    closes; the textarea is an ARIA combobox pointing at the highlighted option."""
    bella = user_factory("bella")
    seed(lobby, bob, ["hello from bob"])
    seed(lobby, bella, ["hello from bella"])
    page = chat_page(alice, "lobby")
    wait_for_message(page, "hello from bella")
    composer = page.locator("#composer-input")
    options = page.locator("#mention-list [role=option]")

    composer.press_sequentially("thanks @b")
    expect(options).to_have_text(["@bob", "@bella"])
    expect(composer).to_have_attribute("aria-expanded", "true")
    expect(composer).to_have_attribute("aria-activedescendant", "mention-list-0")
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    expect(composer).to_have_value("thanks @bob ")
    expect(page.locator("#mention-list")).to_be_hidden()
    expect(composer).to_have_attribute("aria-expanded", "false")

    composer.press_sequentially("and @")
    expect(options).to_have_text(["@bob", "@bella"])  # alice is the viewer: never offered
    page.keyboard.press("ArrowDown")
    expect(composer).to_have_attribute("aria-activedescendant", "mention-list-1")
    page.keyboard.press("Tab")
    expect(composer).to_have_value("thanks @bob and @bella ")
    expect(composer).to_be_focused()

    composer.press_sequentially("@x")  # nobody known starts so: no list
    expect(page.locator("#mention-list")).to_be_hidden()
    composer.press_sequentially(" @b")
    expect(options).to_have_count(2)
    page.keyboard.press("Escape")
    expect(page.locator("#mention-list")).to_be_hidden()
    assert page.locator("#messages li.message").count() == 2  # nothing was sent
    page.keyboard.press("Enter")  # with the list closed, Enter sends
    wait_for_message(page, "thanks @bob and @bella @x @b")
    assert page.watch.problems() == []


# ----- keyboard and names --------------------------------------------------------------------------


def test_conversation_controls_are_named_and_work_from_the_keyboard(chat_page, members, lobby, alice, bob):
    """Every visible control of the page has an accessible name; a row's React opens the emoji
    picker with the focus on its first emoji, arrows move, Escape closes it and gives the focus
    back; a name's menu offers a DM and a mention, the mention inserted from the keyboard; Reply
    sets the composer's reply target, Escape clears it."""
    [hello] = seed(lobby, bob, ["hello alice"])
    page = chat_page(alice, "lobby")
    wait_for_message(page, "hello alice")
    assert page.evaluate(NAMELESS_CONTROLS) == []

    bob_row = row(page, hello)
    react = bob_row.get_by_role("button", name="Add a reaction to the message by bob", exact=False)
    react.focus()
    page.keyboard.press("Enter")
    picker = bob_row.get_by_role("group", name="Reactions for the message by bob")
    expect(picker).to_be_visible()
    expect(react).to_have_attribute("aria-expanded", "true")
    emoji = picker.get_by_role("button")
    expect(emoji).to_have_count(8)
    expect(emoji.nth(0)).to_be_focused()
    expect(emoji.nth(0)).to_have_accessible_name("React with 👍")
    page.keyboard.press("ArrowRight")
    expect(emoji.nth(1)).to_be_focused()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(emoji.nth(7)).to_be_focused()  # wraps around
    assert page.evaluate(NAMELESS_CONTROLS) == []
    page.keyboard.press("Escape")
    expect(picker).to_have_count(0)
    expect(react).to_be_focused()
    expect(react).to_have_attribute("aria-expanded", "false")

    author = bob_row.get_by_role("button", name="bob: direct message or mention")
    author.focus()
    page.keyboard.press("Enter")
    menu = bob_row.get_by_role("group", name="Actions for bob")
    expect(menu.get_by_role("button")).to_have_text(["Message bob directly", "Mention @bob"])
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(menu).to_have_count(0)
    expect(page.locator("#composer-input")).to_have_value("@bob ")

    bob_row.get_by_role("button", name="Reply to bob", exact=False).click()
    banner = page.locator("#reply-banner")
    expect(banner).to_be_visible()
    expect(page.locator("#reply-text")).to_contain_text("bob")
    expect(page.locator("#reply-text")).to_contain_text("hello alice")
    expect(page.locator("#composer-input")).to_be_focused()
    page.keyboard.press("Escape")
    expect(banner).to_be_hidden()

    for name in ("Notifications", "Search messages", "Message a user"):
        expect(page.get_by_label(name, exact=True).first).to_be_visible()
    assert page.watch.problems() == []


# ----- 360 px ----------------------------------------------------------------------------------------


def test_the_conversation_features_fit_a_360px_screen(chat_page, members, lobby, alice, bob):
    """At 360 px nothing scrolls sideways: the sidebar is behind the "Your rooms" button (which
    opens it with the focus inside), the search form and the notifications button are on screen,
    and the emoji picker and a name's menu open inside the screen."""
    [hello] = seed(lobby, bob, ["a message to react to"])
    page = chat_page(alice, "lobby", viewport=PHONE)
    wait_for_message(page, "a message to react to")
    assert no_sideways_scroll(page)

    sidebar = page.locator("#room-sidebar")
    toggle = page.get_by_role("button", name="Your rooms")
    expect(sidebar).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(sidebar).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    wait_until(page, "document.activeElement?.closest('#room-sidebar') !== null")
    assert inside_viewport(page, sidebar) and no_sideways_scroll(page)
    toggle.click()
    expect(sidebar).to_be_hidden()

    for control in (
        page.locator("#search-input"),
        page.locator("#notifications-button"),
        page.locator("#composer-input"),
    ):
        expect(control).to_be_visible()
        assert inside_viewport(page, control)

    bob_row = row(page, hello)
    bob_row.locator(".action-react").click()
    picker = bob_row.locator(".emoji-picker")
    expect(picker).to_be_visible()
    assert inside_viewport(page, picker) and no_sideways_scroll(page)
    page.keyboard.press("Escape")
    bob_row.locator(".author").click()
    menu = bob_row.locator(".user-menu")
    expect(menu).to_be_visible()
    assert inside_viewport(page, menu) and no_sideways_scroll(page)
    assert message_items(page, "a message to react to").count() == 1
    assert page.watch.problems() == []


# ----- mentions and notifications ------------------------------------------------------------------


@pytest.fixture
def garden(room_factory, alice, bob):
    return room_factory("garden", name="Garden", members=(alice, bob))


def sidebar_link(page, slug: str):
    return page.locator(f"#room-sidebar li[data-slug='{slug}'] a")


def unread_badge(page, slug: str):
    return sidebar_link(page, slug).locator(".badge.unread")


def mention_badge(page, slug: str):
    return sidebar_link(page, slug).locator(".badge.mention")


def test_a_mention_is_counted_and_notified_live_and_opening_it_shows_the_message(
    chat_page, members, lobby, garden, alice, bob
):
    """alice mentions bob in #garden while bob has #lobby open on two devices: both show `@1` on
    #garden and a bell count of 1 at once; the panel says "alice mentioned you in #garden";
    choosing it (keyboard) marks it read and opens #garden at that message, 70 messages back,
    highlighted as mentioning bob; that page's bell and the room's `@` badge are clear."""
    seed(garden, alice, [f"earlier talk {n}" for n in range(70)])
    one = chat_page(bob, "lobby")
    two = chat_page(bob, "lobby")
    expect(unread_badge(one, "garden")).to_have_text("70")
    mention = post(alice, garden, "@bob the tulips are up")
    for page in (one, two):
        expect(mention_badge(page, "garden")).to_have_text("@1")
        expect(unread_badge(page, "garden")).to_have_text("71")
        expect(sidebar_link(page, "garden")).to_have_accessible_name(re.compile(r"^#garden\W+1 mention, 71 unread$"))
        expect(page.locator("#notifications-count")).to_have_text("1")
        expect(page.locator("#notifications-button")).to_have_accessible_name("Notifications, 1 unread")
    seed(garden, alice, [f"later talk {n}" for n in range(70)])  # the mention is 70 messages back
    one.locator("#notifications-button").click()
    item = one.locator("#notifications-list li.notification.unread button")
    expect(item).to_have_count(1)
    expect(item.locator(".notification-what")).to_have_text("alice mentioned you in #garden")
    expect(item.locator(".notification-preview")).to_have_text("@bob the tulips are up")
    expect(item).to_be_focused()
    one.keyboard.press("Enter")
    one.wait_for_url(f"**/rooms/garden/?message={mention.id}")
    target = row(one, mention.id)
    expect(target).to_be_focused()
    expect(target).to_be_in_viewport()
    expect(target).to_have_class(re.compile(r"\bmentions-me\b"))
    for page in (one, two):  # reading #garden (the read_state of every device) clears both
        expect(page.locator("#notifications-count")).to_be_hidden()
        expect(mention_badge(page, "garden")).to_have_count(0)
    from rooms.models import Notification

    assert Notification.objects.get(user=bob).is_read
    assert one.watch.problems() == [] and two.watch.problems() == []


def test_mark_all_read_clears_the_bell_and_escape_closes_the_panel(chat_page, members, lobby, garden, alice, bob):
    """Two mentions and a reply to bob: the panel lists them newest first with their kinds;
    "Mark all read" clears the bell; Escape closes the panel and gives the focus back."""
    own = post(bob, garden, "bob asks something")
    page = chat_page(bob, "lobby")
    post(alice, garden, "@bob first mention")
    post(alice, lobby, "hey @bob, second mention")
    post(alice, garden, "a reply to bob", reply_to=own.id)
    expect(page.locator("#notifications-count")).to_have_text("3")
    page.locator("#notifications-button").click()
    expect(page.locator("#notifications-list .notification-what")).to_have_text(
        ["alice replied to you in #garden", "alice mentioned you in #lobby", "alice mentioned you in #garden"]
    )
    page.get_by_role("button", name="Mark all read").click()
    expect(page.locator("#notifications-count")).to_be_hidden()
    expect(page.locator("#notifications-list li.notification.unread")).to_have_count(0)
    expect(page.locator("#notifications-status")).to_have_text("All notifications marked read.")
    page.keyboard.press("Escape")
    expect(page.locator("#notifications-panel")).to_be_hidden()
    expect(page.locator("#notifications-button")).to_be_focused()
    expect(page.locator("#notifications-button")).to_have_accessible_name("Notifications")
    from rooms.models import Notification

    assert not Notification.objects.filter(user=bob, is_read=False).exists()
    assert page.watch.problems() == []


# ----- reactions -------------------------------------------------------------------------------------


def test_reactions_are_picked_counted_and_toggled_alike_on_both_pages(chat_page, members, lobby, alice, bob):
    """alice picks 👍 on bob's message: both pages show 👍 1, pressed for alice only; bob adds his
    with the toggle (2), alice takes hers back (1, no longer pressed for her), live everywhere."""
    message = post(bob, lobby, "react to me")
    page_a = chat_page(alice, "lobby")
    page_b = chat_page(bob, "lobby")

    def thumbs(page):
        return row(page, message.id).locator(".reactions button.reaction[data-emoji='👍']")

    row(page_a, message.id).get_by_role("button", name="Add a reaction", exact=False).click()
    page_a.get_by_role("button", name="React with 👍").click()
    for page, mine in ((page_a, "true"), (page_b, "false")):
        expect(thumbs(page).locator(".reaction-count")).to_have_text("1")
        expect(thumbs(page)).to_have_attribute("aria-pressed", mine)
    expect(thumbs(page_a)).to_have_accessible_name("👍: 1 reaction, including yours (press to take it back)")
    expect(thumbs(page_b)).to_have_attribute("title", "alice")

    thumbs(page_b).click()
    for page in (page_a, page_b):
        expect(thumbs(page).locator(".reaction-count")).to_have_text("2")
        expect(thumbs(page)).to_have_attribute("aria-pressed", "true")
    expect(thumbs(page_a)).to_have_attribute("title", "alice, bob")

    thumbs(page_a).focus()
    page_a.keyboard.press("Enter")
    for page, mine in ((page_a, "false"), (page_b, "true")):
        expect(thumbs(page).locator(".reaction-count")).to_have_text("1")
        expect(thumbs(page)).to_have_attribute("aria-pressed", mine)
    page_b.reload()
    expect(thumbs(page_b).locator(".reaction-count")).to_have_text("1")  # the server's state
    expect(thumbs(page_b)).to_have_attribute("aria-pressed", "true")
    assert page_a.watch.problems() == [] and page_b.watch.problems() == []


# ----- the read marker and the divider ---------------------------------------------------------


def marker(user, room) -> int:
    from rooms.models import Membership

    return Membership.objects.get(user=user, room=room).last_read_id


def look_away(page):
    """Put another tab of the same window in front: the page keeps running but loses the real
    focus (Playwright's focus emulation, which makes every page focused, is turned off for it)."""
    session = page.context.new_cdp_session(page)
    session.send("Emulation.setFocusEmulationEnabled", {"enabled": False})
    other = page.context.new_page()
    other.bring_to_front()
    wait_until(page, "!document.hasFocus()")
    return other


def read_requests(page) -> list[str]:
    """The page's POST .../read/ calls, as they are made."""
    calls: list[str] = []
    page.on(
        "request", lambda request: calls.append(request.post_data or "") if request.url.endswith("/read/") else None
    )
    return calls


def read_check_done(page) -> None:
    """Wait until the page's pending read-marker check (at most 250 ms after a new row) has run."""
    wait_until(page, "window.chatPage.state.readTimer === null")


def test_sidebar_counts_other_rooms_live_and_clears_on_both_devices_as_they_are_read(
    chat_page, members, lobby, garden, alice, bob
):
    """Two devices of bob see alice's messages in #garden counted live in the sidebar (the room
    moving to the top, the keyboard focus staying on it); bob opens #garden on one device, reads, and the count clears on both."""
    one = chat_page(bob, "lobby")
    two = chat_page(bob, "lobby")  # another browser context: a second device of the same user
    for page in (one, two):
        expect(sidebar_link(page, "garden")).to_be_visible()
        expect(unread_badge(page, "garden")).to_have_count(0)
        expect(sidebar_link(page, "lobby")).to_have_attribute("aria-current", "page")
    sidebar_link(two, "garden").focus()  # a keyboard user on the list while it changes
    post(alice, garden, "first in the garden")
    last = post(alice, garden, "second in the garden")
    post(bob, garden, "bob's own: not unread for bob")
    for page in (one, two):
        expect(unread_badge(page, "garden")).to_have_text("2")
        expect(sidebar_link(page, "garden")).to_have_accessible_name(re.compile(r"^#garden\W+2 unread$"))
        expect(page.locator("#sidebar-rooms li").first).to_have_attribute("data-slug", "garden")
    expect(sidebar_link(two, "garden")).to_be_focused()  # the rows were rebuilt; the focus stayed

    sidebar_link(one, "garden").click()
    one.wait_for_url("**/rooms/garden/")
    wait_for_message(one, "second in the garden")
    expect(unread_badge(two, "garden")).to_have_count(0)  # the read_state reached the other device
    expect(unread_badge(one, "garden")).to_have_count(0)
    expect(sidebar_link(one, "garden")).to_have_attribute("aria-current", "page")
    assert marker(bob, garden) >= last.id
    assert one.watch.problems() == [] and two.watch.problems() == []


def test_the_read_marker_moves_only_while_the_page_is_seen(chat_page, members, lobby, garden, alice, bob):
    """A message arriving while bob's lobby tab is in the background (not focused) or hidden gets
    the "New messages" divider and is not read: no read call, the other device still counts it;
    once the tab is in front and visible again the marker moves and the other device clears."""
    away = chat_page(bob, "lobby")
    other = chat_page(bob, "garden")
    calls = read_requests(away)
    look_away(away)
    first = post(alice, lobby, "while you look away")
    wait_for_message(away, "while you look away")
    read_check_done(away)
    expect(unread_badge(other, "lobby")).to_have_text("1")
    assert calls == [] and marker(bob, lobby) < first.id
    divider = away.locator("#messages .unread-divider")
    expect(divider).to_have_text("New messages")
    expect(divider).to_have_attribute("role", "separator")
    expect(away.locator("#messages .unread-divider + li")).to_have_id(f"message-{first.id}")

    away.bring_to_front()  # the window's focus event: the rows in view are seen now
    expect(unread_badge(other, "lobby")).to_have_count(0)
    assert marker(bob, lobby) == first.id
    expect(away.locator("#messages .unread-divider + li")).to_have_id(f"message-{first.id}")  # stays put

    # A hidden tab (minimised, another tab in front) reads nothing either.
    away.evaluate(
        "Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    second = post(alice, lobby, "while the tab is hidden")
    wait_for_message(away, "while the tab is hidden")
    read_check_done(away)
    expect(unread_badge(other, "lobby")).to_have_text("1")
    assert marker(bob, lobby) == first.id
    away.evaluate("delete document.visibilityState; document.dispatchEvent(new Event('visibilitychange'))")
    expect(unread_badge(other, "lobby")).to_have_count(0)
    assert marker(bob, lobby) == second.id
    assert away.watch.problems() == [] and other.watch.problems() == []


def test_the_divider_marks_the_first_unread_message_and_only_what_is_in_view_is_read(
    chat_page, members, lobby, garden, alice, bob
):
    """At load the divider goes before the first message after bob's marker that bob did not
    write, and the view scrolls up to it; only the rows in view are read, the rest when bob
    scrolls down to them."""
    from rooms.models import Membership

    read = seed(lobby, alice, [f"already read {n}" for n in range(20)])
    seed(lobby, bob, ["bob wrote this after the marker"])
    unread = seed(lobby, alice, [f"unread {n}" for n in range(40)])
    Membership.objects.filter(user=bob, room=lobby).update(last_read_id=read[-1])
    other = chat_page(bob, "garden")
    expect(unread_badge(other, "lobby")).to_have_text("40")

    page = chat_page(bob, "lobby", viewport={"width": 1000, "height": 500})
    divider = page.locator("#messages .unread-divider")
    expect(divider).to_be_in_viewport()
    expect(page.locator("#messages .unread-divider + li")).to_have_id(f"message-{unread[0]}")
    # What is in view is read; what is below the fold is not.
    wait_until(page, f"window.chatPage.state.lastReadId >= {unread[0]}")
    expect(row(page, unread[-1])).not_to_be_in_viewport()
    read_check_done(page)
    partly = eventually(lambda: marker(bob, lobby) if marker(bob, lobby) >= unread[0] else None)  # its POST done
    assert unread[0] <= partly < unread[-1]
    page.locator("#messages-pane").evaluate("pane => { pane.scrollTop = pane.scrollHeight; }")
    wait_until(page, f"window.chatPage.state.lastReadId === {unread[-1]}")
    expect(unread_badge(other, "lobby")).to_have_count(0)
    assert marker(bob, lobby) == unread[-1]
    expect(page.locator("#messages .unread-divider + li")).to_have_id(f"message-{unread[0]}")
    assert page.watch.problems() == [] and other.watch.problems() == []


# ----- search ----------------------------------------------------------------------------------------


def test_a_search_result_opens_its_room_at_that_message(chat_page, members, lobby, garden, alice, bob):
    """Searching from #lobby finds a message 120 messages back in #garden (author, room, preview);
    choosing it opens #garden scrolled to it; "only #lobby" finds nothing there."""
    [heron] = seed(garden, alice, ["a grey <b>heron</b> by the pond"])
    seed(garden, bob, [f"later talk {n}" for n in range(120)])
    page = chat_page(bob, "lobby")
    page.locator("#search-input").fill("heron")
    page.locator("#search-input").press("Enter")
    results = page.locator("#search-results a")
    expect(results).to_have_count(1)
    expect(results.locator(".search-result-head")).to_contain_text("alice in #garden")
    expect(results.locator(".search-result-body")).to_have_text("a grey heron by the pond")
    expect(results).to_be_focused()
    expect(page.locator("#search-status")).to_have_text("1 message found for “heron”.")

    page.locator("#search-only-room").check()
    page.locator("#search-input").press("Enter")
    expect(page.locator("#search-status")).to_have_text("Nothing found for “heron”.")
    page.locator("#search-only-room").uncheck()
    page.locator("#search-input").press("Enter")
    results.click()
    page.wait_for_url(f"**/rooms/garden/?message={heron}")
    target = row(page, heron)
    expect(target).to_be_focused()
    expect(target).to_be_in_viewport()
    assert page.watch.problems() == []


# ----- DMs -----------------------------------------------------------------------------------------


def test_a_dm_is_started_from_a_name_and_listed_for_both(chat_page, members, lobby, alice, bob):
    """bob's name in a message row offers "Message bob directly": it opens the DM's page (listed
    under Direct messages by the other person's name); bob finds it in his sidebar with the
    unread message; starting it again opens the same room."""
    from rooms.models import Room

    seed(lobby, bob, ["hi, I am bob"])
    page = chat_page(alice, "lobby")
    wait_for_message(page, "hi, I am bob")
    page.locator("#messages li.message .author", has_text="bob").first.click()
    page.get_by_role("button", name="Message bob directly").click()
    page.wait_for_url(lambda url: "/rooms/lobby/" not in url)
    dm = Room.objects.get(kind="dm")
    assert page.url.endswith(f"/rooms/{dm.slug}/") and dm.name == "alice, bob"
    page.wait_for_selector("#connection[data-state=live]")
    dm_link = page.locator(f"#sidebar-dms li[data-slug='{dm.slug}'] a")
    expect(dm_link).to_have_text("bob")
    expect(dm_link).to_have_attribute("aria-current", "page")
    page.locator("#composer-input").fill("psst, bob")
    page.keyboard.press("Enter")
    wait_for_message(page, "psst, bob")

    page_b = chat_page(bob, "lobby")
    bob_link = page_b.locator(f"#sidebar-dms li[data-slug='{dm.slug}'] a")
    expect(bob_link.locator(".sidebar-room-name")).to_have_text("alice")
    expect(bob_link.locator(".badge.unread")).to_have_text("1")
    # The sidebar's form starts (here: reopens) one by username too.
    page_b.locator("#dm-input").fill("alice")
    page_b.locator("#dm-input").press("Enter")
    page_b.wait_for_url(f"**/rooms/{dm.slug}/")
    wait_for_message(page_b, "psst, bob")
    assert Room.objects.filter(kind="dm").count() == 1
    assert page.watch.problems() == [] and page_b.watch.problems() == []


def test_a_new_dm_reaches_the_open_page_as_a_notification_and_a_sidebar_entry(chat_page, members, lobby, alice, bob):
    """A DM alice starts while bob has #lobby open: his sidebar lists it under Direct messages by
    alice's name with one unread, the bell says "alice sent you a direct message", and choosing it
    opens the DM's page at that message."""
    from rooms.conversations import dm_open

    page = chat_page(bob, "lobby")
    dm, _ = in_thread(dm_open, user=alice, username="bob")
    message = post(alice, dm, "hello privately")
    entry = page.locator(f"#sidebar-dms li[data-slug='{dm.slug}'] a")
    expect(entry.locator(".sidebar-room-name")).to_have_text("alice")
    expect(entry.locator(".badge.unread")).to_have_text("1")
    expect(page.locator("#notifications-count")).to_have_text("1")
    page.locator("#notifications-button").click()
    item = page.locator("#notifications-list li.notification button")
    expect(item.locator(".notification-what")).to_have_text("alice sent you a direct message")
    item.click()
    page.wait_for_url(f"**/rooms/{dm.slug}/?message={message.id}")
    expect(row(page, message.id)).to_be_focused()
    expect(page.locator("h1")).to_have_text("direct alice")
    expect(page.locator("#notifications-count")).to_be_hidden()
    assert page.watch.problems() == []
