"""The schedules as an operator reads them: their actions and days in words, the devices each one
reaches, the overlaps between them and the 7 x 24 week timeline."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from fleet.commands.actions import describe_action
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


# Why two windows on the same devices conflict (Overlap.kind).
SAME_WINDOW = "same window"  # the same actions at the same times: every edge is sent twice
DIFFERENT_ACTIONS = "different actions"  # both windows open at once, each wanting its own start action
CUT_SHORT = "cut short"  # one window's end action arrives while the other still wants its start action
DIFFERENT_ENDS = "different ends"  # both end at the same moment with different end actions


@dataclass(frozen=True)
class Overlap:
    first: Schedule
    second: Schedule
    devices: list[str]  # SNs both touch (a sample)
    device_count: int
    starts: datetime  # when the two windows first overlap, UTC
    kind: str = DIFFERENT_ACTIONS
    cutter: Schedule | None = None  # CUT_SHORT: the schedule whose end action cuts the other's window

    @property
    def identical(self) -> bool:
        return self.kind == SAME_WINDOW

    def other(self, schedule: Schedule) -> Schedule:
        return self.second if schedule.pk == self.first.pk else self.first

    @property
    def reason(self) -> str:
        """What goes wrong, in words, for a sentence "A and B <reason> N devices"."""
        if self.kind == SAME_WINDOW:
            return "are the same window twice (every action would be sent twice) for"
        if self.kind == CUT_SHORT and self.cutter is not None:
            cut = self.other(self.cutter)
            return (f"overlap: {self.cutter.name} ends ({describe_action(self.cutter.end_action)}) while "
                    f"{cut.name} still wants {describe_action(cut.start_action)}, on")
        if self.kind == DIFFERENT_ENDS:
            return "end at the same time with different end actions on"
        return "send different actions to"


def _conflict(a: Schedule, b: Schedule, wa: tuple[datetime, datetime], wb: tuple[datetime, datetime]
              ) -> tuple[str, Schedule | None] | None:
    """Why the intersecting windows wa (of a) and wb (of b) conflict, or None when every action each
    sends while the other is open is the one the other wants then. Nested and partly overlapping
    windows of the same start action conflict too: the window that ends first sends its end action
    while the other still wants its start action."""
    if a.start_action != b.start_action:
        return DIFFERENT_ACTIONS, None
    if wa == wb:
        return (SAME_WINDOW, None) if a.end_action == b.end_action else (DIFFERENT_ENDS, None)
    if wa[1] == wb[1]:  # different starts (the later one re-sends the same action), one end
        return None if a.end_action == b.end_action else (DIFFERENT_ENDS, None)
    cutter, cut = (a, b) if wa[1] < wb[1] else (b, a)
    return None if cutter.end_action == cut.start_action else (CUT_SHORT, cutter)


def find_overlaps(schedules: list[Schedule], now: datetime, days: int = 7,
                  involving: Schedule | None = None) -> list[Overlap]:
    """Return the pairs of enabled schedules whose windows overlap within ``days`` on a device both
    touch (also through group membership) and conflict there (see ``_conflict``): different start
    actions, one window's end cutting the other short, different ends at the same moment, or the very
    same window twice. With ``involving``, only the pairs that include that schedule."""
    active = [s for s in schedules if s.enabled]
    if involving is not None and not any(s.pk == involving.pk for s in active):
        return []
    devices = devices_of(active)
    windows = {}
    for s in active:
        planned = edges_between(s, now - timedelta(days=1), now + timedelta(days=days))
        spans = [window(s, p.local_date) for p in planned if p.edge == Edge.START]
        windows[s.pk] = [(start, end) for start, end in spans if end > now]
    overlaps = []
    for i, a in enumerate(active):
        for b in active[i + 1:]:
            if involving is not None and involving.pk not in (a.pk, b.pk):
                continue
            shared = devices[a.pk] & devices[b.pk]
            if not shared:
                continue
            found = sorted((max(wa[0], wb[0]), conflict) for wa in windows[a.pk] for wb in windows[b.pk]
                           if wa[0] < wb[1] and wb[0] < wa[1] and (conflict := _conflict(a, b, wa, wb)))
            if found:
                starts, (kind, cutter) = found[0]
                sample = sorted(d.split(":", 1)[1] for d in shared)
                overlaps.append(Overlap(a, b, sample[:5], len(shared), starts, kind, cutter))
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
