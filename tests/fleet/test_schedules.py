"""The scheduler with a controlled clock: local times, DST both ways, a year boundary, missed,
double and concurrent ticks. ``send_edge`` (the one seam to fleet.commands) is replaced by a
recorder that writes a real Command row and remembers what it was asked to send."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from fleet.models import (
    ApiCall,
    CallState,
    Command,
    Edge,
    Group,
    Inverter,
    Occurrence,
    OccurrenceState,
    Priority,
    Schedule,
    TargetKind,
)
from fleet.pipeline import ledger, queue
from fleet.schedules import service, timeline

pytestmark = pytest.mark.django_db

CHARGE = {"superType": 2, "mode": 3, "manualMode": 1}
SELF_USE = {"superType": 2, "mode": 0, "chargeFromGridEN": 0, "minSoc": 10, "chargeFromGridUpperSoC": 100}
BERLIN = "Europe/Berlin"
JAN_15 = datetime(2026, 1, 15, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class Recorder:
    """Stands in for send_edge: records (schedule, occurrence date, edge) and creates a Command."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, date, str]] = []
        self.lock = threading.Lock()

    def __call__(self, occurrence: Occurrence) -> Command:
        schedule = occurrence.schedule
        with self.lock:
            self.sent.append((schedule.name, occurrence.local_date, occurrence.edge))
        action = schedule.start_action if occurrence.edge == "start" else schedule.end_action
        return Command.objects.create(account=schedule.account, kind="inverter_control", target_kind="group",
                                      group=schedule.group, action=action, label=schedule.name, source="schedule")


@pytest.fixture
def recorder(monkeypatch):  # type: ignore[no-untyped-def]
    rec = Recorder()
    monkeypatch.setattr(service, "send_edge", rec)
    return rec


@pytest.fixture
def group(account):  # type: ignore[no-untyped-def]
    return Group.objects.create(account=account, remote_id="100", name="North")


def make(account, group, name="Night charge", *, start=time(2, 0), end=time(5, 0),  # type: ignore[no-untyped-def]
         weekdays=(0, 1, 2, 3, 4, 5, 6), created=JAN_15, tz=BERLIN, **fields):
    values = {"account": account, "name": name, "target_kind": TargetKind.GROUP, "group": group,
              "start_action": CHARGE, "end_action": SELF_USE, "start_time": start, "end_time": end,
              "weekdays": list(weekdays), "timezone": tz, "created": created, **fields}
    schedule = service.prepare(Schedule(**values), now=created)
    schedule.save()
    return schedule


# Local times and the DST policy ----------------------------------------------------------------

def test_a_local_time_is_the_wall_clock_of_the_timezone():
    tz = service.ZoneInfo(BERLIN)
    assert service.local_instant(date(2026, 1, 15), time(2, 0), tz) == utc(2026, 1, 15, 1, 0)
    assert service.local_instant(date(2026, 7, 15), time(2, 0), tz) == utc(2026, 7, 15, 0, 0)


def test_a_missing_local_time_moves_to_the_first_valid_minute_after_it():
    tz = service.ZoneInfo(BERLIN)  # 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC)
    assert service.local_instant(date(2026, 3, 29), time(2, 30), tz) == utc(2026, 3, 29, 1, 0)
    assert service.local_instant(date(2026, 3, 29), time(2, 0), tz) == utc(2026, 3, 29, 1, 0)
    assert service.local_instant(date(2026, 3, 29), time(3, 0), tz) == utc(2026, 3, 29, 1, 0)


def test_an_ambiguous_local_time_takes_its_first_instance():
    tz = service.ZoneInfo(BERLIN)  # 2026-10-25: 02:00-03:00 happens twice, first in CEST
    assert service.local_instant(date(2026, 10, 25), time(2, 30), tz) == utc(2026, 10, 25, 0, 30)


# Firing -------------------------------------------------------------------------------------

def test_it_fires_start_and_end_once_at_the_local_times(account, group, recorder):
    make(account, group)
    assert service.tick(utc(2026, 1, 15, 0, 59)).fired == 0
    assert service.tick(utc(2026, 1, 15, 1, 0, 20)).fired == 1  # 02:00 CET
    assert service.tick(utc(2026, 1, 15, 1, 1)).fired == 0
    assert service.tick(utc(2026, 1, 15, 4, 0, 5)).fired == 1  # 05:00 CET
    assert recorder.sent == [("Night charge", date(2026, 1, 15), "start"), ("Night charge", date(2026, 1, 15), "end")]
    start = Occurrence.objects.get(edge="start")
    assert start.state == OccurrenceState.FIRED and start.command is not None
    assert start.command.action == CHARGE and start.due_at == utc(2026, 1, 15, 1, 0)


