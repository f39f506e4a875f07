"""Price rules for several groups and saved selections (resolved like commands' and schedules'
targets), the plan's labelled value estimate, and the minute slots the ledger keeps for a plan's
coming writes (as for schedule edges)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from fleet.models import (
    ApiCall,
    CallState,
    Command,
    Group,
    Inverter,
    PlanEdge,
    PriceRule,
    PriceZone,
    Priority,
    SavedSelection,
    TargetKind,
)
from fleet.pipeline import ledger, queue
from fleet.prices import service
from fleet.prices.parsing import Interval, ParsedPrices, day_bounds

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2026, 6, 15)
DUCK = [60, 55, 50, 52, 58, 70, 90, 120, 110, 80, 40, 20, 10, 15, 30, 60, 90, 130, 150, 140, 100, 80, 70, 65]
EVENING_BEFORE = datetime(2026, 6, 14, 18, tzinfo=UTC)


@pytest.fixture
def zone(account):  # type: ignore[no-untyped-def]
    return PriceZone.objects.create(account=account, name="DE-LU", timezone="Europe/Berlin")


@pytest.fixture
def groups(account):  # type: ignore[no-untyped-def]
    north = Group.objects.create(account=account, remote_id="100", name="North", device_count=2)
    south = Group.objects.create(account=account, remote_id="200", name="South", device_count=1)
    for i, (group, power) in enumerate([(north, 5.0), (north, 10.0), (south, None)]):
        Inverter.objects.create(account=account, group=group, remote_id=str(i), inverter_sn=f"SN{i}",
                                dongle_sn=f"D{i}", rated_power=power)
    return north, south


def _store(zone, prices=DUCK, day=DAY):  # type: ignore[no-untyped-def]
    start, _ = day_bounds(day, BERLIN)
    intervals = [Interval(start + timedelta(hours=i), 60, Decimal(str(p))) for i, p in enumerate(prices)]
    return service.store_series(zone, ParsedPrices(day, 60, "MWh", "EUR", intervals), source="csv")


def _rule(zone, **target):  # type: ignore[no-untyped-def]
    groups = target.pop("groups", ())
    rule = PriceRule.objects.create(zone=zone, charge_hours=3, discharge_hours=2, min_soc=20, **target)
    rule.groups.set(groups)
    return rule


# Several groups and saved selections ----------------------------------------------------------

def test_a_rule_for_several_groups_costs_what_the_cover_needs_and_sends_to_those_groups(account, zone, groups):
    account.max_sns_per_call = 1  # three SNs: three batches, or the two groups as two group calls
    account.save()
    rule = _rule(zone, target_kind=TargetKind.GROUPS, groups=groups)
    assert rule.target_label == "groups North, South"
    plan = service.propose(rule, _store(zone))
    assert plan.calls == 2  # one windows write, two group calls
    service.accept(plan, now=EVENING_BEFORE)
    windows = PlanEdge.objects.get(plan=plan, fallback=False)
    assert (windows.account_id, windows.calls) == (account.pk, 2)
    assert service.tick(windows.due_at).fired == 1
    command = Command.objects.get()
    assert command.target_kind == TargetKind.GROUPS and command.source == "prices"
    assert set(command.groups.all()) == set(groups) and command.action["mode"] == "10"


def test_a_rule_for_a_saved_selection_sends_to_the_selection(account, zone, groups):
    selection = SavedSelection.objects.create(account=account, name="Pilots", sns=["SN0", "SN2"])
    rule = _rule(zone, target_kind=TargetKind.SAVED, selection=selection)
    assert rule.target_label == "selection Pilots"
    plan = service.accept(service.propose(rule, _store(zone)), now=EVENING_BEFORE)
    windows = PlanEdge.objects.get(plan=plan, fallback=False)
    assert service.tick(windows.due_at).fired == 1
    command = Command.objects.get()
    assert command.target_kind == TargetKind.SAVED and command.selection == selection
    assert command.sns == ["SN0", "SN2"] and command.devices_total == 2


def test_a_selection_whose_devices_are_gone_is_rejected_at_send_time(account, zone, groups):
    selection = SavedSelection.objects.create(account=account, name="Pilots", sns=["SN0"])
    rule = _rule(zone, target_kind=TargetKind.SAVED, selection=selection)
    plan = service.accept(service.propose(rule, _store(zone)), now=EVENING_BEFORE)
    Inverter.objects.filter(inverter_sn="SN0").update(removed=True)
    windows = PlanEdge.objects.get(plan=plan, fallback=False)
    assert service.tick(windows.due_at).rejected == 1
    windows.refresh_from_db()
    assert "SN0" in windows.error and not Command.objects.exists()


# The value estimate ---------------------------------------------------------------------------

def test_the_value_estimate_is_spread_times_rated_power_times_the_shorter_window(zone, groups):
    rule = _rule(zone, target_kind=TargetKind.GROUPS, groups=groups)
    plan = service.propose(rule, _store(zone))
    # charge 11-14 at 20, 10, 15 (avg 15); discharge 18-20 at 150, 140 (avg 145): spread 130 EUR/MWh
    assert plan.spread == Decimal("130.00")
    # 5 kW + 10 kW for min(3 h, 2 h): 30 kWh; SN2 has no rated power and is left out
    assert plan.energy_estimate_kwh == Decimal("30.0") and plan.devices_without_power == 1
    assert plan.value_estimate == Decimal("3.90")  # 130 EUR/MWh x 0.030 MWh


def test_a_plan_without_discharge_has_no_value_estimate(zone, groups):
    rule = _rule(zone, group=groups[0])
    PriceRule.objects.filter(pk=rule.pk).update(discharge_hours=0)
    rule.refresh_from_db()
    plan = service.propose(rule, _store(zone))
    assert plan.value_estimate is None and plan.energy_estimate_kwh == Decimal("0.0")


# Budget reservation for the coming writes ------------------------------------------------------

def test_reserved_slots_count_the_pending_edges_of_accepted_plans(account, zone, groups):
    account.max_sns_per_call = 1
    account.save()
    rule = _rule(zone, target_kind=TargetKind.GROUPS, groups=groups)
    plan = service.accept(service.propose(rule, _store(zone)), now=EVENING_BEFORE)
    windows = PlanEdge.objects.get(plan=plan, fallback=False)
    assert ledger.reserved_slots(account.pk, windows.due_at - timedelta(minutes=5)) == 0
    assert ledger.reserved_slots(account.pk, windows.due_at - timedelta(seconds=90)) == 2
    assert ledger.reserved_slots(account.pk, windows.due_at + timedelta(seconds=30)) == 2  # due, not yet ticked
    service.tick(windows.due_at + timedelta(seconds=31))
    assert ledger.reserved_slots(account.pk, windows.due_at + timedelta(seconds=32)) == 0  # fired: nothing kept


def test_a_read_cannot_take_the_last_slot_of_the_minute_kept_for_a_plans_write(account, zone, groups):
    account.calls_per_minute, account.safety_margin_per_minute = 3, 1  # 2 usable slots
    account.save()
    now = timezone.now()
    rule = _rule(zone, group=groups[0])
    plan = service.propose(rule, _store(zone, day=now.astimezone(BERLIN).date()))
    service.accept(plan, now=now - timedelta(seconds=10))  # the day has begun: the windows are due at once
    windows = PlanEdge.objects.get(plan=plan, fallback=False)
    PlanEdge.objects.filter(pk=windows.pk).update(due_at=now + timedelta(seconds=40))  # in 40 s
    filler = ApiCall.objects.create(account=account, endpoint="group_query", priority=Priority.READ,
                                    state=CallState.SUCCEEDED)
    ledger.record_past_attempts(account, filler, [now])  # 1 slot left, and it is kept for the write
    read = queue.enqueue(account, "group_query", {"current": 1, "size": 10})
    now += timedelta(seconds=1)
    assert ledger.claim_next(account.pk, now=now) is None  # the read waits
    read.refresh_from_db()
    assert read.state == CallState.QUEUED
    assert service.tick(now + timedelta(seconds=40)).fired == 1  # the write's command takes the slot
    control = ApiCall.objects.get(priority=Priority.CONTROL)
    assert ledger.claim_next(account.pk, now=now + timedelta(seconds=40)).pk == control.pk
    read.refresh_from_db()
    assert read.state == CallState.QUEUED


def test_a_superseded_plans_edges_keep_no_slots(account, zone, groups):
    rule = _rule(zone, group=groups[0])
    first = service.accept(service.propose(rule, _store(zone)), now=EVENING_BEFORE)
    due = PlanEdge.objects.get(plan=first, fallback=False).due_at
    assert ledger.reserved_slots(account.pk, due) == 1
    changed = list(DUCK)
    changed[3] = -5
    second = service.accept(service.propose(rule, _store(zone, changed)), now=EVENING_BEFORE)
    assert ledger.reserved_slots(account.pk, due) == 1  # the new plan's write only, not both
    assert PlanEdge.objects.get(plan=second, fallback=False).due_at == due
