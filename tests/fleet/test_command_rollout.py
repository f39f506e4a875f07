"""Staged rollout: the canary first, its results waited for, then the rest (automatically or on an
operator's click) or a halt that says why; resume, cancel while halted, and two operators resuming at
once. Against the simulator over real HTTP."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection, connections
from django.test import Client

from fleet.commands import rollout, service, tracking
from fleet.commands.actions import CommandError
from fleet.commands.rollout import RolloutSpec
from fleet.commands.targets import Target
from fleet.models import ApiCall, Command, CommandBatch, CommandState, DeviceState, Inverter, RolloutStage
from fleet.pipeline import dispatch
from tests.conftest import make_member

pytestmark = pytest.mark.django_db(transaction=True)
ON = {"superType": 1, "systemSwitch": 1}


def _online(simulator, account, n):  # type: ignore[no-untyped-def]
    tenant = simulator.sim.tenant()
    sns = [sn for sn in Inverter.objects.filter(account=account).order_by("inverter_sn")
           .values_list("inverter_sn", flat=True) if tenant.inverters[sn].online]
    return tuple(sns[:n])


def until(command: Command, done: Callable[[Command], bool], seconds: float = 15.0) -> Command:
    """Pump and tick until ``done(command)``; return it fresh."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dispatch.pump(command.account_id, wait=False)
        tracking.tick()
        command.refresh_from_db()
        if done(command):
            return command
        time.sleep(0.05)
    return command


def _settled(command: Command) -> bool:
    return command.state in tracking.FINAL_STATES


def _stage(*stages: str) -> Callable[[Command], bool]:
    return lambda command: command.rollout_stage in stages


def _batch_controls(simulator) -> int:  # type: ignore[no-untyped-def]
    return simulator.counters()["tokens"][simulator.token]["calls"].get("batch_control", 0)


@pytest.fixture
def ten(mirrored_fleet, fast_commands, simulator):  # type: ignore[no-untyped-def]
    mirrored_fleet.max_sns_per_call = 2
    mirrored_fleet.save()
    return Target("selection", sns=_online(simulator, mirrored_fleet, 10))


def test_the_canary_passes_and_the_rest_follows_automatically(mirrored_fleet, ten, simulator):
    command = service.create_command(mirrored_fleet, ten, ON, staged=RolloutSpec(20, "percent", 10))
    assert (command.rollout_stage, command.rollout_canary) == (RolloutStage.CANARY, 2)
    canary = CommandBatch.objects.get(command=command, canary=True)
    assert len(canary.sns) == 2 and canary.call is not None
    assert not CommandBatch.objects.filter(command=command, canary=False, call__isnull=False).exists()
    command = until(command, _settled)
    assert command.state == CommandState.SUCCEEDED and command.devices_succeeded == 10
    assert command.rollout_stage == RolloutStage.CONTINUED
    assert command.rollout_note.startswith("canary passed: 0 of 2 canary devices failed (0 % < 10 %)")
    # nothing else left before every canary device had answered
    answered = max(command.results.filter(batch=canary).values_list("answered_at", flat=True))
    rest = ApiCall.objects.filter(batch__command=command, batch__canary=False)
    assert rest.count() == 4 and all(call.created >= answered for call in rest)
    assert sorted(sn for b in command.batches.all() for sn in b.sns) == sorted(ten.sns)


def test_a_failing_canary_halts_and_says_why_then_an_operator_resumes(mirrored_fleet, ten, simulator, operator):
    simulator.sim.configure(device_failure_rate=1.0)
    command = service.create_command(mirrored_fleet, ten, ON, staged=RolloutSpec(2, "devices", 10))
    command = until(command, _stage(RolloutStage.HALTED))
    assert command.rollout_note == "halted: 2 of 2 canary devices failed (100 % > 10 %)"
    assert command.state == CommandState.RUNNING
    time.sleep(0.3)
    tracking.tick()
    dispatch.pump(mirrored_fleet.pk, wait=False)
    assert _batch_controls(simulator) == 1  # the canary only: the rest is held
    assert command.results.filter(state=DeviceState.PENDING).count() == 8
    simulator.sim.configure(device_failure_rate=0.0)
    rollout.resume(command, user=operator)
    command = until(command, _settled)
    assert command.rollout_stage == RolloutStage.CONTINUED and "resumed by otto" in command.rollout_note
    assert command.devices_succeeded == 8 and command.state == CommandState.PARTIAL
    assert _batch_controls(simulator) == 5
    with pytest.raises(CommandError, match="already continued"):
        rollout.resume(command, user=operator)