def test_a_double_tick_sends_once(account, group, recorder):
    make(account, group)
    first = service.tick(utc(2026, 1, 15, 1, 0, 1))
    second = service.tick(utc(2026, 1, 15, 1, 0, 1))
    assert (first.fired, second.fired) == (1, 0)
    assert len(recorder.sent) == 1
    assert Occurrence.objects.count() == 1 and Command.objects.count() == 1


def test_a_tick_that_lost_the_race_inserts_nothing(account, group, recorder):
    schedule = make(account, group)
    Occurrence.objects.create(schedule=schedule, local_date=date(2026, 1, 15), edge="start",
                              due_at=utc(2026, 1, 15, 1, 0), state=OccurrenceState.FIRED)
    # the tick read no key (as if another beat committed after it looked), the insert loses
    planned = service.PlannedEdge(date(2026, 1, 15), "start", utc(2026, 1, 15, 1, 0))
    assert service._record(schedule, planned, OccurrenceState.FIRED) is None
    assert recorder.sent == [] and Command.objects.count() == 0


def test_spring_forward_fires_at_the_first_valid_minute(account, group, recorder):
    make(account, group, start=time(2, 30), end=time(4, 0), created=utc(2026, 3, 29))
    assert service.tick(utc(2026, 3, 29, 0, 59)).fired == 0
    assert service.tick(utc(2026, 3, 29, 1, 0)).fired == 1  # 03:00 CEST, the first minute after 02:30
    assert service.tick(utc(2026, 3, 29, 2, 0)).fired == 1  # 04:00 CEST
    assert [e for _, _, e in recorder.sent] == ["start", "end"]


def test_fall_back_fires_an_ambiguous_time_once(account, group, recorder):
    make(account, group, start=time(2, 30), end=time(4, 0), created=utc(2026, 10, 25))
    assert service.tick(utc(2026, 10, 25, 0, 30)).fired == 1  # 02:30 CEST
    assert service.tick(utc(2026, 10, 25, 1, 30)).fired == 0  # 02:30 CET again: already fired
    assert service.tick(utc(2026, 10, 25, 3, 0)).fired == 1  # 04:00 CET
    assert recorder.sent == [("Night charge", date(2026, 10, 25), "start"), ("Night charge", date(2026, 10, 25), "end")]


def test_a_window_across_the_year_boundary(account, group, recorder):
    make(account, group, name="New year", start=time(23, 0), end=time(1, 0),
         created=utc(2026, 12, 31, 12))
    for minute in range(0, 36 * 60):
        service.tick(utc(2026, 12, 31, 12, 0) + timedelta(minutes=minute))
    assert recorder.sent == [("New year", date(2026, 12, 31), "start"), ("New year", date(2026, 12, 31), "end"),
                             ("New year", date(2027, 1, 1), "start")]
    end = Occurrence.objects.get(local_date=date(2026, 12, 31), edge="end")
    assert end.due_at == utc(2027, 1, 1, 0, 0)  # 01:00 CET on January 1st


def test_a_one_off_date_fires_only_that_day(account, group, recorder):
    make(account, group, name="Once", weekdays=(), date=date(2027, 1, 1), created=utc(2026, 12, 30))
    service.tick(utc(2026, 12, 31, 1, 0))
    service.tick(utc(2027, 1, 1, 1, 0))
    service.tick(utc(2027, 1, 8, 1, 0))
    assert recorder.sent == [("Once", date(2027, 1, 1), "start")]


def test_missed_ticks_catch_up_within_the_grace_period(account, group, recorder, settings):
    settings.SCHEDULE_GRACE_MINUTES = 10
    make(account, group)
    report = service.tick(utc(2026, 1, 15, 1, 9, 59))  # worker was down from 01:58 until now
    assert report.fired == 1 and report.missed == 0
    assert recorder.sent == [("Night charge", date(2026, 1, 15), "start")]


