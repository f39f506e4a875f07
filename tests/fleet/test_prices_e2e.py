"""End to end: tomorrow's prices uploaded through the page, a group's rule, the plan accepted, its
one mode-10 write fired by the minute tick through fleet.commands.create_command against the
simulator over HTTP, and every device of the group holding the windows in the simulator's state."""

from __future__ import annotations

import time as clock
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from fleet.models import (
    ApiCall,
    Command,
    DayPlan,
    Group,
    Inverter,
    PlanEdge,
    PlanEdgeState,
    PlanState,
    PriceZone,
    Priority,
)
from fleet.pipeline import dispatch
from fleet.prices import service
from fleet.prices.parsing import day_bounds

pytestmark = pytest.mark.django_db

FINAL = {"succeeded", "partial", "failed", "unknown", "expired", "cancelled"}
# local hour:  0   1   2   3   4   5   6   7    8    9  10  11  12  13  14  15  16   17   18   19   20  21  22  23
DUCK = [60, 55, 50, 52, 58, 70, 90, 120, 110, 80, 40, 20, 10, 15, 30, 60, 90, 130, 150, 140, 100, 80, 70, 65]


def _follow(command: Command, seconds: float = 30) -> Command:
    deadline = clock.monotonic() + seconds
    while clock.monotonic() < deadline:
        dispatch.pump(command.account_id, wait=False)
        command.refresh_from_db()
        if command.state in FINAL:
            return command
        clock.sleep(0.1)
    pytest.fail(f"command {command.code} still {command.state} after {seconds} s")


def _mirror_group(account, simulator, index=0):  # type: ignore[no-untyped-def]
    """Mirror the simulator's ``index``-th group with every member online (a sync's copy)."""
    tenant = simulator.sim.tenant()
    remote = list(tenant.groups.values())[index]
    group = Group.objects.create(account=account, remote_id=remote.id, name=remote.name,
                                 device_count=len(remote.members))
    for member in remote.members.values():
        tenant.inverters[member.inverter_sn].online = True
        Inverter.objects.create(account=account, group=group, remote_id=member.id, inverter_sn=member.inverter_sn,
                                dongle_sn=tenant.inverters[member.inverter_sn].wifi_sn)
    return group, [m.inverter_sn for m in remote.members.values()]


def _tomorrow_csv(tz: ZoneInfo, prices: list[int] = DUCK) -> tuple[str, object]:
    day = (timezone.now().astimezone(tz) + timedelta(days=1)).date()
    start, end = day_bounds(day, tz)
    rows, at = ["start,price"], start
    while at < end:
        local = at.astimezone(tz)
        rows.append(f"{local.isoformat(timespec='minutes')},{prices[local.hour]}")
        at += timedelta(hours=1)
    return "\n".join(rows) + "\n", day


def test_tomorrows_prices_become_one_windows_write_on_every_device_of_the_group(
        operator_client, sim_account, simulator, fast_commands):
    group, sns = _mirror_group(sim_account, simulator)
    tz = ZoneInfo("Europe/Berlin")
    response = operator_client.post(f"/prices/zones/new/?account={sim_account.code}", {
        "name": "DE-LU", "timezone": "Europe/Berlin", "currency": "EUR", "eic": ""})
    assert response.status_code == 302, response.content.decode()
    zone = PriceZone.objects.get()
    response = operator_client.post(f"/prices/{zone.code}/rules/new/", {
        "group": str(group.code), "charge_hours": "3", "discharge_hours": "2", "min_soc": "20",
        "no_export_negative": "on", "window_start": "00:00", "window_end": "00:00"})
    assert response.status_code == 302, response.content.decode()
    text, day = _tomorrow_csv(tz)
    response = operator_client.post(f"/prices/{zone.code}/upload/", {
        "file": SimpleUploadedFile("tomorrow.csv", text.encode()), "unit": "MWh", "day": f"{day:%Y-%m-%d}"})
    assert response.status_code == 302, response.content.decode()

    plan = DayPlan.objects.get(state=PlanState.PROPOSED)  # the upload proposed the rule's plan
    page = operator_client.get(f"/prices/plans/{plan.code}/").content.decode()
    assert "1 control call" in page and "device windows (one write)" in page
    assert "<svg" in page and 'class="window charge"' in page and 'class="window discharge"' in page
    response = operator_client.post(f"/prices/plans/{plan.code}/accept/")
    assert response.status_code == 302

    windows = PlanEdge.objects.get(plan=plan, fallback=False)
    assert windows.due_at == day_bounds(day, tz)[0]  # local midnight at the start of the day
    assert service.tick(windows.due_at - timedelta(seconds=1)).fired == 0  # not yet
    assert service.tick(windows.due_at + timedelta(seconds=1)).fired == 1
    assert service.tick(windows.due_at + timedelta(seconds=2)).fired == 0  # a double tick sends nothing more
    windows.refresh_from_db()
    assert windows.state == PlanEdgeState.FIRED
    command = _follow(windows.command)
    assert command.source == "prices" and command.state == "succeeded", command.state
    assert Command.objects.count() == 1
    # one write: a single control call reached the whole group
    assert ApiCall.objects.filter(priority=Priority.CONTROL).count() == 1

    tenant = simulator.sim.tenant()
    for sn in sns:
        inverter = tenant.inverters[sn]
        assert inverter.work_mode == 10, sn
        assert inverter.settings["chargeStartTime1Hour"] == 11 and inverter.settings["chargeEndTime1Hour"] == 14
        assert inverter.settings["dischargeStartTime1Hour"] == 18
        assert inverter.settings["dischargerEndTime1Hour"] == 20
    page = operator_client.get(f"/prices/plans/{plan.code}/").content.decode()
    assert page.count(": succeeded") == len(sns)


