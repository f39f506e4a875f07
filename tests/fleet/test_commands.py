"""fleet.commands without HTTP: the cost plan and what create_command writes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from fleet.commands import service
from fleet.commands.actions import CommandError
from fleet.commands.targets import Target
from fleet.models import ApiCall, CallState, Command, CommandBatch, DeviceResult, Group, Inverter, Priority
from fleet.pipeline import ledger

pytestmark = pytest.mark.django_db


@pytest.fixture
def group(account):  # type: ignore[no-untyped-def]
    group = Group.objects.create(account=account, remote_id="1001", name="North")
    for i in range(3):
        Inverter.objects.create(account=account, group=group, remote_id=f"50{i}", inverter_sn=f"H4AA000000000{i}",
                                dongle_sn=f"SWAA00000{i}")
    return group


def test_the_plan_counts_calls_and_the_share_of_today(account, group):
    plan = service.plan_command(account, Target("group", group=group), {"superType": 1, "systemSwitch": 1})
    assert (plan.sends, plan.polls, plan.calls, plan.devices) == (1, 4, 5, 3)
    assert plan.day_share_percent == 0.05 and plan.fits_today
    assert plan.wait_seconds == 0 and plan.label == "System on to group North"


def test_the_plan_waits_behind_the_queue_and_a_spent_minute(account, group):
    call = ApiCall.objects.create(account=account, endpoint="group_query", priority=Priority.READ, params={})
    ledger.record_past_attempts(account, call, [timezone.now() - timedelta(seconds=5)] * 9)
    for _ in range(12):
        ApiCall.objects.create(account=account, endpoint="single_control", priority=Priority.CONTROL, params={})
    plan = service.plan_command(account, Target("group", group=group), {"superType": 1, "systemSwitch": 1})
    assert plan.queued_ahead == 12
    assert plan.wait_seconds >= 60  # 13 control calls at 9 a minute, the minute already spent
    assert plan.day_free == 10_000 - 100 - 9


def test_a_paused_account_delays_the_plan(account, group):
    account.paused_until = timezone.now() + timedelta(minutes=10)
    account.save()
    plan = service.plan_command(account, Target("group", group=group), {"superType": 1, "systemSwitch": 1})
    assert plan.wait_seconds > 500


def test_create_command_writes_command_results_batches_and_calls(account, group, operator):
    command = service.create_command(account, Target("group", group=group), {"superType": 2, "mode": 3,
                                                                                "manualMode": 1},
                                      user=operator, ip="192.0.2.1")
    assert command.label == "Forced charge to group North" and command.created_by == operator
    batch = CommandBatch.objects.get(command=command)
    assert batch.call.endpoint == "group_control" and batch.call.state == CallState.QUEUED
    assert batch.call.params == {"groupId": "1001", "superType": "2", "mode": "3", "manualMode": "1"}
    assert set(DeviceResult.objects.filter(command=command).values_list("dongle_sn", flat=True)) == {
        "SWAA000000", "SWAA000001", "SWAA000002"}
    assert command.expires_at > command.created


def test_a_bad_command_writes_nothing(account, group):
    with pytest.raises(CommandError) as raised:
        service.create_command(account, Target("selection", sns=("H4AA0000000000", "H4NOPE000001")),
                                {"superType": 0, "mode": 1, "activePower": 70000})
    assert set(raised.value.errors) >= {"sns", "activePower", "timeout"}
    assert not Command.objects.exists() and not ApiCall.objects.exists()


def test_the_callback_url_carries_the_accounts_secret(account, settings):
    settings.PUBLIC_BASE_URL = "https://fleet.example"
    assert account.callback_url == f"https://fleet.example/solax/callback/{account.get_callback_secret()}/"


def test_the_tick_is_a_beat_entry_that_expires():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["commands-tick"]
    assert entry["task"] == "fleet.tasks.command_tick" and entry["options"]["expires"]
