"""End to end: a schedule created through the page fires its start and end edges through the real
fleet.commands.create_command, against the simulator over HTTP, followed to the devices' results."""

from __future__ import annotations

import time as clock
from datetime import timedelta

import pytest
from django.utils import timezone

from fleet.models import Command, Group, Inverter, Occurrence, OccurrenceState, Schedule
from fleet.pipeline import dispatch
from fleet.schedules import service
from tests.support.once import key_from

pytestmark = pytest.mark.django_db

FINAL = {"succeeded", "partial", "failed", "unknown", "expired", "cancelled"}


def _mirror_two_online_inverters(account, simulator):  # type: ignore[no-untyped-def]
    """Mirror one simulator group with two of its online members (what the sync does)."""
    tenant = simulator.sim.tenant()
    for remote in tenant.groups.values():
        online = [m for m in remote.members.values() if tenant.inverters[m.inverter_sn].online]
        if len(online) >= 2:
            group = Group.objects.create(account=account, remote_id=remote.id, name=remote.name)
            for member in online[:2]:
                # results come back per dongle SN: the mirror must know each member's dongle
                Inverter.objects.create(account=account, group=group, remote_id=member.id,
                                        inverter_sn=member.inverter_sn,
                                        dongle_sn=tenant.inverters[member.inverter_sn].wifi_sn)
            return [m.inverter_sn for m in online[:2]]
    pytest.fail("the small fleet has no group with two online inverters")


def _follow(command: Command, seconds: float = 30) -> Command:
    deadline = clock.monotonic() + seconds
    while clock.monotonic() < deadline:
        dispatch.pump(command.account_id, wait=False)
        command.refresh_from_db()
        if command.state in FINAL:
            return command
        clock.sleep(0.1)
    pytest.fail(f"command {command.code} still {command.state} after {seconds} s")


def test_a_schedule_from_the_page_fires_once_each_edge_against_the_simulator(operator_client, sim_account,
                                                                            simulator, fast_commands):
    sns = _mirror_two_online_inverters(sim_account, simulator)
    now = timezone.now()
    local = now.astimezone(sim_account.tzinfo)
    start, end = (local + timedelta(minutes=2)), (local + timedelta(minutes=4))
    response = operator_client.post("/schedules/new/", {
        "once": key_from(operator_client, "/schedules/new/"),
        "name": "E2E charge", "account": str(sim_account.code), "target_kind": "selection", "sns": ", ".join(sns),
        "start_action": '{"superType": 2, "mode": 3, "manualMode": 1}',
        "end_action": '{"superType": 2, "mode": 3, "manualMode": 0}',
        "start_time": f"{start:%H:%M}", "end_time": f"{end:%H:%M}", "date": f"{start:%Y-%m-%d}",
        "timezone": "", "enabled": "on"})
    assert response.status_code == 302, response.content.decode()
    schedule = Schedule.objects.get()
    Schedule.objects.filter(pk=schedule.pk).update(created=now - timedelta(minutes=1))
    start_due, end_due = service.window(schedule, start.date())

    for edge, due in (("start", start_due), ("end", end_due)):
        assert service.tick(due + timedelta(seconds=1)).fired == 1
        assert service.tick(due + timedelta(seconds=2)).fired == 0  # a double tick sends nothing more
        occurrence = Occurrence.objects.get(schedule=schedule, edge=edge)
        assert occurrence.state == OccurrenceState.FIRED and occurrence.command is not None
        command = _follow(occurrence.command)
        assert command.source == "schedule"
        assert command.state == "succeeded", command.state
        assert sorted(command.results.values_list("sn", "state")) == [(sn, "succeeded") for sn in sorted(sns)]
    assert Command.objects.count() == 2
    body = operator_client.get(f"/schedules/{schedule.code}/").content.decode()
    assert body.count("2/2 succeeded") == 2