def _upload(client, zone, text: str, day) -> None:  # type: ignore[no-untyped-def]
    response = client.post(f"/prices/{zone.code}/upload/", {
        "file": SimpleUploadedFile("tomorrow.csv", text.encode()), "unit": "MWh", "day": f"{day:%Y-%m-%d}"})
    assert response.status_code == 302, response.content.decode()


def _fire_windows(plan: DayPlan) -> Command:
    edge = PlanEdge.objects.get(plan=plan, fallback=False)
    assert service.tick(edge.due_at + timedelta(seconds=1)).fired == 1
    edge.refresh_from_db()
    return _follow(edge.command)


def test_a_new_upload_replans_and_resends_only_what_changed(operator_client, sim_account, simulator, fast_commands):
    evening, sns_evening = _mirror_group(sim_account, simulator, 0)
    morning, sns_morning = _mirror_group(sim_account, simulator, 1)
    tz = ZoneInfo("Europe/Berlin")
    zone = PriceZone.objects.create(account=sim_account, name="DE-LU", timezone="Europe/Berlin", currency="EUR")
    for group, window_end, charge, discharge in ((evening, "00:00", "3", "2"), (morning, "12:00", "2", "1")):
        response = operator_client.post(f"/prices/{zone.code}/rules/new/", {
            "group": str(group.code), "charge_hours": charge, "discharge_hours": discharge, "min_soc": "20",
            "no_export_negative": "on", "window_start": "00:00", "window_end": window_end})
        assert response.status_code == 302, response.content.decode()
    text, day = _tomorrow_csv(tz)
    _upload(operator_client, zone, text, day)
    plans = {p.rule.group: p for p in DayPlan.objects.filter(state=PlanState.PROPOSED).select_related("rule__group")}
    for plan in plans.values():
        assert operator_client.post(f"/prices/plans/{plan.code}/accept/").status_code == 302
        assert _fire_windows(plan).state == "succeeded"
    assert Command.objects.count() == 2

    # the same prices again: nothing changes, nothing is due
    _upload(operator_client, zone, text, day)
    assert set(DayPlan.objects.filter(state=PlanState.ACCEPTED)) == set(plans.values())
    assert not PlanEdge.objects.filter(state=PlanEdgeState.PENDING, fallback=False).exists()

    # a dear hour at 21:00 changes the evening group's plan only (the morning rule ends at noon)
    changed = list(DUCK)
    changed[21] = 500
    text, _ = _tomorrow_csv(tz, changed)
    _upload(operator_client, zone, text, day)
    accepted = {p.rule.group: p for p in DayPlan.objects.filter(state=PlanState.ACCEPTED).select_related("rule__group")}
    assert accepted[morning] == plans[morning]  # unchanged: kept, not re-sent
    assert accepted[evening] != plans[evening]
    assert PlanEdge.objects.filter(state=PlanEdgeState.PENDING, fallback=False).get().plan == accepted[evening]
    command = _fire_windows(accepted[evening])
    assert command.state == "succeeded" and command.group == evening
    assert Command.objects.count() == 3 and Command.objects.filter(group=morning).count() == 1

    tenant = simulator.sim.tenant()
    for sn in sns_evening:  # the new windows: discharge 18-19 and 21-22
        held = tenant.inverters[sn].settings
        assert (held["dischargeStartTime1Hour"], held["dischargerEndTime1Hour"]) == (18, 19), sn
        assert (held["dischargeStartTime2Hour"], held["dischargeEndTime2Hour"]) == (21, 22), sn
    for sn in sns_morning:  # still the first write: charge 10-12, discharge 07-08
        held = tenant.inverters[sn].settings
        assert (held["chargeStartTime1Hour"], held["chargeEndTime1Hour"]) == (10, 12), sn
        assert (held["dischargeStartTime1Hour"], held["dischargerEndTime1Hour"]) == (7, 8), sn
