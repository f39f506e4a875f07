"""Benchmarks of the scheduler (`make bench`; not part of `make test`). Each prints one JSON line.

- the minute tick over 1,000 schedules: an idle tick (nothing due) and a tick that fires 1,000 edges
  (send_edge replaced by a recorder that writes a Command row, as in tests/fleet/test_schedules.py)
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


def _fleet(account, n: int) -> None:  # type: ignore[no-untyped-def]
    groups = [Group.objects.create(account=account, remote_id=str(i), name=f"G{i:03d}") for i in range(20)]
    Inverter.objects.bulk_create(Inverter(account=account, group=groups[i % 20], remote_id=f"m{i}",
                                          inverter_sn=f"SN{i:05d}") for i in range(400))
    rows = []
    for i in range(n):
        schedule = Schedule(account=account, name=f"S{i:04d}", target_kind="group", group=groups[i % 20],
                            start_action={**CHARGE, "manualMode": 1 + i % 2}, end_action=STOP,
                            start_time=at(2, 0), end_time=at(5, 0), weekdays=list(range(7)),
                            timezone="Europe/Berlin", created=CREATED)
        rows.append(service.prepare(schedule, now=CREATED))
    Schedule.objects.bulk_create(rows)


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
