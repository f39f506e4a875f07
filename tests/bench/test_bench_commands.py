"""Benchmarks of the command history at 200,000 commands (`make bench`). Each prints one JSON line:
the median time of the history page (first page, a filtered page, a deep page) and of a detail page;
and every combination of the filters (state, kind, target, person, date range) at 2,000 / 20,000 /
200,000 commands (the history counts nothing: it reads one row more than a page)."""

from __future__ import annotations

import json
import random
import statistics
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from fleet.models import Command, CommandKind, CommandState, DeviceResult, Group, Inverter, SolaxAccount, TargetKind

pytestmark = pytest.mark.django_db
COMMANDS = 200_000


def _emit(name: str, **figures: object) -> None:
    print("\nBENCH " + json.dumps({"bench": name, "database": connection.vendor, **figures}))


def _fill(account: SolaxAccount, users: list, start: int = 0, stop: int = COMMANDS) -> None:  # type: ignore[type-arg]
    rng = random.Random(6 + start)
    now = timezone.now()
    states = [s for s, _ in CommandState.choices]
    batch = []
    for i in range(start, stop):
        batch.append(Command(
            account=account, kind=CommandKind.INVERTER_CONTROL if i % 5 else CommandKind.CHARGER_MODE,
            target_kind=rng.choice(TargetKind.values), sns=["H4AA0000000000"], action={"superType": "1"},
            label=f"command {i}", state=rng.choice(states), created=now - timedelta(seconds=i * 30),
            created_by=rng.choice(users), devices_total=10, devices_answered=10))
        if len(batch) == 10_000:
            Command.objects.bulk_create(batch)
            batch = []
    Command.objects.bulk_create(batch)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # as autovacuum would after a load this size
            cursor.execute("ANALYZE fleet_command")


def _median_ms(client: Client, url: str, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return round(statistics.median(times), 1)


def test_history_at_200000_commands(account, operator, viewer, viewer_client):
    _fill(account, [operator, viewer, None])
    command = Command.objects.filter(account=account).first()
    DeviceResult.objects.bulk_create(DeviceResult(command=command, sn=f"H4AA{i:010d}", state="succeeded")
                                     for i in range(100))
    # one inverter that got every 100th command (2,000 results): its device page and the SN search
    group = Group.objects.create(account=account, remote_id="1", name="North field")
    inverter = Inverter.objects.create(account=account, group=group, remote_id="1", inverter_sn="H4BENCH0000001")
    ids = list(Command.objects.filter(account=account).order_by("-created").values_list("id", flat=True)[::100])
    DeviceResult.objects.bulk_create(DeviceResult(command_id=i, sn=inverter.inverter_sn, state="succeeded")
                                     for i in ids)
    Command.objects.filter(id__in=ids[:500]).update(group=group)
    day = (timezone.localdate() - timedelta(days=10)).isoformat()
    _emit("command_history", commands=COMMANDS,
          first_page_ms=_median_ms(viewer_client, "/commands/"),
          state_filter_ms=_median_ms(viewer_client, "/commands/?state=unknown"),
          user_and_date_ms=_median_ms(viewer_client, f"/commands/?user=otto&until={day}"),
          kind_target_ms=_median_ms(viewer_client, "/commands/?kind=charger_mode&target=group"),
          page_200_ms=_median_ms(viewer_client, "/commands/?page=200"),
          sn_search_ms=_median_ms(viewer_client, "/commands/?sn=H4BENCH0000001"),
          group_search_ms=_median_ms(viewer_client, "/commands/?group=north"),
          device_page_ms=_median_ms(viewer_client, f"/inverters/{inverter.code}/"),
          device_page_20_ms=_median_ms(viewer_client, f"/inverters/{inverter.code}/?page=20"),
          detail_100_devices_ms=_median_ms(viewer_client, f"/commands/{command.code}/"),
          dashboard_ms=_median_ms(viewer_client, "/"))


FILTERS = ("state", "kind", "target", "user", "dates")


def _combination_url(names: tuple[str, ...], oldest_day: str, newest_day: str) -> str:
    values = {"state": "state=unknown", "kind": "kind=charger_mode", "target": "target=group", "user": "user=otto",
              "dates": f"since={oldest_day}&until={newest_day}"}
    return "/commands/?" + "&".join(values[name] for name in names)


def test_every_filter_combination_at_2k_20k_200k(account, operator, viewer, viewer_client):
    """Each of the 32 combinations of the five filters, median of 5, at 1x / 10x / 100x commands; the
    date range is the middle half of the history's days."""
    from itertools import combinations

    combos = [c for n in range(len(FILTERS) + 1) for c in combinations(FILTERS, n)]
    figures: dict[str, object] = {}
    made = 0
    for size in (2_000, 20_000, 200_000):
        _fill(account, [operator, viewer, None], made, size)
        made = size
        days = sorted({timezone.localtime(c).date() for c in Command.objects.filter(account=account).values_list(
            "created", flat=True)[::max(1, size // 200)]})
        oldest, newest = days[len(days) // 4].isoformat(), days[len(days) * 3 // 4].isoformat()
        times = {"+".join(c) or "none": _median_ms(viewer_client, _combination_url(c, oldest, newest), runs=5)
                 for c in combos}
        worst = max(times, key=times.__getitem__)
        figures[str(size)] = {"max_ms": times[worst], "worst": worst, "median_ms": statistics.median(times.values()),
                              "by_filters": times}
    _emit("command_history_filters", **figures)