def test_a_halted_rollout_cancelled_sends_nothing_more(mirrored_fleet, ten, simulator, operator):
    simulator.sim.configure(device_failure_rate=1.0)
    command = service.create_command(mirrored_fleet, ten, ON, staged=RolloutSpec(20, "percent", 50))
    command = until(command, _stage(RolloutStage.HALTED))
    assert service.cancel_command(command, user=operator) == 4
    command.refresh_from_db()
    assert command.rollout_stage == RolloutStage.CANCELLED
    assert Counter(command.results.values_list("state", flat=True)) == {DeviceState.NOT_SENT: 8,
                                                                        DeviceState.FAILED: 2}
    assert "not sent: cancelled by otto" in command.results.filter(state=DeviceState.NOT_SENT).first().answer
    until(command, lambda c: False, seconds=0.5)
    assert _batch_controls(simulator) == 1
    with pytest.raises(CommandError, match="does not wait for an operator"):
        rollout.resume(command, user=operator)


def test_on_click_a_passed_canary_waits_for_an_operator(mirrored_fleet, ten, simulator, operator):
    command = service.create_command(mirrored_fleet, ten, ON, staged=RolloutSpec(2, "devices", 10, auto=False))
    command = until(command, _stage(RolloutStage.PASSED))
    assert command.rollout_note == ("canary passed: 0 of 2 canary devices failed (0 % < 10 %); "
                                    "waiting for an operator to continue")
    until(command, lambda c: False, seconds=0.4)
    assert _batch_controls(simulator) == 1
    rollout.resume(command, user=operator)
    command = until(command, _settled)
    assert command.state == CommandState.SUCCEEDED and "continued by otto" in command.rollout_note
    assert command.rollout_decided_by == operator


def test_a_rollout_is_checked_before_anything_is_written(mirrored_fleet, ten):
    for spec, field in ((RolloutSpec(10, "devices", 10), "canary_size"), (RolloutSpec(100, "percent", 10),
                                                                          "canary_size"),
                        (RolloutSpec(1, "devices", 0), "failure_threshold"),
                        (RolloutSpec(1, "lots", 10), "canary_unit")):
        with pytest.raises(CommandError) as caught:
            service.create_command(mirrored_fleet, ten, ON, staged=spec)
        assert field in caught.value.errors
    with pytest.raises(CommandError, match="at least 2 devices"):
        service.create_command(mirrored_fleet, Target("inverter", sns=ten.sns[:1]), ON,
                               staged=RolloutSpec(1, "devices", 10))
    with pytest.raises(CommandError, match="not EV chargers"):
        chargers = tuple(mirrored_fleet.chargers.values_list("sn", flat=True)[:2])
        service.create_command(mirrored_fleet, Target("chargers", sns=chargers), {"chargerMode": 1},
                               staged=RolloutSpec(1, "devices", 10))
    assert not Command.objects.exists()


def test_a_canary_of_a_group_command_is_not_controlled_again_by_a_group_call(mirrored_fleet, fast_commands,
                                                                            simulator):
    group = mirrored_fleet.groups.order_by("name").first()
    command = service.create_command(mirrored_fleet, Target("group", group=group), ON,
                                     staged=RolloutSpec(1, "devices", 100))
    assert not command.batches.filter(group__isnull=False).exists()
    sns = [sn for b in command.batches.all() for sn in b.sns]
    assert sorted(sns) == sorted(group.members.values_list("inverter_sn", flat=True))


