"""Prices in the database and plans on the devices: store a parsed day, compile a target's rule on it,
accept a plan (its edges become due), and the minute tick that fires each due edge once through the
command service (``fleet.schedules.service.send_action``, the schedules' own seam).

A plan that fits the inverter's two charge and two discharge windows is ONE mode-10 write per target,
due at the start of its day (or at once, for today), and a fallback to self use when the day is over
that is dropped if the next day's plan of the same rule is accepted: the device repeats its windows
every day, and yesterday's cheap hours are not today's. Any other plan is one command per edge.

Re-planning: a new upload proposes again for every rule of the zone; an accepted plan of a day is
replaced only if the new plan differs, once per day per rule unless forced.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from fleet.alerts import service as alerts
from fleet.commands.actions import CommandError
from fleet.commands.targets import LOOKUP_CHUNK, Target, resolve_target
from fleet.models import (
    DayPlan,
    Inverter,
    PlanEdge,
    PlanEdgeState,
    PlanForm,
    PlanState,
    PriceInterval,
    PriceRule,
    PriceSeries,
    PriceZone,
    TargetKind,
)
from fleet.models.schedules import grace
from fleet.prices import compiler, entsoe
from fleet.prices.parsing import PER_MWH, ParsedPrices, day_bounds
from fleet.schedules.service import EdgeRejected, calls_per_edge, send_action

log = logging.getLogger("fleet.prices")


# Prices ---------------------------------------------------------------------------------------

def store_series(zone: PriceZone, parsed: ParsedPrices, *, source: str, filename: str = "",
                 user: Any = None) -> PriceSeries:
    """Write one parsed day and its intervals; returns the series (the day's current one from now)."""
    with transaction.atomic():
        series = PriceSeries.objects.create(
            zone=zone, day=parsed.day, minutes=parsed.minutes, unit=parsed.unit, source=source,
            filename=filename[:200], uploaded_by=user if user is not None and user.is_authenticated else None)
        PriceInterval.objects.bulk_create(
            PriceInterval(series=series, start=i.start, minutes=i.minutes, price=i.price) for i in parsed.intervals)
    return series


def current_series(zone: PriceZone, day: date) -> PriceSeries | None:
    """Return the latest upload or fetch of ``day``, or None."""
    return PriceSeries.objects.filter(zone=zone, day=day).order_by("-uploaded_at", "-id").first()


def points(series: PriceSeries) -> list[compiler.PricePoint]:
    """Return the series' intervals with prices per MWh (the unit rules are written in)."""
    factor = PER_MWH[series.unit]
    return [compiler.PricePoint(i.start, i.minutes, i.price * factor) for i in series.intervals.order_by("start")]


def fetch_day(zone: PriceZone, day: date) -> PriceSeries:
    """Fetch ``day`` from ENTSO-E for a zone with an EIC code and store it; raises entsoe.FetchError."""
    if not settings.ENTSOE_ENABLED:
        raise entsoe.FetchError("the ENTSO-E fetcher is off (ENTSOE_ENABLED)")
    if not zone.eic:
        raise entsoe.FetchError(f"zone {zone.name} has no ENTSO-E area code")
    parsed, _ = entsoe.fetch_day_ahead(url=settings.ENTSOE_API_URL, token=settings.ENTSOE_API_TOKEN, eic=zone.eic,
                                       day=day, tz=ZoneInfo(zone.timezone))
    return store_series(zone, parsed, source="entsoe")


@dataclass
class FetchReport:
    stored: int = 0
    failed: int = 0


def fetch_due_zones(now: datetime | None = None) -> FetchReport:
    """Fetch tomorrow's prices for every zone with an ENTSO-E area code that lacks them, once the
    zone's local time has passed ENTSOE_FETCH_HOUR (the platform publishes around 13:00 CET), and
    re-plan. Returns how many days were stored and how many fetches failed (logged without the token)."""
    report = FetchReport()
    if not settings.ENTSOE_ENABLED:
        return report
    now = now or timezone.now()
    for zone in PriceZone.objects.exclude(eic="").select_related("account"):
        local = now.astimezone(ZoneInfo(zone.timezone))
        tomorrow = local.date() + timedelta(days=1)
        if local.hour < settings.ENTSOE_FETCH_HOUR or current_series(zone, tomorrow) is not None:
            continue
        try:
            series = fetch_day(zone, tomorrow)
        except entsoe.FetchError as exc:
            report.failed += 1
            log.warning("prices of %s for %s not fetched: %s", zone.name, tomorrow, exc)
            continue
        replan(series, now=now)
        report.stored += 1
    return report


# Plans ------------------------------------------------------------------------------------------

def rule_of(rule: PriceRule) -> compiler.Rule:
    return compiler.Rule(
        charge_hours=rule.charge_hours, discharge_hours=rule.discharge_hours, charge_below=rule.charge_below,
        discharge_above=rule.discharge_above, charge_cap=rule.charge_cap, min_soc=rule.min_soc,
        no_export_negative=rule.no_export_negative, window_start=rule.window_start, window_end=rule.window_end)


def _iso(at: datetime) -> str:
    return at.isoformat()


def _rule_groups(rule: PriceRule) -> tuple[Any, ...]:
    return tuple(rule.groups.all()) if rule.target_kind == TargetKind.GROUPS else ()


def target_of(rule: PriceRule) -> Target:
    """Return the rule's target as the command service resolves it."""
    return Target(kind=rule.target_kind, group=rule.group, groups=_rule_groups(rule), selection=rule.selection)


def calls_per_command(rule: PriceRule) -> int:
    """Return the control calls one command to the rule's target needs today (one for a group; the
    fewest calls that cover several groups or a saved selection)."""
    return calls_per_edge(rule.target_kind, [], account=rule.zone.account, groups=_rule_groups(rule),
                          selection=rule.selection)


@dataclass(frozen=True)
class ValueEstimate:
    """An estimate, not a forecast: the spread times the energy the target's inverters can move at
    their rated power in the shorter of the charge and discharge time. Battery size, losses, the
    SoC and the household's own use are not known here."""

    value: Decimal | None  # in the zone's currency per day
    energy_kwh: Decimal
    without_power: int  # devices the cloud reported no rated power for (left out)


def estimate_value(rule: PriceRule, plan: compiler.Plan) -> ValueEstimate:
    """Estimate the plan's value per day for the rule's target (see ValueEstimate)."""
    hours = {kind: sum(((p.end - p.start).total_seconds() for p in plan.of(kind)), 0.0) / 3600
             for kind in (compiler.CHARGE, compiler.DISCHARGE)}
    shorter = Decimal(str(min(hours.values())))
    try:
        sns = resolve_target(rule.zone.account, target_of(rule), require_devices=False).sns
    except CommandError:
        sns = []
    powers: dict[str, float | None] = {}
    for i in range(0, len(sns), LOOKUP_CHUNK):
        powers.update(Inverter.objects.filter(account=rule.zone.account, removed=False,
                                              inverter_sn__in=sns[i:i + LOOKUP_CHUNK])
                      .values_list("inverter_sn", "rated_power"))
    rated = Decimal(str(sum(p for p in powers.values() if p)))
    energy = (rated * shorter).quantize(Decimal("0.1"))
    spread = None if plan.avg_charge is None or plan.avg_discharge is None else plan.avg_discharge - plan.avg_charge
    value = None if spread is None else (spread * energy / 1000).quantize(Decimal("0.01"))
    return ValueEstimate(value, energy, sum(1 for sn in sns if not powers.get(sn)))


def propose(rule: PriceRule, series: PriceSeries) -> DayPlan:
    """Compile ``rule`` on ``series`` and save it as a proposed plan; returns it.

    Raises compiler.RuleError when the rule cannot be met on this day."""
    tz = ZoneInfo(rule.zone.timezone)
    plan = compiler.compile_plan(points(series), rule_of(rule), tz, series.day)
    per_call = calls_per_command(rule)
    notes = []
    if compiler.fits_device_windows(plan, tz) and plan.periods:
        form = PlanForm.WINDOWS
        start, end = day_bounds(series.day, tz)
        sent = [compiler.PlannedEdge(start, "device windows for the day", compiler.device_windows_action(plan, tz))]
        fallback = compiler.PlannedEdge(end, "day over: self use (dropped if the next day has a plan)",
                                        compiler.self_use(rule.min_soc))
        edges = [*sent, fallback]
        calls = per_call * len(sent)
        notes.append("The minimum SoC of a windows plan is the device's own setting (mode 10 does not carry it).")
    else:
        form = PlanForm.EDGES
        edges = compiler.edges(plan, rule.min_soc)
        calls = per_call * len(edges)
    if plan.negative_held:
        notes.append(f"{plan.negative_held} interval(s) at a negative price stay in self use: no export.")
    if plan.capped:
        notes.append(f"{plan.capped} interval(s) the rule wanted are above the grid-charge cap: not charged.")
    if not plan.periods:
        notes.append("Nothing to do on this day: no interval meets the rule.")
    # one proposal per rule and day at a time: the newest prices make the older proposal moot
    DayPlan.objects.filter(rule=rule, day=series.day, state=PlanState.PROPOSED).update(state=PlanState.SUPERSEDED)
    estimate = estimate_value(rule, plan)
    return DayPlan.objects.create(
        rule=rule, series=series, day=series.day, form=form, calls=calls, notes=notes,
        value_estimate=estimate.value, energy_estimate_kwh=estimate.energy_kwh,
        devices_without_power=estimate.without_power,
        avg_charge=plan.avg_charge, avg_discharge=plan.avg_discharge,
        periods=[{"kind": p.kind, "start": _iso(p.start), "end": _iso(p.end), "average": str(p.average)}
                 for p in plan.periods],
        edges=[{"at": _iso(e.at), "label": e.label, "action": e.action,
                "fallback": e.label.startswith("day over")} for e in edges],
    )


def same_plan(a: DayPlan, b: DayPlan) -> bool:
    """Return whether two plans send the same commands at the same times."""
    return a.form == b.form and a.edges == b.edges


class AcceptError(Exception):
    """The plan cannot be accepted (the message says why)."""


def accepted_plan(rule: PriceRule, day: date) -> DayPlan | None:
    return DayPlan.objects.filter(rule=rule, day=day, state=PlanState.ACCEPTED).first()


def accept(plan: DayPlan, *, user: Any = None, now: datetime | None = None, force: bool = False) -> DayPlan:
    """Accept a proposed plan: replace the day's accepted plan (its pending edges are superseded)
    and make the plan's edges due. A windows write whose day has begun is due at once; edges in the
    past are not sent. Replacing a plan that already sent something is allowed once per day and
    rule unless ``force``. Returns the plan; raises AcceptError."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = DayPlan.objects.select_for_update().get(pk=plan.pk)
        PriceRule.objects.select_for_update().get(pk=plan.rule_id)  # one acceptance per rule at a time
        if locked.state != PlanState.PROPOSED:
            raise AcceptError(f"this plan is {locked.get_state_display()}, not proposed")
        if day_bounds(locked.day, ZoneInfo(plan.rule.zone.timezone))[1] <= now:
            raise AcceptError("this plan's day is over")
        previous = accepted_plan(plan.rule, locked.day)
        if previous is not None:
            sent = PlanEdge.objects.filter(plan=previous).exclude(state=PlanEdgeState.PENDING).exists()
            # a replacement counts once something of the replaced plan reached the devices
            replaced_before = DayPlan.objects.filter(rule=plan.rule, day=locked.day, state=PlanState.SUPERSEDED,
                                                     sent_edges__state=PlanEdgeState.FIRED).exists()
            if sent and replaced_before and not force:
                raise AcceptError("this day's plan was already replaced once after it was sent; force to replace it")
            PlanEdge.objects.filter(plan=previous, state=PlanEdgeState.PENDING).update(state=PlanEdgeState.SUPERSEDED)
            DayPlan.objects.filter(pk=previous.pk).update(state=PlanState.SUPERSEDED)
        DayPlan.objects.filter(rule=plan.rule, day=locked.day, state=PlanState.PROPOSED).exclude(
            pk=locked.pk).update(state=PlanState.SUPERSEDED)
        # the previous day's fallback gives way to this day's windows
        PlanEdge.objects.filter(plan__rule=plan.rule, plan__day=locked.day - timedelta(days=1), fallback=True,
                                state=PlanEdgeState.PENDING).update(state=PlanEdgeState.SUPERSEDED)
        rows = []
        per_call = calls_per_command(plan.rule)
        for edge in locked.edges:
            at = datetime.fromisoformat(edge["at"])
            if at < now:
                if locked.form != PlanForm.WINDOWS or edge["fallback"]:
                    continue  # an edge of the past is not sent late
                at = now
            rows.append(PlanEdge(plan=locked, account_id=plan.rule.zone.account_id, calls=per_call, due_at=at,
                                 label=edge["label"], action=edge["action"], fallback=edge["fallback"]))
        PlanEdge.objects.bulk_create(rows)
        locked.state, locked.accepted_at = PlanState.ACCEPTED, now
        locked.accepted_by = user if user is not None and user.is_authenticated else None
        locked.save(update_fields=["state", "accepted_at", "accepted_by"])
    return locked


@dataclass
class ReplanReport:
    proposed: int = 0
    unchanged: int = 0
    replaced: int = 0
    refused: int = 0


def replan(series: PriceSeries, *, user: Any = None, now: datetime | None = None) -> ReplanReport:
    """New prices for a day: propose again for every rule of the zone. Where the day already has an
    accepted plan, the new one replaces it only if it differs (and the once-a-day rule allows it);
    otherwise it stays proposed for an operator to accept. Returns what happened."""
    report = ReplanReport()
    for rule in (PriceRule.objects.filter(zone=series.zone).select_related("zone__account", "group", "selection")
                 .prefetch_related("groups")):
        try:
            plan = propose(rule, series)
        except compiler.RuleError:
            report.refused += 1
            continue
        current = accepted_plan(rule, series.day)
        if current is None:
            report.proposed += 1
        elif same_plan(current, plan):
            DayPlan.objects.filter(pk=plan.pk).update(state=PlanState.SUPERSEDED)
            report.unchanged += 1
        else:
            try:
                accept(plan, user=user, now=now)
                report.replaced += 1
            except AcceptError:
                report.proposed += 1
    return report


# The minute tick ------------------------------------------------------------------------------

@dataclass
class TickReport:
    fired: int = 0
    missed: int = 0
    rejected: int = 0
    superseded: int = 0


def tick(now: datetime | None = None) -> TickReport:
    """Fire every due pending edge of accepted plans once (a conditional update claims it); an edge
    later than the schedules' grace is missed; a fallback whose next day has an accepted plan is
    dropped. Returns what happened."""
    now = now or timezone.now()
    report = TickReport()
    due = (PlanEdge.objects.filter(state=PlanEdgeState.PENDING, due_at__lte=now, plan__state=PlanState.ACCEPTED)
           .select_related("plan__rule__zone__account", "plan__rule__group", "plan__rule__selection",
                           "plan__accepted_by"))
    for edge in due:
        plan = edge.plan
        if edge.fallback and accepted_plan(plan.rule, plan.day + timedelta(days=1)) is not None:
            state = PlanEdgeState.SUPERSEDED
        elif now - edge.due_at > grace():
            state = PlanEdgeState.MISSED
        else:
            state = PlanEdgeState.FIRED
        with transaction.atomic():
            if PlanEdge.objects.filter(pk=edge.pk, state=PlanEdgeState.PENDING).update(state=state) != 1:
                continue  # another tick got there first
            if state == PlanEdgeState.FIRED:
                try:
                    rule = plan.rule
                    command = send_action(rule.zone.account, rule.target_kind, rule.group, [], edge.action,
                                          user=plan.accepted_by, source="prices", groups=_rule_groups(rule),
                                          selection=rule.selection)
                    PlanEdge.objects.filter(pk=edge.pk).update(command=command)
                except EdgeRejected as exc:
                    state = PlanEdgeState.REJECTED
                    PlanEdge.objects.filter(pk=edge.pk).update(state=state, error=str(exc)[:500])
                    log.warning("plan %s edge %s rejected: %s", plan.code, edge.label, exc)
        setattr(report, str(state), getattr(report, str(state)) + 1)
        _alert_edge(edge, str(state))
    return report


def _alert_edge(edge: PlanEdge, state: str) -> None:
    """A missed or refused plan edge opens its price rule's episode; an edge sent ends it."""
    rule = edge.plan.rule
    account = rule.zone.account
    if state == PlanEdgeState.FIRED:
        alerts.edge_sent(account, str(rule.code))
    elif state in (PlanEdgeState.MISSED, PlanEdgeState.REJECTED):
        what = "missed" if state == PlanEdgeState.MISSED else "refused"
        tz = ZoneInfo(rule.zone.timezone)
        alerts.edge_missed(account, str(rule.code), link=reverse("fleet-day-plan", args=[edge.plan.code]),
                           title=f"Price plan of {rule.target_label}: edge {edge.label} {what}",
                           detail=f"The edge {edge.label} due {edge.due_at.astimezone(tz):%Y-%m-%d %H:%M %Z} was "
                                  f"{what}; nothing was sent for it.")


def default_day(zone: PriceZone, now: datetime | None = None) -> date:
    """Tomorrow in the zone: the day day-ahead prices are for."""
    return ((now or timezone.now()).astimezone(ZoneInfo(zone.timezone)) + timedelta(days=1)).date()
