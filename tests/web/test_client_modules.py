"""The browser client's modules in Chromium, without a server: chat-socket.js against a scripted
fake WebSocket (reconnect, resume, de-duplication, outbox, heartbeat), its fallback to a fake
EventSource with REST posts through a fake fetch (CONTRACT §6), the pure helpers of the message
list (reactions, versions) and of @ completion, and render.js's safe HTML.

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
import * as streamModule from "/static/js/chat-stream.js";
import * as listModule from "/static/js/message-list.js";
import * as mentionModule from "/static/js/mention-complete.js";
window.socketModule = socketModule;
window.render = render;
window.streamModule = streamModule;
window.listModule = listModule;
window.mentionModule = mentionModule;
window.harnessReady = true;
</script>"""

# A WebSocket stand-in the test drives: open, deliver frames, drop with a close code.
FAKE_WEBSOCKET = r"""
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

// An EventSource stand-in: the test opens it, emits named events, fails it.
window.streams = [];
class FakeEventSource extends EventTarget {
  constructor(url) { super(); this.url = url; this.readyState = 0; this.closed = false; window.streams.push(this); }
  close() { this.closed = true; this.readyState = 2; }
  serverOpen() { this.readyState = 1; this.onopen && this.onopen(new Event("open")); }
  serverEvent(type, frame) { this.dispatchEvent(new MessageEvent(type, { data: JSON.stringify(frame) })); }
  serverFail() { this.dispatchEvent(new Event("error")); }
}
window.EventSource = FakeEventSource;

// fetch stand-in: records calls, answers from window.answer(method, path, body) -> [status, json].
window.requests = [];
window.answer = () => [404, { code: "not_found", detail: "no fake answer" }];
window.fetch = async (url, init = {}) => {
  const body = init.body ? JSON.parse(init.body) : null;
  const request = { method: init.method ?? "GET", path: String(url).replace(/^\/api\/v1\//, ""), body };
  window.requests.push(request);
  const [status, data] = window.answer(request.method, request.path, body);
  return new Response(status === 204 ? null : JSON.stringify(data), {
    status, headers: { "Content-Type": "application/json" },
  });
};
window.record = (socket) => {
  const events = [];
  for (const type of ["status", "joined", "message", "sent", "send-error", "join-error", "resync", "presence", "read_state"]) {
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


MESSAGE = "{{id: {id}, room: 'lobby', author: {{id: 1, username: 'a'}}, body: '{body}', created: '2026-01-01T00:00:00Z', edited: null, client_id: {client_id}}}"
FALLBACK = "{backoffBaseMs: 10, backoffMaxMs: 40, probeBaseMs: 30, probeMaxMs: 60, url: 'ws://harness.test/ws/chat/'}"


def test_three_failed_opens_switch_to_the_stream_which_posts_by_rest(harness):
    """After three WebSocket handshakes fail, the stream opens with the resume cursor, the banner
    state says `sse`, a message goes out as a REST POST with its client_id and the answer
    acknowledges it; a read goes out as POST read/."""
    result = harness.evaluate(
        f"""async () => {{
        answer = (method, path, body) => path === "rooms/lobby/messages/"
            ? [201, {MESSAGE.format(id=8, body="hi", client_id="body.client_id")}]
            : path === "rooms/lobby/read/" ? [200, {{room: "lobby", last_read_id: 8, unread_count: 0, mention_count: 0}}]
            : [404, {{}}];
        const socket = new socketModule.ChatSocket({FALLBACK});
        const events = record(socket);
        socket.join("lobby", {{after: 5}});
        socket.start();
        for (let n = 0; n < 3; n += 1) {{
            await until(() => sockets.length === n + 1);
            sockets[n].serverClose(1006);
        }}
        await until(() => streams.length === 1);
        const stream = streams[0];
        stream.serverOpen();
        stream.serverEvent("joined", {{type: "joined", room: "lobby", last_id: 7, online: ["a"], version: 3}});
        stream.serverEvent("message", {{type: "message", message: {MESSAGE.format(id=7, body="missed", client_id="null")}}});
        const clientId = socket.send("lobby", "hi");
        await until(() => events.some((e) => e.type === "sent"));
        socket.read("lobby", 8);
        await until(() => events.some((e) => e.type === "read_state"));
        const live = events.filter((e) => e.type === "status").at(-1).detail;
        return {{
            url: stream.url, live, clientId,
            posts: requests.filter((r) => r.method === "POST").map((r) => [r.path, r.body]),
            messages: events.filter((e) => e.type === "message").map((e) => e.detail.message.id),
            socketsBeforeProbe: 3,
        }};
    }}"""
    )
    assert result["url"] == "/api/v1/stream/?rooms=lobby&after=lobby%3A5"
    assert result["live"]["state"] == "live" and result["live"]["transport"] == "sse"
    assert result["posts"] == [
        ["rooms/lobby/messages/", {"body": "hi", "client_id": result["clientId"]}],
        ["rooms/lobby/read/", {"last_read_id": 8}],
    ]
    assert result["messages"] == [7, 8]


def test_a_websocket_that_opens_again_takes_over_from_the_stream(harness):
    """While streaming, WebSockets are retried in the background; the first that opens closes the
    stream and rejoins with after = the newest id the stream delivered."""
    result = harness.evaluate(
        f"""async () => {{
        const socket = new socketModule.ChatSocket({FALLBACK});
        const events = record(socket);
        socket.join("lobby", {{after: 5}});
        socket.start();
        for (let n = 0; n < 3; n += 1) {{
            await until(() => sockets.length === n + 1);
            sockets[n].serverClose(1006);
        }}
        await until(() => streams.length === 1);
        streams[0].serverOpen();
        streams[0].serverEvent("joined", {{type: "joined", room: "lobby", last_id: 9, online: []}});
        streams[0].serverEvent("message", {{type: "message", message: {MESSAGE.format(id=9, body="x", client_id="null")}}});
        // A failed probe leaves the stream alone; the next one opens.
        await until(() => sockets.length === 4);
        sockets[3].serverClose(1006);
        const streamAfterFailedProbe = !streams[0].closed;
        await until(() => sockets.length === 5);
        sockets[4].serverOpen();
        const last = events.filter((e) => e.type === "status").at(-1).detail;
        return {{streamAfterFailedProbe, closed: streams[0].closed, join: sockets[4].sent[0], last, streams: streams.length}};
    }}"""
    )
    assert result["streamAfterFailedProbe"] is True
    assert result["closed"] is True and result["streams"] == 1
    assert result["join"] == {"type": "join", "room": "lobby", "after": 9}
    assert result["last"]["state"] == "live" and result["last"]["transport"] == "ws"


def test_forced_stream_never_opens_a_websocket_and_reopens_with_the_cursor(harness):
    """With transport "sse" no WebSocket is tried; a dropped stream reopens with after = the
    newest id per room, and a refused post comes back as send-error with the server's code."""
    result = harness.evaluate(
        f"""async () => {{
        answer = () => [429, {{code: "rate_limited", detail: "slow down", retry_after: 2}}];
        const socket = new socketModule.ChatSocket({{...{FALLBACK}, transport: "sse"}});
        const events = record(socket);
        socket.join("lobby");
        socket.join("other", {{after: 2}});
        socket.start();
        await until(() => streams.length === 1);
        streams[0].serverOpen();
        streams[0].serverEvent("joined", {{type: "joined", room: "lobby", last_id: 4, online: []}});
        streams[0].serverEvent("error", {{type: "error", code: "not_found", detail: "No room.", room: "other"}});
        streams[0].serverEvent("message", {{type: "message", message: {MESSAGE.format(id=4, body="x", client_id="null")}}});
        socket.send("lobby", "too fast");
        await until(() => events.some((e) => e.type === "send-error"));
        streams[0].serverFail();
        await until(() => streams.length === 2);
        await new Promise((resolve) => setTimeout(resolve, 150));
        const failed = events.find((e) => e.type === "send-error").detail;
        return {{
            first: streams[0].url, second: streams[1].url, sockets: sockets.length,
            joinError: events.find((e) => e.type === "join-error")?.detail.room,
            failed: [failed.code, failed.retryAfter, failed.body],
        }};
    }}"""
    )
    assert result["sockets"] == 0
    assert result["first"] == "/api/v1/stream/?rooms=lobby%2Cother&after=other%3A2"
    assert result["joinError"] == "other"
    assert result["second"] == "/api/v1/stream/?rooms=lobby&after=lobby%3A4"
    assert result["failed"] == ["rate_limited", 2, "too fast"]


