"""What the budget page and the dashboard show of an account's use of its SolaX budget."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from fleet import calls
from fleet.models import CallAttempt, Priority, SolaxAccount


@dataclass(frozen=True)
class QueueRow:
    priority: int
    label: str
    queued: int


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
class BudgetView:
    account: SolaxAccount
    budget: calls.Budget
    queue: list[QueueRow]
    queued_total: int
    drain_seconds: int | None  # None: more than today's remaining budget
    paused_seconds_left: int

    @property
    def minute_pct(self) -> int:
        return min(100, round(100 * self.budget.minute_used / max(1, self.budget.minute_limit)))

    @property
    def day_pct(self) -> int:
        return min(100, round(100 * self.budget.day_used / max(1, self.budget.day_limit)))


def budget_view(account: SolaxAccount, now: datetime | None = None) -> BudgetView:
    """Return the gauges, pause and queue of an account (four queries)."""
    now = now or timezone.now()
    budget = calls.budget_of(account, now)
    depth = calls.queue_depth(account)
    queue = [QueueRow(p.value, p.label, depth.get(p.value, 0)) for p in Priority]
    total = sum(depth.values())
    usable_per_window = max(1, budget.minute_limit - budget.minute_margin)
    window = calls.minute_window().total_seconds()
    if total > budget.day_free:
        drain: int | None = None
    else:
        backlog_after_free = max(0, total - budget.minute_free)
        drain = int(math.ceil(backlog_after_free / usable_per_window) * window)
    paused_left = 0
    if account.paused_until is not None and account.paused_until > now:
        paused_left = int((account.paused_until - now).total_seconds())
    return BudgetView(account, budget, queue, total, drain, paused_left)


@dataclass(frozen=True)
class HourChart:
    bars: list[HourBar]
    per_hour_limit: int
    limit_y: float


def hourly_calls(account: SolaxAccount, now: datetime | None = None) -> HourChart:
    """Return 24 hourly bars of requests sent (oldest first) against the sustainable hourly rate
    (the daily limit spread evenly), in SVG units of a 480 x 160 chart."""
    now = now or timezone.now()
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    counts = {
        row["hour"]: row["n"]
        for row in CallAttempt.objects.filter(account=account, sent_at__gte=start)
        .annotate(hour=TruncHour("sent_at")).values("hour").annotate(n=Count("id")).order_by()
    }
    per_hour_limit = max(1, account.day_limit // 24)
    top = max([per_hour_limit, *counts.values()]) * 1.1
    bars = []
    for i in range(24):
        hour = start + timedelta(hours=i)
        n = counts.get(hour, 0)
        height = round(CHART_HEIGHT * n / top, 1)
        bars.append(HourBar(hour, n, i * BAR_STEP + 2, round(CHART_HEIGHT - height, 1), height))
    return HourChart(bars, per_hour_limit, round(CHART_HEIGHT - CHART_HEIGHT * per_hour_limit / top, 1))
