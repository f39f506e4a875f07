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
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone

from fleet.models import ApiCall, CallAttempt, CallState, Priority, SolaxAccount
from fleet.models.calls import RESPONSE_LIMIT, default_priority
from solax.client import SolaxClient
from solax.errors import ApiError, AuthError, InvalidTokenError, NotSentError, RateLimitedError, SolaxError
from solax.models import Envelope

log = logging.getLogger("fleet.calls")

DAY = timedelta(days=1)
TOKEN_REJECTED_CODES = {"103", "1001"}  # token invalid, Interface Unauthorized: the whole account
TOKEN_REJECTED_PAUSE = timedelta(minutes=15)
MAX_READ_ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 5
BACKOFF_CAP_SECONDS = 300


def minute_window() -> timedelta:
    """The rolling window of the per-minute limit, padded so latency cannot push two windows' worth
    of requests into one vendor minute."""
    return timedelta(seconds=settings.SOLAX_MINUTE_SECONDS + settings.SOLAX_WINDOW_PAD_SECONDS)


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
    if "tokenId" in params or "token" in params:
        raise ValueError("the token is added at send time and never stored in the ledger")
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


# The budget -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Budget:
    minute_used: int
    minute_limit: int
    day_used: int
    day_limit: int
    minute_margin: int
    day_margin: int
    control_reserve: int

    @property
    def minute_free(self) -> int:
        return max(0, self.minute_limit - self.minute_margin - self.minute_used)

    @property
    def day_free(self) -> int:
        return max(0, self.day_limit - self.day_margin - self.day_used)

    def lowest_priority_allowed(self, reserved_slots: int = 0) -> int | None:
        """Return the largest priority value that may be sent now, or None if nothing may.

        The last ``control_reserve`` calls of the day are kept for control writes, and so are the
        last ``reserved_slots`` of the minute (control calls of schedule edges about to fire).
        """
        if self.minute_free <= 0 or self.day_free <= 0:
            return None
        if self.day_free <= self.control_reserve or self.minute_free <= reserved_slots:
            return Priority.CONTROL
        return Priority.READ


def _usage_subqueries(now: datetime) -> dict[str, Subquery]:
    """Annotations that measure an account's use of its budget at `now` from its CallAttempts."""
    attempts = CallAttempt.objects.filter(account_id=OuterRef("pk"))
    latest = attempts.order_by("-seq")
    return {
        "last_seq": Subquery(latest.values("seq")[:1]),
        "last_sent_at": Subquery(latest.values("sent_at")[:1]),
        "day_first_seq": Subquery(attempts.filter(sent_at__gt=now - DAY).order_by("sent_at").values("seq")[:1]),
        "minute_first_seq": Subquery(
            attempts.filter(sent_at__gt=now - minute_window()).order_by("sent_at").values("seq")[:1]),
    }


def _budget_from(row: Any) -> Budget:
    """Return the Budget of an account row annotated with `_usage_subqueries`."""

    def used(first: int | None) -> int:
        return 0 if first is None else row.last_seq - first + 1

    return Budget(
        minute_used=used(row.minute_first_seq),
        minute_limit=row.calls_per_minute,
        day_used=used(row.day_first_seq),
        day_limit=row.calls_per_day,
        minute_margin=min(row.safety_margin_per_minute, row.calls_per_minute - 1),
        day_margin=min(row.safety_margin_per_day, row.calls_per_day - 1),
        control_reserve=row.calls_per_day * row.control_share_percent // 100,
    )


def budget_of(account: SolaxAccount, now: datetime | None = None) -> Budget:
    """Return the account's budget as the ledger tells it at ``now`` (one query)."""
    now = now or timezone.now()
    row = SolaxAccount.objects.annotate(**_usage_subqueries(now)).get(pk=account.pk)
    return _budget_from(row)


def record_past_attempts(account: SolaxAccount, call: ApiCall, times: list[datetime]) -> None:
    """Record requests already sent at `times` (oldest first): for imports, tests and benchmarks."""
    last = CallAttempt.objects.filter(account_id=account.pk).order_by("-seq").values_list("seq", flat=True).first()
    start = (last or 0) + 1
    CallAttempt.objects.bulk_create(
        CallAttempt(account_id=account.pk, call_id=call.pk, seq=start + i, sent_at=at)
        for i, at in enumerate(sorted(times)))


def next_free_slot(account: SolaxAccount, now: datetime) -> datetime:
    """Return when the oldest request in the minute window leaves it (``now`` if none is in it)."""
    oldest = (CallAttempt.objects.filter(account_id=account.pk, sent_at__gt=now - minute_window())
              .order_by("sent_at").values_list("sent_at", flat=True).first())
    return now if oldest is None else oldest + minute_window()


# Claiming and sending -------------------------------------------------------------------------

