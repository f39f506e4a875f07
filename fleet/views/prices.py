"""The prices pages: zones; a zone's prices for today and tomorrow (SVG with the plans' windows),
uploads and their history per day; a target's rule; a day plan with its cost, accept button and
what was sent to the devices."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fleet.accounts import audit
from fleet.accounts.access import (
    account_choice,
    current_membership,
    day_plan_for_user,
    price_rule_for_user,
    price_zone_for_user,
    require_operator,
)
from fleet.commands.actions import describe_action
from fleet.models import DayPlan, PlanEdge, PlanState, PriceRule, PriceSeries, PriceZone
from fleet.prices import compiler, service
from fleet.prices.forms import RuleForm, UploadForm, ZoneForm
from fleet.prices.parsing import PER_MWH
from fleet.views.base import HtmxHttpRequest, error_status

HISTORY_DAYS = 30


# The chart, in SVG units of a 720 x 200 drawing -----------------------------------------------

WIDTH, HEIGHT, TOP, BOTTOM = 720, 200, 10, 180


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    negative: bool


@dataclass(frozen=True)
class Window:
    x: float
    width: float
    kind: str
    label: str


@dataclass
class Chart:
    day: date
    unit: str
    bars: list[Bar] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    zero_y: float = BOTTOM
    ticks: list[tuple[float, str]] = field(default_factory=list)
    low: str = ""
    high: str = ""
    hours: int = 24


def price_chart(series: PriceSeries, periods: list[dict[str, Any]], tz: ZoneInfo) -> Chart:
    """Return the bars of a day's prices (per MWh) and the plan's windows, scaled to the drawing.
    The x axis is real time, so a 23- or 25-hour day has 23 or 25 hours of width."""
    points = service.points(series)
    start, end = points[0].start, points[-1].end
    span = (end - start).total_seconds()
    low, high = min(min(p.price for p in points), Decimal(0)), max(max(p.price for p in points), Decimal(1))

    def x(at: datetime) -> float:
        return round((at - start).total_seconds() / span * WIDTH, 2)

    def y(price: Decimal) -> float:
        return round(float(TOP + (high - price) / (high - low) * (BOTTOM - TOP)), 2)

    chart = Chart(day=series.day, unit=f"{series.zone.currency}/MWh", zero_y=y(Decimal(0)),
                  low=f"{low:.0f}", high=f"{high:.0f}", hours=round(span / 3600))
    for p in points:
        top, bottom = sorted((y(p.price), y(Decimal(0))))
        local = p.start.astimezone(tz)
        chart.bars.append(Bar(x(p.start), top, max(round(x(p.end) - x(p.start) - 0.5, 2), 0.5),
                              max(round(bottom - top, 2), 0.5),
                              f"{local:%H:%M} {local.tzname()}: {p.price:.2f} {chart.unit}", p.price < 0))
    for period in periods:
        a, b = datetime.fromisoformat(period["start"]), datetime.fromisoformat(period["end"])
        chart.windows.append(Window(x(a), round(x(b) - x(a), 2), period["kind"],
                                    f"{period['kind']} {a.astimezone(tz):%H:%M}-{b.astimezone(tz):%H:%M}"))
    at = start
    while at < end:
        local = at.astimezone(tz)
        if local.minute == 0 and local.hour % 3 == 0:
            chart.ticks.append((x(at), f"{local:%H}"))
        at += timedelta(hours=1)
    return chart


# Plans shown as rows --------------------------------------------------------------------------

@dataclass(frozen=True)
class PeriodRow:
    kind: str
    start: str
    end: str
    hours: Decimal
    average: str


def period_rows(plan: DayPlan, tz: ZoneInfo) -> list[PeriodRow]:
    rows = []
    for p in plan.periods:
        a, b = datetime.fromisoformat(p["start"]).astimezone(tz), datetime.fromisoformat(p["end"]).astimezone(tz)
        rows.append(PeriodRow(p["kind"], f"{a:%H:%M} {a.tzname()}", f"{b:%H:%M} {b.tzname()}",
                              (Decimal((b - a).total_seconds()) / 3600).normalize(), p["average"]))
    return rows


def _edge_rows(plan: DayPlan, tz: ZoneInfo) -> list[dict[str, Any]]:
    return [{"at": _local(datetime.fromisoformat(e["at"]), tz), "label": e["label"],
             "action": describe_action(e["action"])} for e in plan.edges]


def _local(at: datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    return f"{local:%a %d %b %H:%M} {local.tzname()}"


# Pages ------------------------------------------------------------------------------------------

@require_GET
def price_zones(request: HtmxHttpRequest) -> HttpResponse:
    accounts, account = account_choice(request)
    context: dict[str, Any] = {"accounts": accounts, "account": account}
    if account is not None:
        context["zones"] = PriceZone.objects.filter(account=account).order_by("name")
        context["form"] = ZoneForm(account=account)
    return render(request, "fleet/prices.html", context)


@require_POST
def price_zone_create(request: HtmxHttpRequest) -> HttpResponse:
    require_operator(request)
    accounts, account = account_choice(request)
    if account is None:
        return redirect("fleet-prices")
    form = ZoneForm(request.POST, account=account)
    if form.is_valid():
        zone = form.save(commit=False)
        zone.account = account
        zone.save()
        audit.record(request, "price_zone.create", zone, changes=audit.form_created(form))
        messages.success(request, f"Price zone “{zone.name}” created.")
        return redirect("fleet-price-zone", code=zone.code)
    context = {"accounts": accounts, "account": account, "form": form,
               "zones": PriceZone.objects.filter(account=account).order_by("name")}
    return render(request, "fleet/prices.html", context, status=error_status(request))


def _chosen_day(request: HtmxHttpRequest, zone: PriceZone) -> date:
    raw = request.GET.get("day", "")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return timezone.now().astimezone(ZoneInfo(zone.timezone)).date()


def _zone_context(request: HtmxHttpRequest, zone: PriceZone, upload: UploadForm | None = None) -> dict[str, Any]:
    tz = ZoneInfo(zone.timezone)
    first = _chosen_day(request, zone)
    rules = list(PriceRule.objects.filter(zone=zone).select_related("group", "selection").prefetch_related("groups")
                 .order_by("target_kind", "group__name", "selection__name", "id"))
    days = []
    for day in (first, first + timedelta(days=1)):
        series = service.current_series(zone, day)
        plans = []
        if series is not None:
            plans = list(DayPlan.objects.filter(rule__zone=zone, day=day).exclude(state=PlanState.SUPERSEDED)
                         .select_related("rule__group", "rule__selection").prefetch_related("rule__groups")
                         .order_by("rule__target_kind", "rule__group__name", "rule__selection__name", "rule_id",
                                   "-created"))
        # the windows drawn: the chosen target's plan (?rule=), else an accepted plan, else the first
        chosen = sorted((p for p in plans if str(p.rule.code) == request.GET.get("rule", "")),
                        key=lambda p: p.state != PlanState.ACCEPTED)
        shown = next(iter(chosen), None) or next((p for p in plans if p.state == PlanState.ACCEPTED),
                                                   plans[0] if plans else None)
        days.append({"day": day, "series": series, "plans": plans, "shown": shown,
                     "chart": price_chart(series, shown.periods if shown else [], tz) if series else None})
    history = (PriceSeries.objects.filter(zone=zone).order_by("-day", "-uploaded_at")
               .select_related("uploaded_by"))
    page = Paginator(history, HISTORY_DAYS).get_page(request.GET.get("page"))
    return {"zone": zone, "days": days, "rules": rules, "history": page,
            "upload": upload or UploadForm(zone=zone, initial={"day": service.default_day(zone)}),
            "previous_day": first - timedelta(days=1), "next_day": first + timedelta(days=1),
            "tomorrow": service.default_day(zone)}


@require_GET
def price_zone(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    current_membership(request)
    zone = price_zone_for_user(request, code)
    return render(request, "fleet/price_zone.html", _zone_context(request, zone))


@require_POST
def price_upload(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_operator(request)
    zone = price_zone_for_user(request, code)
    form = UploadForm(request.POST, request.FILES, zone=zone)
    if not form.is_valid():
        return render(request, "fleet/price_zone.html", _zone_context(request, zone, form),
                      status=error_status(request))
    parsed = form.cleaned_data["parsed"]
    series = service.store_series(zone, parsed, source=form.cleaned_data["source"],
                                  filename=form.cleaned_data["file"].name, user=request.user)
    audit.record(request, "price_series.upload", series, organization=zone.account.organization,
                 name=f"{zone.name} {parsed.day:%Y-%m-%d}",
                 changes={"day": [None, parsed.day], "prices": [None, len(parsed.intervals)],
                          "source": [None, form.cleaned_data["source"]],
                          "file": [None, form.cleaned_data["file"].name]})
    report = service.replan(series, user=request.user)
    messages.success(request, f"{len(parsed.intervals)} prices of {parsed.day:%a %d %b %Y} stored "
                              f"({parsed.minutes}-minute intervals). Plans: {report.proposed} proposed, "
                              f"{report.replaced} replaced, {report.unchanged} unchanged, "
                              f"{report.refused} not possible.")
    return redirect(f"{reverse('fleet-price-zone', args=[zone.code])}?day={parsed.day - timedelta(days=1):%Y-%m-%d}")


@require_http_methods(["GET", "POST"])
def price_rule_create(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_operator(request)
    zone = price_zone_for_user(request, code)
    return _rule_form(request, zone, PriceRule(zone=zone))


@require_http_methods(["GET", "POST"])
def price_rule_edit(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_operator(request)
    rule = price_rule_for_user(request, code)
    return _rule_form(request, rule.zone, rule)


def _rule_form(request: HtmxHttpRequest, zone: PriceZone, rule: PriceRule) -> HttpResponse:
    initial = {} if rule.pk else {"charge_hours": 3, "discharge_hours": 2, "min_soc": 10,
                                  "no_export_negative": True, "window_start": "00:00", "window_end": "00:00"}
    form = RuleForm(request.POST or None, instance=rule, zone=zone, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            creating = rule.pk is None
            changes = audit.form_created(form) if creating else audit.form_changes(form)
            saved = form.save(commit=False)
            cleaned = form.cleaned_data
            saved.zone, saved.target_kind = zone, cleaned["target_kind"]
            saved.group, saved.selection = cleaned["group_obj"], cleaned["selection_obj"]
            saved.updated, saved.updated_by = timezone.now(), request.user  # type: ignore[assignment]
            saved.save()
            saved.groups.set(cleaned["groups_objs"])
            audit.record(request, "price_rule.create" if creating else "price_rule.update", saved,
                         organization=zone.account.organization, name=f"{saved.target_label} in {zone.name}",
                         changes=changes)
            messages.success(request, f"Price rule for {saved.target_label} saved.")
            return redirect("fleet-price-zone", code=zone.code)
        return render(request, "fleet/price_rule_form.html", {"form": form, "zone": zone, "rule": rule},
                      status=error_status(request))
    return render(request, "fleet/price_rule_form.html", {"form": form, "zone": zone, "rule": rule})


@require_POST
def price_rule_plan(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    """Propose the rule's plan for a day (tomorrow unless ``day`` says otherwise)."""
    require_operator(request)
    rule = price_rule_for_user(request, code)
    try:
        day = date.fromisoformat(request.POST.get("day", "")) if request.POST.get("day") else service.default_day(
            rule.zone)
    except ValueError:
        return HttpResponse("day must be YYYY-MM-DD", status=400)
    series = service.current_series(rule.zone, day)
    if series is None:
        messages.error(request, f"No prices for {day:%a %d %b %Y} yet: upload them first.")
        return redirect("fleet-price-zone", code=rule.zone.code)
    try:
        plan = service.propose(rule, series)
    except compiler.RuleError as exc:
        messages.error(request, f"The rule cannot be met on {day:%d %b}: {exc}.")
        return redirect("fleet-price-zone", code=rule.zone.code)
    return redirect("fleet-day-plan", code=plan.code)


