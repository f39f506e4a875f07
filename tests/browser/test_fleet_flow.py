"""The mirror in Chromium against the simulator: sync, create a group, add a member, rename, batch
delete, bind devices. The test pumps the call pipeline where a Celery worker would."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from fleet.pipeline import dispatch, queue

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(sim_account, simulator, monkeypatch, settings):  # type: ignore[no-untyped-def]
    """Lift the minute limits and return a function that sends what the pages queued."""
    settings.SOLAX_MAX_CALLS_PER_MINUTE = 1000
    monkeypatch.setattr(queue, "kick", lambda account_id=None: None)  # no Celery worker here
    simulator.sim.configure(per_minute=1000)
    sim_account.calls_per_minute = 1000
    sim_account.save()
    return lambda: dispatch.pump(sim_account.pk, wait=False)


def test_an_operator_manages_the_fleet(page, live_server, login, operator, sim_account, simulator, worker,
                                       screenshot_dir):
    tenant = simulator.sim.tenants[simulator.token]
    free_sn = next(i.sn for i in tenant.inverters.values() if i.bound and not i.member_id)
    dongle = next(i.wifi_sn for i in tenant.inverters.values() if not i.bound and not i.bind_fails)

    login("otto", "pw-otto-9x!")
    page.click("nav >> text=Groups")
    page.click("text=Sync now")
    expect(page.locator("#sync-panel progress")).to_be_visible()
    worker()
    expect(page.locator("#sync-panel")).to_contain_text("4 of 4 pages", timeout=10_000)
    expect(page.locator("#groups-list h2")).to_contain_text("3 groups", timeout=10_000)

    page.fill("input[name=name][aria-label='New group name']", "Browser pilot")
    page.click("text=Create group")
    expect(page.locator("#groups-list .changes")).to_contain_text("create group Browser pilot")
    expect(page.locator("#groups-list .changes")).to_contain_text("pending")
    worker()
    expect(page.locator("#groups-list table")).to_contain_text("Browser pilot", timeout=10_000)

    page.click("#groups-list table >> text=Browser pilot")
    expect(page.locator("h1")).to_contain_text("Browser pilot")
    page.fill("input[name=sn][aria-label='Inverter SN to add']", free_sn)
    page.click("text=Add to group")
    expect(page.locator("#members .changes")).to_contain_text(f"add {free_sn}")
    worker()
    expect(page.locator("#members table")).to_contain_text(free_sn, timeout=10_000)
    page.screenshot(path=os.path.join(screenshot_dir, "group_detail.png"), full_page=True)

    page.click("text=← Groups")
    row = page.locator("#groups-list tr", has_text="Browser pilot")
    row.locator("summary", has_text="Rename").click()
    row.locator("input[name=name]").fill("Browser renamed")
    row.locator("text=Save").click()
    expect(page.locator("#groups-list .changes")).to_contain_text("rename group Browser pilot to Browser renamed")
    worker()
    expect(page.locator("#groups-list table")).to_contain_text("Browser renamed", timeout=10_000)

    page.locator("#groups-list tr", has_text="Browser renamed").locator("input[type=checkbox]").check()
    other = page.locator("#groups-list tbody tr").filter(has_not_text="Browser renamed").first
    other.locator("input[type=checkbox]").check()
    page.click("text=Delete selected…")
    expect(page.locator("#confirm-box")).to_contain_text("Delete 2 groups in SolaX Cloud?")
    page.locator("#confirm-box button", has_text="Delete").click()
    expect(page.locator("#groups-list .changes")).to_contain_text("delete 2 groups")
    page.screenshot(path=os.path.join(screenshot_dir, "groups_pending.png"), full_page=True)
    worker()
    expect(page.locator("#groups-list h2")).to_contain_text("2 groups", timeout=10_000)
    expect(page.locator("#groups-list table")).not_to_contain_text("Browser renamed")
    page.screenshot(path=os.path.join(screenshot_dir, "groups.png"), full_page=True)

    page.click("nav >> text=Binding")
    expect(page.locator(".notice")).to_contain_text("not inverter SNs")
    page.fill("textarea[name=sns]", f"{dongle}\n{free_sn}")
    page.click("button:has-text('Bind')")
    expect(page.locator("#binding-requests")).to_contain_text("pending")
    worker()
    expect(page.locator("#binding-requests .kv")).to_contain_text(dongle, timeout=10_000)
    expect(page.locator("#binding-requests")).to_contain_text("Unknown SN")
    page.screenshot(path=os.path.join(screenshot_dir, "binding.png"), full_page=True)
