from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from fleet.models import ApiCall, CallState, Priority
from fleet.pipeline import ledger

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_budget_page_draws_gauges_chart_and_log(page, live_server, login, operator, account, screenshot_dir):
    now = timezone.now()
    times = []
    for i in range(30):
        call = ApiCall.objects.create(account=account, endpoint="group_query", priority=Priority.READ,
                                      state=CallState.SUCCEEDED, params={"current": str(i), "size": "100"},
                                      purpose="fleet sync page", http_status=200, duration_ms=40 + i)
        times.append(now - timedelta(hours=i % 20, seconds=i))
    ledger.record_past_attempts(account, call, times)
    ApiCall.objects.create(account=account, endpoint="group_control", priority=Priority.CONTROL,
                           state=CallState.UNKNOWN, params={"groupId": "1025", "superType": "1"},
                           purpose="group on", error="SolaxTimeout: no answer within 20 s")
    ApiCall.objects.create(account=account, endpoint="group_add", priority=Priority.MANAGEMENT,
                           params={"name": "West"}, purpose="create group West")
    login("otto", "pw-otto-9x!")
    page.click("nav >> text=API budget")
    expect(page.locator("h1")).to_contain_text("API budget")
    expect(page.locator("#budget-live")).to_contain_text("This minute")
    expect(page.locator("svg.chart rect.bar")).to_have_count(24)
    page.select_option("select[name=state]", "unknown")
    page.click("text=Filter")
    expect(page.locator("#call-log tbody tr")).to_have_count(1)
    expect(page.locator("#call-log")).to_contain_text("SolaxTimeout")
    page.goto(f"{live_server.url}/budget/")
    page.screenshot(path=os.path.join(screenshot_dir, "budget.png"), full_page=True)
