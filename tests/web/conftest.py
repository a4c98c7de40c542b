"""Browser fixtures: Debian's chromium driven by Playwright, signed-in pages against real daphne.

A page is signed in by creating a Django session in the test database (the one daphne reads)
and giving its cookie to the browser context, so most tests skip the login form; the signup and
login tests use the forms themselves. Every page records console errors, page errors and dialogs,
which the tests assert to be empty.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

browser_marks = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

# Playwright's `expect` waits 5 s by default; a loaded 2-core machine can take longer to page
# through history, so assertions wait as long as the contexts' own default (10 s).
try:
    from playwright.sync_api import expect as _expect

    _expect.set_options(timeout=10_000)
except ImportError:  # the browser tests skip themselves without Playwright
    pass


@pytest.fixture
def daphne_factory(daphne_factory):
    """The shared daphne_factory, with Django's async-safety check kept on inside the servers."""

    def start(*, env: dict[str, str] | None = None, **kwargs):
        # The test process turns the check off (see `browser`); the servers must not inherit that.
        return daphne_factory(env={"DJANGO_ALLOW_ASYNC_UNSAFE": "", **(env or {})}, **kwargs)

    return start


@pytest.fixture
def browser(monkeypatch):
    """Chromium for one test.

    Playwright's sync API runs an event loop in this thread, which makes Django refuse ORM calls
    from the test body; the ORM is still used synchronously here, so the check is lifted for the
    test process only, and only while the loop runs (the variable is set before Playwright starts
    and restored after it stops).
    """
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"SKIPPED LOUDLY: no chromium at {CHROMIUM}")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # Connections opened while the loop ran belong to a context pytest-django never closes;
        # close them here, or the test database cannot be dropped at the end of the run.
        connections.close_all()


@dataclass
class PageWatch:
    """What a page said that it should not have: console errors, uncaught errors, dialogs."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return self.console_errors + self.page_errors + self.dialogs


def watch(page) -> PageWatch:
    seen = PageWatch()

    def on_console(message):
        if message.type == "error":
            seen.console_errors.append(f"console: {message.text}")

    def on_dialog(dialog):
        seen.dialogs.append(f"dialog {dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.page_errors.append(f"pageerror: {error}"))
    page.on("dialog", on_dialog)
    page.watch = seen
    return seen


def session_cookie_for(user) -> dict:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return {"name": "sessionid", "value": client.cookies["sessionid"].value, "domain": "127.0.0.1", "path": "/"}


@pytest.fixture
def browser_context(browser):
    """A factory of browser contexts (separate cookie jars), closed after the test."""
    contexts = []

    def make(user=None, **options):
        options.setdefault("viewport", {"width": 1100, "height": 750})
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        if user is not None:
            context.add_cookies([session_cookie_for(user)])
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def open_chat(browser_context):
    """Open /rooms/{slug}/ as `user` and wait until the socket is live; returns the page."""

    def open_page(server, user, slug, *, wait_live=True, **context_options):
        context = browser_context(user, **context_options)
        page = context.new_page()
        watch(page)
        page.goto(f"{server.http_url}/rooms/{slug}/")
        if wait_live:
            page.wait_for_selector("#connection[data-state=live]")
            wait_until(page, "window.chatPage?.socket.rooms.get(window.chatPage.config.room)?.state === 'joined'")
        return page

    return open_page


def wait_until(page, expression: str, timeout: float = 10_000) -> None:
    """Poll a JavaScript expression until it is truthy.

    page.wait_for_function would evaluate strings with eval(), which the page's CSP forbids;
    page.evaluate goes through the DevTools protocol and is not subject to it.
    """
    deadline = time.monotonic() + timeout / 1000
    while True:
        if page.evaluate(expression):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} ms: {expression}")
        time.sleep(0.05)


def eventually(check, timeout: float = 10.0):
    """Poll `check()` (a database read, say) until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {check}")
        time.sleep(0.05)


def in_thread(function, /, *args, **kwargs):
    """Call a service from a fresh thread and return its result.

    Services broadcast with async_to_sync, which refuses to run in a thread with a running event
    loop, and Playwright's sync API keeps one in the test thread. The worker closes its database
    connection so the test database can be dropped afterwards.
    """
    from django.db import connections

    def run():
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def api_token(server, username: str, password: str) -> str:
    data = api_call(server, "POST", "auth/token/", {"username": username, "password": password})
    return data["access"]


def api_call(server, method: str, path: str, body: dict | None = None, *, token: str | None = None):
    """One JSON call to the REST API of a running server; raises on 4xx/5xx with the answer."""
    request = urllib.request.Request(
        f"{server.http_url}/api/v1/{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{method} {path} answered {error.code}: {error.read().decode()}") from None
    return json.loads(text) if text else None