def test_later_than_the_grace_period_the_edge_is_missed_and_never_sent(account, group, recorder, settings):
    settings.SCHEDULE_GRACE_MINUTES = 10
    make(account, group)
    report = service.tick(utc(2026, 1, 15, 1, 10, 1))
    assert (report.fired, report.missed) == (0, 1)
    assert service.tick(utc(2026, 1, 15, 1, 11)).missed == 0  # recorded once
    missed = Occurrence.objects.get()
    assert missed.state == OccurrenceState.MISSED and missed.command is None
    assert recorder.sent == []
    assert service.tick(utc(2026, 1, 15, 4, 0)).fired == 1  # the end still goes
    assert recorder.sent == [("Night charge", date(2026, 1, 15), "end")]


def test_a_long_outage_marks_every_old_edge_missed(account, group, recorder):
    make(account, group)
    report = service.tick(utc(2026, 1, 17, 1, 5))  # down since the 15th
    assert report.fired == 1  # today's start, 5 minutes late
    assert report.missed == 3  # the end of the 15th, start and end of the 16th (two days back)
    assert Occurrence.objects.filter(state=OccurrenceState.MISSED).count() == 3


def test_it_never_fires_before_the_schedule_existed(account, group, recorder):
    make(account, group, created=utc(2026, 1, 15, 1, 3))
    service.tick(utc(2026, 1, 15, 1, 4))
    assert recorder.sent == []
    assert Occurrence.objects.count() == 0


def test_paused_and_expired_schedules_do_not_fire(account, group, recorder):
    make(account, group, name="Paused", enabled=False)
    make(account, group, name="Over", valid_until=date(2026, 1, 14))
    make(account, group, name="Later", valid_from=date(2026, 1, 16))
    make(account, group, name="Weekend", weekdays=(5, 6))  # the 15th is a Thursday
    service.tick(utc(2026, 1, 15, 1, 0))
    assert recorder.sent == []


def test_a_rejected_edge_is_recorded_and_not_retried(account, group, monkeypatch):
    def refuse(occurrence):  # type: ignore[no-untyped-def]
        raise service.EdgeRejected("manualMode: required")

    monkeypatch.setattr(service, "send_edge", refuse)
    make(account, group)
    assert service.tick(utc(2026, 1, 15, 1, 0)).rejected == 1
    assert service.tick(utc(2026, 1, 15, 1, 1)).rejected == 0
    occurrence = Occurrence.objects.get()
    assert occurrence.state == OccurrenceState.REJECTED and occurrence.error == "manualMode: required"


def test_the_real_seam_refuses_a_schedule_whose_group_is_gone(account, group):
    schedule = make(account, group)
    group.delete()
    schedule.refresh_from_db()
    assert service.tick(utc(2026, 1, 15, 1, 0)).rejected == 1
    assert Occurrence.objects.get().error == "the group of this schedule no longer exists"


def test_the_tick_moves_next_edge_on(account, group, recorder):
    schedule = make(account, group)
    service.tick(utc(2026, 1, 15, 1, 0))
    schedule.refresh_from_db()
    assert schedule.next_edge_at == utc(2026, 1, 15, 4, 0)


def test_the_beat_task_runs_the_tick(account, group, recorder):
    from fleet.tasks import schedules_tick

    make(account, group, created=timezone.now() - timedelta(minutes=2),
         start=(timezone.now() - timedelta(minutes=1)).astimezone(account.tzinfo).time(),
         end=(timezone.now() + timedelta(hours=1)).astimezone(account.tzinfo).time())
    assert schedules_tick() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_ticks_send_once(account, group, recorder):
    make(account, group)
    make(account, group, name="Evening", start=time(2, 0), end=time(3, 0))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            service.tick(utc(2026, 1, 15, 1, 0, 30))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    day = date(2026, 1, 15)
    assert sorted(recorder.sent) == [("Evening", day, "start"), ("Night charge", day, "start")]
    assert Occurrence.objects.count() == 2 and Command.objects.count() == 2


# Budget reservation -----------------------------------------------------------------------------

def test_reserved_slots_count_the_control_calls_of_edges_about_to_fire(account, group):
    make(account, group)  # one group call per edge
    selection = make(account, None, name="Many", target_kind=TargetKind.SELECTION,
                     sns=[f"SN{i:04d}" for i in range(150)])
    assert selection.calls_per_edge == 2
    assert ledger.reserved_slots(account.pk, utc(2026, 1, 15, 0, 57)) == 0
    assert ledger.reserved_slots(account.pk, utc(2026, 1, 15, 0, 58, 30)) == 3
    assert ledger.reserved_slots(account.pk, utc(2026, 1, 15, 1, 3)) == 3  # due, not yet ticked


