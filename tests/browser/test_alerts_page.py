from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from fleet.alerts import service
from fleet.models import AlertKind, Channel, ChannelKind, Severity

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_acknowledges_an_alert_and_an_admin_adds_a_webhook(page, live_server, login, operator, admin_user,
                                                                       org, account, screenshot_dir):
    service.raise_alert(org, AlertKind.ACCOUNT_PAUSED, str(account.code), account=account, severity=Severity.CRITICAL,
                        title="Account Main paused", detail="SolaX locked the account out for an hour after "
                        "repeated violations. Nothing is sent for it until 2026-12-02 05:00 CET.", link="/budget/")
    service.raise_alert(org, AlertKind.SYNC, "s", account=account, title="Sync of Main incomplete",
                        detail="group list: 2 duplicate(s) among 40 groups")
    for width, name in ((1440, "alerts.png"), (390, "alerts-phone.png")):
        page.set_viewport_size({"width": width, "height": 900})
        login("otto", "pw-otto-9x!")
        expect(page.locator("nav .badge")).to_have_text("2")
        page.goto(f"{live_server.url}/alerts/")
        page.screenshot(path=os.path.join(screenshot_dir, name), full_page=True)
        page.context.clear_cookies()
    login("otto", "pw-otto-9x!")
    page.goto(f"{live_server.url}/alerts/")
    page.locator("tr", has_text="Account Main paused").locator("button", has_text="Acknowledge").click()
    expect(page.locator(".messages")).to_contain_text("Acknowledged")
    expect(page.locator("nav .badge")).to_have_text("1")
    page.goto(f"{live_server.url}/alerts/?state=acknowledged")
    expect(page.locator("table")).to_contain_text("by otto")
    page.context.clear_cookies()
    login("ada", "pw-ada-9x!")
    page.goto(f"{live_server.url}/settings/channels/new/")
    page.fill("#id_name", "Ops hook")
    page.select_option("#id_kind", "webhook")
    page.fill("#id_target", "ftp://example.com/x")
    page.click("button:has-text('Create')")
    expect(page.locator(".error")).to_contain_text("only http:// and https://")
    page.fill("#id_target", "https://hooks.example.com/fleet")
    page.click("button:has-text('Create')")
    expect(page.locator("h1")).to_contain_text("Channel Ops hook created")
    secret = page.locator("#channel-secret").input_value()
    assert secret.startswith("whsec_") and Channel.objects.get().get_secret() == secret
    page.screenshot(path=os.path.join(screenshot_dir, "channel-created.png"), full_page=True)
    page.click("text=Go to the channel")
    page.set_viewport_size({"width": 390, "height": 900})
    page.screenshot(path=os.path.join(screenshot_dir, "channel-phone.png"), full_page=True)
    assert Channel.objects.get().kind == ChannelKind.WEBHOOK