def message_items(page, text: str):
    """The confirmed (not pending) message rows of a page whose body contains `text`."""
    return page.locator("#messages li.message:not(.pending) .body", has_text=text)


def seed(room, author, texts: list[str]) -> list[int]:
    """Messages straight into the table, with ids, versions and the room's counters advanced as the
    write path does (test data only: no rate limit, no broadcast)."""
    from django.db.models import F

    from rooms.models import Message, Room

    room.refresh_from_db()
    rows = Message.objects.bulk_create(
        [
            Message(room=room, author=author, body=text, body_raw=text, version=room.version + n + 1)
            for n, text in enumerate(texts)
        ]
    )
    ids = [row.id for row in rows]
    Room.objects.filter(pk=room.pk).update(last_message_id=max(ids), version=F("version") + len(texts))
    return ids


def post(user, room, body: str, **fields):
    """A live message through the service (it broadcasts); returns the stored message."""
    from rooms.services import message_post

    message, _ = in_thread(message_post, user=user, room=room, body=body, **fields)
    return message


@pytest.fixture
def lobby(room_factory):
    """The public room `lobby` of the demo."""
    return room_factory("lobby", name="Lobby", topic="Say hello!")


def send(page, text: str) -> None:
    """Type into the composer and press Enter, as a person would."""
    page.fill("#composer-input", text)
    page.press("#composer-input", "Enter")


def wait_for_message(page, text: str, timeout: float = 10_000) -> None:
    message_items(page, text).first.wait_for(timeout=timeout)


# ----- one browser and one server per module ------------------------------------------------
# Starting Chromium and daphne costs seconds; the conversation and fallback modules share one of
# each across their tests. Data stays per test (transactional_db flushes it; the server keeps no
# connection open between requests, CONN_MAX_AGE=0), and every test uses fresh browser contexts.


@pytest.fixture(scope="module")
def shared_browser():
    """Chromium for a whole module; Django's async-safety check is lifted as in `browser`."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"SKIPPED LOUDLY: no chromium at {CHROMIUM}")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
        connections.close_all()


@pytest.fixture(scope="module")
def shared_server(django_db_setup, django_db_blocker):
    """One daphne for a module, against the test database (made by django_db_setup)."""
    from tests.support.servers import DaphneProcess

    server = DaphneProcess(env={"DJANGO_ALLOW_ASYNC_UNSAFE": ""}).start()
    yield server
    server.stop()


@pytest.fixture
def shared_contexts(shared_browser, shared_server, transactional_db):
    """Browser contexts of the shared browser for one test (closed after it); `make(user)` signs in."""
    contexts = []

    def make(user=None, **options):
        options.setdefault("viewport", {"width": 1100, "height": 750})
        context = shared_browser.new_context(**options)
        context.set_default_timeout(10_000)
        if user is not None:
            context.add_cookies([session_cookie_for(user)])
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
    sockets_closed(shared_server)
    server_idle()


def sockets_closed(server, timeout: float = 15.0) -> None:
    """Wait until the server counts no open socket and no room join (/metrics): it has noticed the
    closed pages and done its leave work, which must not run into the next flush."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{server.http_url}/metrics", timeout=5) as response:
                text = response.read().decode()
        except (urllib.error.URLError, OSError):
            return  # no metrics to go by: the database check alone decides
        values = [
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith(("chat_ws_connections ", "chat_rooms_joined "))
        ]
        if not any(values):
            return
        time.sleep(0.05)


def server_idle(timeout: float = 15.0) -> None:
    """Wait until no other session of the test database is inside a statement or a transaction
    (PostgreSQL only).

    Closing a page makes the server run its disconnect work (presence, leaving feeds) while the
    next step, transactional_db's flush, truncates every table: the two can deadlock. Idle
    connections hold no locks and do not count. One still busy after the wait is not an error
    here; the flush then takes its chances as before.
    """
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state <> 'idle'"
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)


@pytest.fixture
def chat_page(shared_server, shared_contexts):
    """Open a chat page of the shared server as `user`, waiting until its room is joined."""

    def open_page(user, slug, *, query: str = "", wait_live: bool = True, context=None, **context_options):
        context = context or shared_contexts(user, **context_options)
        page = context.new_page()
        watch(page)
        page.goto(f"{shared_server.http_url}/rooms/{slug}/{query}")
        if wait_live:
            page.wait_for_selector("#connection[data-state=live]")
            wait_until(page, "window.chatPage?.socket.rooms.get(window.chatPage.config.room)?.state === 'joined'")
        return page

    return open_page
