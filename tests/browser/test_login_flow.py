from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_log_in_see_the_dashboard_and_log_out(page, live_server, login, operator, account, screenshot_dir):
    login("otto", "pw-otto-9x!")
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator(".panel h2")).to_have_text("Main")
    page.screenshot(path=os.path.join(screenshot_dir, "dashboard.png"), full_page=True)
    page.click("text=Log out")
    expect(page).to_have_url(f"{live_server.url}/login/")
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/login/?next=/")


def test_a_wrong_password_shows_an_error(page, live_server, login, operator, screenshot_dir):
    login("otto", "wrong-password")
    expect(page.locator(".error")).to_have_text("Wrong username or password.")
    page.screenshot(path=os.path.join(screenshot_dir, "login-error.png"))
