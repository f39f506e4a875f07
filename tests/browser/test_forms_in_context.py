"""Issue 14, item 6 in Chromium at desktop and phone width: a bad rename is an error in its row and the
list stays; a delete confirmation opens as a dialog where the operator is; device-side windows show
their cost plan before anything is sent."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from fleet.models import ApiCall, Command, Group

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_rename_delete_and_device_windows_keep_their_context(page, live_server, login, operator, mirrored_fleet,
                                                              screenshot_dir, width):
    page.set_viewport_size(dict(zip(("width", "height"), WIDTHS[width], strict=True)))
    first, second = Group.objects.filter(account=mirrored_fleet).order_by("name")[:2]
    login("otto", "pw-otto-9x!")
    page.goto(f"{live_server.url}/groups/")
    rows = page.locator("#groups-list tbody tr")
    count = rows.count()
    row = page.locator(f"#group-{first.code}")
    row.locator("summary:has-text('Rename')").click()
    row.locator("input[name=name]").fill(second.name)
    with page.expect_response(lambda r: "/rename/" in r.url):
        row.locator("button:has-text('Save')").click()
    expect(row.locator(".error")).to_contain_text("exists already")
    expect(rows).to_have_count(count)  # the list is still there, the error is in the row
    page.screenshot(path=os.path.join(screenshot_dir, f"rename_error_{width}.png"), full_page=True)

    last = page.locator(f"#group-{second.code}")
    last.scroll_into_view_if_needed()
    with page.expect_response(lambda r: "/delete/" in r.url):
        last.locator("text=Delete…").click()
    dialog = page.locator("dialog#confirm-box")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete 1 group in SolaX Cloud?")
    box = dialog.bounding_box()
    viewport = page.viewport_size
    assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= viewport["height"]  # in view
    page.screenshot(path=os.path.join(screenshot_dir, f"delete_dialog_{width}.png"))
    dialog.locator("text=Cancel").click()
    expect(dialog).to_be_hidden()
    assert not ApiCall.objects.filter(endpoint__icontains="delete").exists()

    page.goto(f"{live_server.url}/schedules/device-windows/")
    page.select_option("select[name=group]", str(first.code))
    page.fill("input[name=charge_start_1]", "01:30")
    page.fill("input[name=charge_end_1]", "05:00")
    page.fill("input[name=discharge_start_1]", "17:00")
    page.fill("input[name=discharge_end_1]", "17:00")
    page.click("button:has-text('Plan the cost')")
    expect(page.locator("main")).to_contain_text("This window ends when it starts")
    page.fill("input[name=discharge_end_1]", "21:00")
    page.click("button:has-text('Plan the cost')")
    expect(page.locator("#cost-plan")).to_contain_text("group_control")
    assert not Command.objects.exists()
    page.screenshot(path=os.path.join(screenshot_dir, f"device_windows_plan_{width}.png"), full_page=True)
    page.click("#cost-plan button:has-text('Send these windows')")
    expect(page.locator("main")).to_contain_text("Device windows sent as command")
    assert Command.objects.count() == 1
