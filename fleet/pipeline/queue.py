"""The queue: every request to SolaX starts as a queued ApiCall row written by a service in its own
transaction; a pump starts once that transaction commits (and a beat sweep picks up anything else)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from fleet.models import ApiCall, CallState, SolaxAccount
from fleet.models.calls import default_priority
from fleet.pipeline.handlers import finish, is_registered
from fleet.pipeline.tasks import pump

log = logging.getLogger("fleet.calls")


def enqueue(
    account: SolaxAccount,
    endpoint: str,
    params: dict[str, Any],
    *,
    purpose: str = "",
    priority: int | None = None,
    handler: str = "",
    context: dict[str, Any] | None = None,
    origin_kind: str = "",
    origin_code: Any = None,
    not_before: datetime | None = None,
) -> ApiCall:
    """Write a queued ApiCall and start a pump once the surrounding transaction commits.

    ``params`` are the vendor's parameter names without the token. Returns the new row.
    """
    if handler and not is_registered(handler):
        raise ValueError(f"no handler registered as {handler!r}")
    if {"tokenId", "token", "callbackUrl"} & set(params):
        raise ValueError("secrets (the token, the callback URL) are added at send time, never stored in the ledger")
    call = ApiCall.objects.create(
        account=account, endpoint=endpoint, params=params, purpose=purpose[:200],
        priority=default_priority(endpoint) if priority is None else priority,
        handler=handler, context=context or {}, origin_kind=origin_kind, origin_code=origin_code,
        not_before=not_before or timezone.now(),
    )
    transaction.on_commit(lambda: kick(account.pk))
    return call


def kick(account_id: int | None = None) -> None:
    """Ask a worker to pump now. A broker that is down only delays the call until the next sweep."""
    try:
        pump.delay(account_id)
    except Exception:  # noqa: BLE001 - the beat sweeper is the fallback
        log.warning("could not reach the broker to start a pump; the sweeper will send the call")


def cancel(call: ApiCall) -> bool:
    """Cancel a call that has not been sent. Returns False if it already left the queue."""
    return finish(call, CallState.CANCELLED, expected=CallState.QUEUED) is not None


