"""CONTRACT §7 in real Chromium: the Report action of the chat page, the admin's live count of open
reports, and the admin and API docs working under the strict Content-Security-Policy."""

from __future__ import annotations

from tests.web.conftest import browser_marks, send, wait_for_message, wait_until, watch

pytestmark = browser_marks


def test_report_another_users_message_from_the_keyboard_at_360px(
    daphne_factory, open_chat, browser_context, lobby, alice, bob, moderator_factory
):
    """Bob reports alice's message with the keyboard on a 360 px screen: a reason is required, the
    confirmation shows, a second report says it is already in; own messages have no Report; the
    moderator's admin header counts the open report live."""
    from rooms.models import Report

    moderator = moderator_factory("mod")
    server = daphne_factory()
    page_a = open_chat(server, alice, "lobby")
    page_b = open_chat(server, bob, "lobby", viewport={"width": 360, "height": 740})
    admin = browser_context(moderator).new_page()
    watch(admin)
    admin.goto(f"{server.http_url}/admin/")
    assert admin.locator("#open-reports .count").inner_text() == "0"

    send(page_a, "you are all idiots")
    wait_for_message(page_b, "you are all idiots")
    send(page_b, "my own words")
    wait_for_message(page_b, "my own words")
    assert page_b.locator("li.message", has_text="my own words").locator(".action-report").is_hidden()
    assert page_a.locator("li.message", has_text="you are all idiots").locator(".action-report").is_hidden()

    row = page_b.locator("li.message", has_text="you are all idiots")
    report = row.locator(".action-report")
    assert report.get_attribute("aria-label") == f"Report message by alice from {row.locator('time').inner_text()}"
    report.focus()
    page_b.keyboard.press("Enter")
    reason = row.locator(".report-form textarea")
    assert reason.evaluate("element => element === document.activeElement")
    page_b.keyboard.press("Tab")  # to "Send report", with the reason still empty
    page_b.keyboard.press("Enter")
    assert "reason is required" in row.locator(".report-problem").inner_text()
    assert not Report.objects.exists()

    reason.focus()
    page_b.keyboard.type("insults everyone")
    page_b.keyboard.press("Tab")
    page_b.keyboard.press("Enter")
    done = row.locator(".report-done[role=status]")
    done.wait_for()
    assert "Reported" in done.inner_text()
    assert report.evaluate("element => element === document.activeElement")
    stored = Report.objects.get()
    assert (stored.reporter_id, stored.reason, stored.snapshot) == (bob.id, "insults everyone", "you are all idiots")
    width = page_b.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width

    # Escape closes a second form; a second report while the first is open is acknowledged as such.
    page_b.keyboard.press("Enter")
    reason.wait_for()
    page_b.keyboard.press("Escape")
    assert row.locator(".report-form").count() == 0
    report.click()
    reason.fill("still insulting")
    row.locator(".report-form button[type=submit]").click()
    row.locator(".report-done", has_text="already reported").wait_for()
    assert Report.objects.count() == 1

    # The admin tab learns of the report without a reload (here: when it becomes visible again).
    admin.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    wait_until(admin, "document.querySelector('#open-reports .count').textContent === '1'")
    assert page_a.watch.problems() == [] and page_b.watch.problems() == [] and admin.watch.problems() == []


def test_admin_and_api_docs_work_under_the_strict_csp(daphne_factory, browser_context, moderator_factory, room_factory):
    """Swagger UI renders the schema (the new endpoints included) and the admin's forms and widgets
    load, with no Content-Security-Policy violation or script error."""
    moderator = moderator_factory("mod")
    room_factory("lobby")
    server = daphne_factory()
    page = browser_context(moderator).new_page()
    seen = watch(page)
    violations = []
    page.on("console", lambda message: "Content Security Policy" in message.text and violations.append(message.text))

    page.goto(f"{server.http_url}/api/v1/docs/")
    page.locator(".opblock-summary-path", has_text="/api/v1/auth/logout/").first.wait_for(timeout=15_000)
    assert page.locator(".opblock-summary-path", has_text="/api/v1/auth/password/").count() == 1
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("chatsite API")

    for path in ("/admin/", "/admin/rooms/roomban/add/", "/admin/rooms/filterterm/add/", "/admin/rooms/report/"):
        page.goto(f"{server.http_url}{path}")
        page.locator("#content").wait_for()
    # The autocomplete widget (select2) initialised under the policy.
    page.goto(f"{server.http_url}/admin/rooms/filterterm/add/")
    page.locator(".select2-container").first.wait_for()
    assert violations == [] and seen.problems() == [], (violations, seen.problems())
