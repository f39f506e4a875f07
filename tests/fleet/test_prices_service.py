"""The prices service: storing a day, proposing and accepting plans, replacing them only when they
change (once a day per target unless forced), the day's fallback, and the minute tick."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import responses

from fleet.models import (
    Command,
    DayPlan,
    Group,
    Inverter,
    PlanEdge,
    PlanEdgeState,
    PlanForm,
    PlanState,
    PriceRule,
    PriceZone,
)
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
def rule(zone, account):  # type: ignore[no-untyped-def]
    group = Group.objects.create(account=account, remote_id="100", name="North")
    Inverter.objects.create(account=account, group=group, remote_id="1", inverter_sn="SNA1", dongle_sn="D1")
    return PriceRule.objects.create(zone=zone, group=group, charge_hours=3, discharge_hours=2, min_soc=20)


def _store(zone, prices=DUCK, day=DAY, unit="MWh"):  # type: ignore[no-untyped-def]
    start, _ = day_bounds(day, BERLIN)
    intervals = [Interval(start + timedelta(hours=i), 60, Decimal(str(p))) for i, p in enumerate(prices)]
    return service.store_series(zone, ParsedPrices(day, 60, unit, "EUR", intervals), source="csv")


def test_a_kwh_series_is_compared_per_mwh(zone, rule):
    series = _store(zone, [p / 1000 for p in DUCK], unit="kWh")
    plan = service.propose(rule, series)
    assert plan.avg_charge == Decimal("15.00") and plan.avg_discharge == Decimal("145.00")


def test_a_plan_that_fits_is_one_windows_write_due_at_the_start_of_its_day(zone, rule):
    plan = service.propose(rule, _store(zone))
    assert (plan.form, plan.calls) == (PlanForm.WINDOWS, 1)
    service.accept(plan, now=EVENING_BEFORE)
    windows, fallback = PlanEdge.objects.filter(plan=plan).order_by("due_at")
    start, end = day_bounds(DAY, BERLIN)
    assert (windows.due_at, windows.action["mode"], windows.fallback) == (start, 10, False)
    assert (fallback.due_at, fallback.action["mode"], fallback.action["minSoc"], fallback.fallback) == (
        end, 0, 20, True)


def test_a_plan_accepted_during_its_day_writes_the_windows_at_once(zone, rule):
    plan = service.propose(rule, _store(zone))
    noon = datetime(2026, 6, 15, 10, tzinfo=UTC)
    service.accept(plan, now=noon)
    assert PlanEdge.objects.get(plan=plan, fallback=False).due_at == noon


def test_a_plan_of_many_periods_is_sent_as_edges_and_past_edges_are_not_sent(zone, rule):
    PriceRule.objects.filter(pk=rule.pk).update(charge_hours=3, discharge_hours=3)
    rule.refresh_from_db()
    plan = service.propose(rule, _store(zone, [10, 100] * 12))
    assert plan.form == PlanForm.EDGES and plan.calls == 7 == len(plan.edges)
    two_am = day_bounds(DAY, BERLIN)[0] + timedelta(hours=2, minutes=30)
    service.accept(plan, now=two_am)
    assert PlanEdge.objects.filter(plan=plan).count() == 4  # 03:00, 04:00, 05:00 and the self use at 06:00


def test_accepting_another_plan_of_the_day_supersedes_the_pending_edges(zone, rule):
    first = service.accept(service.propose(rule, _store(zone)), now=EVENING_BEFORE)
    second = service.accept(service.propose(rule, _store(zone, list(reversed(DUCK)))), now=EVENING_BEFORE)
    first.refresh_from_db()
    assert first.state == PlanState.SUPERSEDED and second.state == PlanState.ACCEPTED
    assert set(PlanEdge.objects.filter(plan=first).values_list("state", flat=True)) == {PlanEdgeState.SUPERSEDED}
    assert set(PlanEdge.objects.filter(plan=second).values_list("state", flat=True)) == {PlanEdgeState.PENDING}


def test_new_prices_replan_only_what_changed(zone, rule):
    accepted = service.accept(service.propose(rule, _store(zone)), now=EVENING_BEFORE)
    same = service.replan(_store(zone), now=EVENING_BEFORE)
    assert (same.unchanged, same.replaced) == (1, 0)
    accepted.refresh_from_db()
    assert accepted.state == PlanState.ACCEPTED
    changed = list(DUCK)
    changed[3] = -5  # 03:00 becomes the cheapest hour
    report = service.replan(_store(zone, changed), now=EVENING_BEFORE)
    assert report.replaced == 1
    accepted.refresh_from_db()
    assert accepted.state == PlanState.SUPERSEDED
    now = DayPlan.objects.get(state=PlanState.ACCEPTED)
    assert now.periods[0]["kind"] == "charge" and now.periods[0]["start"].startswith("2026-06-15T01:00")


def test_a_sent_plan_is_replaced_once_a_day_unless_forced(zone, rule):
    noon = datetime(2026, 6, 15, 10, tzinfo=UTC)
    first = service.accept(service.propose(rule, _store(zone)), now=noon)
    assert service.tick(noon + timedelta(seconds=1)).fired == 1  # the windows went out
    changed = list(DUCK)
    changed[20] = 500
    assert service.replan(_store(zone, changed), now=noon).replaced == 1  # the first replacement: allowed
    assert service.tick(noon + timedelta(seconds=2)).fired == 1
    changed[21] = 600
    report = service.replan(_store(zone, changed), now=noon)
    assert (report.replaced, report.proposed) == (0, 1)  # the second waits for an operator
    waiting = DayPlan.objects.get(state=PlanState.PROPOSED)
    with pytest.raises(service.AcceptError, match="force"):
        service.accept(waiting, now=noon)
    service.accept(waiting, now=noon, force=True)
    assert DayPlan.objects.get(state=PlanState.ACCEPTED) == waiting
    assert first.code != waiting.code


def test_the_days_fallback_gives_way_to_the_next_days_plan(zone, rule):
    today = service.accept(service.propose(rule, _store(zone)), now=EVENING_BEFORE)
    fallback = PlanEdge.objects.get(plan=today, fallback=True)
    tomorrow = service.propose(rule, _store(zone, day=DAY + timedelta(days=1)))
    service.accept(tomorrow, now=EVENING_BEFORE)
    fallback.refresh_from_db()
    assert fallback.state == PlanEdgeState.SUPERSEDED


def test_the_tick_drops_a_fallback_when_the_next_day_was_planned_first(zone, rule):
    tomorrow = service.accept(service.propose(rule, _store(zone, day=DAY + timedelta(days=1))), now=EVENING_BEFORE)
    today = service.accept(service.propose(rule, _store(zone)), now=EVENING_BEFORE)
    fallback = PlanEdge.objects.get(plan=today, fallback=True)
    report = service.tick(fallback.due_at + timedelta(seconds=1))
    fallback.refresh_from_db()
    assert fallback.state == PlanEdgeState.SUPERSEDED and report.superseded == 1
    assert PlanEdge.objects.get(plan=tomorrow, fallback=False).state == PlanEdgeState.FIRED


def test_the_tick_fires_once_and_marks_late_edges_missed(zone, rule, settings):
    plan = service.accept(service.propose(rule, _store(zone)), now=EVENING_BEFORE)
    windows = PlanEdge.objects.get(plan=plan, fallback=False)
    late = windows.due_at + timedelta(minutes=settings.SCHEDULE_GRACE_MINUTES + 1)
    assert service.tick(late).missed == 1
    windows.refresh_from_db()
    assert windows.state == PlanEdgeState.MISSED and windows.command is None
    assert not Command.objects.exists()


def test_the_tick_sends_through_the_command_service(zone, rule):
    plan = service.accept(service.propose(rule, _store(zone)), now=EVENING_BEFORE)
    windows = PlanEdge.objects.get(plan=plan, fallback=False)
    assert service.tick(windows.due_at).fired == 1
    assert service.tick(windows.due_at).fired == 0
    windows.refresh_from_db()
    command = Command.objects.get()
    assert windows.command == command and command.source == "prices" and command.group == rule.group
    assert command.action == {k: str(v) for k, v in windows.action.items()}  # the vendor's strings
    assert command.action["mode"] == "10" and command.action["chargeStartTime1Hour"] == "11"


def test_an_edge_the_command_service_refuses_is_rejected(zone, rule):
    plan = service.accept(service.propose(rule, _store(zone)), now=EVENING_BEFORE)
    Inverter.objects.filter(group=rule.group).delete()  # nobody left to command
    windows = PlanEdge.objects.get(plan=plan, fallback=False)
    assert service.tick(windows.due_at).rejected == 1
    windows.refresh_from_db()
    assert windows.state == PlanEdgeState.REJECTED and windows.error
    assert not Command.objects.exists()


def test_a_plan_whose_day_is_over_cannot_be_accepted(zone, rule):
    plan = service.propose(rule, _store(zone))
    with pytest.raises(service.AcceptError, match="day is over"):
        service.accept(plan, now=datetime.combine(DAY + timedelta(days=2), time(0), UTC))


# The ENTSO-E fetcher behind its setting (recorded answers, never the network) ------------------

ANSWERS = Path(__file__).resolve().parents[1] / "fixtures" / "prices" / "entsoe"
API = "https://web-api.tp.entsoe.eu/api"


@pytest.fixture
def entsoe_on(settings):  # type: ignore[no-untyped-def]
    settings.ENTSOE_ENABLED, settings.ENTSOE_API_TOKEN, settings.ENTSOE_API_URL = True, "tok-123", API
    settings.ENTSOE_FETCH_HOUR = 14
    return settings


@responses.activate
def test_the_fetcher_stores_tomorrow_once_after_the_fetch_hour_and_replans(zone, rule, entsoe_on):
    PriceZone.objects.filter(pk=zone.pk).update(eic="10Y1001A1001A82H")
    responses.get(API, body=(ANSWERS / "answer_a44_DE-LU_2026-06-15.xml").read_bytes())
    assert service.fetch_due_zones(datetime(2026, 6, 14, 10, tzinfo=UTC)).stored == 0  # 12:00 local: too early
    assert len(responses.calls) == 0
    assert service.fetch_due_zones(datetime(2026, 6, 14, 13, tzinfo=UTC)).stored == 1
    assert service.fetch_due_zones(datetime(2026, 6, 14, 14, tzinfo=UTC)).stored == 0  # already there
    assert len(responses.calls) == 1
    assert DayPlan.objects.get().state == PlanState.PROPOSED  # re-planned for the rule


@responses.activate
def test_the_fetcher_is_off_by_default_and_a_failure_is_counted(zone, settings):
    PriceZone.objects.filter(pk=zone.pk).update(eic="10Y1001A1001A82H")
    assert settings.ENTSOE_ENABLED is False
    assert service.fetch_due_zones(datetime(2026, 6, 14, 13, tzinfo=UTC)).stored == 0
    assert len(responses.calls) == 0
    settings.ENTSOE_ENABLED, settings.ENTSOE_API_TOKEN, settings.ENTSOE_API_URL = True, "tok-123", API
    responses.get(API, body=(ANSWERS / "answer_no_data.xml").read_bytes())
    report = service.fetch_due_zones(datetime(2026, 6, 14, 13, tzinfo=UTC))
    assert (report.stored, report.failed) == (0, 1)


def test_a_new_proposal_retires_the_older_one_of_the_day(zone, rule):
    first = service.propose(rule, _store(zone))
    second = service.propose(rule, _store(zone, list(reversed(DUCK))))
    first.refresh_from_db()
    assert (first.state, second.state) == (PlanState.SUPERSEDED, PlanState.PROPOSED)
    with pytest.raises(service.AcceptError, match="superseded"):
        service.accept(first, now=EVENING_BEFORE)


def test_replacing_a_plan_before_anything_was_sent_does_not_count(zone, rule):
    noon = datetime(2026, 6, 15, 10, tzinfo=UTC)
    service.accept(service.propose(rule, _store(zone)), now=EVENING_BEFORE)
    changed = list(DUCK)
    changed[20] = 500
    assert service.replan(_store(zone, changed), now=EVENING_BEFORE).replaced == 1  # nothing sent yet
    assert service.tick(day_bounds(DAY, BERLIN)[0]).fired == 1  # midnight: the windows go out
    changed[21] = 600
    assert service.replan(_store(zone, changed), now=noon).replaced == 1  # the day's one replacement of a sent plan
    assert service.tick(noon).fired == 1
    changed[22] = 700
    assert service.replan(_store(zone, changed), now=noon).replaced == 0  # the next one waits for an operator
