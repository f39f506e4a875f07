"""Following commands to every device's answer, against the simulator over real HTTP, for clouds of
several profiles (ids as numbers or strings: solax.simulator.profiles)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from fleet.commands import service, tracking
from fleet.commands.actions import CommandError
from fleet.commands.targets import Target
from fleet.mirror import writes
from fleet.models import ApiCall, CallState, Command, CommandState, DeviceState, Group, Inverter, Resolution
from fleet.pipeline import dispatch, ledger
from solax.simulator.testing import SimulatorHandle, running_simulator
from tests.conftest import FAST_SIM

pytestmark = pytest.mark.django_db(transaction=True)

CLOUDS = ("default", "strict")


@pytest.fixture(params=CLOUDS)
def simulator(request) -> Iterator[SimulatorHandle]:  # type: ignore[no-untyped-def]
    """The small fleet served by a cloud of each profile (overrides the conftest fixture here)."""
    with running_simulator(profile=request.param, fleet="small", seed=7, **FAST_SIM) as handle:
        yield handle

FORCED_CHARGE = {"superType": 2, "mode": 3, "manualMode": 1}


def drive(command: Command, seconds: float = 15.0) -> Command:
    """Pump the pipeline and tick the commands until the command settles; return it fresh."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dispatch.pump(command.account_id, wait=False)
        tracking.tick()
        command.refresh_from_db()
        if command.state not in tracking.FINAL_STATES + (CommandState.UNKNOWN,):
            time.sleep(0.05)
            continue
        return command
    return command


def _group_with_offline(simulator, account) -> tuple[Group, set[str]]:  # type: ignore[no-untyped-def]
    tenant = simulator.sim.tenant()
    for group in Group.objects.filter(account=account):
        offline = {m.inverter_sn for m in group.members.all() if not tenant.inverters[m.inverter_sn].online}
        if offline:
            return group, offline
    raise AssertionError("the small fleet has offline inverters")


def test_it_follows_a_group_command_to_every_device(mirrored_fleet, fast_commands, simulator):
    group = Group.objects.filter(account=mirrored_fleet).first()
    for member in group.members.all():
        simulator.sim.set_device(member.inverter_sn, online=True)
    command = service.create_command(mirrored_fleet, Target("group", group=group), FORCED_CHARGE)
    command = drive(command)
    assert command.state == CommandState.SUCCEEDED
    assert command.devices_answered == command.devices_total == group.members.count()
    assert set(command.results.values_list("answer", flat=True)) == {"success"}
    endpoints = list(ApiCall.objects.filter(origin_code=command.code).order_by("created", "id")
                     .values_list("endpoint", flat=True))
    assert endpoints[0] == "group_control" and endpoints.count("group_control") == 1
    assert endpoints[1] == "query_command" and endpoints[-1] == "query_result"
    member = group.members.first()
    assert simulator.sim.device(member.inverter_sn)["workMode"] == 3


def test_offline_devices_get_no_answer_when_the_command_expires(mirrored_fleet, fast_commands, simulator):
    fast_commands.COMMAND_EXPIRY_SECONDS = 3
    group, offline = _group_with_offline(simulator, mirrored_fleet)
    command = service.create_command(mirrored_fleet, Target("group", group=group), FORCED_CHARGE)
    command = drive(command, 10)
    assert command.state == CommandState.PARTIAL
    silent = set(command.results.filter(state=DeviceState.NO_ANSWER).values_list("sn", flat=True))
    assert silent == offline
    assert command.devices_succeeded == command.devices_total - len(offline)
    assert not ApiCall.objects.filter(origin_code=command.code, state=CallState.QUEUED).exists()


def test_partial_success_keeps_the_vendors_text(mirrored_fleet, fast_commands, simulator):
    simulator.sim.configure(device_failure_rate=0.5, failure_answers=["device busy"])
    sns = tuple(sorted(simulator.sim.tenant().inverters[sn].sn for sn in
                       mirrored_fleet.inverters.values_list("inverter_sn", flat=True)
                       if simulator.sim.tenant().inverters[sn].online))[:12]
    command = service.create_command(mirrored_fleet, Target("selection", sns=sns), {"superType": 1, "systemSwitch": 0})
    command = drive(command)
    assert command.state == CommandState.PARTIAL
    answers = dict(command.results.values_list("state", "answer"))
    assert answers[DeviceState.FAILED] == "device busy"
    assert answers[DeviceState.SUCCEEDED] == "success"


