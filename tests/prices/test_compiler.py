"""The compiler on fixed price curves: cheapest/dearest selection, thresholds, negative prices, the cap,
the device-windows form and the fallback to edges."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from fleet.prices.compiler import (
    CHARGE,
    DISCHARGE,
    FORCED_CHARGE,
    FORCED_DISCHARGE,
    PricePoint,
    Rule,
    RuleError,
    compile_plan,
    device_windows_action,
    edges,
    fits_device_windows,
    self_use,
)

BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2026, 6, 15)


def _curve(prices: list[float], day: date = DAY, minutes: int = 60) -> list[PricePoint]:
    start = datetime.combine(day, time(0), BERLIN).astimezone(UTC)
    return [PricePoint(start + timedelta(minutes=minutes * i), minutes, Decimal(str(p))) for i, p in enumerate(prices)]


# hour:      0   1   2   3   4   5   6   7   8    9   10  11  12  13  14  15  16  17  18   19   20   21  22  23
DUCK = [60, 55, 50, 52, 58, 70, 90, 120, 110, 80, 40, 20, 10, 15, 30, 60, 90, 130, 150, 140, 100, 80, 70, 65]


def _hours(plan, kind):  # type: ignore[no-untyped-def]
    return [(p.start.astimezone(BERLIN).hour, p.end.astimezone(BERLIN).hour) for p in plan.of(kind)]


def test_it_charges_in_the_cheapest_and_discharges_in_the_dearest_hours():
    plan = compile_plan(_curve(DUCK), Rule(charge_hours=Decimal(3), discharge_hours=Decimal(2)), BERLIN, DAY)
    assert _hours(plan, CHARGE) == [(11, 14)]  # 20, 10, 15
    assert _hours(plan, DISCHARGE) == [(18, 20)]  # 150, 140
    assert plan.avg_charge == Decimal("15.00") and plan.avg_discharge == Decimal("145.00")
    assert plan.spread == Decimal("130.00")
    assert fits_device_windows(plan, BERLIN)


def test_one_device_windows_write_carries_the_plan():
    plan = compile_plan(_curve(DUCK), Rule(charge_hours=Decimal(3), discharge_hours=Decimal(2)), BERLIN, DAY)
    action = device_windows_action(plan, BERLIN)
    assert action == {
        "superType": 2, "mode": 10, "p2TimeSetEnable": 0,
        "chargeStartTime1Hour": 11, "chargeStartTime1Minute": 0, "chargeEndTime1Hour": 14, "chargeEndTime1Minute": 0,
        "dischargeStartTime1Hour": 18, "dischargeStartTime1Minute": 0,
        "dischargerEndTime1Hour": 20, "dischargerEndTime1Minute": 0,
    }


def test_two_periods_of_each_use_period_two():
    plan = compile_plan(_curve(DUCK), Rule(charge_hours=Decimal(6), discharge_hours=Decimal(4)), BERLIN, DAY)
    assert _hours(plan, CHARGE) == [(2, 3), (10, 15)]
    assert _hours(plan, DISCHARGE) == [(7, 8), (17, 20)]
    action = device_windows_action(plan, BERLIN)
    assert action["p2TimeSetEnable"] == 1
    assert (action["chargeStartTime1Hour"], action["chargeEndTime1Hour"]) == (2, 3)
    assert (action["chargeStartTime2Hour"], action["chargeEndTime2Hour"]) == (10, 15)
    assert (action["dischargeStartTime2Hour"], action["dischargeEndTime2Hour"]) == (17, 20)


def test_more_than_two_periods_fall_back_to_edges():
    zigzag = [10, 100] * 12
    plan = compile_plan(_curve(zigzag), Rule(charge_hours=Decimal(3), discharge_hours=Decimal(3)), BERLIN, DAY)
    assert len(plan.of(CHARGE)) == 3 and len(plan.of(DISCHARGE)) == 3
    assert not fits_device_windows(plan, BERLIN)
    with pytest.raises(RuleError):
        device_windows_action(plan, BERLIN)
    sent = edges(plan, min_soc=20)
    # charge 0-1 is followed at once by discharge 1-2 and so on: self use only after the last
    assert [(e.at.astimezone(BERLIN).hour, e.label) for e in sent] == [
        (0, "charge starts"), (1, "discharge starts"), (2, "charge starts"), (3, "discharge starts"),
        (4, "charge starts"), (5, "discharge starts"), (6, "discharge ends: self use")]
    assert sent[0].action == FORCED_CHARGE and sent[1].action == FORCED_DISCHARGE
    assert sent[-1].action == self_use(20)


def test_negative_prices_are_never_discharged_and_count_as_held_in_self_use():
    prices = [-5, -10, -20, 30, 40, 50] + [60] * 18
    rule = Rule(charge_hours=Decimal(1), discharge_hours=Decimal(0), discharge_above=Decimal(-100))
    plan = compile_plan(_curve(prices), rule, BERLIN, DAY)
    assert _hours(plan, CHARGE) == [(2, 3)]
    assert all(p.start.astimezone(BERLIN).hour > 2 for p in plan.of(DISCHARGE))
    assert plan.negative_held == 2
    exporting = compile_plan(_curve(prices), Rule(charge_hours=Decimal(1), discharge_above=Decimal(-100),
                                                  no_export_negative=False), BERLIN, DAY)
    assert _hours(exporting, DISCHARGE)[0] == (0, 2)


def test_the_cap_wins_over_the_cheapest_hours_and_over_charge_below():
    flat = [100, 95, 90, 80] + [120] * 20
    rule = Rule(charge_hours=Decimal(3), charge_below=Decimal(200), charge_cap=Decimal(92))
    plan = compile_plan(_curve(flat), rule, BERLIN, DAY)
    assert _hours(plan, CHARGE) == [(2, 4)]
    assert all(p.average <= 92 for p in plan.of(CHARGE))
    assert plan.capped == 22  # every interval below 200 was wanted, all but two are above the cap


def test_thresholds_add_every_interval_below_or_above_a_price():
    rule = Rule(charge_below=Decimal(45), discharge_above=Decimal(125))
    plan = compile_plan(_curve(DUCK), rule, BERLIN, DAY)
    assert _hours(plan, CHARGE) == [(10, 15)]
    assert _hours(plan, DISCHARGE) == [(17, 20)]


def test_the_window_limits_the_selection():
    rule = Rule(charge_hours=Decimal(2), window_start=time(0), window_end=time(8))
    plan = compile_plan(_curve(DUCK), rule, BERLIN, DAY)
    assert _hours(plan, CHARGE) == [(2, 4)]


def test_a_rule_longer_than_its_window_is_refused():
    with pytest.raises(RuleError, match="do not fit in a window of 4 h"):
        compile_plan(_curve(DUCK), Rule(charge_hours=Decimal(3), discharge_hours=Decimal(2),
                                        window_start=time(10), window_end=time(14)), BERLIN, DAY)
    with pytest.raises(RuleError, match="not a whole number"):
        compile_plan(_curve(DUCK), Rule(charge_hours=Decimal("1.5")), BERLIN, DAY)


def test_quarter_hours_on_the_spring_day_keep_wall_clock_windows():
    spring = date(2026, 3, 29)
    prices = [50.0] * 92
    for i in range(12, 20):  # 03:00-05:00 CEST (01:00-03:00 UTC) are the cheapest
        prices[i - 4] = 1.0
    plan = compile_plan(_curve(prices, spring, 15), Rule(charge_hours=Decimal(2)), BERLIN, spring)
    (period,) = plan.of(CHARGE)
    assert (period.start.astimezone(BERLIN).hour, period.end.astimezone(BERLIN).hour) == (3, 5)
    assert period.hours == 2
    action = device_windows_action(plan, BERLIN)
    assert (action["chargeStartTime1Hour"], action["chargeEndTime1Hour"]) == (3, 5)


@pytest.mark.parametrize("cheap", [[2], [2, 3]])
def test_a_period_across_the_autumn_change_goes_out_as_edges(cheap):
    autumn = date(2026, 10, 25)
    prices = [50.0] * 25
    for i in cheap:  # 2 is 02:00-03:00 CEST, 3 is the repeated 02:00-03:00 CET
        prices[i] = 1.0
    plan = compile_plan(_curve(prices, autumn), Rule(charge_hours=Decimal(len(cheap))), BERLIN, autumn)
    (period,) = plan.of(CHARGE)
    assert period.start.astimezone(BERLIN).utcoffset() == timedelta(hours=2)
    assert not fits_device_windows(plan, BERLIN)
    assert [e.label for e in edges(plan, 10)] == ["charge starts", "charge ends: self use"]


def test_a_period_after_the_spring_gap_still_fits():
    spring = date(2026, 3, 29)
    prices = [50.0] * 23
    prices[1] = 1.0  # 01:00-03:00 wall clock but one real hour: across the change
    plan = compile_plan(_curve(prices, spring), Rule(charge_hours=Decimal(1)), BERLIN, spring)
    assert not fits_device_windows(plan, BERLIN)
    prices[1], prices[5] = 50.0, 1.0  # 06:00-07:00 CEST
    plan = compile_plan(_curve(prices, spring), Rule(charge_hours=Decimal(1)), BERLIN, spring)
    assert fits_device_windows(plan, BERLIN)


def test_a_period_ending_at_midnight_ends_at_23_59_on_the_device():
    prices = [100] * 22 + [5, 6]
    plan = compile_plan(_curve(prices), Rule(charge_hours=Decimal(2)), BERLIN, DAY)
    action = device_windows_action(plan, BERLIN)
    assert (action["chargeEndTime1Hour"], action["chargeEndTime1Minute"]) == (23, 59)
