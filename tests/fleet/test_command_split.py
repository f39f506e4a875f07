"""A batch the cloud refuses as too long (a definite answer: nothing executed) is halved and both halves
are sent: every device is controlled exactly once, and its result is followed. Against the simulator
over real HTTP, with the account's max_sns_per_call above the simulator's batch cap."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from fleet.commands import service
from fleet.commands.targets import Target
from fleet.models import ApiCall, CallState, CommandBatch, CommandState, DeviceState, Inverter
from fleet.pipeline import dispatch, ledger
from solax.errors import ApiError, ListTooLongError, error_for_vendor_failure, in_operator_words

from .test_command_tracking import drive

pytestmark = pytest.mark.django_db(transaction=True)
ON = {"superType": 1, "systemSwitch": 1}


def _online_sns(simulator, account, n):  # type: ignore[no-untyped-def]
    tenant = simulator.sim.tenant()
    sns = [sn for sn in Inverter.objects.filter(account=account).order_by("inverter_sn")
           .values_list("inverter_sn", flat=True) if tenant.inverters[sn].online]
    assert len(sns) >= n
    return tuple(sns[:n])


def _controlled(simulator) -> Counter[str]:  # type: ignore[no-untyped-def]
    """How many control commands the simulator executed for each dongle SN."""
    tenant = simulator.sim.tenant()
    return Counter(dongle for command in tenant.commands.by_id.values() for dongle in command.devices)


def test_the_vendor_refusal_for_length_is_its_own_error_that_executed_nothing():
    error = error_for_vendor_failure("The number of snList cannot exceed 4", 1002, endpoint="batch_control")
    assert isinstance(error, ListTooLongError) and isinstance(error, ApiError)
    assert error.limit == 4 and not error.may_have_reached_cloud
    assert "nothing was executed" in (in_operator_words(str(error)) or "")
    assert type(error_for_vendor_failure("snList cannot be empty", 1002)) is ApiError


def test_a_batch_refused_as_too_long_is_halved_until_every_device_is_controlled_once(
        mirrored_fleet, fast_commands, simulator):
    simulator.sim.configure(batch_cap=3)
    mirrored_fleet.max_sns_per_call = 10
    mirrored_fleet.save()
    sns = _online_sns(simulator, mirrored_fleet, 10)
    command = service.create_command(mirrored_fleet, Target("selection", sns=sns), ON)
    assert command.batches.count() == 1
    command = drive(command)
    assert command.state == CommandState.SUCCEEDED, command.results.values_list("sn", "state", "answer")
    assert command.devices_succeeded == 10
    # 10 -> 5 + 5 -> (3 + 2) + (3 + 2): four batches reached the devices
    batches = CommandBatch.objects.filter(command=command)
    assert sorted(len(b.sns) for b in batches) == [2, 2, 3, 3]
    assert sorted(sn for b in batches for sn in b.sns) == sorted(sns)
    assert all(b.results.count() == len(b.sns) for b in batches)
    dongles = dict(Inverter.objects.filter(inverter_sn__in=sns).values_list("inverter_sn", "dongle_sn"))
    controlled = _controlled(simulator)
    assert {dongles[sn]: controlled[dongles[sn]] for sn in sns} == {dongles[sn]: 1 for sn in sns}
    counters = simulator.counters()
    tenant = counters["tokens"][simulator.token]
    assert tenant["calls"]["batch_control"] == 7  # 1 refused + 2 refused + 4 executed
    assert counters["duplicates"] == 0
    refused = ApiCall.objects.filter(origin_code=command.code, endpoint="batch_control", state=CallState.FAILED)
    assert refused.count() == 3 and all("cannot exceed 3" in call.error for call in refused)
    assert ApiCall.objects.filter(origin_code=command.code, endpoint="batch_control",
                                  state=CallState.SUCCEEDED).count() == 4


def test_a_refused_batch_of_a_command_past_must_start_by_is_not_sent_again(mirrored_fleet, fast_commands,
                                                                          simulator):
    simulator.sim.configure(batch_cap=2)
    mirrored_fleet.max_sns_per_call = 10
    mirrored_fleet.save()
    sns = _online_sns(simulator, mirrored_fleet, 4)
    command = service.create_command(mirrored_fleet, Target("selection", sns=sns), ON,
                                     start_by=timezone.now() + timedelta(minutes=5))
    call = ledger.claim_next(mirrored_fleet.pk)
    assert call is not None
    command.__class__.objects.filter(pk=command.pk).update(start_by=timezone.now() - timedelta(seconds=1))
    dispatch.send(call)  # refused as too long, and by now it is too late to send the halves
    command.refresh_from_db()
    assert command.state == CommandState.CANCELLED
    assert set(command.results.values_list("state", flat=True)) == {DeviceState.NOT_SENT}
    assert "refused the list as too long, then too late" in command.results.first().answer
    assert not ApiCall.objects.filter(origin_code=command.code, state=CallState.QUEUED).exists()
    assert _controlled(simulator) == Counter()
