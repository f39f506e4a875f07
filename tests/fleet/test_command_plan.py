"""An honest plan: when the first and the last batch leave at the current budget and queue, when every
result is expected, the share of today's budget, and the warnings (after "must start by", after the
next scheduled window, into the day's control reserve)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fleet.commands import service
from fleet.commands.rollout import RolloutSpec
from fleet.commands.targets import Target
from fleet.models import ApiCall, Group, Inverter, Priority, Schedule
from fleet.pipeline import ledger

pytestmark = pytest.mark.django_db
ON = {"superType": 1, "systemSwitch": 1}


def _fleet(account, n, groups=1, whole=True):  # type: ignore[no-untyped-def]
    # whole=False: the groups' counts are unknown (0), so no group call covers them
    made = [Group.objects.create(account=account, remote_id=f"10{g:04d}", name=f"G{g:04d}",
                                 device_count=n // groups if whole else 0) for g in range(groups)]
    Inverter.objects.bulk_create(
        Inverter(account=account, group=made[i % groups], remote_id=f"5{i:07d}", inverter_sn=f"H4AA{i:010d}",
                 dongle_sn=f"SWAA{i:06d}") for i in range(n))
    return tuple(Inverter.objects.filter(account=account).order_by("inverter_sn")
                 .values_list("inverter_sn", flat=True))


def _spent(account, times):  # type: ignore[no-untyped-def]
    call = ApiCall.objects.create(account=account, endpoint="group_query", priority=Priority.READ, params={})
    ledger.record_past_attempts(account, call, times)


def _close(a: datetime | None, b: datetime, seconds: float = 3) -> bool:
    assert a is not None
    return abs((a - b).total_seconds()) <= seconds


@pytest.fixture
def twenty(account):  # type: ignore[no-untyped-def]
    """20 inverters sent one per call: 20 batch calls at 9 calls a minute."""
    account.max_sns_per_call = 1
    account.save()
    return Target("selection", sns=_fleet(account, 20, whole=False))


def test_the_first_and_the_last_batch_leave_by_the_budget_with_the_polls_in_between(account, twenty):
    now = timezone.now()
    plan = service.plan_command(account, twenty, ON)
    assert (plan.sends, plan.per_minute) == (20, 9)
    assert plan.wait_seconds == 0 and _close(plan.goes_out_at, now)
    # 9 go now; each of the other 10 brings its queryCommand and result polls (4) into the shared minutes:
    # the last send is call 19 + 10 * 4 = 59, in the 6th window after this one
    assert _close(plan.last_leaves_at, now + 6 * ledger.minute_window())
    assert _close(plan.results_by, plan.last_leaves_at + timedelta(seconds=settings.COMMAND_FIRST_RESULT_SECONDS),
                  0.01)
    assert plan.day_share_percent == 1.0 and plan.warnings == []


def test_the_learned_result_delay_sets_when_results_are_expected(account, twenty):
    account.result_delay_seconds = 42
    account.save()
    plan = service.plan_command(account, twenty, ON)
    assert plan.results_by == plan.last_leaves_at + timedelta(seconds=42)


def test_a_queue_and_a_spent_minute_push_the_first_batch_back(account, twenty):
    _spent(account, [timezone.now() - timedelta(seconds=5)] * 9)
    for _ in range(12):
        ApiCall.objects.create(account=account, endpoint="single_control", priority=Priority.CONTROL, params={})
    ApiCall.objects.create(account=account, endpoint="group_query", priority=Priority.READ, params={})
    plan = service.plan_command(account, twenty, ON)
    assert plan.queued_ahead == 12  # reads of lower priority are not ahead of it
    assert _close(plan.goes_out_at, timezone.now() + 2 * ledger.minute_window())  # the 13th call: 2nd window


def test_a_last_batch_after_must_start_by_is_a_warning(account, twenty):
    start_by = timezone.now() + timedelta(minutes=3)
    plan = service.plan_command(account, twenty, ON, start_by=start_by)
    assert len(plan.warnings) == 1
    assert plan.warnings[0].startswith("The last batch would leave at ")
    assert f'after "must start by" {timezone.localtime(start_by, account.tzinfo):%H:%M:%S %Z}' in plan.warnings[0]
    assert "cancelled, not sent" in plan.warnings[0]
    assert service.plan_command(account, twenty, ON, start_by=timezone.now() + timedelta(hours=1)).warnings == []


def test_a_last_batch_after_the_next_scheduled_window_is_a_warning(account, twenty):
    edge = timezone.now() + timedelta(minutes=2)
    Schedule.objects.create(account=account, name="Evening peak", target_kind="fleet", start_time=time(18),
                            end_time=time(20), timezone="Europe/Berlin", next_edge_at=edge)
    Schedule.objects.create(account=account, name="Off", target_kind="fleet", start_time=time(18),
                            end_time=time(20), timezone="Europe/Berlin", enabled=False,
                            next_edge_at=timezone.now() + timedelta(seconds=30))
    plan = service.plan_command(account, twenty, ON)
    assert len(plan.warnings) == 1
    local = timezone.localtime(edge, account.tzinfo)
    assert f"after the next scheduled window (schedule Evening peak at {local:%H:%M:%S %Z})" in plan.warnings[0]
    one = service.plan_command(account, Target("selection", sns=twenty.sns[:1]), ON)
    assert one.warnings == []  # it leaves now, before the window


def test_a_command_that_eats_the_days_control_reserve_is_a_warning(account, twenty):
    _spent(account, [timezone.now() - timedelta(hours=2)] * 7_850)  # 2,050 free, the reserve is 2,000
    plan = service.plan_command(account, twenty, ON)
    assert plan.day_free == 2_050 and plan.calls == 100
    assert plan.warnings == ["This command's 100 calls would eat into the day's control reserve (2000 calls kept "
                             "for control writes): 1950 would be left today, and result polls do not go out "
                             "within the reserve."]
    small = service.plan_command(account, Target("selection", sns=twenty.sns[:5]), ON)
    assert small.warnings == []  # 25 calls leave 2,025


def test_past_the_days_budget_the_last_batch_waits_for_the_rolling_day(account, twenty):
    now = timezone.now()
    oldest = now - timedelta(hours=23)
    _spent(account, [oldest + timedelta(seconds=i) for i in range(9_890)])  # 10 free today
    plan = service.plan_command(account, twenty, ON)
    assert plan.day_free == 10 and not plan.fits_today
    # the last send is call 59: the 50th past today's free calls leaves when the 50th oldest request does
    assert plan.last_leaves_at is not None
    assert _close(plan.last_leaves_at, oldest + timedelta(seconds=49) + ledger.DAY)
    assert plan.warnings  # and it eats the reserve


def test_a_staged_rollout_plans_its_canary_then_the_rest_after_the_canarys_results(account, twenty):
    account.result_delay_seconds = 120
    account.save()
    plan = service.plan_command(account, twenty, ON, staged=RolloutSpec(2, "devices", 10))
    assert (plan.canary_devices, plan.canary_sends, plan.sends) == (2, 2, 20)
    assert plan.canary_results_by is not None and plan.last_leaves_at is not None
    assert _close(plan.canary_results_by, timezone.now() + timedelta(seconds=120))
    assert plan.last_leaves_at > plan.canary_results_by
    assert plan.results_by == plan.last_leaves_at + timedelta(seconds=120)


def test_the_plan_costs_the_same_queries_at_any_fleet_size(account):
    def queries(n: int) -> int:
        Inverter.objects.filter(account=account).delete()
        Group.objects.filter(account=account).delete()
        _fleet(account, n, groups=10)
        with CaptureQueriesContext(connection) as captured:
            service.plan_command(account, Target("fleet"), ON)
        return len(captured)

    assert queries(100) == queries(3_000)


def test_the_page_shows_the_plan_and_its_warnings(account, twenty, operator_client):
    Schedule.objects.create(account=account, name="Evening peak", target_kind="fleet", start_time=time(18),
                            end_time=time(20), timezone="Europe/Berlin",
                            next_edge_at=timezone.now() + timedelta(minutes=2))
    page = operator_client.post(f"/commands/new/?account={account.code}", {
        "target": "selection", "sns": "\n".join(twenty.sns), "superType": "1", "systemSwitch": "1",
        "start_within": "3"}).content.decode()
    assert 'id="plan-first"' in page and 'id="plan-last"' in page and 'id="plan-results"' in page
    assert page.count('class="msg msg-warning plan-warning"') == 2
    assert "after the next scheduled window (schedule Evening peak at" in page
    assert "CET" in page.split('id="plan-last"')[1][:300]