def test_a_site_ban_on_the_stream_stops_everything(harness):
    """`event: close` with 4003 ends the stream for good: offline, banned, no reconnect."""
    result = harness.evaluate(
        f"""async () => {{
        const socket = new socketModule.ChatSocket({{...{FALLBACK}, transport: "sse"}});
        const events = record(socket);
        socket.join("lobby");
        socket.start();
        streams[0].serverOpen();
        streams[0].serverEvent("close", {{code: 4003}});
        await new Promise((resolve) => setTimeout(resolve, 150));
        const last = events.filter((e) => e.type === "status").at(-1).detail;
        return {{streams: streams.length, state: last.state, reason: last.reason}};
    }}"""
    )
    assert result == {"streams": 1, "state": "offline", "reason": "banned"}


def test_reaction_frames_update_counts_and_users(harness):
    """A `reaction` frame sets the emoji's count from the frame, adds or removes the user, drops
    an emoji at zero, and keeps first-use order."""
    result = harness.evaluate(
        """() => {
        const apply = listModule.applyReaction;
        let r = [{emoji: "👍", count: 1, users: ["a"]}];
        r = apply(r, {emoji: "🎉", user: "b", added: true, count: 1});
        r = apply(r, {emoji: "👍", user: "b", added: true, count: 2});
        const both = JSON.parse(JSON.stringify(r));
        r = apply(r, {emoji: "👍", user: "a", added: false, count: 1});
        r = apply(r, {emoji: "🎉", user: "b", added: false, count: 0});
        return {both, after: r};
    }"""
    )
    assert result["both"] == [
        {"emoji": "👍", "count": 2, "users": ["a", "b"]},
        {"emoji": "🎉", "count": 1, "users": ["b"]},
    ]
    assert result["after"] == [{"emoji": "👍", "count": 1, "users": ["b"]}]


