"""An operator makes a price zone, sets "charge in the cheapest 3 hours, discharge in the dearest 2,
no export below zero" on a group, uploads tomorrow's prices, sees the plan drawn over the price chart
with its cost and value estimate, and accepts it; the pages read at desktop and phone width."""

from __future__ import annotations

import os
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from fleet.models import DayPlan, Group, Inverter, PlanEdge, PlanState, PriceRule
from fleet.prices.parsing import day_bounds

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}
BERLIN = ZoneInfo("Europe/Berlin")
# local hour:  0   1   2   3   4   5   6   7    8    9  10  11  12  13  14  15  16   17   18   19   20  21  22  23
PRICES = [60, 55, 50, 52, 58, 70, 90, 120, 110, 80, 40, -20, -10, 15, 30, 60, 90, 130, 150, 140, 100, 80, 70, 65]


def _tomorrow_csv() -> tuple[bytes, object]:
    day = (timezone.now().astimezone(BERLIN) + timedelta(days=1)).date()
    start, end = day_bounds(day, BERLIN)
    rows, at = ["start,price"], start
    while at < end:
        local = at.astimezone(BERLIN)
        rows.append(f"{local.isoformat(timespec='minutes')},{PRICES[local.hour]}")
        at += timedelta(hours=1)
    return ("\n".join(rows) + "\n").encode(), day


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_tomorrows_prices_become_a_groups_plan_that_the_operator_accepts(page, live_server, login, operator,
                                                                        account, screenshot_dir, width):
    page.set_viewport_size(dict(zip(("width", "height"), WIDTHS[width], strict=True)))
    north = Group.objects.create(account=account, remote_id="100", name="North", device_count=2)
    for i, sn in enumerate(("SNA1", "SNB2")):
        Inverter.objects.create(account=account, group=north, remote_id=str(i), inverter_sn=sn, rated_power=5.0)
    login("otto", "pw-otto-9x!")

    page.goto(f"{live_server.url}/prices/")
    page.fill("#id_name", "DE-LU")
    page.fill("#id_timezone", "Europe/Berlin")
    page.fill("#id_currency", "EUR")
    page.click("button:has-text('Create')")
    expect(page.locator("h1")).to_contain_text("DE-LU")

    page.click("text=New rule")
    page.select_option("#id_target_kind", "group")
    page.select_option("#id_group", label="North")
    page.fill("#id_charge_hours", "3")
    page.fill("#id_discharge_hours", "2")
    expect(page.locator("#id_no_export_negative")).to_be_checked()
    page.screenshot(path=os.path.join(screenshot_dir, f"prices_rule_{width}.png"), full_page=True)
    page.click("button:has-text('Save')")
    expect(page.locator("main")).to_contain_text("Price rule for North saved")
    assert PriceRule.objects.get().no_export_negative

    content, day = _tomorrow_csv()
    page.set_input_files("#id_file", files=[{"name": "tomorrow.csv", "mimeType": "text/csv", "buffer": content}])
    page.fill("#id_day", f"{day:%Y-%m-%d}")
    page.click("button:has-text('Upload')")
    expect(page.locator("main")).to_contain_text("24 prices of")
    expect(page.locator("main")).to_contain_text("1 proposed")
    tomorrow = page.locator("section.chart-card", has_text=f"{day:%d %B %Y}")
    expect(tomorrow.locator("svg.chart rect.window.charge").first).to_be_attached()
    page.screenshot(path=os.path.join(screenshot_dir, f"prices_zone_{width}.png"), full_page=True)

    tomorrow.locator("table a:has-text('proposed')").click()
    expect(page.locator("h1")).to_contain_text("North")
    chart = page.locator("svg.chart")
    expect(chart).to_be_visible()
    assert chart.locator("rect.window.charge").count() == 1  # 11:00-14:00, the negative hours among them
    assert chart.locator("rect.window.discharge").count() == 1  # 18:00-20:00
    plan_card = page.locator("section.card", has_text="Sent as")
    expect(plan_card).to_contain_text("1 control call")
    expect(plan_card).to_contain_text("device windows (one write)")
    expect(plan_card).to_contain_text("estimate")
    expect(plan_card).to_contain_text("≈ 3.00 EUR")  # spread 145 - (-5) = 150 EUR/MWh x 10 kW x 2 h
    expect(page.locator("main")).to_contain_text("11:00")
    expect(page.locator("main")).to_contain_text("18:00")
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTHS[width][0]  # no sideways page scroll
    page.screenshot(path=os.path.join(screenshot_dir, f"prices_plan_{width}.png"), full_page=True)

    page.click("button:has-text('Accept')")
    expect(page.locator("main")).to_contain_text("accepted: 1 control call(s) per target")
    expect(page.locator("section.card", has_text="Due")).to_contain_text("pending")
    plan = DayPlan.objects.get(state=PlanState.ACCEPTED)
    assert PlanEdge.objects.filter(plan=plan, fallback=False).get().due_at == day_bounds(day, BERLIN)[0]
    page.screenshot(path=os.path.join(screenshot_dir, f"prices_accepted_{width}.png"), full_page=True)
