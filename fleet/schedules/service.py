"""Schedules: when their windows open and close, the minute tick that fires them exactly once, and
the budget they reserve (the week timeline and overlaps are in ``fleet.schedules.timeline``).

DST policy (every local time is a wall-clock time in the schedule's timezone):

- a local time that does not exist (the spring-forward gap) fires at the first valid minute after it:
  02:30 on the last Sunday of March in Europe/Berlin fires at 03:00 CEST;
- an ambiguous local time (the autumn fold) fires once, at its first instance (``fold=0``, summer time).

An occurrence is keyed by (schedule, local date on which its window starts, edge); the unique
constraint on Occurrence makes a second tick, a second beat or a restart harmless.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from fleet.alerts import service as alerts
from fleet.commands.actions import CommandError
from fleet.commands.service import create_command
from fleet.commands.targets import Target, cover, resolve_target
from fleet.models import (
    AlertKind,
    Command,
    Edge,
    Group,
    Occurrence,
    OccurrenceState,
    SavedSelection,
    Schedule,
    Severity,
    SolaxAccount,
    TargetKind,
)
from fleet.models.schedules import grace
from fleet.pipeline.ledger import budget_of
from solax.control import MAX_SNS_PER_CALL

log = logging.getLogger("fleet.schedules")

CATCH_UP_LOOKBACK = timedelta(days=2)  # missed edges older than this are not even recorded
NO_EDGE_RECHECK = timedelta(days=7)  # a schedule with no edge within eight days is looked at again then
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# Local times ----------------------------------------------------------------------------------

def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """Return the UTC instant of the wall-clock time ``at`` on ``day`` in ``tz`` under the DST policy
    above: a missing time moves to the first valid minute after it, an ambiguous one takes fold 0."""
    wall = datetime.combine(day, at.replace(second=0, microsecond=0, fold=0))
    for minutes in range(0, 24 * 60):
        candidate = (wall + timedelta(minutes=minutes)).replace(tzinfo=tz)
        back = candidate.astimezone(UTC).astimezone(tz)
        if back.replace(tzinfo=None) == candidate.replace(tzinfo=None):
            return candidate.astimezone(UTC)
    raise ValueError(f"no valid local time after {wall} in {tz}")  # pragma: no cover - no such zone


def crosses_midnight(schedule: Schedule) -> bool:
    return schedule.end_time <= schedule.start_time


def runs_on(schedule: Schedule, day: date) -> bool:
    """Return whether a window of the schedule starts on the local date ``day``."""
    if schedule.valid_from and day < schedule.valid_from:
        return False
    if schedule.valid_until and day > schedule.valid_until:
        return False
    if schedule.date is not None:
        return day == schedule.date
    return day.weekday() in schedule.weekdays


def window(schedule: Schedule, day: date) -> tuple[datetime, datetime]:
    """Return the UTC start and end of the window that starts on local date ``day``."""
    tz = ZoneInfo(schedule.timezone)
    end_day = day + timedelta(days=1) if crosses_midnight(schedule) else day
    return local_instant(day, schedule.start_time, tz), local_instant(end_day, schedule.end_time, tz)


@dataclass(frozen=True)
class PlannedEdge:
    local_date: date
    edge: str
    due_at: datetime


def edges_between(schedule: Schedule, since: datetime, until: datetime) -> Iterator[PlannedEdge]:
    """Yield the schedule's edges with ``since <= due_at <= until``, oldest first."""
    tz = ZoneInfo(schedule.timezone)
    day = since.astimezone(tz).date() - timedelta(days=1)  # a window of yesterday may end after since
    last = until.astimezone(tz).date()
    while day <= last:
        if runs_on(schedule, day):
            start, end = window(schedule, day)
            for edge, at in ((Edge.START, start), (Edge.END, end)):
                if since <= at <= until:
                    yield PlannedEdge(day, edge, at)
        day += timedelta(days=1)


def next_edge(schedule: Schedule, after: datetime) -> PlannedEdge | None:
    """Return the first edge strictly after ``after`` within eight days, or None."""
    for planned in edges_between(schedule, after + timedelta(microseconds=1), after + timedelta(days=8)):
        return planned
    return None


# The minute tick ------------------------------------------------------------------------------

class EdgeRejected(Exception):
    """The command service refused an edge's action or target; the message says why."""


def send_edge(occurrence: Occurrence) -> Command | None:
    """Create the command of one edge and return it; raises EdgeRejected (the tick's one seam)."""
    schedule = occurrence.schedule
    if schedule.target_kind == TargetKind.GROUP and schedule.group is None:
        raise EdgeRejected("the group of this schedule no longer exists")
    if schedule.target_kind == TargetKind.SAVED and schedule.selection is None:
        raise EdgeRejected("the saved selection of this schedule no longer exists")
    action = schedule.start_action if occurrence.edge == Edge.START else schedule.end_action
    return send_action(schedule.account, schedule.target_kind, schedule.group, list(schedule.sns), action,
                       user=schedule.created_by, source="schedule", groups=tuple(schedule.groups.all()),
                       selection=schedule.selection)


