"""The pipeline's Celery tasks. Their names stay ``fleet.tasks.*`` so that a deployed queue and the
beat schedule still reach them."""

from __future__ import annotations

from celery import shared_task

from fleet.pipeline import dispatch, ledger


@shared_task(name="fleet.tasks.pump", ignore_result=True)
def pump(account_id: int | None = None) -> int:
    """Send the due calls of one account (or of all) while the budget allows."""
    return dispatch.pump(account_id)


@shared_task(name="fleet.tasks.sweep_calls", ignore_result=True)
def sweep_calls() -> int:
    """Beat tick: recover calls left sending by a dead worker and send what is due."""
    return dispatch.sweep()


@shared_task(name="fleet.tasks.prune_attempts", ignore_result=True)
def prune_attempts() -> int:
    """Hourly: forget budget rows the budget no longer looks at."""
    return ledger.prune_attempts()
