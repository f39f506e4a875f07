"""Pump workers for concurrency tests: threads in this process, or `manage.py pump --loop` processes
that share the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection, connections

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """Return a URL of the test database that another process can open."""
    cfg = connection.settings_dict
    if connection.vendor == "postgresql":
        user = cfg.get("USER") or "postgres"
        host = cfg.get("HOST") or "127.0.0.1"
        port = cfg.get("PORT") or 5432
        return f"postgres://{user}@{host}:{port}/{cfg['NAME']}"
    return f"sqlite:///{cfg['NAME']}"


def worker_env() -> dict[str, str]:
    """The environment of a worker process on the test database, allowed to reach the tests' simulators."""
    return {**os.environ, "DATABASE_URL": database_url(),
            "SOLAX_ALLOWED_BASE_URLS": ",".join(settings.SOLAX_ALLOWED_BASE_URLS)}


def start_process(seconds: float, env: dict[str, str]) -> subprocess.Popen[bytes]:
    full_env = {**worker_env(), **env}
    return subprocess.Popen(
        [sys.executable, "manage.py", "pump", "--loop", "--seconds", str(seconds)],
        cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def run_threads(n: int, account_id: int, until_idle: float = 60.0, stop_when_idle: bool = True,
                ) -> list[BaseException]:
    """Run `n` pump threads, each looping like a worker that the sweeper kicks, until the account has
    no queued call (or for `until_idle` seconds); return what they raised."""
    from fleet.models import ApiCall, CallState
    from fleet.pipeline import dispatch

    errors: list[BaseException] = []

    def work() -> None:
        try:
            end = time.monotonic() + until_idle
            while time.monotonic() < end:
                if not dispatch.pump(account_id, wait=True, max_seconds=2.0):
                    if stop_when_idle and not ApiCall.objects.filter(
                            account_id=account_id, state=CallState.QUEUED).exists():
                        return
                    time.sleep(0.05)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def at_once(*calls: Callable[[], object], timeout: float = 30.0) -> list[object]:
    """Run each call in a thread of its own, released together by a barrier, and return what each
    returned, or the exception it raised, in the order they finished. Each thread closes its database
    connections."""
    answers: list[object] = []
    together = threading.Barrier(len(calls), timeout=timeout)

    def run(call: Callable[[], object]) -> None:
        try:
            together.wait()
            answers.append(call())
        except BaseException as exc:  # noqa: BLE001 - returned to the test, which asserts on it
            answers.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return answers
