"""Screenshots of the room list and the chat page, desktop and 360 px, for the README.

`CHATSITE_SCREENSHOTS=1 pytest tests/web/test_screenshots.py` writes them into docs/screenshots/;
without it they go to a temporary directory, so a normal test run changes no tracked file.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from tests.web.conftest import browser_marks, in_thread, message_items, wait_until

pytestmark = browser_marks

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

CONVERSATION = [
    ("alice", "Morning all! Is the release still on for today?"),
    ("bob", "<b>Yes</b>, after lunch. The checklist is at https://example.com/release"),
    ("mod", "Reminder: keep this channel friendly, and use <code>#ops</code> for incidents."),
    ("alice", "Great. I will watch the dashboards while it rolls out."),
    ("bob", 'Thanks! Ping me if the error rate moves:\n<pre>error_rate{job="chat"} &gt; 0.01</pre>'),
]


def test_screenshots_of_room_list_and_chat_page(
    daphne_factory, open_chat, browser_context, room_factory, user_factory, moderator_factory, tmp_path
):
    """Room list and chat page at 1280 px (light and dark) and at 360 px, saved as PNG files."""
    from rooms.conversations import reaction_add, room_read
    from rooms.models import Room
    from rooms.services import message_post, room_join

    out = DOCS_SCREENSHOTS if os.environ.get("CHATSITE_SCREENSHOTS") == "1" else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    users = {"alice": user_factory("alice"), "bob": user_factory("bob"), "mod": moderator_factory("mod")}
    lobby = room_factory("lobby", name="Lobby", topic="Say hello! Everyone is welcome here.", owner=users["mod"])
    room_factory("design", name="Design", topic="Mockups, critique and colour arguments", owner=users["bob"])
    room_factory(
        "release-crew",
        name="Release crew",
        topic="Private planning",
        is_private=True,
        owner=users["alice"],
        members=[users["bob"]],
    )
    design = Room.objects.get(slug="design")
    for user in users.values():
        room_join(user=user, room=lobby)
        room_join(user=user, room=design)
    posted = [in_thread(message_post, user=users[author], room=lobby, body=body)[0] for author, body in CONVERSATION]
    # The conversation features (CONTRACT §5): a reply with its quote, reactions, a mention, and
    # unread messages in another room for alice's sidebar. Short-code reactions: this machine's
    # Chromium has no colour emoji font, and the screenshots should not show empty boxes.
    in_thread(room_read, user=users["alice"], room=lobby, last_read_id=posted[-1].id)
    in_thread(
        message_post, user=users["mod"], room=lobby, body="@alice the dashboards are here too", reply_to=posted[3].id
    )
    for user, emoji in (("alice", ":+1:"), ("mod", ":+1:"), ("alice", ":tada:")):
        in_thread(reaction_add, user=users[user], message=posted[1], emoji=emoji)
    for body in ("New mockups for the room sidebar", "@alice what do you think of the badges?"):
        in_thread(message_post, user=users["bob"], room=design, body=body)

    server = daphne_factory()
    desktop = {"viewport": {"width": 1280, "height": 760}, "color_scheme": "light"}
    phone = {
        "viewport": {"width": 360, "height": 740},
        "color_scheme": "light",
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 2,
    }
    dark = {**desktop, "color_scheme": "dark"}

    page_bob = open_chat(server, users["bob"], "lobby", **desktop)
    open_chat(server, users["mod"], "lobby", **desktop)
    page_alice = open_chat(server, users["alice"], "lobby", **desktop)
    message_items(page_alice, "error_rate").wait_for()
    page_bob.type("#composer-input", "One more thing")
    wait_until(page_alice, "document.getElementById('typing').textContent.includes('bob is typing')")
    page_alice.fill("#composer-input", "Sounds good, see you at 14:00")
    page_alice.screenshot(path=str(out / "chat-desktop.png"))

    page_dark = open_chat(server, users["alice"], "lobby", **dark)
    message_items(page_dark, "error_rate").wait_for()
    page_dark.screenshot(path=str(out / "chat-desktop-dark.png"))

    page_phone = open_chat(server, users["alice"], "lobby", **phone)
    message_items(page_phone, "error_rate").wait_for()
    page_phone.screenshot(path=str(out / "chat-360.png"))

    for name, options in (("rooms-desktop.png", desktop), ("rooms-360.png", phone)):
        page = browser_context(users["alice"], **options).new_page()
        page.goto(f"{server.http_url}/")
        page.screenshot(path=str(out / name), full_page=True)

    # Each is a PNG of the viewport's size in device pixels (the room lists: full-page, so at least
    # the viewport), and dark mode really changed the page.
    for name, (width, min_height) in {
        "chat-desktop.png": (1280, 760),
        "chat-desktop-dark.png": (1280, 760),
        "chat-360.png": (720, 1480),
        "rooms-desktop.png": (1280, 760),
        "rooms-360.png": (720, 1480),
    }.items():
        size = png_size(out / name)
        assert size[0] == width and size[1] >= min_height, (name, size)
    assert (out / "chat-desktop.png").read_bytes() != (out / "chat-desktop-dark.png").read_bytes()


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; fails for anything that is not a PNG."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path.name} is not a PNG"
    return struct.unpack(">II", data[16:24])
