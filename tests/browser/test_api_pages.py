"""The API's interactive docs and the API keys page in Chromium: Swagger UI renders from our static
files under the project's CSP (the autouse fixture fails on any violation), and a key created on the
page works in the docs' "Try it out" against the live server."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from fleet.models import Group

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_docs_render_under_the_csp_and_a_new_key_works_in_them(page, live_server, login, admin_user, account,
                                                                   screenshot_dir):
    Group.objects.create(account=account, remote_id="1", name="North")
    login("ada", "pw-ada-9x!")
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/settings/api-keys/")
        page.screenshot(path=os.path.join(screenshot_dir, f"api-keys-{width}.png"), full_page=True)
    page.fill("#id_name", "docs test")
    page.select_option("#id_scope", "read")
    page.click("button:has-text('Create key')")
    key = page.locator("#api-key-value").input_value()
    assert key.startswith("sfk_")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.screenshot(path=os.path.join(screenshot_dir, "api-key-created.png"), full_page=True)

    page.goto(f"{live_server.url}/api/v1/docs")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/groups").first).to_be_visible(timeout=15000)
    page.screenshot(path=os.path.join(screenshot_dir, "api-docs.png"))
    page.click("button.authorize")
    page.locator(".modal-ux input").first.fill(key)
    page.locator(".modal-ux button.authorize").first.click()
    page.locator(".modal-ux button.close-modal").click()
    block = page.locator(".opblock-get", has=page.locator(".opblock-summary-path", has_text="/api/v1/groups")).first
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    answer = block.locator(".live-responses-table .response")
    expect(answer.locator(".response-col_status").first).to_contain_text("200", timeout=10000)
    expect(answer.locator(".response-col_description").first).to_contain_text("North")


def test_a_double_click_on_create_key_makes_one_key(page, live_server, login, admin_user, screenshot_dir):
    """Chromium may send a double-clicked form once or twice; either way one key exists, and the page
    shows it or says it went to the first submit."""
    from fleet.models import ApiKey

    login("ada", "pw-ada-9x!")
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/settings/api-keys/")
        page.fill("#id_name", f"bot {width}")
        page.dblclick("button:has-text('Create key')")
        shown = page.locator("#api-key-value")
        said = page.get_by_text("shown to that first submit only")
        expect(shown.or_(said)).to_be_visible()
        page.screenshot(path=os.path.join(screenshot_dir, f"api-key-double-click-{width}.png"), full_page=True)
        assert ApiKey.objects.filter(name=f"bot {width}").count() == 1
    # the replay itself, made certain: the form is sent once behind the page's back, then clicked
    page.goto(f"{live_server.url}/settings/api-keys/")
    page.fill("#id_name", "bot replayed")
    status = page.evaluate("""async () => {
        const form = document.querySelector("form.grid-form");
        return (await fetch(form.action, {method: "POST", body: new FormData(form)})).status;
    }""")
    assert status == 201
    page.click("button:has-text('Create key')")
    expect(page.get_by_text("shown to that first submit only")).to_be_visible()
    expect(page.locator("#api-key-value")).to_have_count(0)
    page.screenshot(path=os.path.join(screenshot_dir, "api-key-replayed-390.png"), full_page=True)
    assert ApiKey.objects.filter(name="bot replayed").count() == 1
