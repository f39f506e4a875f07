"""Dispatch: claim a due call, send it outside any lock, record what became of it.

The pump claims the highest-priority due call of an account (``fleet.pipeline.ledger.claim_next``),
then makes the HTTP request outside any lock, records the outcome and hands it to the handler the
caller named (``fleet.pipeline.handlers``). A beat task sweeps every few seconds: it pumps what is due
(waiting lives in ``not_before``, never in a Celery ETA) and recovers calls left SENDING by a worker
that died. This is the only module that talks to SolaX (``solax.client``, ``requests``).

Outcomes (see ``_record_error``): a vendor rate-limit answer pauses the account and re-queues the call;
a request that provably never left (connection refused, pause, budget) waits and retries; a write whose
delivery is uncertain becomes UNKNOWN and is never resent automatically; a read that failed transiently
retries with capped backoff; a permanent error fails with the vendor's text.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from fleet import base_urls, events
from fleet.models import ApiCall, CallState, SolaxAccount
from fleet.pipeline.handlers import Outcome, error_fields, finish
from fleet.pipeline.ledger import budget_of, claim_next, next_free_slot, resume_readable_tokens
from solax.client import SolaxClient
from solax.endpoints import ENDPOINTS
from solax.errors import ApiError, AuthError, InvalidTokenError, NotSentError, RateLimitedError, SolaxError

log = logging.getLogger("fleet.calls")

TOKEN_REJECTED_CODES = {"103", "1001"}  # token invalid, Interface Unauthorized: the whole account
TOKEN_REJECTED_PAUSE = timedelta(minutes=15)
MAX_READ_ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 5
BACKOFF_CAP_SECONDS = 300
ACCOUNTS_RELIST_SECONDS = 1.0


_local = threading.local()


def _session() -> requests.Session:
    # One session per thread: connection reuse without sharing a Session across threads.
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def _wire_params(call: ApiCall) -> dict[str, Any]:
    """The call's stored parameters plus the secrets that are added only at send time."""
    if call.endpoint == "pile_cmd":
        return {**call.params, "callbackUrl": call.account.callback_url}
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
    refused = _base_url_refused(call)
    if refused is not None:
        return finish(call, CallState.FAILED, error=refused, duration_ms=0)
    started = time.monotonic()
    try:
        envelope = client_for(call.account).call(call.endpoint, _wire_params(call))
    except SolaxError as error:
        return _record_error(call, error, _elapsed_ms(started))
    except Exception as exc:  # noqa: BLE001 - a bug must not leave the call SENDING forever
        log.exception("unexpected failure sending call %s (%s)", call.code, call.endpoint)
        unexpected = SolaxError(f"unexpected failure: {type(exc).__name__}")
        return finish(call, CallState.UNKNOWN if call.is_write else CallState.FAILED, error=unexpected,
                       duration_ms=_elapsed_ms(started))
    return finish(call, CallState.SUCCEEDED, envelope=envelope, duration_ms=_elapsed_ms(started))


def _base_url_refused(call: ApiCall) -> SolaxError | None:
    """Return the permanent error of a call whose base URL is not (or no longer) allowed: the token
    is never sent there, whatever the row says (an edit that bypassed validation, a changed setting)."""
    endpoint = ENDPOINTS.get(call.endpoint)
    if endpoint is None:
        return None  # the client refuses an unknown endpoint itself, before any request
    url = call.account.vpp_base_url if endpoint.base == "vpp" else call.account.ev_base_url
    reason = base_urls.problem(url)
    if reason is None:
        return None
    log.warning("call %s (%s) not sent: the account's %s base URL is refused: %s", call.code, call.endpoint,
                endpoint.base.upper(), reason)
    return NotSentError(f"not sent: the account's {endpoint.base.upper()} base URL is refused ({reason}); "
                        f"an admin must correct it in Settings")


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
        _pause(call.account, until, reason, cause="lockout" if error.lockout else "rate_limit")
        return _requeue(call, until, error, duration_ms)
    if isinstance(error, InvalidTokenError) or (isinstance(error, AuthError) and code in TOKEN_REJECTED_CODES):
        until = now + TOKEN_REJECTED_PAUSE
        _pause(call.account, until, f"SolaX rejected the token ({error.code or 'malformed'}); check it in Settings",
               cause="token_rejected")
        return _requeue(call, until, error, duration_ms)
    if isinstance(error, NotSentError):
        # Provably never left: safe to try again, write or read.
        return _requeue(call, now + _backoff(call.attempts), error, duration_ms)
    if not error.may_have_reached_cloud or isinstance(error, ApiError):
        return finish(call, CallState.FAILED, error=error, duration_ms=duration_ms)
    if call.is_write:
        # It may have been executed: never resend automatically; the operator decides.
        return finish(call, CallState.UNKNOWN, error=error, duration_ms=duration_ms)
    if call.attempts < MAX_READ_ATTEMPTS:
        return _requeue(call, now + _backoff(call.attempts), error, duration_ms)
    return finish(call, CallState.FAILED, error=error, duration_ms=duration_ms)


