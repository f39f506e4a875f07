"""The schedules as an operator reads them: their actions and days in words, the devices each one
reaches, the overlaps between them and the 7 x 24 week timeline."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from fleet.models import Edge, Inverter, Schedule, TargetKind
from fleet.schedules.service import WEEKDAYS, crosses_midnight, edges_between, runs_on, window


def describe_days(schedule: Schedule) -> str:
    if schedule.date is not None:
        return f"{schedule.date:%a %Y-%m-%d}"
    days = sorted(schedule.weekdays)
    if days == list(range(7)):
        return "every day"
    if days == list(range(5)):
        return "Mon–Fri"
    return ", ".join(WEEKDAYS[d] for d in days)


def target_label(schedule: Schedule) -> str:
    if schedule.target_kind == TargetKind.GROUP:
        return f"Group {schedule.group.name}" if schedule.group else "Group (deleted)"
    if schedule.target_kind == TargetKind.GROUPS:
        return "Several groups"
    if schedule.target_kind == TargetKind.FLEET:
        return "The whole fleet"
    if schedule.target_kind == TargetKind.SAVED:
        return f"Selection {schedule.selection.name}" if schedule.selection else "Selection (deleted)"
    kind = "Chargers" if schedule.target_kind == TargetKind.CHARGERS else "Inverters"
    sns = list(schedule.sns)
    return f"{kind} {', '.join(sns[:3])}{f' +{len(sns) - 3}' if len(sns) > 3 else ''}"


def devices_of(schedules: list[Schedule]) -> dict[int, set[str]]:
    """Return {schedule pk: device keys}, groups expanded through the mirror's Inverter rows (one
    query). Inverters are "inv:SN" and chargers "ev:SN", so the two never collide."""
    group_ids = {s.group_id for s in schedules if s.target_kind == TargetKind.GROUP and s.group_id}
    several = {s.pk: {g.pk for g in s.groups.all()} for s in schedules if s.target_kind == TargetKind.GROUPS}
    group_ids |= {gid for ids in several.values() for gid in ids}
    fleets = {s.account_id for s in schedules if s.target_kind == TargetKind.FLEET}
    members: dict[int, set[str]] = defaultdict(set)
    if group_ids:
        for group_id, sn in Inverter.objects.filter(group_id__in=group_ids, removed=False).values_list(
                "group_id", "inverter_sn"):
            members[group_id].add(f"inv:{sn}")
    fleet: dict[int, set[str]] = defaultdict(set)
    if fleets:
        for account_id, sn in Inverter.objects.filter(account_id__in=fleets, removed=False,
                                                      group__removed=False).values_list("account_id", "inverter_sn"):
            fleet[account_id].add(f"inv:{sn}")
    result = {}
    for s in schedules:
        if s.target_kind == TargetKind.GROUP:
            result[s.pk] = members.get(s.group_id or 0, set())
        elif s.target_kind == TargetKind.GROUPS:
            result[s.pk] = set().union(*(members.get(gid, set()) for gid in several[s.pk]))
        elif s.target_kind == TargetKind.FLEET:
            result[s.pk] = fleet.get(s.account_id, set())
        elif s.target_kind == TargetKind.SAVED:
            result[s.pk] = {f"inv:{sn}" for sn in (s.selection.sns if s.selection else [])}
        else:
            prefix = "ev" if s.target_kind == TargetKind.CHARGERS else "inv"
            result[s.pk] = {f"{prefix}:{sn}" for sn in s.sns}
    return result


@dataclass(frozen=True)
class Overlap:
    first: Schedule
    second: Schedule
    devices: list[str]  # SNs both touch (a sample)
    device_count: int
    starts: datetime  # when the two windows first overlap, UTC
    identical: bool = False  # the same window twice (same actions): every edge is sent twice


def find_overlaps(schedules: list[Schedule], now: datetime, days: int = 7) -> list[Overlap]:
    """Return the pairs of enabled schedules whose windows overlap within ``days`` on a device both
    touch (also through group membership) with different start actions, or that are the same window
    twice (same actions, same windows): each edge would be sent twice."""
    active = [s for s in schedules if s.enabled]
    devices = devices_of(active)
    windows = {}
    for s in active:
        planned = edges_between(s, now - timedelta(days=1), now + timedelta(days=days))
        spans = [window(s, p.local_date) for p in planned if p.edge == Edge.START]
        windows[s.pk] = [(start, end) for start, end in spans if end > now]
    overlaps = []
    for i, a in enumerate(active):
        for b in active[i + 1:]:
            shared = devices[a.pk] & devices[b.pk]
            if not shared:
                continue
            same_action = a.start_action == b.start_action and a.end_action == b.end_action
            if same_action:  # only the very same window twice is a problem, not nested ones
                starts = [sa for sa, ea in windows[a.pk] if (sa, ea) in windows[b.pk]]
            elif a.start_action == b.start_action:
                continue
            else:
                starts = [max(sa, sb) for sa, ea in windows[a.pk] for sb, eb in windows[b.pk]
                          if sa < eb and sb < ea]
            if starts:
                sample = sorted(d.split(":", 1)[1] for d in shared)
                overlaps.append(Overlap(a, b, sample[:5], len(shared), min(starts), identical=same_action))
    return overlaps


@dataclass(frozen=True)
class Segment:
    schedule: Schedule
    left: float  # percent of the day
    width: float
    label: str
    continues: bool  # crosses into the next day
    continued: bool  # began the day before
    conflict: bool


@dataclass
class TimelineRow:
    day: date
    segments: list[Segment] = field(default_factory=list)


@dataclass
class TimelineTarget:
    label: str
    rows: list[TimelineRow]


def week_timeline(schedules: list[Schedule], first_day: date, conflicting: set[int]) -> list[TimelineTarget]:
    """Return, per target, seven day rows from ``first_day`` with every window drawn in its own local
    times; a window that crosses midnight is split, and both halves say so."""
    targets: dict[str, TimelineTarget] = {}
    days = [first_day + timedelta(days=i) for i in range(7)]
    for schedule in schedules:
        label = target_label(schedule)
        target = targets.setdefault(label, TimelineTarget(label, [TimelineRow(d) for d in days]))
        start = schedule.start_time.hour * 60 + schedule.start_time.minute
        end = schedule.end_time.hour * 60 + schedule.end_time.minute
        crossing = crosses_midnight(schedule)
        text = f"{schedule.name} {schedule.start_time:%H:%M}–{schedule.end_time:%H:%M}"
        conflict = schedule.pk in conflicting
        for index, day in enumerate(days):
            if runs_on(schedule, day):
                stop = 1440 if crossing else end
                target.rows[index].segments.append(Segment(
                    schedule, start / 14.4, (stop - start) / 14.4, text, crossing, False, conflict))
            if crossing and end > 0 and runs_on(schedule, day - timedelta(days=1)):
                target.rows[index].segments.append(Segment(schedule, 0, end / 14.4, text, False, True, conflict))
    return sorted(targets.values(), key=lambda t: t.label)
