"""From one day's prices and a price rule to a day plan, and from a plan to what is sent. Pure
functions, Django-free: the service stores their answers, the pages show them.

The rule, in the order it is applied:

1. The window (local times; 00:00 to 00:00 is the whole day) is where charging and discharging may be.
2. Charge in the cheapest N hours of the window, and whenever the price is below ``charge_below``;
   never above the hard cap ``charge_cap``, whatever the rest says (the cap wins over N).
3. Discharge in the dearest M hours of what is left, and whenever above ``discharge_above``; with
   ``no_export_negative`` never at a negative price (the battery stays in self use, no export).
4. Everything else is self use with the rule's minimum SoC.

Consecutive intervals of one kind become a period. A plan of at most two charge and two discharge
periods fits the inverter's own time windows (superType 2, mode 10): one write per target. Any other
plan is sent as edges, one command per period start and end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

CHARGE, DISCHARGE = "charge", "discharge"
DEVICE_PERIODS = 2  # mode 10 holds two charge and two discharge periods

FORCED_CHARGE = {"superType": 2, "mode": 3, "manualMode": 1}
FORCED_DISCHARGE = {"superType": 2, "mode": 3, "manualMode": 2}


def self_use(min_soc: int) -> dict[str, int]:
    """Self use at ``min_soc`` without grid charging: the state between periods."""
    return {"superType": 2, "mode": 0, "minSoc": min_soc, "chargeFromGridEN": 0, "chargeFromGridUpperSoC": 100}


class RuleError(ValueError):
    """A rule that cannot be met on this day's prices (the message says why)."""


@dataclass(frozen=True)
class PricePoint:
    start: datetime  # UTC
    minutes: int
    price: Decimal  # per MWh, for comparison

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)


@dataclass(frozen=True)
class Rule:
    charge_hours: Decimal = Decimal(0)
    discharge_hours: Decimal = Decimal(0)
    charge_below: Decimal | None = None  # per MWh
    discharge_above: Decimal | None = None  # per MWh
    charge_cap: Decimal | None = None  # per MWh: never grid-charge above this
    min_soc: int = 10
    no_export_negative: bool = True
    window_start: time = time(0)
    window_end: time = time(0)  # 00:00: the end of the day


@dataclass(frozen=True)
class Period:
    kind: str  # CHARGE or DISCHARGE
    start: datetime  # UTC
    end: datetime
    average: Decimal  # per MWh

    @property
    def hours(self) -> Decimal:
        return Decimal((self.end - self.start).total_seconds()) / 3600


@dataclass
class Plan:
    day: date
    periods: list[Period] = field(default_factory=list)
    avg_charge: Decimal | None = None
    avg_discharge: Decimal | None = None
    negative_held: int = 0  # negative-price intervals kept in self use (no export)
    capped: int = 0  # intervals the cap kept from charging although the rule chose them

    @property
    def spread(self) -> Decimal | None:
        if self.avg_charge is None or self.avg_discharge is None:
            return None
        return self.avg_discharge - self.avg_charge

    def of(self, kind: str) -> list[Period]:
        return [p for p in self.periods if p.kind == kind]


def _instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tz).astimezone(UTC)


