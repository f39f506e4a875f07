"""The API budget page: gauges, pause, queue, the last 24 hours, and the call log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from fleet.accounts.access import account_choice
from fleet.models import ApiCall, CallState, SolaxAccount
from fleet.pipeline.report import HourlyCalls, budget_view, hourly_calls
from fleet.views.base import HtmxHttpRequest
from solax.endpoints import ENDPOINTS

LOG_PAGE_SIZE = 50


@require_GET
def budget(request: HtmxHttpRequest) -> HttpResponse:
    accounts, account = account_choice(request)
    context: dict[str, object] = {"accounts": accounts, "account": account}
    if account is None:
        return render(request, "fleet/budget.html", context)
    context["view"] = budget_view(account)
    if request.htmx and request.htmx.target == "budget-live":
        return render(request, "fleet/budget.html#live", context)
    context.update(_log_context(request, account))
    if request.htmx and request.htmx.target == "call-log":
        return render(request, "fleet/budget.html#log", context)
    context["chart"] = hour_chart(hourly_calls(account))
    return render(request, "fleet/budget.html", context)


def _log_context(request: HtmxHttpRequest, account: SolaxAccount) -> dict[str, object]:
    log = ApiCall.objects.filter(account=account).order_by("-created", "-id")
    filters = {"endpoint": request.GET.get("endpoint", ""), "state": request.GET.get("state", ""),
               "origin": request.GET.get("origin", "").strip()}
    errors = []
    if filters["endpoint"]:
        log = log.filter(endpoint=filters["endpoint"])
    if filters["state"]:
        if filters["state"] in CallState.values:
            log = log.filter(state=filters["state"])
        else:
            errors.append("Unknown state.")
    if filters["origin"]:
        try:
            log = log.filter(origin_code=uuid.UUID(filters["origin"]))
        except ValueError:
            errors.append("A command or sync code is a UUID like 3f2b…; that one is not.")
            log = log.none()
    page = Paginator(log.only(
        "code", "created", "endpoint", "purpose", "priority", "state", "attempts", "http_status",
        "vendor_code", "error", "duration_ms", "origin_kind", "origin_code", "params", "sent_at", "finished_at"),
        LOG_PAGE_SIZE
    ).get_page(request.GET.get("page"))
    query = urlencode([(k, v) for k, v in filters.items() if v])
    return {"page": page, "filters": filters, "filter_errors": errors, "states": CallState.choices,
            "endpoints": sorted(ENDPOINTS),
            "filter_query": query}


# The 24 h chart, in SVG units of a 480 x 160 drawing ------------------------------------------

CHART_HEIGHT = 140
BAR_STEP = 20


@dataclass(frozen=True)
class HourBar:
    start: datetime
    calls: int
    x: int
    y: float
    height: float


@dataclass(frozen=True)
class HourChart:
    bars: list[HourBar]
    per_hour_limit: int
    limit_y: float


def hour_chart(hourly: HourlyCalls) -> HourChart:
    """Return the bars of each hour and the line of the hourly limit, scaled to the chart."""
    top = max([hourly.per_hour_limit, *(h.calls for h in hourly.hours)]) * 1.1
    bars = []
    for i, hour in enumerate(hourly.hours):
        height = round(CHART_HEIGHT * hour.calls / top, 1)
        bars.append(HourBar(hour.start, hour.calls, i * BAR_STEP + 2, round(CHART_HEIGHT - height, 1), height))
    return HourChart(bars, hourly.per_hour_limit, round(CHART_HEIGHT - CHART_HEIGHT * hourly.per_hour_limit / top, 1))