def _pause(account: SolaxAccount, until: datetime, reason: str, *, cause: str) -> None:
    # Only ever extend a pause: two workers hitting the limit at once must not shorten it.
    SolaxAccount.objects.filter(pk=account.pk).exclude(paused_until__gt=until).update(
        paused_until=until, pause_reason=reason)
    log.warning("account %s paused until %s: %s", account.pk, until.isoformat(), reason)
    events.send(events.account_paused, SolaxAccount, account=account, until=until, reason=reason, cause=cause)


def _requeue(call: ApiCall, not_before: datetime, error: SolaxError, duration_ms: int) -> Outcome | None:
    ApiCall.objects.filter(pk=call.pk, state=CallState.SENDING).update(
        state=CallState.QUEUED, not_before=not_before, duration_ms=duration_ms, **error_fields(error))
    log.info("call %s (%s) re-queued until %s: %s", call.code, call.endpoint, not_before.isoformat(),
             type(error).__name__)
    return None  # not final: the call waits in the queue


# Pumping and sweeping -------------------------------------------------------------------------

def accounts_with_due_calls(now: datetime | None = None, *, sendable_only: bool = True) -> list[int]:
    """Return the accounts with a due call, oldest first. ``sendable_only`` (the sweep's listing) skips
    accounts that are paused or whose budget cannot send before ``send_not_before`` (an index range on
    account_send_not_before, then one index probe on call_due per account left), so the sweep's cost
    does not grow with accounts that cannot send yet."""
    now = now or timezone.now()
    due = ApiCall.objects.filter(account_id=OuterRef("pk"), state=CallState.QUEUED, not_before__lte=now)
    accounts = SolaxAccount.objects.all()
    if sendable_only:
        accounts = accounts.filter(send_not_before__lte=now).exclude(paused_until__gt=now)
    return list(accounts.filter(Exists(due)).order_by("pk").values_list("pk", flat=True))


def pump(account_id: int | None = None, *, wait: bool = True, max_seconds: float = 50.0) -> int:
    """Send due calls until none is due or the budget is spent; return how many went out.

    With ``wait``, a pump that is held only by the minute window sleeps until the next slot when that
    is at most SOLAX_PUMP_MAX_WAIT seconds away, so a backlog drains at the full rate between sweeps.
    """
    deadline = time.monotonic() + max_seconds
    sent = 0
    account_ids: list[int] = []
    listed_until = 0.0
    while time.monotonic() < deadline:
        # Which accounts have due calls is a query of its own: read it again every ACCOUNTS_RELIST_SECONDS
        # while calls go out (not before every call), and always before deciding that nothing is due.
        listed = time.monotonic() >= listed_until
        if listed:
            account_ids = [account_id] if account_id else accounts_with_due_calls()
            listed_until = time.monotonic() + ACCOUNTS_RELIST_SECONDS
        progressed = False
        for acc_id in account_ids:
            call = claim_next(acc_id)
            if call is not None:
                send(call)
                sent += 1
                progressed = True
        if progressed:
            continue
        if not listed:
            listed_until = 0.0
            continue
        # accounts held by their minute are not listed; waiting looks at them too
        pause = _wait_for_slot([account_id] if account_id else accounts_with_due_calls(sendable_only=False)) \
            if wait else None
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
            if finish(call, CallState.UNKNOWN, error=error) is not None:
                settled += 1
        elif ApiCall.objects.filter(pk=call.pk, state=CallState.SENDING).update(
                state=CallState.QUEUED, not_before=now, error="the worker stopped while sending; retried") == 1:
            settled += 1
    if settled:
        log.warning("recovered %s call(s) left sending by a stopped worker", settled)
    return settled


def sweep() -> int:
    """The beat tick: recover stale calls, resume accounts whose token opens again, then pump every
    account with due calls once through."""
    recover_stale()
    resume_readable_tokens()
    return pump(wait=False, max_seconds=settings.SOLAX_SWEEP_SECONDS)
