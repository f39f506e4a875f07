"""Benchmark of the audit log page (`make bench`): 200,000 entries in one organization (and as many in
another), then the newest page, a filtered page 5,000 entries deep (keyset), a search and the filtered
CSV. Prints one BENCH JSON line with the times; the page's query count is the same as in the tests."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from fleet.models import AuditEntry
from fleet.views.audit import cursor_of

pytestmark = pytest.mark.django_db

ENTRIES = 200_000


def _fill(org, n: int) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    actions = ["group.rename", "member.add", "command.create", "schedule.update", "account.update"]
    batch = []
    for i in range(n):
        batch.append(AuditEntry(organization=org, actor_label=f"user{i % 20}", action=actions[i % 5],
                                object_kind=actions[i % 5].split(".")[0], object_name=f"Object {i}",
                                changes={"name": [f"a{i}", f"b{i}"]}, at=now - timedelta(seconds=i * 13)))
        if len(batch) == 5000:
            AuditEntry.objects.bulk_create(batch)
            batch = []
    AuditEntry.objects.bulk_create(batch)


def test_bench_audit_page(admin_client_, org, other_org, django_assert_num_queries):
    _fill(org, ENTRIES)
    _fill(other_org, ENTRIES)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # what autovacuum does after such an insert
            cursor.execute("ANALYZE fleet_auditentry")
    admin_client_.get("/settings/audit/")
    timings = {}
    deep = AuditEntry.objects.filter(organization=org, actor_label="user2", action="command.create")[5000]
    for name, url, params in (("newest", "/settings/audit/", {}),
                              ("filtered_deep", "/settings/audit/", {"actor": "user2", "action": "command.create",
                                                                     "before": cursor_of(deep)}),
                              ("search", "/settings/audit/", {"q": "Object 19999"})):
        started = time.perf_counter()
        with django_assert_num_queries(5):
            assert admin_client_.get(url, params).status_code == 200
        timings[name] = round((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    response = admin_client_.get("/settings/audit.csv?action=group.rename")
    lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
    timings["csv_40k_rows"] = round((time.perf_counter() - started) * 1000)
    assert lines == ENTRIES // 5 + 1
    print("\nBENCH " + json.dumps({"bench": "audit-page", "entries": ENTRIES, "ms": timings}))
