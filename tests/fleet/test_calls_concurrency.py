"""Many workers, one budget: the simulator must count no violation and no duplicate delivery.

The simulator's clock runs SPEED times faster than ours, so its minute lasts 60/SPEED seconds and
our pipeline uses a minute of the same length (SOLAX_MINUTE_SECONDS): the limit really binds, and
the test still takes seconds rather than minutes.
"""

from __future__ import annotations

import os
import random
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from fleet.models import ApiCall, CallAttempt, CallState, Priority, SolaxAccount
from fleet.pipeline import dispatch
from solax.simulator.testing import running_simulator
from tests.conftest import FAST_SIM
from tests.support import workers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SPEED = 30  # simulator minute = 2 s
MINUTE = 2


def _fast_clock():  # type: ignore[no-untyped-def]
    start = time.monotonic()
    return lambda: start + (time.monotonic() - start) * SPEED


@pytest.fixture
def fast_pipeline(settings):  # type: ignore[no-untyped-def]
    """A 2 s minute, and room for budgets above the vendor's 10 a minute (the simulator's are too)."""
    settings.SOLAX_MINUTE_SECONDS = MINUTE
    settings.SOLAX_WINDOW_PAD_SECONDS = 1
    settings.SOLAX_PUMP_MAX_WAIT = 2
    settings.SOLAX_MAX_CALLS_PER_MINUTE = 1000
    return {"SOLAX_MINUTE_SECONDS": str(MINUTE), "SOLAX_WINDOW_PAD_SECONDS": "1", "SOLAX_PUMP_MAX_WAIT": "2",
            "SOLAX_MAX_CALLS_PER_MINUTE": "1000",
            "SOLAX_CONNECT_TIMEOUT": "1", "SOLAX_READ_TIMEOUT": "2", "SOLAX_STALE_GRACE_SECONDS": "1",
            "LOG_LEVEL": "WARNING"}


def _account(org, sim, per_minute):  # type: ignore[no-untyped-def]
    account = SolaxAccount(organization=org, name="Busy", vpp_base_url=sim.vpp_base_url,
                           ev_base_url=sim.ev_base_url, calls_per_minute=per_minute, safety_margin_per_minute=1)
    account.set_token(sim.token)
    account.save()
    return account


def _backlog(account, sim, n):  # type: ignore[no-untyped-def]
    """n calls: control writes with distinct payloads, management writes and reads, mixed."""
    sn = sorted(sim.sim.tenant().inverters)[0]
    rows = []
    for i in range(n):
        if i % 3 == 0:
            rows.append(ApiCall(account=account, endpoint="single_control", priority=Priority.CONTROL, params={
                "sn": sn, "superType": "0", "mode": "1", "activePower": str(100 + i), "reactivePower": "0",
                "setType": "1", "proidTime": "600", "timeout": "10"}))
        elif i % 3 == 1:
            rows.append(ApiCall(account=account, endpoint="group_add", priority=Priority.MANAGEMENT,
                                params={"name": f"load-{i}"}))
        else:
            rows.append(ApiCall(account=account, endpoint="group_query", priority=Priority.READ,
                                params={"current": "1", "size": "10"}))
    ApiCall.objects.bulk_create(rows)


def _states(account):  # type: ignore[no-untyped-def]
    return dict(ApiCall.objects.filter(account=account).values_list("state").annotate(
        n=__import__("django.db.models", fromlist=["Count"]).Count("id")).order_by())


def _drain_with_processes(account, env, n=4, timeout=90):  # type: ignore[no-untyped-def]
    procs = [workers.start_process(timeout, env) for _ in range(n)]
    try:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not ApiCall.objects.filter(account=account, state__in=[CallState.QUEUED, CallState.SENDING]).exists():
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_threads_or_processes_never_exceed_the_budget(org, fast_pipeline):
    with running_simulator(fleet="small", per_minute=20, clock=_fast_clock(), **FAST_SIM) as sim:
        account = _account(org, sim, per_minute=20)
        _backlog(account, sim, 90)
        started = time.monotonic()
        from django.db import connection

        if connection.vendor == "postgresql":
            _drain_with_processes(account, fast_pipeline)
        else:
            assert workers.run_threads(4, account.pk) == []
        elapsed = time.monotonic() - started
        counters = sim.counters()["tokens"][sim.token]
    assert _states(account) == {CallState.SUCCEEDED: 90}
    assert counters["violations"] == 0 and counters["rate_limited"] == 0
    assert counters["accepted"] == 90
    # the limit really held the backlog back: 90 calls at 19 per 3 s need at least 4 windows
    assert elapsed > 4 * (MINUTE + 1) * 0.9