def window_bounds(day: date, rule: Rule, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Return the UTC bounds of the rule's window on ``day`` (00:00 as the end is the next midnight)."""
    start = _instant(day, rule.window_start, tz)
    end = _instant(day + timedelta(days=1) if rule.window_end == time(0) else day, rule.window_end, tz)
    if end <= start:
        raise RuleError("the window must end after it starts, within the day (00:00 for midnight)")
    return start, end


def _count(hours: Decimal, minutes: int, what: str) -> int:
    intervals = hours * 60 / minutes
    if intervals != int(intervals):
        raise RuleError(f"{what}: {hours} h is not a whole number of {minutes}-minute intervals")
    return int(intervals)


def compile_plan(points: list[PricePoint], rule: Rule, tz: ZoneInfo, day: date) -> Plan:
    """Return the day plan of ``rule`` on ``points`` (one local day, contiguous, equal length).

    Raises RuleError when the rule cannot be met (more hours than the window holds)."""
    start, end = window_bounds(day, rule, tz)
    inside = [p for p in points if start <= p.start and p.end <= end]
    if not inside:
        raise RuleError("no prices inside the window")
    minutes = inside[0].minutes
    want_charge = _count(rule.charge_hours, minutes, "charge hours")
    want_discharge = _count(rule.discharge_hours, minutes, "discharge hours")
    window_hours = Decimal(len(inside) * minutes) / 60
    if want_charge + want_discharge > len(inside):
        raise RuleError(f"{rule.charge_hours} h of charging and {rule.discharge_hours} h of discharging do not fit "
                        f"in a window of {window_hours.normalize()} h")

    def allowed_charge(p: PricePoint) -> bool:
        return rule.charge_cap is None or p.price <= rule.charge_cap

    chosen_charge = set(sorted(inside, key=lambda p: (p.price, p.start))[:want_charge])
    if rule.charge_below is not None:
        chosen_charge |= {p for p in inside if p.price < rule.charge_below}
    charge = {p for p in chosen_charge if allowed_charge(p)}
    capped = len(chosen_charge) - len(charge)

    def allowed_discharge(p: PricePoint) -> bool:
        return p not in chosen_charge and not (rule.no_export_negative and p.price < 0)

    left = [p for p in inside if allowed_discharge(p)]
    discharge = set(sorted(left, key=lambda p: (-p.price, p.start))[:want_discharge])
    if rule.discharge_above is not None:
        discharge |= {p for p in left if p.price > rule.discharge_above}
    held = sum(1 for p in inside if p.price < 0 and p not in charge and rule.no_export_negative)

    kinds = {p.start: CHARGE for p in charge} | {p.start: DISCHARGE for p in discharge}
    plan = Plan(day=day, negative_held=held, capped=capped)
    run: list[PricePoint] = []
    for point in sorted(inside, key=lambda p: p.start):
        kind = kinds.get(point.start)
        if run and (kind != kinds[run[0].start] or run[-1].end != point.start):
            plan.periods.append(_period(kinds[run[0].start], run))
            run = []
        if kind is not None:
            run.append(point)
    if run:
        plan.periods.append(_period(kinds[run[0].start], run))
    plan.avg_charge = _mean([p.price for p in charge])
    plan.avg_discharge = _mean([p.price for p in discharge])
    return plan


def _period(kind: str, run: list[PricePoint]) -> Period:
    average = _mean([p.price for p in run])
    assert average is not None
    return Period(kind, run[0].start, run[-1].end, average)


def _mean(prices: list[Decimal]) -> Decimal | None:
    if not prices:
        return None
    return (sum(prices, Decimal(0)) / len(prices)).quantize(Decimal("0.01"))


# What is sent -----------------------------------------------------------------------------------

def _wall(at: datetime, tz: ZoneInfo, *, is_end: bool) -> time:
    local = at.astimezone(tz)
    if is_end and local.time() == time(0):
        return time(23, 59)  # the device's day ends at 23:59; 00:00 would read as an empty window
    return local.time()


def fits_device_windows(plan: Plan, tz: ZoneInfo) -> bool:
    """Return whether the plan is at most two charge and two discharge periods, none of them
    across a DST change (its wall-clock times would not say its real length)."""
    if len(plan.of(CHARGE)) > DEVICE_PERIODS or len(plan.of(DISCHARGE)) > DEVICE_PERIODS:
        return False
    return all(_wall_length(p, tz) == p.end - p.start for p in plan.periods)


def _wall_length(period: Period, tz: ZoneInfo) -> timedelta:
    """Return the period's length on the wall clock; it differs from the real length when the
    period spans a DST change, which a device's daily windows cannot say."""
    start, end = (period.start.astimezone(tz).replace(tzinfo=None), period.end.astimezone(tz).replace(tzinfo=None))
    return end - start


# The vendor's stems of the mode-10 fields (its spellings, "discharger" included), per period
_STEMS = {
    1: ("chargeStartTime1", "chargeEndTime1", "dischargeStartTime1", "dischargerEndTime1"),
    2: ("chargeStartTime2", "chargeEndTime2", "dischargeStartTime2", "dischargeEndTime2"),
}


def device_windows_action(plan: Plan, tz: ZoneInfo) -> dict[str, int]:
    """Return the one superType 2 / mode 10 write of a plan that fits: charge and discharge period
    1 and, if either kind has two, period 2 (an unused window is 00:00-00:00, empty)."""
    if not fits_device_windows(plan, tz):
        raise RuleError("the plan does not fit two charge and two discharge periods")
    charges, discharges = plan.of(CHARGE), plan.of(DISCHARGE)
    two = len(charges) == DEVICE_PERIODS or len(discharges) == DEVICE_PERIODS
    action: dict[str, int] = {"superType": 2, "mode": 10, "p2TimeSetEnable": int(two)}
    for number in (1, 2) if two else (1,):
        charge_stems, discharge_stems = _STEMS[number][:2], _STEMS[number][2:]
        for periods, stems in ((charges, charge_stems), (discharges, discharge_stems)):
            period = periods[number - 1] if len(periods) >= number else None
            start = _wall(period.start, tz, is_end=False) if period else time(0)
            end = _wall(period.end, tz, is_end=True) if period else time(0)
            for stem, at in zip(stems, (start, end), strict=True):
                action[f"{stem}Hour"], action[f"{stem}Minute"] = at.hour, at.minute
    return action


@dataclass(frozen=True)
class PlannedEdge:
    at: datetime  # UTC
    label: str
    action: dict[str, Any]


def edges(plan: Plan, min_soc: int) -> list[PlannedEdge]:
    """Return the commands of a plan sent as edges: forced charge or discharge at each period's
    start, self use at its end unless the next period starts there."""
    out: list[PlannedEdge] = []
    for i, period in enumerate(plan.periods):
        action = FORCED_CHARGE if period.kind == CHARGE else FORCED_DISCHARGE
        out.append(PlannedEdge(period.start, f"{period.kind} starts", dict(action)))
        following = plan.periods[i + 1] if i + 1 < len(plan.periods) else None
        if following is None or following.start != period.end:
            out.append(PlannedEdge(period.end, f"{period.kind} ends: self use", self_use(min_soc)))
    return out
