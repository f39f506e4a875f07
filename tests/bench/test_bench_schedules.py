"""Benchmarks of the scheduler (`make bench`; not part of `make test`). Each prints one JSON line.

- the minute tick over 1,000 schedules: an idle tick (nothing due) and a tick that fires 1,000 edges
  (send_edge replaced by a recorder that writes a Command row, as in tests/fleet/test_schedules.py)
- the idle tick at 100 / 1,000 / 10,000 schedules (1x / 10x / 100x): it reads only schedules whose
  wake_at has come, so it should stay flat
- the schedules page with 200 schedules (list, timeline, overlaps, budget warning)
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from datetime import time as at

import pytest
from django.db import connection

from fleet.models import Command, Group, Inverter, Schedule
from fleet.schedules import service

pytestmark = pytest.mark.django_db

CHARGE = {"superType": 2, "mode": 3, "manualMode": 1}
STOP = {"superType": 2, "mode": 3, "manualMode": 0}
CREATED = datetime(2026, 1, 14, tzinfo=UTC)


def _emit(name: str, **figures: object) -> None:
    print("\nBENCH " + json.dumps({"bench": name, "database": connection.vendor, **figures}))


def _fleet(account, n: int, *, start: int = 0, woken: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Add schedules ``start`` .. ``n - 1``; ``woken``: as a tick has left them (wake_at = next edge)."""
    if not start:
        groups = [Group.objects.create(account=account, remote_id=str(i), name=f"G{i:03d}") for i in range(20)]
        Inverter.objects.bulk_create(Inverter(account=account, group=groups[i % 20], remote_id=f"m{i}",
                                              inverter_sn=f"SN{i:05d}") for i in range(400))
    groups = list(Group.objects.filter(account=account).order_by("name"))
    rows = []
    for i in range(start, n):
        schedule = Schedule(account=account, name=f"S{i:04d}", target_kind="group", group=groups[i % 20],
                            start_action={**CHARGE, "manualMode": 1 + i % 2}, end_action=STOP,
                            start_time=at(2, 0), end_time=at(5, 0), weekdays=list(range(7)),
                            timezone="Europe/Berlin", created=CREATED)
        if woken:  # as the tick at midnight UTC left them: each wakes at its next edge
            prepared = service.prepare(schedule, now=datetime(2026, 1, 15, tzinfo=UTC))
            prepared.wake_at = prepared.next_edge_at
        else:
            prepared = service.prepare(schedule, now=CREATED)
        rows.append(prepared)
    Schedule.objects.bulk_create(rows, batch_size=2000)


def test_bench_the_minute_tick(account, monkeypatch):
    def record(occurrence):  # type: ignore[no-untyped-def]
        return Command.objects.create(account=occurrence.schedule.account, kind="inverter_control",
                                      target_kind="group", action=CHARGE, label="bench")

    monkeypatch.setattr(service, "send_edge", record)
    _fleet(account, 1000)
    service.tick(datetime(2026, 1, 14, 12, 0, tzinfo=UTC))  # records yesterday's edges as missed
    started = time.perf_counter()
    idle = service.tick(datetime(2026, 1, 15, 0, 30, tzinfo=UTC))
    idle_s = time.perf_counter() - started
    started = time.perf_counter()
    busy = service.tick(datetime(2026, 1, 15, 1, 0, 10, tzinfo=UTC))
    busy_s = time.perf_counter() - started
    assert idle.fired == 0 and busy.fired == 1000
    _emit("schedules_tick", schedules=1000, idle_tick_ms=round(idle_s * 1000, 1),
          firing_tick_ms=round(busy_s * 1000, 1), per_edge_ms=round(busy_s, 3))


def test_bench_the_idle_tick_at_1x_10x_100x(account):
    """An idle tick (nothing due: every schedule's next edge is 02:00 Berlin) at 100, 1,000 and 10,000
    schedules, the median of 7 ticks each."""
    figures = {}
    made = 0
    for n in (100, 1_000, 10_000):
        _fleet(account, n, start=made, woken=True)
        made = n
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # as autovacuum would after a load this size
                cursor.execute("ANALYZE fleet_schedule")
        times = []
        for minute in range(7):
            started = time.perf_counter()
            report = service.tick(datetime(2026, 1, 15, 0, 30 + minute, tzinfo=UTC))
            times.append(time.perf_counter() - started)
            assert report.fired == report.missed == 0
        figures[f"idle_tick_ms_{n}"] = round(sorted(times)[3] * 1000, 2)
    _emit("schedules_idle_tick_scale", **figures)


def test_bench_the_schedules_page(operator_client, account):
    _fleet(account, 200)
    operator_client.get("/schedules/")
    times = []
    for _ in range(5):
        started = time.perf_counter()
        response = operator_client.get("/schedules/")
        times.append(time.perf_counter() - started)
    assert response.status_code == 200
    _emit("schedules_page", schedules=200, median_ms=round(sorted(times)[2] * 1000, 1))
