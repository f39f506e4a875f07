"""Thin Celery tasks over the services: take ids, call a service, return."""

from __future__ import annotations

from celery import shared_task

from fleet import calls, chargers, command_tracking, schedules, sync


@shared_task(ignore_result=True)
def pump(account_id: int | None = None) -> int:
    """Send the due calls of one account (or of all) while the budget allows."""
    return calls.pump(account_id)


@shared_task(ignore_result=True)
def sweep_calls() -> int:
    """Beat tick: recover calls left sending by a dead worker and send what is due."""
    return calls.sweep()


@shared_task(ignore_result=True)
def prune_attempts() -> int:
    """Hourly: forget budget rows the budget no longer looks at."""
    return calls.prune_attempts()


@shared_task(ignore_result=True)
def schedules_tick() -> int:
    """Every minute: fire the due edges of every schedule once; returns how many fired."""
    return schedules.tick().fired


@shared_task(ignore_result=True)
def command_tick() -> dict[str, int]:
    """Every few seconds: expire overdue commands and check chargers whose callbacks stayed away."""
    return command_tracking.tick()


@shared_task(ignore_result=True)
def sync_fleets() -> int:
    """Beat tick: start the periodic sync of every account that is due and can afford it."""
    return len(sync.sync_due_accounts())


@shared_task(ignore_result=True)
def read_charger_status() -> int:
    """Beat tick: queue the next round-robin getPileInfo within each account's budget share."""
    return chargers.status_tick_all()
