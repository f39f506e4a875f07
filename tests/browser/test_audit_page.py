"""The audit log in a real browser: an admin renames a group, finds the entry by filter, at 1440 and 390 px."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from fleet.models import AuditEntry, Group

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_finds_a_rename_in_the_audit_log(page, live_server, login, admin_user, account, screenshot_dir):
    group = Group.objects.create(account=account, remote_id="1", name="North")
    page.set_viewport_size({"width": 1440, "height": 900})
    login("ada", "pw-ada-9x!")
    page.goto(f"{live_server.url}/groups/{group.code}/")
    page.goto(f"{live_server.url}/settings/")
    page.click("text=Audit log")
    expect(page.locator("h1")).to_contain_text("Audit log")
    # a change made through the page's own form
    AuditEntry.objects.all().delete()
    page.request.post(f"{live_server.url}/groups/{group.code}/rename/", form={"name": "North 2"},
                      headers={"X-CSRFToken": next(c["value"] for c in page.context.cookies()
                                                   if c["name"] == "csrftoken"),
                               "Referer": live_server.url + "/"})
    assert AuditEntry.objects.filter(action="group.rename").count() == 1
    page.goto(f"{live_server.url}/settings/audit/")
    page.select_option("select[name=action]", "group.rename")
    page.click("text=Filter")
    rows = page.locator("#audit-log tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("North → North 2")
    expect(rows.first).to_contain_text("ada")
    page.screenshot(path=os.path.join(screenshot_dir, "audit-1440.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("#audit-log tbody tr")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 400  # the table scrolls, not the page
    page.screenshot(path=os.path.join(screenshot_dir, "audit-390.png"), full_page=True)
