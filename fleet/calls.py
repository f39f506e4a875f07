"""The call pipeline: the one road to SolaX for every request, budgeted, prioritised, at-most-once.

A service writes an ApiCall row (``enqueue``) in its own transaction; after the commit a pump task
starts. The pump claims the highest-priority due call of an account under a lock on the account row,
after counting the requests sent in the rolling minute and day from the ledger itself (CallAttempt),
marks it SENDING and commits; then it makes the HTTP request outside any lock, records the outcome and
hands it to the handler that the caller named. A beat task sweeps every few seconds: it pumps what is
due (waiting lives in ``not_before``, never in a Celery ETA) and recovers calls left SENDING by a
worker that died.

Outcomes (see ``_record_error``): a vendor rate-limit answer pauses the account and re-queues the call;
a request that provably never left (connection refused, pause, budget) waits and retries; a write whose
delivery is uncertain becomes UNKNOWN and is never resent automatically; a read that failed transiently
retries with capped backoff; a permanent error fails with the vendor's text.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fleet.models import ApiCall, CallState, SolaxAccount
from fleet.models.calls import RESPONSE_LIMIT, default_priority
from solax.client import SolaxClient
from solax.errors import ApiError, AuthError, InvalidTokenError, NotSentError, RateLimitedError, SolaxError
from solax.models import Envelope

log = logging.getLogger("fleet.calls")

# The ledger's arithmetic lives in fleet.ledger; these names are part of this module's interface too.
from fleet.ledger import (  # noqa: E402
    DAY,
    Budget,
    budget_of,
    claim_next,
    minute_window,
    next_free_slot,
    prune_attempts,
    queue_depth,
    record_past_attempts,
)

__all__ = [
    "DAY", "Budget", "Handler", "Outcome", "accounts_with_due_calls", "budget_of", "callback_url", "cancel",
    "claim_next",
    "client_for", "enqueue", "kick", "minute_window", "next_free_slot", "prune_attempts", "pump",
    "queue_depth", "record_past_attempts", "recover_stale", "register", "send", "stale_after", "sweep",
]

TOKEN_REJECTED_CODES = {"103", "1001"}  # token invalid, Interface Unauthorized: the whole account
TOKEN_REJECTED_PAUSE = timedelta(minutes=15)
MAX_READ_ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 5
BACKOFF_CAP_SECONDS = 300


# Handlers -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """What became of a call: ``state`` is succeeded, failed or unknown."""

    state: str
    envelope: Envelope | None = None
    error: SolaxError | None = None


Handler = Callable[[ApiCall, Outcome], None]
_HANDLERS: dict[str, Handler] = {}


def register(name: str) -> Callable[[Handler], Handler]:
    """Register a function that receives a call's final outcome, inside the transaction that
    records it. It may update the domain and enqueue follow-up calls."""

    def decorator(func: Handler) -> Handler:
        _HANDLERS[name] = func
        return func

    return decorator


# Enqueueing -----------------------------------------------------------------------------------

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
    if handler and handler not in _HANDLERS:
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
    from fleet.tasks import pump

    try:
        pump.delay(account_id)
    except Exception:  # noqa: BLE001 - the beat sweeper is the fallback
        log.warning("could not reach the broker to start a pump; the sweeper will send the call")


_local = threading.local()


def _session() -> requests.Session:
    # One session per thread: connection reuse without sharing a Session across threads.
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def callback_url(account: SolaxAccount) -> str:
    """The account's EV callback address. Its path is a secret: it is added to pile_cmd at send time
    and never stored in the ledger, which every member of the organization can read."""
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/solax/callback/{account.get_callback_secret()}/"


def _wire_params(call: ApiCall) -> dict[str, Any]:
    """The call's stored parameters plus the secrets that are added only at send time."""
    if call.endpoint == "pile_cmd":
        return {**call.params, "callbackUrl": callback_url(call.account)}
    return call.params


def client_for(account: SolaxAccount) -> SolaxClient:
    """Return a client for the account. Only the pipeline builds one: nothing else talks to SolaX."""
    return SolaxClient(
        token=account.get_token(),
        vpp_base_url=account.vpp_base_url,
        ev_base_url=account.ev_base_url,
        connect_timeout=settings.SOLAX_CONNECT_TIMEOUT,
        read_timeout=settings.SOLAX_READ_TIMEOUT,
        session=_session(),
    )