def test_the_check_detects_a_budget_set_too_high(org, fast_pipeline):
    """The control experiment: an account that believes in 40 a minute against a cloud allowing 20."""
    with running_simulator(fleet="small", per_minute=20, clock=_fast_clock(), **FAST_SIM) as sim:
        account = _account(org, sim, per_minute=40)
        _backlog(account, sim, 45)
        workers.run_threads(2, account.pk, until_idle=5.0)
        counters = sim.counters()["tokens"][sim.token]
    assert counters["violations"] > 0
    account.refresh_from_db()
    assert account.paused_until is not None


def test_a_worker_killed_at_random_never_duplicates_a_write(org, fast_pipeline):
    rng = random.Random(4)
    with running_simulator(fleet="small", per_minute=60, clock=_fast_clock(), **FAST_SIM) as sim:
        account = _account(org, sim, per_minute=60)
        sn = sorted(sim.sim.tenant().inverters)[0]
        ApiCall.objects.bulk_create(
            ApiCall(account=account, endpoint="single_control", priority=Priority.CONTROL, params={
                "sn": sn, "superType": "0", "mode": "1", "activePower": str(1000 + i), "reactivePower": "0",
                "setType": "1", "proidTime": "600", "timeout": "10"})
            for i in range(200)
        )
        procs = [workers.start_process(90, fast_pipeline) for _ in range(3)]
        kills = 0

        def pending() -> bool:
            return ApiCall.objects.filter(account=account,
                                          state__in=[CallState.QUEUED, CallState.SENDING]).exists()

        try:
            chaos_end = time.monotonic() + 15  # kill at random for a while...
            while time.monotonic() < chaos_end and pending():
                time.sleep(rng.uniform(0.3, 1.2))
                victim = rng.randrange(len(procs))
                os.kill(procs[victim].pid, signal.SIGKILL)
                procs[victim].wait()
                kills += 1
                procs[victim] = workers.start_process(90, fast_pipeline)
            drain_end = time.monotonic() + 60  # ...then let the survivors finish and sweep
            while time.monotonic() < drain_end and pending():
                time.sleep(0.2)
        finally:
            for p in procs:
                p.kill()
                p.wait()
        dispatch.recover_stale(now=timezone.now() + timedelta(minutes=5))
        counters = sim.counters()
    states = _states(account)
    assert kills >= 3
    assert set(states) <= {CallState.SUCCEEDED, CallState.FAILED, CallState.UNKNOWN}, states
    assert sum(states.values()) == 200
    assert counters["duplicates"] == 0
    assert counters["tokens"][sim.token]["violations"] == 0
    delivered = counters["tokens"][sim.token]["calls"].get("single_control", 0)
    # every success was delivered exactly once; an unknown one at most once
    assert states.get(CallState.SUCCEEDED, 0) <= delivered <= 200


def test_eight_claimers_threads_and_processes_drain_400_calls_without_an_error(org, fast_pipeline):
    """Four pump threads and four `pump --loop` processes claim one account's backlog at once: every
    claimer that waited for the account's lock must measure the budget after it got the lock (a stale
    sequence number is a duplicate attempt, an IntegrityError, a dead worker)."""
    with running_simulator(fleet="small", per_minute=200, clock=_fast_clock(), **FAST_SIM) as sim:
        account = _account(org, sim, per_minute=200)
        _backlog(account, sim, 400)
        procs = [workers.start_process(60, fast_pipeline) for _ in range(4)]
        try:
            thread_errors = workers.run_threads(4, account.pk, until_idle=45)
            end = time.monotonic() + 30
            while time.monotonic() < end and ApiCall.objects.filter(
                    account=account, state__in=[CallState.QUEUED, CallState.SENDING]).exists():
                time.sleep(0.2)
            alive = [p.poll() is None for p in procs]
        finally:
            for p in procs:
                p.kill()
                p.wait()
        stderr = b"".join(p.stderr.read() for p in procs if p.stderr).decode(errors="replace")
        counters = sim.counters()
    assert thread_errors == []
    assert "Traceback" not in stderr and "IntegrityError" not in stderr, stderr[-3000:]
    assert all(alive)
    assert _states(account) == {CallState.SUCCEEDED: 400}
    assert counters["tokens"][sim.token]["violations"] == 0
    assert counters["tokens"][sim.token]["rate_limited"] == 0
    assert counters["duplicates"] == 0
    assert CallAttempt.objects.filter(account=account).count() == 400
