"""What the budget page and the dashboard show of an account's use of its SolaX budget."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from fleet.models import CallAttempt, Priority, SolaxAccount
from fleet.pipeline import ledger


@dataclass(frozen=True)
class QueueRow:
    priority: int
    label: str
    queued: int


@dataclass(frozen=True)
class HourCount:
    start: datetime
    calls: int


@dataclass(frozen=True)
class BudgetView:
    account: SolaxAccount
    budget: ledger.Budget
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
    budget = ledger.budget_of(account, now)
    depth = ledger.queue_depth(account)
    queue = [QueueRow(p.value, p.label, depth.get(p.value, 0)) for p in Priority]
    total = sum(depth.values())
    usable_per_window = max(1, budget.minute_limit - budget.minute_margin)
    window = ledger.minute_window().total_seconds()
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
class HourlyCalls:
    hours: list[HourCount]  # the last 24 hours, oldest first
    per_hour_limit: int  # the daily limit spread evenly


def hourly_calls(account: SolaxAccount, now: datetime | None = None) -> HourlyCalls:
    """Return the requests sent in each of the last 24 hours (oldest first) and the sustainable
    hourly rate they are measured against (one query)."""
    now = now or timezone.now()
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    counts = {
        row["hour"]: row["n"]
        for row in CallAttempt.objects.filter(account=account, sent_at__gte=start)
        .annotate(hour=TruncHour("sent_at", tzinfo=UTC)).values("hour").annotate(n=Count("id")).order_by()
    }
    hours = [HourCount(start + timedelta(hours=i), counts.get(start + timedelta(hours=i), 0)) for i in range(24)]
    return HourlyCalls(hours, max(1, account.day_limit // 24))