def send(call: ApiCall) -> Outcome | None:
    """Make the HTTP request of a claimed call, record its outcome and run its handler.

    Returns the final Outcome, or None when the call went back to the queue.
    """
    started = time.monotonic()
    try:
        envelope = client_for(call.account).call(call.endpoint, _wire_params(call))
    except SolaxError as error:
        return _record_error(call, error, _elapsed_ms(started))
    except Exception as exc:  # noqa: BLE001 - a bug must not leave the call SENDING forever
        log.exception("unexpected failure sending call %s (%s)", call.code, call.endpoint)
        unexpected = SolaxError(f"unexpected failure: {type(exc).__name__}")
        return _finish(call, CallState.UNKNOWN if call.is_write else CallState.FAILED, error=unexpected,
                       duration_ms=_elapsed_ms(started))
    return _finish(call, CallState.SUCCEEDED, envelope=envelope, duration_ms=_elapsed_ms(started))


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1)))


def _record_error(call: ApiCall, error: SolaxError, duration_ms: int) -> Outcome | None:
    now = timezone.now()
    code = str(error.code) if error.code is not None else ""
    if isinstance(error, RateLimitedError):
        until = now + timedelta(seconds=error.retry_after)
        reason = ("SolaX locked the account out for an hour after repeated violations" if error.lockout
                  else "SolaX answered that the per-minute limit was exceeded")
        _pause(call.account, until, reason)
        return _requeue(call, until, error, duration_ms)
    if isinstance(error, InvalidTokenError) or (isinstance(error, AuthError) and code in TOKEN_REJECTED_CODES):
        until = now + TOKEN_REJECTED_PAUSE
        _pause(call.account, until, f"SolaX rejected the token ({error.code or 'malformed'}); check it in Settings")
        return _requeue(call, until, error, duration_ms)
    if isinstance(error, NotSentError):
        # Provably never left: safe to try again, write or read.
        return _requeue(call, now + _backoff(call.attempts), error, duration_ms)
    if not error.may_have_reached_cloud or isinstance(error, ApiError):
        return _finish(call, CallState.FAILED, error=error, duration_ms=duration_ms)
    if call.is_write:
        # It may have been executed: never resend automatically; the operator decides.
        return _finish(call, CallState.UNKNOWN, error=error, duration_ms=duration_ms)
    if call.attempts < MAX_READ_ATTEMPTS:
        return _requeue(call, now + _backoff(call.attempts), error, duration_ms)
    return _finish(call, CallState.FAILED, error=error, duration_ms=duration_ms)


def _pause(account: SolaxAccount, until: datetime, reason: str) -> None:
    # Only ever extend a pause: two workers hitting the limit at once must not shorten it.
    SolaxAccount.objects.filter(pk=account.pk).exclude(paused_until__gt=until).update(
        paused_until=until, pause_reason=reason)
    log.warning("account %s paused until %s: %s", account.pk, until.isoformat(), reason)


def _error_fields(error: SolaxError | None) -> dict[str, Any]:
    if error is None:
        return {}
    body = getattr(error, "body", None) or ""
    return {
        "http_status": getattr(error, "status", None),
        "vendor_code": "" if error.code is None else str(error.code)[:20],
        "error": f"{type(error).__name__}: {error}"[:2000],
        "response": str(body)[:RESPONSE_LIMIT],
    }


def _requeue(call: ApiCall, not_before: datetime, error: SolaxError, duration_ms: int) -> Outcome | None:
    ApiCall.objects.filter(pk=call.pk, state=CallState.SENDING).update(
        state=CallState.QUEUED, not_before=not_before, duration_ms=duration_ms, **_error_fields(error))
    log.info("call %s (%s) re-queued until %s: %s", call.code, call.endpoint, not_before.isoformat(),
             type(error).__name__)
    return None  # not final: the call waits in the queue


def _finish(call: ApiCall, state: str, *, envelope: Envelope | None = None, error: SolaxError | None = None,
            duration_ms: int | None = None, expected: str = CallState.SENDING) -> Outcome | None:
    """Record a final state and run the handler in the same transaction. Returns the Outcome, or
    None if another process already finished the call."""
    fields: dict[str, Any] = {"state": state, "finished_at": timezone.now(), "duration_ms": duration_ms}
    if envelope is not None:
        fields.update(http_status=envelope.status, vendor_code=envelope.code or "",
                      error=(envelope.exception or "")[:2000], response=envelope.raw[:RESPONSE_LIMIT])
    fields.update(_error_fields(error))
    outcome = Outcome(state=state, envelope=envelope, error=error)
    if not call.handler:  # one conditional UPDATE: atomic on its own
        if ApiCall.objects.filter(pk=call.pk, state=expected).update(**fields) != 1:
            return None
        for key, value in fields.items():
            setattr(call, key, value)
    else:
        with transaction.atomic():
            if ApiCall.objects.filter(pk=call.pk, state=expected).update(**fields) != 1:
                return None
            for key, value in fields.items():
                setattr(call, key, value)
            _run_handler(call, outcome)
    log.debug("call %s (%s) %s in %s ms", call.code, call.endpoint, state, duration_ms)
    return outcome


