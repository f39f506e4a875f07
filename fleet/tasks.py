"""Thin Celery tasks over the services: take ids, call a service, return. The call pipeline's own
tasks (pump, sweep_calls, prune_attempts) live in fleet.pipeline.tasks under these same names."""

from __future__ import annotations

from celery import shared_task

from fleet.alerts import service as alerts
from fleet.commands import tracking
from fleet.mirror import chargers, sync
from fleet.prices import service as prices
from fleet.schedules import service


@shared_task(ignore_result=True)
def schedules_tick() -> int:
    """Every minute: fire the due edges of every schedule once; returns how many fired."""
    return service.tick().fired


@shared_task(ignore_result=True)
def prices_tick() -> int:
    """Every minute: send the due edges of accepted price plans once; returns how many fired."""
    return prices.tick().fired


@shared_task(ignore_result=True)
def fetch_prices() -> int:
    """Every 15 minutes: fetch tomorrow's ENTSO-E prices where due (off unless ENTSOE_ENABLED)."""
    return prices.fetch_due_zones().stored


@shared_task(ignore_result=True)
def command_tick() -> dict[str, int]:
    """Every few seconds: expire overdue commands and check chargers whose callbacks stayed away."""
    return tracking.tick()


@shared_task(ignore_result=True)
def sync_fleets() -> int:
    """Beat tick: start the periodic sync of every account that is due and can afford it."""
    return len(sync.sync_due_accounts())


@shared_task(ignore_result=True)
def read_charger_status() -> int:
    """Beat tick: queue the next round-robin getPileInfo within each account's budget share."""
    return chargers.status_tick_all()


@shared_task(ignore_result=True)
def evaluate_alerts() -> dict[str, int]:
    """Every minute: the alerts no event raises or resolves (budget forecast, accounts sending again)."""
    return {**alerts.evaluate(), "budget_short": service.forecast_budget_alerts()}
