"""Benchmark of the cost plan (`make bench`): plan_command for the whole fleet at 500 / 5,000 / 50,000
devices (500 groups at the largest), plain and as a staged rollout. Prints one JSON line each: the
median time and the query count, which must not grow with the fleet."""

from __future__ import annotations

import json
import statistics
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleet.commands import service
from fleet.commands.rollout import RolloutSpec
from fleet.commands.targets import Target
from fleet.models import Group, Inverter, SolaxAccount

pytestmark = pytest.mark.django_db
DISCHARGE = {"superType": 2, "mode": 3, "manualMode": 2}


def _emit(name: str, **figures: object) -> None:
    print("\nBENCH " + json.dumps({"bench": name, "database": connection.vendor, **figures}))


def _fleet(account: SolaxAccount, n: int) -> None:
    Inverter.objects.filter(account=account).delete()
    Group.objects.filter(account=account).delete()
    groups = max(1, n // 100)
    Group.objects.bulk_create(Group(account=account, remote_id=f"10{g:06d}", name=f"G{g:05d}",
                                    device_count=n // groups) for g in range(groups))
    made = list(Group.objects.filter(account=account).order_by("pk"))
    Inverter.objects.bulk_create(
        (Inverter(account=account, group=made[i % groups], remote_id=f"5{i:08d}", inverter_sn=f"H4AA{i:010d}",
                  dongle_sn=f"SWAA{i:07d}") for i in range(n)), batch_size=5000)
    # as autovacuum would have: stale statistics make the planner scan 50,000 x 500
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Inverter._meta.db_table}")  # noqa: S608 - the model's own table names
            cursor.execute(f"ANALYZE {Group._meta.db_table}")  # noqa: S608


@pytest.mark.parametrize("staged", [False, True], ids=["plain", "staged"])
def test_bench_plan_of_the_whole_fleet(account, staged):
    account.max_sns_per_call = 100
    account.save()
    spec = RolloutSpec(5, "percent", 10) if staged else None
    figures = {}
    for n in (500, 5_000, 50_000):
        _fleet(account, n)
        times = []
        for _ in range(3):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                plan = service.plan_command(account, Target("fleet"), DISCHARGE, staged=spec)
                times.append(time.perf_counter() - started)
        figures[str(n)] = {"ms": round(1000 * statistics.median(times), 1), "queries": len(captured),
                           "sends": plan.sends}
    _emit("plan_command", staged=staged, **figures)
    assert len({f["queries"] for f in figures.values()}) == 1