def send_action(account: SolaxAccount, target_kind: str, group: Group | None, sns: list[str],
                action: dict[str, Any], *, user: Any = None, ip: str | None = None,
                source: str = "schedule", groups: tuple[Group, ...] = (),
                selection: SavedSelection | None = None) -> Command:
    """Create a command through the command service and return it.

    Raises EdgeRejected when the service refuses the action or the target.
    """
    target = Target(kind=target_kind, group=group, sns=tuple(sns), groups=groups, selection=selection)
    try:
        command: Command = create_command(account, target, action, user=user, ip=ip, source=source)
    except CommandError as exc:
        errors = getattr(exc, "errors", None) or {}
        raise EdgeRejected("; ".join(f"{k}: {v}" for k, v in errors.items()) or str(exc)) from exc
    return command


@dataclass
class TickReport:
    fired: int = 0
    missed: int = 0
    rejected: int = 0
    skipped: int = 0  # already recorded by another tick


def tick(now: datetime | None = None) -> TickReport:
    """Fire every due edge of every enabled schedule once; record edges later than the grace period
    as missed; move each schedule's ``next_edge_at`` and ``wake_at`` on. Returns what happened.

    Only schedules whose ``wake_at`` has come are read (an index range on schedule_wake), so an idle
    tick costs the same at 100 or 10,000 schedules."""
    now = now or timezone.now()
    report = TickReport()
    schedules = list(Schedule.objects.filter(enabled=True, wake_at__lte=now)
                     .select_related("account", "group", "created_by"))
    if not schedules:
        return report
    since = now - max(grace(), CATCH_UP_LOOKBACK)
    done = set(Occurrence.objects.filter(
        schedule__in=schedules, due_at__gte=since - timedelta(days=1),
    ).values_list("schedule_id", "local_date", "edge"))
    moved = []
    for schedule in schedules:
        for planned in edges_between(schedule, max(since, schedule.created), now):
            if (schedule.pk, planned.local_date, planned.edge) in done:
                continue
            late = now - planned.due_at > grace()
            outcome = _record(schedule, planned, OccurrenceState.MISSED if late else OccurrenceState.FIRED)
            if outcome is None:
                report.skipped += 1
            else:
                setattr(report, outcome, getattr(report, outcome) + 1)
                _alert_edge(schedule, planned, outcome)
        upcoming = next_edge(schedule, now)
        due = upcoming.due_at if upcoming else None
        wake = due or now + NO_EDGE_RECHECK
        if due != schedule.next_edge_at or wake != schedule.wake_at:
            schedule.next_edge_at = due
            schedule.wake_at = wake
            moved.append(schedule)
    Schedule.objects.bulk_update(moved, ["next_edge_at", "wake_at"])
    if report.fired or report.missed or report.rejected:
        log.info("schedules tick: %s fired, %s missed, %s rejected", report.fired, report.missed, report.rejected)
    return report


def _alert_edge(schedule: Schedule, planned: PlannedEdge, outcome: str) -> None:
    """A missed or refused edge opens the schedule's episode; an edge sent on time ends it."""
    if outcome == "fired":
        alerts.edge_sent(schedule.account, str(schedule.code))
        return
    tz = schedule.account.tzinfo
    what = "missed (later than the grace period)" if outcome == "missed" else "refused by the safety checks"
    alerts.edge_missed(schedule.account, str(schedule.code),
                       link=reverse("fleet-schedule-detail", args=[schedule.code]),
                       title=f"Schedule {schedule.name}: {planned.edge} edge {what.split(' (')[0]}",
                       detail=f"The {planned.edge} edge due {planned.due_at.astimezone(tz):%Y-%m-%d %H:%M %Z} "
                              f"was {what}; nothing was sent for it.")


def forecast_budget_alerts(now: datetime | None = None) -> int:
    """The periodic forecast: an account whose enabled schedules' edges of the next 24 hours need
    more control calls than its rolling day has left gets a budget alert; it resolves when they fit.
    Reads only schedules with a next edge (indexed) and each such account's budget. Returns how many
    accounts are short."""
    now = now or timezone.now()
    by_account: dict[int, list[Schedule]] = defaultdict(list)
    for schedule in Schedule.objects.filter(enabled=True, next_edge_at__isnull=False,
                                            next_edge_at__lte=now + timedelta(days=1)).select_related("account"):
        by_account[schedule.account_id].append(schedule)
    short = 0
    for schedules in by_account.values():
        account = schedules[0].account
        needed = sum(schedule.calls_per_edge for schedule in schedules
                     for _ in edges_between(schedule, now, now + timedelta(days=1)))
        free = budget_of(account, now).day_free
        if needed > free:
            short += 1
            alerts.raise_alert(account.organization_id, AlertKind.BUDGET, str(account.code), account=account,
                               severity=Severity.WARNING, link=reverse("fleet-budget"),
                               title=f"Account {account.name}: the day's budget runs out before the coming windows",
                               detail=f"The schedules' edges of the next 24 hours need {needed} control calls; "
                                      f"only {free} are left in the rolling day.")
        else:
            alerts.resolve_alerts(account.organization_id, AlertKind.BUDGET, str(account.code),
                                  "the coming windows fit the budget again")
    for org_id, subject, account_id in alerts.active_of_kind(AlertKind.BUDGET):
        if account_id not in by_account:
            alerts.resolve_alerts(org_id, AlertKind.BUDGET, subject, "no window is coming")
    return short