def test_a_selection_over_100_is_split_into_batches(mirrored_fleet, fast_commands):
    from fleet.models import Inverter

    base = Inverter.objects.filter(account=mirrored_fleet).first()
    extra = [Inverter(account=mirrored_fleet, group=base.group, remote_id=f"9{i:05d}", inverter_sn=f"H4ZZ{i:010d}",
                      dongle_sn=f"SWZZ{i:06d}") for i in range(110)]
    Inverter.objects.bulk_create(extra)
    sns = tuple(i.inverter_sn for i in extra)
    plan = service.plan_command(mirrored_fleet, Target("selection", sns=sns), {"superType": 1, "systemSwitch": 1})
    assert (plan.sends, plan.endpoint) == (2, "batch_control")
    assert [len(b.sns) for b in plan.batches] == [100, 10]


def test_a_write_of_unknown_delivery_flags_the_command_until_an_operator_decides(
        mirrored_fleet, fast_commands, simulator, operator):
    simulator.sim.configure(faults=[{"kind": "timeout", "endpoint": "single_control", "seconds": 3}])
    fast_commands.SOLAX_READ_TIMEOUT = 1
    sn = mirrored_fleet.inverters.order_by("inverter_sn").first().inverter_sn
    command = service.create_command(mirrored_fleet, Target("inverter", sns=(sn,)),
                                      {"superType": 1, "systemSwitch": 1})
    command = drive(command)
    assert command.state == CommandState.UNKNOWN
    assert command.results.get().state == DeviceState.UNKNOWN
    simulator.sim.configure(faults=[])
    again = service.resolve_unknown(command, Resolution.SENT_AGAIN, user=operator, ip="10.0.0.9")
    command.refresh_from_db()
    assert command.resolution == Resolution.SENT_AGAIN and command.resolved_by == operator
    assert command.state == CommandState.FAILED
    assert again is not None and again.retry_of == command and again.source == "resend"
    with pytest.raises(CommandError):
        service.resolve_unknown(command, Resolution.DELIVERED, user=operator)


def test_retry_failed_devices_only_targets_the_failures(mirrored_fleet, fast_commands, simulator):
    fast_commands.COMMAND_EXPIRY_SECONDS = 3
    group, offline = _group_with_offline(simulator, mirrored_fleet)
    command = drive(service.create_command(mirrored_fleet, Target("group", group=group), FORCED_CHARGE), 10)
    target = service.retry_target(command)
    assert set(target.sns) == offline
    retry = service.create_command(mirrored_fleet, target, service.stored_action(command), source="retry",
                                    retry_of=command)
    assert retry.retry_of == command and retry.devices_total == len(offline)


def _all_online(simulator, group: Group) -> None:  # type: ignore[no-untyped-def]
    for sn in simulator.sim.tenant().groups[group.remote_id].members.values():
        simulator.sim.set_device(sn.inverter_sn, online=True)


def test_a_member_added_from_the_page_has_its_results_matched(mirrored_fleet, fast_commands, simulator):
    tenant = simulator.sim.tenant()
    group = Group.objects.filter(account=mirrored_fleet).first()
    free = next(inv.sn for inv in tenant.inverters.values() if inv.bound and inv.member_id is None)
    writes.request_member_add(group, free)
    add = ledger.claim_next(mirrored_fleet.pk)
    assert add is not None and add.endpoint == "inverter_add"
    dispatch.send(add)
    # the command is planned before the re-read brought the new member's dongle SN
    assert Inverter.objects.get(account=mirrored_fleet, inverter_sn=free).dongle_sn == ""
    _all_online(simulator, group)
    command = drive(service.create_command(mirrored_fleet, Target("group", group=group), FORCED_CHARGE))
    assert command.state == CommandState.SUCCEEDED, list(command.results.values_list("sn", "state", "answer"))
    result = command.results.get(sn=free)
    assert (result.state, result.dongle_sn) == (DeviceState.SUCCEEDED, tenant.inverters[free].wifi_sn)
    assert command.devices_total == len(tenant.groups[group.remote_id].members)


def test_an_answer_for_a_device_not_in_the_mirror_is_kept_and_shown(mirrored_fleet, fast_commands, simulator,
                                                                    viewer_client):
    tenant = simulator.sim.tenant()
    group = Group.objects.filter(account=mirrored_fleet).first()
    _all_online(simulator, group)
    missing = group.members.order_by("inverter_sn").first()
    dongle = missing.dongle_sn
    missing.delete()  # the mirror lost it; the cloud still has it in the group
    command = drive(service.create_command(mirrored_fleet, Target("group", group=group), FORCED_CHARGE))
    assert command.state == CommandState.SUCCEEDED
    deadline = time.monotonic() + 10
    while not tracking.unmatched_answers(command) or None in dict(
            tracking.unmatched_answers(command)).values():
        assert time.monotonic() < deadline, "the unknown device's answer was dropped"
        dispatch.pump(mirrored_fleet.pk, wait=False)
        time.sleep(0.05)
    assert tracking.unmatched_answers(command) == [(dongle, "success")]
    assert command.devices_total == len(tenant.groups[group.remote_id].members) - 1
    page = viewer_client.get(f"/commands/{command.code}/")
    assert page.status_code == 200
    assert b"answered, not in the mirror" in page.content and dongle.encode() in page.content


