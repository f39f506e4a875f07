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
