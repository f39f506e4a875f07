"""Benchmark of the alerts (`make bench`): what raising costs the event's transaction, and the
minute's evaluation with many active episodes. Prints one BENCH JSON line."""

from __future__ import annotations

import json
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fleet.alerts import service
from fleet.models import AlertKind, Channel, ChannelKind, SolaxAccount

pytestmark = pytest.mark.django_db


def test_bench_alerts(org, account):
    for i in range(3):
        Channel.objects.create(organization=org, kind=ChannelKind.EMAIL, name=f"c{i}", target=f"c{i}@example.com")
    for i in range(200):
        acc = SolaxAccount(organization=org, name=f"A{i}")
        acc.set_token(f"2023041310452726{i:07d}")
        acc.save()
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as raised:
        service.raise_alert(org, AlertKind.SYNC, "first", title="t")
    with CaptureQueriesContext(connection) as again:
        service.raise_alert(org, AlertKind.SYNC, "first", title="t")
    for i in range(1000):
        service.raise_alert(org, AlertKind.SYNC, f"s{i}", title="t")
    per_raise_ms = (time.perf_counter() - started) * 1000 / 1002
    for acc in SolaxAccount.objects.filter(organization=org):
        service.raise_alert(org, AlertKind.ACCOUNT_PAUSED, str(acc.code), account=acc, title="paused")
    started = time.perf_counter()
    service.evaluate()
    evaluate_ms = (time.perf_counter() - started) * 1000
    print("\nBENCH " + json.dumps({
        "bench": "alerts", "db": connection.vendor, "queries_new_episode": len(raised.captured_queries),
        "queries_open_episode": len(again.captured_queries), "raise_ms": round(per_raise_ms, 2),
        "evaluate_ms_201_paused_episodes": round(evaluate_ms, 1)}))
    assert len(raised.captured_queries) <= 6 and len(again.captured_queries) <= 4