def test_reads_cannot_take_the_slots_reserved_for_an_edge(account, group):
    account.calls_per_minute, account.safety_margin_per_minute = 4, 1  # 3 usable slots
    account.save()
    now = timezone.now()
    schedule = make(account, group, created=now - timedelta(days=1),
                    start=(now + timedelta(seconds=50)).astimezone(account.tzinfo).time(),
                    end=(now + timedelta(hours=1)).astimezone(account.tzinfo).time())
    schedule.next_edge_at = now + timedelta(seconds=50)
    schedule.calls_per_edge = 2
    schedule.save()
    filler = ApiCall.objects.create(account=account, endpoint="group_query", priority=Priority.READ,
                                    state=CallState.SUCCEEDED)
    ledger.record_past_attempts(account, filler, [now])  # 2 free, both reserved
    read = queue.enqueue(account, "group_query", {"current": 1, "size": 10})
    now += timedelta(seconds=1)  # the calls are due
    assert ledger.claim_next(account.pk, now=now) is None
    control = queue.enqueue(account, "group_control", {"groupId": "100", "superType": 1, "systemSwitch": 1})
    assert ledger.claim_next(account.pk, now=now).pk == control.pk
    read.refresh_from_db()
    assert read.state == CallState.QUEUED
    schedule.next_edge_at = now + timedelta(hours=1)
    schedule.save()
    assert ledger.claim_next(account.pk, now=now).pk == read.pk  # nothing reserved any more


def test_the_page_warns_when_one_minute_needs_more_calls_than_the_budget(account, group):
    now = utc(2026, 1, 15, 0, 0)
    many = [make(account, None, name=f"S{i}", target_kind=TargetKind.SELECTION,
                 sns=[f"SN{j}" for j in range(300)]) for i in range(4)]  # 3 calls each: 12 at 02:00
    warnings = service.budget_warnings(account, many, now)
    assert ("Thu 02:00: 12 control calls are due but only 9 can go out a minute; the last will be about "
            "1 min late.") in warnings


# Overlaps and the timeline ---------------------------------------------------------------------

def test_overlap_through_group_membership_with_a_conflicting_action(account, group):
    Inverter.objects.create(account=account, group=group, remote_id="1", inverter_sn="SNA")
    Inverter.objects.create(account=account, group=group, remote_id="2", inverter_sn="SNB")
    a = make(account, group, name="Charge", start=time(2, 0), end=time(5, 0))
    b = make(account, None, name="Discharge", target_kind=TargetKind.SELECTION, sns=["SNB"],
             start=time(4, 0), end=time(6, 0))
    b.start_action = {"superType": 2, "mode": 3, "manualMode": 2}
    b.save()
    overlaps = timeline.find_overlaps([a, b], utc(2026, 1, 15, 0, 0))
    assert [(o.first.name, o.second.name, o.devices) for o in overlaps] == [("Charge", "Discharge", ["SNB"])]
    assert overlaps[0].starts == utc(2026, 1, 15, 3, 0)


def test_no_overlap_for_other_devices_or_other_hours(account, group):
    Inverter.objects.create(account=account, group=group, remote_id="1", inverter_sn="SNA")
    a = make(account, group, name="A")
    elsewhere = make(account, None, name="Elsewhere", target_kind=TargetKind.SELECTION,
                     sns=["SNZ"], start_action={"superType": 2, "mode": 3, "manualMode": 2})
    later = make(account, group, name="Later", start=time(5, 0), end=time(6, 0),  # starts as A ends
                 start_action={"superType": 2, "mode": 3, "manualMode": 2})
    assert timeline.find_overlaps([a, elsewhere, later], utc(2026, 1, 15)) == []


def test_a_nested_window_of_the_same_action_is_flagged_its_end_cuts_the_outer_one_short(account, group):
    Inverter.objects.create(account=account, group=group, remote_id="1", inverter_sn="SNA")
    outer = make(account, group, name="Outer")  # 02:00-05:00 forced charge, then self use
    inner = make(account, group, name="Inner", start=time(3, 0), end=time(4, 0))  # self use at 04:00
    overlaps = timeline.find_overlaps([outer, inner], utc(2026, 1, 15))
    assert [(o.first.name, o.second.name, o.kind, o.cutter) for o in overlaps] == [
        ("Outer", "Inner", timeline.CUT_SHORT, inner)]
    assert overlaps[0].starts == utc(2026, 1, 15, 2, 0)  # 03:00 in Berlin
    assert overlaps[0].reason == ("overlap: Inner ends (Self use) while Outer still wants Forced charge, on")
    assert not overlaps[0].identical