def _run_handler(call: ApiCall, outcome: Outcome) -> None:
    if not call.handler:
        return
    handler = _HANDLERS.get(call.handler)
    if handler is None:
        log.error("call %s names handler %r, which is not registered", call.code, call.handler)
        return
    try:
        with transaction.atomic():
            handler(call, outcome)
    except Exception:  # noqa: BLE001 - the call's own outcome is recorded whatever the handler does
        log.exception("handler %s failed for call %s", call.handler, call.code)
        ApiCall.objects.filter(pk=call.pk).update(error=(call.error + " [handler failed]")[:2000])


# Pumping and sweeping -------------------------------------------------------------------------

def accounts_with_due_calls(now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return list(
        ApiCall.objects.filter(state=CallState.QUEUED, not_before__lte=now)
        .values_list("account_id", flat=True).distinct().order_by("account_id")
    )


def pump(account_id: int | None = None, *, wait: bool = True, max_seconds: float = 50.0) -> int:
    """Send due calls until none is due or the budget is spent; return how many went out.

    With ``wait``, a pump that is held only by the minute window sleeps until the next slot when that
    is at most SOLAX_PUMP_MAX_WAIT seconds away, so a backlog drains at the full rate between sweeps.
    """
    deadline = time.monotonic() + max_seconds
    sent = 0
    while time.monotonic() < deadline:
        account_ids = [account_id] if account_id else accounts_with_due_calls()
        progressed = False
        for acc_id in account_ids:
            call = claim_next(acc_id)
            if call is not None:
                send(call)
                sent += 1
                progressed = True
        if progressed:
            continue
        pause = _wait_for_slot(account_ids) if wait else None
        if pause is None:
            break
        time.sleep(pause)
    return sent


def _wait_for_slot(account_ids: Iterable[int]) -> float | None:
    """Return seconds to sleep until a held account's next minute slot, or None if none is close."""
    now = timezone.now()
    waits = []
    for account in SolaxAccount.objects.filter(pk__in=list(account_ids)):
        if account.is_paused(now):
            continue
        due = ApiCall.objects.filter(account=account, state=CallState.QUEUED, not_before__lte=now).exists()
        if not due:
            continue
        budget = budget_of(account, now)
        if budget.day_free <= 0:
            continue
        waits.append(max(0.05, (next_free_slot(account, now) - now).total_seconds()))
    if not waits or min(waits) > settings.SOLAX_PUMP_MAX_WAIT:
        return None
    return min(waits)


def stale_after() -> timedelta:
    """How long a call may stay SENDING before its worker is presumed dead."""
    return timedelta(seconds=settings.SOLAX_CONNECT_TIMEOUT + settings.SOLAX_READ_TIMEOUT
                     + settings.SOLAX_STALE_GRACE_SECONDS)


def recover_stale(now: datetime | None = None) -> int:
    """Settle calls left SENDING by a dead worker: a write becomes UNKNOWN, a read is re-queued.

    Returns how many calls were settled.
    """
    now = now or timezone.now()
    settled = 0
    for call in ApiCall.objects.filter(state=CallState.SENDING, sent_at__lt=now - stale_after()).select_related(
            "account"):
        if call.is_write:
            error = SolaxError("the worker stopped while sending: delivery unknown")
            if _finish(call, CallState.UNKNOWN, error=error) is not None:
                settled += 1
        elif ApiCall.objects.filter(pk=call.pk, state=CallState.SENDING).update(
                state=CallState.QUEUED, not_before=now, error="the worker stopped while sending; retried") == 1:
            settled += 1
    if settled:
        log.warning("recovered %s call(s) left sending by a stopped worker", settled)
    return settled


def sweep() -> int:
    """The beat tick: recover stale calls, then pump every account with due calls once through."""
    recover_stale()
    return pump(wait=False, max_seconds=settings.SOLAX_SWEEP_SECONDS)


def cancel(call: ApiCall) -> bool:
    """Cancel a call that has not been sent. Returns False if it already left the queue."""
    return _finish(call, CallState.CANCELLED, expected=CallState.QUEUED) is not None