def test_silent_devices_cost_at_most_two_result_polls_per_batch(mirrored_fleet, fast_commands, simulator):
    """Poll economy: a first look after the learned delay, then (answers no longer arriving) one final
    look before the deadline; the silent devices are then "no answer" without more calls."""
    fast_commands.COMMAND_EXPIRY_SECONDS = 4
    mirrored_fleet.result_delay_seconds = 0.6  # as learned: the simulator's devices answer within 0.2 s
    mirrored_fleet.save(update_fields=["result_delay_seconds"])
    group, offline = _group_with_offline(simulator, mirrored_fleet)
    command = service.create_command(mirrored_fleet, Target("group", group=group), FORCED_CHARGE)
    command = drive(command, 12)
    polls = ApiCall.objects.filter(origin_code=command.code, endpoint="query_result").count()
    assert command.state == CommandState.PARTIAL and polls == 2, polls
    silent = command.results.filter(state=DeviceState.NO_ANSWER)
    assert set(silent.values_list("sn", flat=True)) == offline
    assert "final look" in silent.first().answer


def test_a_first_look_that_comes_too_early_lengthens_the_learned_delay(mirrored_fleet, fast_commands, simulator):
    simulator.sim.configure(device_delay=(1.0, 1.2))
    group = Group.objects.filter(account=mirrored_fleet).first()
    for member in group.members.all():
        simulator.sim.set_device(member.inverter_sn, online=True)
    command = drive(service.create_command(mirrored_fleet, Target("group", group=group), FORCED_CHARGE))
    assert command.state == CommandState.SUCCEEDED
    mirrored_fleet.refresh_from_db()
    assert mirrored_fleet.result_delay_seconds > fast_commands.COMMAND_FIRST_RESULT_SECONDS


def test_the_first_result_poll_waits_for_the_learned_delay(mirrored_fleet, fast_commands, simulator):
    from datetime import timedelta

    mirrored_fleet.result_delay_seconds = 7.5
    mirrored_fleet.save(update_fields=["result_delay_seconds"])
    assert tracking.first_result_delay(mirrored_fleet) == timedelta(seconds=7.5)
    mirrored_fleet.result_delay_seconds = None
    assert tracking.first_result_delay(mirrored_fleet) == timedelta(seconds=fast_commands.COMMAND_FIRST_RESULT_SECONDS)


@pytest.mark.parametrize(("waited", "due"), [(5, 12.0), (15, None)])  # None: the first queryCommand's due
def test_the_first_look_counts_the_devices_delay_from_the_send(mirrored_fleet, fast_commands, simulator,
                                                               waited, due):
    """A queryCommand that waited behind other sends has used part of the devices' delay (all of it,
    when it waited longer): the first result poll is due at send + delay, not at the queryCommand's
    answer + delay; and when that moment has passed, since its first queryCommand was due (the look
    ages once). Times in seconds after the send; the fast expiry is 20 s."""
    from datetime import timedelta

    from django.utils import timezone

    fast_commands.COMMAND_POLL_BASE_SECONDS = 2  # the first queryCommand stays queued in the first pump
    mirrored_fleet.result_delay_seconds = 12.0
    mirrored_fleet.save(update_fields=["result_delay_seconds"])
    group = Group.objects.filter(account=mirrored_fleet).first()
    command = service.create_command(mirrored_fleet, Target("group", group=group), FORCED_CHARGE)
    assert dispatch.pump(mirrored_fleet.pk, wait=False)  # the control call
    send = ApiCall.objects.get(origin_code=command.code, endpoint="group_control")
    assert ApiCall.objects.get(origin_code=command.code, endpoint="query_command").state == CallState.QUEUED
    # as if the queryCommand had waited in the queue behind a fleet's sends
    sent_at = timezone.now() - timedelta(seconds=waited)
    ApiCall.objects.filter(pk=send.pk).update(sent_at=sent_at)
    deadline = time.monotonic() + 10
    while not ApiCall.objects.filter(origin_code=command.code, endpoint="query_result").exists():
        assert time.monotonic() < deadline, "no result poll was queued"
        dispatch.pump(mirrored_fleet.pk, wait=False)
        time.sleep(0.05)
    first_look = ApiCall.objects.filter(origin_code=command.code, endpoint="query_result").order_by("id").first()
    expected = sent_at + (timedelta(seconds=due) if due is not None else tracking._poll_delay(0))
    assert abs((first_look.not_before - expected).total_seconds()) < 0.1