def test_a_partly_overlapping_window_of_the_same_action_is_flagged(account, group):
    Inverter.objects.create(account=account, group=group, remote_id="1", inverter_sn="SNA")
    early = make(account, group, name="Early")  # 02:00-05:00
    late = make(account, group, name="Late", start=time(4, 0), end=time(6, 0))
    overlaps = timeline.find_overlaps([early, late], utc(2026, 1, 15))
    assert [(o.kind, o.cutter) for o in overlaps] == [(timeline.CUT_SHORT, early)]
    assert overlaps[0].starts == utc(2026, 1, 15, 3, 0)  # 04:00 in Berlin


def test_the_same_start_with_contradictory_end_actions_is_flagged(account, group):
    Inverter.objects.create(account=account, group=group, remote_id="1", inverter_sn="SNA")
    a = make(account, group, name="Back to self use")
    b = make(account, group, name="Then stop", end_action={"superType": 2, "mode": 3, "manualMode": 0})
    overlaps = timeline.find_overlaps([a, b], utc(2026, 1, 15))
    assert [(o.kind, o.identical) for o in overlaps] == [(timeline.DIFFERENT_ENDS, False)]


def test_no_overlap_when_what_one_sends_inside_the_other_is_what_the_other_wants(account, group):
    Inverter.objects.create(account=account, group=group, remote_id="1", inverter_sn="SNA")
    a = make(account, group, name="Charge till five")  # 02:00-05:00, then self use
    b = make(account, group, name="Charge from three", start=time(3, 0))  # the same end: only a re-send at 03:00
    # ends by asking for what the outer window wants: no contradiction
    keep = make(account, group, name="Keeps charging", start=time(3, 0), end=time(4, 0), end_action=CHARGE)
    assert timeline.find_overlaps([a, b, keep], utc(2026, 1, 15)) == []


def test_overlaps_involving_one_schedule(account, group):
    Inverter.objects.create(account=account, group=group, remote_id="1", inverter_sn="SNA")
    a = make(account, group, name="A")
    b = make(account, group, name="B", start=time(3, 0), end=time(4, 0))
    c = make(account, group, name="C", start=time(3, 30), end=time(4, 30),
             start_action={"superType": 2, "mode": 3, "manualMode": 2})
    names = {(o.first.name, o.second.name) for o in timeline.find_overlaps([a, b, c], utc(2026, 1, 15), involving=c)}
    assert names == {("A", "C"), ("B", "C")}


def test_the_same_window_twice_is_flagged(account, group):
    Inverter.objects.create(account=account, group=group, remote_id="1", inverter_sn="SNA")
    a = make(account, group, name="Charge")
    b = make(account, group, name="Charge again")
    overlaps = timeline.find_overlaps([a, b], utc(2026, 1, 15))
    assert [(o.first.name, o.second.name, o.identical) for o in overlaps] == [("Charge", "Charge again", True)]
    assert overlaps[0].starts == utc(2026, 1, 15, 1, 0)  # 02:00 in Berlin


def test_a_window_across_midnight_is_drawn_on_both_days(account, group):
    night = make(account, group, name="Night", start=time(22, 0), end=time(6, 0), weekdays=(4,))  # Friday
    targets = timeline.week_timeline([night], date(2026, 1, 12), set())  # Monday
    rows = targets[0].rows
    friday, saturday = rows[4], rows[5]
    assert [(s.continues, round(s.left, 2), round(s.width, 2)) for s in friday.segments] == [(True, 91.67, 8.33)]
    assert [(s.continued, s.left, s.width) for s in saturday.segments] == [(True, 0, 25.0)]
    assert all(not r.segments for i, r in enumerate(rows) if i not in (4, 5))


# The same targets as commands -------------------------------------------------------------------