def claim_next(account_id: int, now: datetime | None = None) -> ApiCall | None:
    """Claim the account's highest-priority due call that the budget allows, or return None.

    Runs under a lock on the account row (``select_for_update`` on PostgreSQL, the IMMEDIATE
    transaction's write lock on SQLite), so that workers on any number of machines share one budget.
    The claim and its CallAttempt commit before any HTTP. Three statements: lock and measure, claim
    the call, record the attempt.
    """
    with transaction.atomic():
        now = now or timezone.now()
        account = _lock_and_measure(account_id, now)
        if account is None or account.is_paused(now):
            return None
        budget = _budget_from(account)
        allowed = budget.lowest_priority_allowed()
        if allowed is not None and allowed > Priority.CONTROL:
            # Only then can the slots reserved for schedule edges change the answer (one query).
            allowed = budget.lowest_priority_allowed(_reserved_for_schedules(account_id, now))
        if allowed is None:
            return None
        # Never earlier than the last attempt, so that seq and sent_at run in the same order even
        # when workers on different machines disagree a little about the time.
        last_sent_at: datetime | None = getattr(account, "last_sent_at", None)
        sent_at = max(now, last_sent_at) if last_sent_at else now
        call = _claim_due_call(account_id, now, allowed, sent_at)
        if call is None:
            return None
        CallAttempt.objects.create(account_id=account_id, call_id=call.pk,
                                   seq=(getattr(account, "last_seq", None) or 0) + 1,
                                   sent_at=sent_at)
    call.account = account
    return call


def _reserved_for_schedules(account_id: int, now: datetime) -> int:
    from fleet.schedules import reserved_slots  # the schedules import the pipeline, not the reverse

    return reserved_slots(account_id, now)


def _lock_and_measure(account_id: int, now: datetime) -> SolaxAccount | None:
    """Lock the account row and read its budget use in one statement (the ORM equivalent is
    `_usage_subqueries`; this hot path is hand-written because compiling four subqueries per call
    cost more than running them)."""
    ops = connection.ops
    accounts = ops.quote_name(SolaxAccount._meta.db_table)
    attempts = ops.quote_name(CallAttempt._meta.db_table)
    lock = " FOR UPDATE OF a" if connection.features.has_select_for_update_of else ""
    sql = (  # only the models' own quoted table names are interpolated
        f"SELECT a.*, "  # noqa: S608
        f"(SELECT seq FROM {attempts} WHERE account_id = a.id ORDER BY seq DESC LIMIT 1) AS last_seq, "
        f"(SELECT sent_at FROM {attempts} WHERE account_id = a.id ORDER BY seq DESC LIMIT 1) AS last_sent_at, "
        f"(SELECT seq FROM {attempts} WHERE account_id = a.id AND sent_at > %s ORDER BY sent_at LIMIT 1) "
        f"AS day_first_seq, "
        f"(SELECT seq FROM {attempts} WHERE account_id = a.id AND sent_at > %s ORDER BY sent_at LIMIT 1) "
        f"AS minute_first_seq "
        f"FROM {accounts} a WHERE a.id = %s{lock}"
    )
    params = [ops.adapt_datetimefield_value(now - DAY), ops.adapt_datetimefield_value(now - minute_window()),
              account_id]
    rows = list(SolaxAccount.objects.raw(sql, params))
    if not rows:
        return None
    account = rows[0]
    last_sent = getattr(account, "last_sent_at", None)
    # SQLite hands back a subquery's datetime as UTC text or as a naive datetime
    if isinstance(last_sent, str):
        last_sent = datetime.fromisoformat(last_sent)
    if last_sent is not None and last_sent.tzinfo is None:
        last_sent = last_sent.replace(tzinfo=UTC)
    account.last_sent_at = last_sent  # type: ignore[attr-defined]
    return account


def _claim_due_call(account_id: int, now: datetime, allowed: int, sent_at: datetime) -> ApiCall | None:
    """Mark the first due call SENDING and return it, in one UPDATE ... RETURNING (SQLite 3.35+ and
    PostgreSQL alike)."""
    table = connection.ops.quote_name(ApiCall._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    # Only the model's own quoted table name is interpolated; every value is a parameter.
    sql = (
        f"UPDATE {table} SET state = %s, sent_at = %s, attempts = attempts + 1 "  # noqa: S608
        f"WHERE state = %s AND id = (SELECT id FROM {table} WHERE account_id = %s AND state = %s "
        f"AND not_before <= %s AND priority <= %s ORDER BY priority, not_before, id LIMIT 1) RETURNING *"
    )
    params = [CallState.SENDING, adapt(sent_at), CallState.QUEUED, account_id, CallState.QUEUED, adapt(now),
              allowed]
    claimed = list(ApiCall.objects.raw(sql, params))
    return claimed[0] if claimed else None


_local = threading.local()


def _session() -> requests.Session:
    # One session per thread: connection reuse without sharing a Session across threads.
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


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
        envelope = client_for(call.account).call(call.endpoint, call.params)
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


def prune_attempts(now: datetime | None = None) -> int:
    """Delete budget rows older than two days (the budget looks back one); the ApiCall ledger stays.
    Returns how many were deleted."""
    now = now or timezone.now()
    deleted, _ = CallAttempt.objects.filter(sent_at__lt=now - 2 * DAY).delete()
    return deleted


def cancel(call: ApiCall) -> bool:
    """Cancel a call that has not been sent. Returns False if it already left the queue."""
    return _finish(call, CallState.CANCELLED, expected=CallState.QUEUED) is not None


# Reporting ------------------------------------------------------------------------------------

def queue_depth(account: SolaxAccount) -> dict[int, int]:
    """Return {priority: queued calls} for the account."""
    rows = (ApiCall.objects.filter(account=account, state=CallState.QUEUED)
            .values("priority").annotate(n=Count("id")).order_by())
    return {row["priority"]: row["n"] for row in rows}
