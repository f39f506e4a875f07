"""Nothing sent late: each batch's deadline counts from its own send; a command's "must start by"
and an operator's cancel stop unsent batches, which are never sent. Against the simulator over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from fleet.commands import service, tracking
from fleet.commands.actions import CommandError
from fleet.commands.targets import Target
from fleet.models import ApiCall, CallState, CommandBatch, CommandState, DeviceState, Inverter
from fleet.pipeline import dispatch, ledger

from .test_command_tracking import drive

pytestmark = pytest.mark.django_db(transaction=True)
ON = {"superType": 1, "systemSwitch": 1}


def _sns(account, n):  # type: ignore[no-untyped-def]
    return tuple(Inverter.objects.filter(account=account).order_by("inverter_sn")
                 .values_list("inverter_sn", flat=True)[:n])


def test_a_batch_deadline_counts_from_its_send_not_from_the_commands_creation(mirrored_fleet, fast_commands):
    command = service.create_command(mirrored_fleet, Target("selection", sns=_sns(mirrored_fleet, 3)), ON)
    # the command waited an hour in the queue: its creation-time expiry is long past
    command.__class__.objects.filter(pk=command.pk).update(created=timezone.now() - timedelta(hours=1),
                                                           expires_at=timezone.now() - timedelta(minutes=45))
    command = drive(command)
    batch = CommandBatch.objects.get(command=command)
    sent_at = batch.call.sent_at
    assert batch.deadline == sent_at + timedelta(seconds=fast_commands.COMMAND_EXPIRY_SECONDS)
    assert command.state == CommandState.SUCCEEDED and command.devices_succeeded == 3
    assert command.expires_at == batch.deadline


def test_unsent_batches_past_must_start_by_are_cancelled_and_never_sent(mirrored_fleet, fast_commands, simulator):
    mirrored_fleet.max_sns_per_call = 2
    mirrored_fleet.save()
    command = service.create_command(mirrored_fleet, Target("selection", sns=_sns(mirrored_fleet, 6)), ON,
                                     start_by=timezone.now() - timedelta(seconds=1))
    assert command.batches.count() == 3
    tracking.tick()  # before any worker sent them
    command.refresh_from_db()
    assert command.state == CommandState.CANCELLED and command.devices_failed == 6
    assert set(command.results.values_list("state", flat=True)) == {DeviceState.NOT_SENT}
    assert "too late (must start by" in command.results.first().answer
    assert set(ApiCall.objects.filter(origin_code=command.code).values_list("state", flat=True)) == {
        CallState.CANCELLED}
    tracking.tick()
    assert dispatch.pump(mirrored_fleet.pk, wait=False) == 0
    assert simulator.counters()["tokens"][simulator.token]["calls"].get("batch_control", 0) == 0


def test_an_operator_cancels_what_is_not_sent_and_the_rest_is_followed(mirrored_fleet, fast_commands, operator):
    mirrored_fleet.max_sns_per_call = 2
    mirrored_fleet.save()
    command = service.create_command(mirrored_fleet, Target("selection", sns=_sns(mirrored_fleet, 4)), ON)
    first = CommandBatch.objects.filter(command=command).order_by("pk").first()
    # the first batch leaves, the second is still queued
    call = ledger.claim_next(mirrored_fleet.pk)
    assert call is not None and call.pk == first.call_id
    dispatch.send(call)
    assert service.cancel_command(command, user=operator) == 1
    command = drive(command)
    states = dict(command.results.values_list("sn", "state"))
    assert sorted(states.values()) == [DeviceState.NOT_SENT, DeviceState.NOT_SENT,
                                       DeviceState.SUCCEEDED, DeviceState.SUCCEEDED]
    assert command.state == CommandState.PARTIAL
    assert "cancelled by otto" in command.results.filter(state=DeviceState.NOT_SENT).first().answer
    with pytest.raises(CommandError):
        service.cancel_command(command, user=operator)


def test_the_cancel_button_needs_an_operator_and_the_organization(client, viewer_client, operator_client,
                                                                  mirrored_fleet, other_account):
    command = service.create_command(mirrored_fleet, Target("selection", sns=_sns(mirrored_fleet, 1)), ON)
    assert viewer_client.post(f"/commands/{command.code}/cancel/").status_code == 403
    assert operator_client.get(f"/commands/{command.code}/cancel/").status_code == 405
    page = operator_client.get(f"/commands/{command.code}/").content.decode()
    assert "Cancel the 1 unsent call" in page
    assert operator_client.post(f"/commands/{command.code}/cancel/").status_code == 302
    command.refresh_from_db()
    assert command.state == CommandState.CANCELLED


def test_must_start_by_also_holds_for_a_command_whose_first_batch_is_unknown(mirrored_fleet, fast_commands):
    mirrored_fleet.max_sns_per_call = 2
    mirrored_fleet.save()
    command = service.create_command(mirrored_fleet, Target("selection", sns=_sns(mirrored_fleet, 4)), ON,
                                     start_by=timezone.now() - timedelta(seconds=1))
    command.__class__.objects.filter(pk=command.pk).update(state=CommandState.UNKNOWN)
    tracking.tick()
    assert set(CommandBatch.objects.filter(command=command).values_list("state", flat=True)) == {
        CommandState.CANCELLED}
