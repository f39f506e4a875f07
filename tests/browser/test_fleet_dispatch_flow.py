"""An operator saves a selection from ticked inverters, then sends the whole fleet a command that a
second operator must approve; the pages read at desktop and phone width."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from fleet.models import ApiCall, Command, CommandState, SafetyEnvelope, SavedSelection
from tests.conftest import make_member
from tests.support.htmx import swap

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_a_saved_selection_and_a_fleet_command_with_four_eyes(page, live_server, login, org, operator, mirrored_fleet,
                                                               screenshot_dir, width):
    page.set_viewport_size(dict(zip(("width", "height"), WIDTHS[width], strict=True)))
    SafetyEnvelope.objects.create(organization=org, approval_above_devices=10)
    login("otto", "pw-otto-9x!")
    page.goto(f"{live_server.url}/inverters/")
    boxes = page.locator("input[name=sn]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("text=Save the selected as a selection…")
    page.fill("input[name=name]", "Pilot homes")
    page.click("button:has-text('Save')")
    expect(page.locator("main")).to_contain_text("Saved the selection Pilot homes (2 inverters)")
    assert SavedSelection.objects.get(name="Pilot homes").sns
    page.screenshot(path=os.path.join(screenshot_dir, f"selections_{width}.png"), full_page=True)

    page.goto(f"{live_server.url}/commands/new/")
    swap(page, "target", "fleet")
    swap(page, "superType", "1")
    page.select_option("select[name=systemSwitch]", "1")
    page.click("text=Plan the cost")
    plan = page.locator("#cost-plan")
    expect(plan).to_contain_text("the whole fleet")
    expect(plan).to_contain_text("a second operator approves")
    page.screenshot(path=os.path.join(screenshot_dir, f"fleet_plan_{width}.png"), full_page=True)
    page.click("#cost-plan button[name=confirm]")
    expect(page.locator("#approval")).to_contain_text("Awaiting a second operator's approval")
    command = Command.objects.get()
    assert command.state == CommandState.APPROVAL and not ApiCall.objects.filter(origin_code=command.code).exists()
    page.screenshot(path=os.path.join(screenshot_dir, f"fleet_awaiting_{width}.png"), full_page=True)

    make_member(org, "petra", "operator")
    page.click("text=Log out") if page.locator("text=Log out").is_visible() else page.goto(f"{live_server.url}/")
    page.context.clear_cookies()
    login("petra", "pw-petra-9x!")
    page.goto(f"{live_server.url}/approvals/")
    page.click(f"text={command.label}")
    page.click("button:has-text('Approve and send')")
    expect(page.locator("main")).to_contain_text("Its calls are queued")
    command.refresh_from_db()
    assert command.state == CommandState.QUEUED and command.approved_by.username == "petra"
    assert ApiCall.objects.filter(origin_code=command.code).count() == command.batches.count()
    page.screenshot(path=os.path.join(screenshot_dir, f"fleet_approved_{width}.png"), full_page=True)


def test_the_dashboard_shows_a_new_unknown_command_without_a_reload(page, live_server, login, operator, account,
                                                                    screenshot_dir):
    login("otto", "pw-otto-9x!")
    expect(page.locator("#dashboard-attention")).to_contain_text("Nothing")
    Command.objects.create(account=account, kind="inverter_control", target_kind="selection", sns=["X1"],
                           action={}, label="Forced charge to X1", state="unknown")
    expect(page.locator("#dashboard-attention")).to_contain_text("Forced charge to X1", timeout=12000)
    page.screenshot(path=os.path.join(screenshot_dir, "dashboard_live.png"), full_page=True)


def test_the_command_history_shows_a_new_command_without_a_reload(page, live_server, login, operator, account):
    login("otto", "pw-otto-9x!")
    page.goto(f"{live_server.url}/commands/?account={account.code}")
    Command.objects.create(account=account, kind="inverter_control", target_kind="selection", sns=["X1"],
                           action={}, label="Arrived while looking", state="unknown")
    expect(page.locator("#history-rows")).to_contain_text("Arrived while looking", timeout=15000)
    expect(page.locator("#command-history form.filters")).to_be_visible()  # the form was not swapped away


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_the_whole_fleet_gets_a_forced_discharge_through_a_staged_rollout_and_an_approval(
        page, live_server, login, org, operator, mirrored_fleet, fast_commands, simulator, screenshot_dir, width):
    from fleet.commands import tracking
    from fleet.models import RolloutStage
    from fleet.pipeline import dispatch

    page.set_viewport_size(dict(zip(("width", "height"), WIDTHS[width], strict=True)))
    for sn in list(simulator.sim.tenant().inverters):
        simulator.sim.set_device(sn, online=True)
    SafetyEnvelope.objects.create(organization=org, approval_above_devices=10)
    login("otto", "pw-otto-9x!")
    page.goto(f"{live_server.url}/commands/new/")
    swap(page, "target", "fleet")
    swap(page, "superType", "2")
    swap(page, "mode", "3")
    page.select_option("select[name=manualMode]", "2")
    page.click("#rollout-fields summary")
    page.check("input[name=rollout]")
    page.fill("input[name=canary_size]", "20")
    page.select_option("select[name=canary_unit]", "percent")
    page.fill("input[name=failure_threshold]", "10")
    page.check("input[name=rollout_continue][value=auto]")
    page.screenshot(path=os.path.join(screenshot_dir, f"rollout_form_{width}.png"), full_page=True)
    page.click("text=Plan the cost")
    plan = page.locator("#cost-plan")
    expect(plan).to_contain_text("Forced discharge to the whole fleet")
    expect(page.locator("#plan-canary")).to_contain_text("canary of 5 devices")
    expect(page.locator("#plan-last")).to_be_visible()
    expect(plan).to_contain_text("a second operator approves")
    page.screenshot(path=os.path.join(screenshot_dir, f"rollout_plan_{width}.png"), full_page=True)
    page.click("#cost-plan button[name=confirm]")
    expect(page.locator("#approval")).to_contain_text("Awaiting a second operator's approval")
    expect(page.locator("#rollout-stage")).to_contain_text("Canary 5 devices (20 %)")
    command = Command.objects.get()
    assert command.rollout_stage == RolloutStage.CANARY and command.devices_total == 24

    make_member(org, "petra", "operator")
    page.context.clear_cookies()
    login("petra", "pw-petra-9x!")
    page.goto(f"{live_server.url}/approvals/")
    page.click(f"text={command.label}")
    page.click("button:has-text('Approve and send')")
    expect(page.locator("main")).to_contain_text("Its calls are queued")
    canary_calls = ApiCall.objects.filter(origin_code=command.code)
    assert canary_calls.count() == command.batches.filter(canary=True).count() == 1
    for _ in range(300):  # the workers: send, follow, decide the canary, send the rest, follow
        dispatch.pump(mirrored_fleet.pk, wait=False)
        tracking.tick()
        command.refresh_from_db()
        if command.state == CommandState.SUCCEEDED:
            break
        page.wait_for_timeout(50)
    assert command.state == CommandState.SUCCEEDED and command.devices_succeeded == 24
    assert command.rollout_stage == RolloutStage.CONTINUED
    tenant = simulator.sim.tenant()
    assert sorted(d for c in tenant.commands.by_id.values() for d in c.devices) == sorted(
        mirrored_fleet.inverters.values_list("dongle_sn", flat=True))  # each device once
    page.goto(f"{live_server.url}/commands/{command.code}/")
    expect(page.locator("#rollout-stage")).to_contain_text("continued to the rest")
    expect(page.locator("#rollout-note")).to_contain_text("Canary passed: 0 of 5 canary devices failed (0 % < 10 %)")
    expect(page.locator("#command-state")).to_contain_text("succeeded")
    page.screenshot(path=os.path.join(screenshot_dir, f"rollout_done_{width}.png"), full_page=True)
