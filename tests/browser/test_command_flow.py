"""An operator sends a group command from the page and watches its progress reach done."""

from __future__ import annotations

import os
import threading

import pytest
from playwright.sync_api import expect

from fleet.commands import tracking
from fleet.models import Command, Group
from fleet.pipeline import dispatch
from tests.support.htmx import swap

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pumping(mirrored_fleet):  # type: ignore[no-untyped-def]
    """A background pump standing in for the Celery worker and its beat."""

    stop = threading.Event()

    def run() -> None:
        from django.db import connection

        try:
            while not stop.is_set():
                dispatch.pump(mirrored_fleet.pk, wait=False)
                tracking.tick()
                stop.wait(0.1)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(5)


def test_an_operator_sends_a_group_command_and_watches_it_finish(
        page, live_server, login, operator, mirrored_fleet, fast_commands, simulator, pumping, screenshot_dir):
    group = Group.objects.filter(account=mirrored_fleet).order_by("name").first()
    for member in group.members.all():
        simulator.sim.set_device(member.inverter_sn, online=True)
    login("otto", "pw-otto-9x!")
    page.click("nav >> text=New command")
    swap(page, "target", "group")  # the action fields swap for the target kind
    page.select_option("select[name=group]", str(group.code))
    swap(page, "superType", "2")
    expect(page.locator("select[name=mode] option")).to_have_count(6)  # swapped by HTMX for superType 2
    swap(page, "mode", "3")
    expect(page.locator("select[name=manualMode]")).to_be_visible()
    page.select_option("select[name=manualMode]", "1")
    page.click("text=Plan the cost")
    expect(page.locator("#cost-plan")).to_contain_text("group_control")
    assert not Command.objects.exists()
    page.screenshot(path=os.path.join(screenshot_dir, "command_plan.png"), full_page=True)
    page.click("#cost-plan button[name=confirm]")
    expect(page.locator("#command-state")).to_have_text("succeeded", timeout=20000)
    total = group.members.count()
    expect(page.locator("#command-progress")).to_contain_text(f"{total} of {total} devices answered")
    expect(page.locator("#device-results tbody tr")).to_have_count(total)
    page.screenshot(path=os.path.join(screenshot_dir, "command_done.png"), full_page=True)
    command = Command.objects.get()
    assert command.created_by == operator and command.created_from == "127.0.0.1"