def test_a_schedule_reaches_several_groups_the_fleet_or_a_saved_selection(account, group):
    from fleet.models import SavedSelection

    other = Group.objects.create(account=account, remote_id="77", name="South", device_count=1)
    Inverter.objects.create(account=account, group=other, remote_id="s1", inverter_sn="SOUTH1")
    selection = SavedSelection.objects.create(account=account, name="Pilot", sns=["SOUTH1"])
    several = make(account, None, name="Both", target_kind=TargetKind.GROUPS)
    several.groups.set([group, other])
    fleet = make(account, None, name="All", target_kind=TargetKind.FLEET)
    saved = make(account, None, name="Saved", target_kind=TargetKind.SAVED, selection=selection)
    for schedule, expected in ((several, "2 groups"), (fleet, "the whole fleet"), (saved, "selection Pilot")):
        occurrence = Occurrence.objects.create(schedule=schedule, local_date=date(2026, 1, 15), edge=Edge.START,
                                               due_at=utc(2026, 1, 15, 1))
        command = service.send_edge(occurrence)
        assert expected in command.label and command.source == "schedule"
    assert timeline.target_label(saved) == "Selection Pilot"
    assert timeline.devices_of([fleet])[fleet.pk] >= {"inv:SOUTH1"}


def test_a_schedule_whose_selection_was_deleted_is_rejected_with_a_reason(account):
    from fleet.models import SavedSelection

    selection = SavedSelection.objects.create(account=account, name="Gone", sns=["X1"])
    schedule = make(account, None, name="Saved", target_kind=TargetKind.SAVED, selection=selection)
    selection.delete()
    schedule.refresh_from_db()
    occurrence = Occurrence.objects.create(schedule=schedule, local_date=date(2026, 1, 15), edge=Edge.START,
                                           due_at=utc(2026, 1, 15, 1))
    with pytest.raises(service.EdgeRejected, match="saved selection"):
        service.send_edge(occurrence)


def test_the_tick_reads_only_schedules_whose_wake_time_has_come(account, group, recorder,
                                                                 django_assert_num_queries):
    schedule = make(account, group)
    for i in range(30):
        make(account, group, name=f"Idle {i}", start=time(20, 0), end=time(21, 0))
    service.tick(utc(2026, 1, 15, 0, 30))  # the first look after saving: every schedule wakes once
    schedule.refresh_from_db()
    assert schedule.wake_at == schedule.next_edge_at == utc(2026, 1, 15, 1, 0)
    # idle: one query (the due schedules: none), whatever the number of schedules
    with django_assert_num_queries(1):
        assert service.tick(utc(2026, 1, 15, 0, 45)).fired == 0
    assert service.tick(utc(2026, 1, 15, 1, 0)).fired == 1
    schedule.refresh_from_db()
    assert schedule.wake_at == utc(2026, 1, 15, 4, 0)
    assert Schedule.objects.filter(wake_at__lte=utc(2026, 1, 15, 1, 0)).count() == 0


def test_the_wake_time_follows_an_edit_a_pause_and_dst(account, group, recorder):
    schedule = make(account, group, start=time(2, 30), end=time(4, 0), created=utc(2026, 3, 28, 12, 0))
    service.tick(utc(2026, 3, 28, 12, 1))
    schedule.refresh_from_db()
    assert schedule.wake_at == utc(2026, 3, 29, 1, 0)  # 02:30 does not exist that night: 03:00 CEST
    schedule.start_time = time(1, 0)  # an edit wakes it at once, the next tick moves it on
    service.prepare(schedule, now=utc(2026, 3, 28, 12, 2)).save()
    assert schedule.wake_at == utc(2026, 3, 28, 12, 2)
    service.tick(utc(2026, 3, 28, 12, 3))
    schedule.refresh_from_db()
    assert schedule.wake_at == utc(2026, 3, 29, 0, 0)  # 01:00 CET
    schedule.enabled = False
    service.prepare(schedule, now=utc(2026, 3, 28, 12, 4)).save()
    assert service.tick(utc(2026, 3, 29, 0, 0)).fired == 0  # paused: never read


def test_a_schedule_with_no_edge_within_eight_days_wakes_a_week_later(account, group, recorder):
    schedule = make(account, group, date=date(2026, 3, 1), weekdays=())
    service.tick(utc(2026, 1, 15, 0, 30))
    schedule.refresh_from_db()
    assert schedule.next_edge_at is None and schedule.wake_at == utc(2026, 1, 22, 0, 30)
    for day in range(22, 32):  # it is looked at again weekly until its edge is within eight days
        service.tick(utc(2026, 1, day, 0, 30))
    schedule.refresh_from_db()
    assert schedule.wake_at == utc(2026, 2, 5, 0, 30)
    for day in (5, 12, 19, 26):
        service.tick(utc(2026, 2, day, 0, 30))
    schedule.refresh_from_db()
    assert schedule.next_edge_at == schedule.wake_at == utc(2026, 3, 1, 1, 0)
    assert service.tick(utc(2026, 3, 1, 1, 0)).fired == 1