def test_the_form_plans_and_sends_a_staged_rollout_and_the_page_resumes_it(mirrored_fleet, ten, simulator,
                                                                           operator_client, viewer_client,
                                                                           client):
    simulator.sim.configure(device_failure_rate=1.0)
    form = {"target": "selection", "sns": "\n".join(ten.sns), "superType": "1", "systemSwitch": "1",
            "rollout": "on", "canary_size": "20", "canary_unit": "percent", "failure_threshold": "10",
            "rollout_continue": "auto"}
    url = f"/commands/new/?account={mirrored_fleet.code}"
    page = operator_client.post(url, form).content.decode()
    assert 'id="plan-canary"' in page and "canary of 2 devices in 1 call first" in page
    bad = operator_client.post(url, {**form, "canary_size": ""})
    assert bad.status_code == 400 and "how many devices (or what share) go first" in bad.content.decode()
    bad = operator_client.post(url, {**form, "canary_size": "10", "canary_unit": "devices"})
    assert bad.status_code == 400 and "the canary must be smaller than the target" in bad.content.decode()
    assert not Command.objects.exists()
    once = page.split('name="once" value="')[1].split('"')[0]
    sent = operator_client.post(url, {**form, "confirm": "yes", "once": once})
    assert sent.status_code == 302
    command = Command.objects.get()
    command = until(command, _stage(RolloutStage.HALTED))
    detail = operator_client.get(f"/commands/{command.code}/").content.decode()
    assert "Staged rollout: halted." in detail and "2 of 2 canary devices failed (100 % &gt; 10 %)" in detail
    assert "Resume anyway" in detail and "4 held for the canary" in detail, detail[detail.find("rollout-stage"):][:1500]
    progress = operator_client.get(f"/commands/{command.code}/", HTTP_HX_REQUEST="true",
                                   HTTP_HX_TARGET="command-progress")
    assert progress.status_code == 286  # a halted rollout waits for a click: the page stops polling
    history = operator_client.get(f"/commands/?account={mirrored_fleet.code}").content.decode()
    assert "rollout halted" in history
    assert viewer_client.post(f"/commands/{command.code}/rollout/").status_code == 403
    assert operator_client.get(f"/commands/{command.code}/rollout/").status_code == 405
    assert operator_client.post(f"/commands/{command.code}/rollout/").status_code == 302
    command.refresh_from_db()
    assert command.rollout_stage == RolloutStage.CONTINUED


def test_the_rollout_url_is_scoped_to_the_organization(mirrored_fleet, ten, other_org):
    command = service.create_command(mirrored_fleet, ten, ON, staged=RolloutSpec(2, "devices", 10))
    stranger = Client()
    stranger.force_login(make_member(other_org, "mallory", "operator"))
    assert stranger.post(f"/commands/{command.code}/rollout/").status_code == 404


def test_two_operators_resuming_at_once_resume_once(mirrored_fleet, ten, simulator, org):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's IMMEDIATE transactions serialise the two resumes before they can race")
    simulator.sim.configure(device_failure_rate=1.0)
    command = service.create_command(mirrored_fleet, ten, ON, staged=RolloutSpec(2, "devices", 10))
    command = until(command, _stage(RolloutStage.HALTED))
    people = [make_member(org, name, "operator") for name in ("ada", "bea")]
    start = threading.Barrier(2, timeout=10)
    outcomes: list[object] = []

    def resume(user):  # type: ignore[no-untyped-def]
        try:
            start.wait()
            outcomes.append(rollout.resume(Command.objects.get(pk=command.pk), user=user))
        except CommandError as exc:
            outcomes.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=resume, args=(user,)) for user in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused = [o for o in outcomes if isinstance(o, CommandError)]
    assert len(outcomes) == 2 and len(refused) == 1
    assert "already continued (by " in refused[0].errors["rollout"]
    assert ApiCall.objects.filter(batch__command=command, batch__canary=False).count() == 4
    assert CommandBatch.objects.filter(command=command, canary=False, call__isnull=True).count() == 0