@require_GET
def day_plan(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    membership = current_membership(request)
    plan = day_plan_for_user(request, code)
    tz = ZoneInfo(plan.rule.zone.timezone)
    sent = list(PlanEdge.objects.filter(plan=plan).select_related("command").prefetch_related("command__results"))
    for edge in sent:
        edge.local_due = _local(edge.due_at, tz)  # type: ignore[attr-defined]
    unit = PER_MWH[plan.series.unit]
    context = {
        "plan": plan, "zone": plan.rule.zone, "rows": period_rows(plan, tz), "edges": _edge_rows(plan, tz),
        "chart": price_chart(plan.series, plan.periods, tz), "sent": sent, "tz": tz, "per_unit": unit,
        "can_accept": membership.can_operate and plan.state == PlanState.PROPOSED,
        "others": DayPlan.objects.filter(rule=plan.rule).exclude(pk=plan.pk).order_by("-day", "-created")[:20],
    }
    return render(request, "fleet/day_plan.html", context)


@require_POST
def day_plan_accept(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_operator(request)
    plan = day_plan_for_user(request, code)
    try:
        before = plan.state
        service.accept(plan, user=request.user, force=request.POST.get("force") == "on")
        plan.refresh_from_db(fields=["state"])
        audit.record(request, "day_plan.accept", plan, organization=plan.rule.zone.account.organization,
                     name=f"{plan.rule.target_label} on {plan.day:%Y-%m-%d}",
                     changes={"state": [before, plan.state], "forced": [None, request.POST.get("force") == "on"]})
    except service.AcceptError as exc:
        messages.error(request, f"Not accepted: {exc}.")
        return redirect("fleet-day-plan", code=plan.code)
    messages.success(request, f"Plan for {plan.rule.target_label} on {plan.day:%a %d %b} accepted: "
                              f"{plan.calls} control call(s) per target.")
    return redirect("fleet-day-plan", code=plan.code)
