"""The browser client's modules in Chromium, without a server: chat-socket.js against a scripted
fake WebSocket (reconnect, resume, de-duplication, outbox, heartbeat) and render.js's safe HTML.

The files are served from static/ by Playwright's request routing at a made-up origin.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

import pytest

from tests.web.conftest import CHROMIUM_ARGS

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [pytest.mark.browser]

STATIC = Path(__file__).resolve().parents[2] / "static"
ORIGIN = "http://harness.test"

HARNESS = """<!doctype html><meta charset="utf-8"><title>harness</title>
<script type="module">
import * as socketModule from "/static/js/chat-socket.js";
import * as render from "/static/js/render.js";
window.socketModule = socketModule;
window.render = render;
window.harnessReady = true;
</script>"""

# A WebSocket stand-in the test drives: open, deliver frames, drop with a close code.
FAKE_WEBSOCKET = """
window.sockets = [];
class FakeWebSocket {
  constructor(url) { this.url = url; this.readyState = 0; this.sent = []; window.sockets.push(this); }
  send(text) { if (this.readyState !== 1) throw new Error("not open"); this.sent.push(JSON.parse(text)); }
  close(code = 1000, reason = "") {
    if (this.readyState === 3) return;
    this.readyState = 3;
    setTimeout(() => this.onclose && this.onclose({ code, reason }), 0);
  }
  serverOpen() { this.readyState = 1; this.onopen && this.onopen({}); }
  serverSend(frame) { this.onmessage && this.onmessage({ data: JSON.stringify(frame) }); }
  serverClose(code) { this.readyState = 3; this.onclose && this.onclose({ code, reason: "" }); }
}
FakeWebSocket.CONNECTING = 0; FakeWebSocket.OPEN = 1; FakeWebSocket.CLOSING = 2; FakeWebSocket.CLOSED = 3;
window.WebSocket = FakeWebSocket;
window.record = (socket) => {
  const events = [];
  for (const type of ["status", "joined", "message", "sent", "send-error", "join-error", "resync", "presence"]) {
    socket.on(type, (detail) => events.push({ type, detail }));
  }
  return events;
};
window.until = async (predicate, ms = 3000) => {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error("timed out: " + predicate);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};
"""


def _serve(route):
    path = route.request.url.removeprefix(ORIGIN).split("?")[0]
    if path == "/":
        route.fulfill(status=200, content_type="text/html", body=HARNESS)
        return
    file = (STATIC / path.removeprefix("/static/")).resolve()
    if path.startswith("/static/") and file.is_file() and STATIC in file.parents:
        route.fulfill(
            status=200, content_type=mimetypes.guess_type(file.name)[0] or "text/plain", body=file.read_bytes()
        )
    else:
        route.fulfill(status=404, body="")


@pytest.fixture(scope="module")
def module_browser():
    """One Chromium for this module: these tests touch no database, so the running event loop of
    Playwright's sync API bothers nobody (and it stops before the next module)."""
    if not CHROMIUM.exists():
        pytest.skip(f"SKIPPED LOUDLY: no chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def harness(module_browser):
    context = module_browser.new_context()
    context.route(f"{ORIGIN}/**", _serve)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(FAKE_WEBSOCKET)
    page.goto(f"{ORIGIN}/")
    page.wait_for_function("window.harnessReady === true")
    yield page
    assert errors == []
    context.close()


FAST = "{backoffBaseMs: 10, backoffMaxMs: 40, url: 'ws://harness.test/ws/chat/'}"


def test_resume_rejoins_after_the_last_message_seen(harness):
    """After a drop the socket reconnects and sends join with after = the newest id it delivered."""
    result = harness.evaluate(
        f"""async () => {{
        const socket = new socketModule.ChatSocket({FAST});
        socket.join("lobby", {{after: 5}});
        socket.start();
        const first = sockets[0];
        first.serverOpen();
        first.serverSend({{type: "joined", room: "lobby", last_id: 5, online: []}});
        for (const id of [6, 7]) first.serverSend({{type: "message", message: {{id, room: "lobby", author: {{id: 1, username: "a"}}, body: "x", created: "2026-01-01T00:00:00Z", edited: null, client_id: null}}}});
        first.serverClose(1006);
        await until(() => sockets.length === 2);
        sockets[1].serverOpen();
        return [first.sent[0], sockets[1].sent[0]];
    }}"""
    )
    assert result == [{"type": "join", "room": "lobby", "after": 5}, {"type": "join", "room": "lobby", "after": 7}]


def test_a_message_id_is_delivered_once(harness):
    """The same message arriving twice (replay and live overlap) reaches the page once."""
    count = harness.evaluate(
        f"""async () => {{
        const socket = new socketModule.ChatSocket({FAST});
        const events = record(socket);
        socket.join("lobby");
        socket.start();
        sockets[0].serverOpen();
        sockets[0].serverSend({{type: "joined", room: "lobby", last_id: 0, online: []}});
        const frame = {{type: "message", message: {{id: 9, room: "lobby", author: {{id: 1, username: "a"}}, body: "x", created: "2026-01-01T00:00:00Z", edited: null, client_id: null}}}};
        sockets[0].serverSend(frame);
        sockets[0].serverSend(frame);
        return events.filter((e) => e.type === "message").length;
    }}"""
    )
    assert count == 1


def test_unacknowledged_messages_are_resent_with_the_same_client_id(harness):
    """A message sent before a drop and not acknowledged is sent again, with its client_id, after
    the next join; once acknowledged it is never sent again."""
    result = harness.evaluate(
        f"""async () => {{
        const socket = new socketModule.ChatSocket({FAST});
        const events = record(socket);
        socket.join("lobby");
        const clientId = socket.send("lobby", "hello");   // queued: not connected yet
        socket.start();
        const first = sockets[0];
        first.serverOpen();
        const beforeJoined = first.sent.filter((f) => f.type === "message").length;
        first.serverSend({{type: "joined", room: "lobby", last_id: 0, online: []}});
        const firstTry = first.sent.find((f) => f.type === "message");
        first.serverClose(4012);
        await until(() => sockets.length === 2);
        const second = sockets[1];
        second.serverOpen();
        second.serverSend({{type: "joined", room: "lobby", last_id: 0, online: []}});
        const secondTry = second.sent.find((f) => f.type === "message");
        second.serverSend({{type: "message", message: {{id: 1, room: "lobby", author: {{id: 1, username: "a"}}, body: "hello", created: "2026-01-01T00:00:00Z", edited: null, client_id: clientId}}}});
        second.serverClose(4012);
        await until(() => sockets.length === 3);
        sockets[2].serverOpen();
        sockets[2].serverSend({{type: "joined", room: "lobby", last_id: 1, online: []}});
        return {{
            clientId, beforeJoined, firstTry, secondTry,
            thirdSent: sockets[2].sent.filter((f) => f.type === "message").length,
            acks: events.filter((e) => e.type === "sent").map((e) => e.detail.clientId),
            pending: socket.pending("lobby").length,
        }};
    }}"""
    )
    expected = {"type": "message", "room": "lobby", "body": "hello", "client_id": result["clientId"]}
    assert result["beforeJoined"] == 0
    assert result["firstTry"] == expected and result["secondTry"] == expected
    assert result["thirdSent"] == 0 and result["acks"] == [result["clientId"]] and result["pending"] == 0


def test_an_error_with_a_client_id_fails_that_message(harness):
    """`error` carrying a client_id hands the message back to the page with code and retry_after."""
    detail = harness.evaluate(
        f"""async () => {{
        const socket = new socketModule.ChatSocket({FAST});
        const events = record(socket);
        socket.join("lobby");
        socket.start();
        sockets[0].serverOpen();
        sockets[0].serverSend({{type: "joined", room: "lobby", last_id: 0, online: []}});
        const clientId = socket.send("lobby", "too fast");
        sockets[0].serverSend({{type: "error", code: "rate_limited", detail: "slow down", client_id: clientId, retry_after: 2.5}});
        const failed = events.find((e) => e.type === "send-error").detail;
        return {{...failed, same: failed.clientId === clientId, pending: socket.pending("lobby").length}};
    }}"""
    )
    assert detail["same"] and detail["code"] == "rate_limited" and detail["retryAfter"] == 2.5
    assert detail["body"] == "too fast" and detail["pending"] == 0


def test_a_refused_join_is_reported(harness):
    """`not_found` answering a join (a private or missing room) becomes join-error for that room."""
    event = harness.evaluate(
        f"""async () => {{
        const socket = new socketModule.ChatSocket({FAST});
        const events = record(socket);
        socket.join("secret");
        socket.start();
        sockets[0].serverOpen();
        sockets[0].serverSend({{type: "error", code: "not_found", detail: "No room 'secret'."}});
        return events.find((e) => e.type === "join-error").detail;
    }}"""
    )
    assert event == {"room": "secret", "code": "not_found", "detail": "No room 'secret'."}


@pytest.mark.parametrize(("code", "reason"), [(4001, "unauthenticated"), (4003, "banned")])
def test_auth_and_ban_closes_stop_reconnecting(harness, code, reason):
    """Closed with 4001 or 4003, the socket goes offline with the reason and does not retry."""
    result = harness.evaluate(
        f"""async () => {{
        const socket = new socketModule.ChatSocket({FAST});
        const events = record(socket);
        socket.join("lobby");
        socket.start();
        sockets[0].serverOpen();
        sockets[0].serverClose({code});
        await new Promise((resolve) => setTimeout(resolve, 200));
        const last = events.filter((e) => e.type === "status").at(-1).detail;
        return {{sockets: sockets.length, state: last.state, reason: last.reason}};
    }}"""
    )
    assert result == {"sockets": 1, "state": "offline", "reason": reason}


def test_a_dead_connection_is_noticed_by_the_heartbeat(harness):
    """With no pong after a ping the socket gives up on the connection and reconnects."""
    result = harness.evaluate(
        """async () => {
        const socket = new socketModule.ChatSocket({backoffBaseMs: 10, backoffMaxMs: 20, heartbeatMs: 30, pongTimeoutMs: 60});
        socket.start();
        sockets[0].serverOpen();
        await until(() => sockets.length === 2);
        return sockets[0].sent.filter((f) => f.type === "ping").length;
    }"""
    )
    assert result >= 1


def test_backoff_is_exponential_with_jitter_and_capped(harness):
    """Delays double per attempt, vary between half and all of it, and never exceed the cap."""
    delays = harness.evaluate(
        """() => {
        const opts = {backoffBaseMs: 500, backoffMaxMs: 30000};
        const d = socketModule.backoffDelay;
        return [0, 1, 2, 10, 30].map((attempt) => [d(attempt, opts, () => 0), d(attempt, opts, () => 1)]);
    }"""
    )
    assert delays == [[250, 500], [500, 1000], [1000, 2000], [15000, 30000], [15000, 30000]]


def test_client_ids_are_unique_uuids(harness):
    """Every queued message gets a fresh UUID v4 as client_id."""
    ids = harness.evaluate("() => Array.from({length: 50}, () => socketModule.newClientId())")
    assert len(set(ids)) == 50
    assert all(len(i) == 36 and i[14] == "4" for i in ids)


def render_html(page, html: str) -> str:
    return page.evaluate(
        """(html) => { const div = document.createElement("div"); div.append(render.renderBody(html)); return div.innerHTML; }""",
        html,
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<b>bold</b> and <i>it</i>", "<b>bold</b> and <i>it</i>"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        (
            '<a href="https://example.com" rel="nofollow noopener">x</a>',
            '<a href="https://example.com/" rel="nofollow noopener noreferrer" target="_blank">x</a>',
        ),
        ('<a href="javascript:alert(1)">x</a>', "x"),
        ('<a href="data:text/html,hi">x</a>', "x"),
        ('<a href="/relative">x</a>', "x"),
        ('<img src=x onerror="alert(1)">after', "after"),
        ('<b onclick="alert(1)" style="color:red">b</b>', "<b>b</b>"),
        ("<script>alert(1)</script>", "alert(1)"),
        ("<svg><script>alert(1)</script></svg>", "alert(1)"),
        ("<!-- hidden -->shown", "shown"),
        ("<pre><code>x &lt; y</code></pre>", "<pre><code>x &lt; y</code></pre>"),
        (
            '<a href="mailto:a@example.com">mail</a>',
            '<a href="mailto:a@example.com" rel="nofollow noopener noreferrer" target="_blank">mail</a>',
        ),
    ],
)
def test_render_body_keeps_only_the_safelist(harness, body, expected):
    """Only b, i, em, strong, code, pre and http/https/mailto links survive; the rest is text or gone."""
    assert render_html(harness, body) == expected


