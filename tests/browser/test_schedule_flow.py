from __future__ import annotations

import os
from datetime import time

import pytest
from playwright.sync_api import expect

from fleet.models import Group, Inverter, Schedule
from fleet.schedules import service

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_creates_a_schedule_and_sees_it_on_the_timeline(page, live_server, login, operator, account,
                                                                    screenshot_dir):
    north = Group.objects.create(account=account, remote_id="100", name="North")
    for i, sn in enumerate(("SNA1", "SNB2", "SNC3")):
        Inverter.objects.create(account=account, group=north, remote_id=str(i), inverter_sn=sn)
    evening = service.prepare(Schedule(
        account=account, name="Morning discharge", target_kind="selection", sns=["SNB2"],
        start_action={"superType": 2, "mode": 3, "manualMode": 2}, end_action={"superType": 2, "mode": 3,
                                                                               "manualMode": 0},
        start_time=time(5, 0), end_time=time(7, 0), weekdays=list(range(7)), timezone="Europe/Berlin"))
    evening.save()

    login("otto", "pw-otto-9x!")
    page.click("nav >> text=Schedules")
    expect(page.locator("h1")).to_contain_text("Schedules")
    page.click("text=New schedule")
    page.fill("#id_name", "Cheap night charge")
    page.select_option("#id_group", label="North")
    page.fill("#id_start_action", '{"superType": 2, "mode": 3, "manualMode": 1}')
    page.fill("#id_start_time", "23:00")
    page.fill("#id_end_action", '{"superType": 2, "mode": 3, "manualMode": 0}')
    page.fill("#id_end_time", "06:00")
    page.click("button[type=submit].primary")
    expect(page.locator("h1")).to_contain_text("Cheap night charge")
    expect(page.locator(".kv")).to_contain_text("(ends the next day)")

    page.click("text=← All schedules")
    segments = page.locator(".timeline", has_text="Group North").locator(".tl-seg")
    expect(segments.first).to_be_visible()
    assert segments.count() == 14  # seven evenings and the seven mornings after them
    expect(page.locator("#overlaps")).to_contain_text("Cheap night charge")
    expect(page.locator("#overlaps")).to_contain_text("SNB2")
    expect(page.locator(".tl-seg.conflict").first).to_be_visible()
    page.screenshot(path=os.path.join(screenshot_dir, "schedules.png"), full_page=True)