def test_versions_order_changes_and_edit_times_do_without_them(harness):
    """A state with a lower version never replaces a higher one; without versions, edit times decide."""
    result = harness.evaluate(
        """() => {
        const n = listModule.isNotOlder;
        return [
            n({version: 5}, {version: 4}), n({version: 4}, {version: 5}), n({version: 5}, {version: 5}),
            n({edited: "2026-01-01T00:00:02Z"}, {edited: "2026-01-01T00:00:01Z"}),
            n({edited: null}, {edited: "2026-01-01T00:00:01Z"}),
        ];
    }"""
    )
    assert result == [True, False, True, True, False]


@pytest.mark.parametrize(
    ("text", "prefix"),
    [("hi @al", "al"), ("@", ""), ("mail a@al", None), ("(@bo", "bo"), ("@@al", None), ("no mention", None)],
)
def test_mention_completion_starts_after_space_or_punctuation(harness, text, prefix):
    """`@` opens completion at the start or after whitespace/punctuation other than `@`, never inside a word."""
    assert harness.evaluate("(text) => mentionModule.mentionPrefix(text, text.length)", text) == prefix


def test_mention_completion_offers_matching_names_but_not_oneself(harness):
    """Names starting with the prefix, case-insensitively, shortest first, without the viewer."""
    names = harness.evaluate(
        """() => mentionModule.matchingNames(["alice", "Alfred", "bob", "al", "alice", "me"], "AL", "me")"""
    )
    assert names == ["al", "alice", "Alfred"]
