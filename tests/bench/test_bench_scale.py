"""Benchmarks of the work that must not grow with the fleet (`make bench`; issue 13 item 9). Each
prints one `BENCH {json}` line at 1x / 10x / 100x data:

- the beat sweep at 10 / 100 / 1,000 accounts whose minute is spent and that each have a due call:
  the first sweep after the minute was spent claims each once and records when it can send
  (``send_not_before``), which is what every sweep cost before; the sweeps after it list none of them
- the command detail (full page, the 2-s progress part, a filtered device page) at 500 / 5,000 /
  50,000 devices: the median server time and the tracemalloc peak of one request
"""

from __future__ import annotations

import json
import statistics
import time
import tracemalloc
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from fleet.models import (
    ApiCall,
    CallState,
    Command,
    CommandBatch,
    CommandKind,
    CommandState,
    DeviceResult,
    DeviceState,
    Priority,
    SolaxAccount,
    TargetKind,
)
from fleet.pipeline import dispatch, ledger, queue

pytestmark = pytest.mark.django_db


def _emit(name: str, **figures: object) -> None:
    print("\nBENCH " + json.dumps({"bench": name, "database": connection.vendor, **figures}))


def _analyze(*tables: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # as autovacuum would after a load this size
            for table in tables:
                cursor.execute(f"ANALYZE {table}")


# The beat sweep -------------------------------------------------------------------------------

def _spent_accounts(org, start: int, stop: int) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    for i in range(start, stop):
        account = SolaxAccount(organization=org, name=f"Spent {i:04d}", vpp_base_url="http://127.0.0.1:9/",
                               ev_base_url="http://127.0.0.1:9/")
        account.set_token(f"bench-token-{i:06d}-0123456789abcdef")
        account.save()
        filler = ApiCall.objects.create(account=account, endpoint="group_query", priority=Priority.READ,
                                        state=CallState.SUCCEEDED)
        ledger.record_past_attempts(account, filler, [now] * account.calls_per_minute)
        queue.enqueue(account, "group_query", {"current": 1, "size": 10})


def _sweep_ms(runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        assert dispatch.sweep() == 0  # nothing may go out: every minute is spent
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def test_the_sweep_at_10_100_1000_accounts_with_a_spent_minute(org):
    figures: dict[str, float] = {}
    made = 0
    for n in (10, 100, 1_000):
        _spent_accounts(org, made, n)
        made = n
        _analyze("fleet_solaxaccount", "fleet_apicall", "fleet_callattempt")
        SolaxAccount.objects.update(send_not_before=timezone.now() - timedelta(days=1))
        started = time.perf_counter()
        dispatch.sweep()  # claims each account once: this is what every sweep cost before
        figures[f"first_sweep_ms_{n}"] = round((time.perf_counter() - started) * 1000, 1)
        figures[f"sweep_ms_{n}"] = _sweep_ms()
        assert dispatch.accounts_with_due_calls() == []
        assert len(dispatch.accounts_with_due_calls(sendable_only=False)) == n
    _emit("sweep_scale", **figures)


# The command detail ---------------------------------------------------------------------------

def _big_command(account, n: int) -> Command:  # type: ignore[no-untyped-def]
    sns = [f"H4BN{i:010d}" for i in range(n)]
    command = Command.objects.create(account=account, kind=CommandKind.INVERTER_CONTROL, target_kind=TargetKind.FLEET,
                                     sns=sns, action={"superType": 2, "mode": 3, "manualMode": 2},
                                     label=f"Forced discharge to {n:,} inverters", state=CommandState.RUNNING,
                                     devices_total=n, devices_answered=n * 3 // 10, devices_succeeded=n // 4,
                                     devices_failed=n // 20)
    batches = CommandBatch.objects.bulk_create(
        CommandBatch(command=command, sns=sns[i:i + 100], state=CommandState.RUNNING if i < n // 2 else
                     CommandState.QUEUED, vendor_command_id=str(i)) for i in range(0, n, 100))
    states = [DeviceState.SUCCEEDED] * 5 + [DeviceState.FAILED] + [DeviceState.PENDING] * 14
    DeviceResult.objects.bulk_create(
        (DeviceResult(command=command, batch=batches[i // 100], sn=sn, state=states[i % 20],
                      answer="" if states[i % 20] == DeviceState.PENDING else "ok")
         for i, sn in enumerate(sns)), batch_size=5000)
    _analyze("fleet_deviceresult", "fleet_commandbatch")
    return command


def _measure(client: Client, url: str, **headers: str) -> tuple[float, float, int]:
    """Return (median ms of 5, tracemalloc peak MiB of one more, bytes of the answer)."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        response = client.get(url, **headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    tracemalloc.start()
    client.get(url, **headers)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return round(statistics.median(times), 1), round(peak / 2**20, 2), len(response.content)


def test_the_command_detail_at_500_5000_50000_devices(account, viewer_client):
    figures: dict[str, float] = {}
    for n in (500, 5_000, 50_000):
        command = _big_command(account, n)
        url = f"/commands/{command.code}/"
        page_ms, page_mib, page_bytes = _measure(viewer_client, url)
        progress_ms, progress_mib, progress_bytes = _measure(viewer_client, url, HTTP_HX_REQUEST="true",
                                                             HTTP_HX_TARGET="command-progress")
        failed_ms, failed_mib, _ = _measure(viewer_client, f"{url}?state=failed&page=3")
        figures.update({f"page_ms_{n}": page_ms, f"page_peak_mib_{n}": page_mib, f"page_kb_{n}": page_bytes // 1024,
                        f"progress_ms_{n}": progress_ms, f"progress_peak_mib_{n}": progress_mib,
                        f"progress_bytes_{n}": progress_bytes, f"failed_page_ms_{n}": failed_ms,
                        f"failed_page_peak_mib_{n}": failed_mib})
    _emit("command_detail_scale", **figures)