def _record(schedule: Schedule, planned: PlannedEdge, state: str) -> str | None:
    """Write the edge's occurrence and, if it is on time, its command, in one transaction.

    Returns "fired", "missed" or "rejected", or None when another tick got there first.
    """
    try:
        with transaction.atomic():
            occurrence = Occurrence.objects.create(
                schedule=schedule, local_date=planned.local_date, edge=planned.edge, due_at=planned.due_at,
                state=state)
            if state != OccurrenceState.FIRED:
                return "missed"
            try:
                occurrence.command = send_edge(occurrence)
            except EdgeRejected as exc:
                occurrence.state = OccurrenceState.REJECTED
                occurrence.error = str(exc)[:500]
                log.warning("schedule %s %s edge of %s rejected: %s", schedule.code, planned.edge,
                            planned.local_date, exc)
            occurrence.save(update_fields=["command", "state", "error"])
            return "fired" if occurrence.state == OccurrenceState.FIRED else "rejected"
    except IntegrityError:
        return None


# Saving and reserving -------------------------------------------------------------------------

def calls_per_edge(target_kind: str, sns: Iterable[str], *, account: SolaxAccount | None = None,
                   groups: tuple[Group, ...] = (), selection: SavedSelection | None = None) -> int:
    """Return the control calls one edge needs: one for a group, one per 100 SNs of a selection or of
    chargers; for several groups, the fleet or a saved selection, what the command's cover would use
    today (its members are read again at each edge)."""
    if target_kind == TargetKind.GROUP:
        return 1
    if target_kind in (TargetKind.GROUPS, TargetKind.FLEET, TargetKind.SAVED) and account is not None:
        target = Target(kind=target_kind, groups=groups, selection=selection)
        try:
            return max(1, len(cover(account, resolve_target(account, target))))
        except CommandError:
            return 1
    cap = MAX_SNS_PER_CALL if target_kind == TargetKind.CHARGERS or account is None else account.max_sns_per_call
    return max(1, math.ceil(len(list(sns)) / cap))


def prepare(schedule: Schedule, now: datetime | None = None) -> Schedule:
    """Fill the derived fields (calls per edge, next edge) before a save; returns the schedule. The
    schedule wakes at ``now``: the next tick reads it again (and catches up an edit's past edges the
    way it always has), then moves ``wake_at`` to its next edge."""
    now = now or timezone.now()
    groups = tuple(schedule.groups.all()) if schedule.pk and schedule.target_kind == TargetKind.GROUPS else ()
    schedule.calls_per_edge = calls_per_edge(schedule.target_kind, schedule.sns, account=schedule.account,
                                             groups=groups, selection=schedule.selection)
    upcoming = next_edge(schedule, now) if schedule.enabled else None
    schedule.next_edge_at = upcoming.due_at if upcoming else None
    schedule.wake_at = now
    return schedule


def budget_warnings(account: SolaxAccount, schedules: list[Schedule], now: datetime | None = None) -> list[str]:
    """Return warnings when the edges of the next 24 hours need more calls than the budget delivers
    on time: more in one minute than the minute limit allows, or more than the day has left."""

    now = now or timezone.now()
    budget = budget_of(account, now)
    per_minute = max(1, budget.minute_limit - budget.minute_margin)
    by_minute: dict[datetime, int] = defaultdict(int)
    for schedule in schedules:
        if schedule.enabled and schedule.account_id == account.pk:
            for planned in edges_between(schedule, now, now + timedelta(days=1)):
                by_minute[planned.due_at.replace(second=0, microsecond=0)] += schedule.calls_per_edge
    warnings = []
    tz = account.tzinfo
    for minute, needed in sorted(by_minute.items()):
        if needed > per_minute:
            late = math.ceil(needed / per_minute) - 1
            warnings.append(f"{minute.astimezone(tz):%a %H:%M}: {needed} control calls are due but only "
                            f"{per_minute} can go out a minute; the last will be about {late} min late.")
    total = sum(by_minute.values())
    if total > budget.day_free:
        warnings.append(f"The next 24 hours of windows need {total} control calls; only {budget.day_free} "
                        f"are left in the rolling day.")
    return warnings
