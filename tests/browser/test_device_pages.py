"""Issue 14, items 4, 5, 8 and 9 in Chromium at desktop and phone width: the header's SN search opens
the device page, its history links the command, whose progress names the silent devices; the history
searches by SN; on a phone the menu folds and a wide table keeps its first column; the timeline's hour
labels do not overlap."""

from __future__ import annotations

import os
from datetime import time, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from fleet.models import Command, CommandState, DeviceResult, DeviceState, Inverter, Schedule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}


def _running_command(account, sns):  # type: ignore[no-untyped-def]
    command = Command.objects.create(account=account, kind="inverter_control", target_kind="selection", sns=sns,
                                     action={"superType": "1", "systemSwitch": "1"},
                                     label=f"System on to {len(sns)} inverters", state=CommandState.RUNNING,
                                     devices_total=len(sns), expires_at=timezone.now() + timedelta(minutes=5))
    DeviceResult.objects.bulk_create(
        DeviceResult(command=command, sn=sn, state=DeviceState.PENDING if i < 2 else DeviceState.SUCCEEDED,
                     answer="" if i < 2 else "success", answered_at=None if i < 2 else timezone.now())
        for i, sn in enumerate(sns))
    return command


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_find_a_device_and_its_silent_command(page, live_server, login, operator, mirrored_fleet, screenshot_dir,
                                              width):
    page.set_viewport_size(dict(zip(("width", "height"), WIDTHS[width], strict=True)))
    members = list(Inverter.objects.filter(account=mirrored_fleet).order_by("inverter_sn"))
    silent = members[0]
    command = _running_command(mirrored_fleet, [m.inverter_sn for m in members[:5]])
    _running_command(mirrored_fleet, [m.inverter_sn for m in members[5:7]])  # another, to other devices
    Schedule.objects.create(account=mirrored_fleet, name="Night charge", target_kind="group",
                            group=silent.group, start_action={"superType": "1", "systemSwitch": "1"},
                            end_action={"superType": "1", "systemSwitch": "0"}, start_time=time(1),
                            end_time=time(5), weekdays=[0, 1, 2, 3, 4, 5, 6], timezone="Europe/Berlin")
    login("otto", "pw-otto-9x!")
    expect(page.locator("h1")).to_be_visible()

    nav = page.locator("nav.nav")
    if width == "phone":  # the menu is folded and opens without a script
        expect(nav).to_be_hidden()
        page.click("label.menu-button")
        expect(nav).to_be_visible()
        page.screenshot(path=os.path.join(screenshot_dir, f"menu_open_{width}.png"))
        page.click("label.menu-button")
        expect(nav).to_be_hidden()
    else:
        expect(nav).to_be_visible()
        expect(page.locator("label.menu-button")).to_be_hidden()

    page.fill(".sn-search input[name=q]", silent.inverter_sn.lower())
    page.press(".sn-search input[name=q]", "Enter")
    expect(page.locator("h1")).to_contain_text(silent.inverter_sn)
    expect(page.locator("#device-facts")).to_contain_text(silent.group.name)
    expect(page.locator("#device-facts")).to_contain_text(silent.dongle_sn)
    expect(page.locator("#device-history tbody tr")).to_have_count(1)
    page.screenshot(path=os.path.join(screenshot_dir, f"device_page_{width}.png"), full_page=True)

    page.click(f"#device-history >> text={command.label}")
    expect(page.locator("#progress-text")).to_contain_text("3 of 5 devices answered · 2 silent (offline?)")
    expect(page.locator("#progress-text")).to_contain_text("final look at")
    expect(page.locator("#device-results tbody tr")).to_have_count(1)  # opened on this device's row
    zone = page.locator("#progress-text time").inner_text()
    assert zone.endswith(("CET", "CEST")), zone  # the account's zone, with its abbreviation
    page.goto(f"{live_server.url}/commands/{command.code}/")
    expect(page.locator("#silent-devices")).to_contain_text(silent.inverter_sn)
    page.screenshot(path=os.path.join(screenshot_dir, f"command_silent_{width}.png"), full_page=True)
    page.select_option("#device-results select[name=state]", "silent")
    page.click("#device-results button:has-text('Show')")
    expect(page.locator("#device-results tbody tr")).to_have_count(2)

    page.goto(f"{live_server.url}/commands/")
    expect(page.locator("#history-rows tbody tr")).to_have_count(2)
    page.fill("input[name=sn]", members[4].inverter_sn)
    with page.expect_response(lambda r: "sn=" in r.url):
        page.click("#command-history button:has-text('Filter')")
    expect(page.locator("#history-rows tbody tr")).to_have_count(1)
    expect(page.locator("#history-rows")).to_contain_text(command.label)
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")
    page.fill("input[name=sn]", "H4NOSUCHSN00")
    with page.expect_response(lambda r: "H4NOSUCHSN00" in r.url):
        page.click("#command-history button:has-text('Filter')")
    expect(page.locator("#history-rows")).to_contain_text("No commands match")

    page.goto(f"{live_server.url}/inverters/")
    first_cell = page.locator("table.table tbody tr").first.locator("td").first
    position = first_cell.evaluate("cell => getComputedStyle(cell).position")
    assert position == ("sticky" if width == "phone" else "static")
    page.screenshot(path=os.path.join(screenshot_dir, f"inverters_{width}.png"), full_page=True)

    page.goto(f"{live_server.url}/schedules/")
    labels = page.locator(".tl-hours .tl-hour:visible")
    boxes = [labels.nth(i).bounding_box() for i in range(labels.count())]
    assert len(boxes) >= 4
    for left, right in zip(boxes, boxes[1:], strict=False):
        assert left["x"] + left["width"] <= right["x"], (left, right)  # no two hour labels overlap
    page.screenshot(path=os.path.join(screenshot_dir, f"schedules_{width}.png"), full_page=True)