def test_rendering_a_hostile_body_runs_nothing(harness):
    """Bodies that would run script if inserted as HTML run nothing through renderBody."""
    ran = harness.evaluate(
        """async () => {
        window.pwned = 0;
        const hostile = ['<img src=x onerror="window.pwned++">', '<svg onload="window.pwned++"></svg>',
                         '<iframe srcdoc="<script>parent.pwned++</script>"></iframe>',
                         '<details open ontoggle="window.pwned++">', '<template><img src=x onerror="window.pwned++"></template>'];
        const div = document.createElement("div");
        document.body.append(div);
        for (const html of hostile) div.append(render.renderBody(html));
        await new Promise((resolve) => setTimeout(resolve, 300));
        return [window.pwned, div.querySelectorAll("*").length];
    }"""
    )
    assert ran == [0, 0]


@pytest.mark.parametrize(
    ("body", "source"),
    [
        ("plain &lt;text&gt; &amp; more", "plain <text> & more"),
        ("<b>bold</b> <code>x</code>", "<b>bold</b> <code>x</code>"),
        (
            'see <a href="https://example.com" rel="nofollow noopener">https://example.com</a>',
            "see https://example.com",
        ),
        (
            '<a href="https://example.com/a" rel="nofollow noopener">docs</a>',
            '<a href="https://example.com/a">docs</a>',
        ),
    ],
)
def test_edit_box_gets_back_what_the_author_typed(harness, body, source):
    """bodyToSource turns a rendered body back into the markup its author would have typed."""
    result = harness.evaluate(
        "(html) => { const div = document.createElement('div'); div.append(render.renderBody(html)); return render.bodyToSource(div); }",
        body,
    )
    assert result == source


def test_a_flapping_server_meets_growing_delays_but_a_restart_is_retried_at_once(harness):
    """Connections dropped right after opening back off exponentially; a 4012 (server shutting
    down) is retried with the smallest delay."""
    delays = harness.evaluate(
        """async () => {
        const socket = new socketModule.ChatSocket({backoffBaseMs: 100, backoffMaxMs: 1000, url: 'ws://harness.test/ws/chat/'});
        const delays = [];
        socket.on("status", (s) => { if (s.state === "reconnecting") delays.push(s.retryAt - Date.now()); });
        socket.start();
        const codes = [1006, 1006, 1006, 1006, 4012];
        for (let i = 0; i < codes.length; i++) {
            await until(() => sockets.length === i + 1, 5000);
            sockets[i].serverOpen();
            sockets[i].serverClose(codes[i]);
        }
        socket.stop();
        return delays;
    }"""
    )
    ceilings = [100, 200, 400, 800, 100]
    assert len(delays) == 5
    for delay, ceiling in zip(delays, ceilings, strict=False):
        assert ceiling / 2 - 5 <= delay <= ceiling + 5, (delays, ceilings)
