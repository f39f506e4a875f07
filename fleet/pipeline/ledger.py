"""The ledger's arithmetic: what an account's budget has spent, and claiming its next call.

Every HTTP request to SolaX leaves a CallAttempt, numbered per account under the account's lock, so
the requests in any window are `last seq - first seq in the window + 1`. `claim_next` takes that lock,
measures, picks the highest-priority due call the budget allows, marks it SENDING and records its
attempt, all in one short transaction before any HTTP (fleet.pipeline.dispatch does the rest).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Subquery, Sum
from django.utils import timezone

from fleet import events
from fleet.models import ApiCall, CallAttempt, CallState, PlanEdge, PlanEdgeState, Priority, Schedule, SolaxAccount
from fleet.models.accounts import TOKEN_UNREADABLE_REASON
from fleet.models.schedules import RESERVE_AHEAD, grace

log = logging.getLogger("fleet.calls")

DAY = timedelta(days=1)
# An account whose token the keys cannot open pauses this long at a time; each claim after the pause
# checks again, and each sweep lifts it as soon as the token opens (keys fixed, workers restarted).
TOKEN_UNREADABLE_PAUSE = timedelta(minutes=1)

def minute_window() -> timedelta:
    """The rolling window of the per-minute limit, padded so latency cannot push two windows' worth
    of requests into one vendor minute."""
    return timedelta(seconds=settings.SOLAX_MINUTE_SECONDS + settings.SOLAX_WINDOW_PAD_SECONDS)



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
        last ``reserved_slots`` of the minute (control calls of schedule and price-plan edges about to fire).
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

    # The limits are held to SOLAX_MAX_CALLS_PER_*, so that a row edited elsewhere cannot exceed them.
    minute_limit, day_limit = row.minute_limit, row.day_limit
    return Budget(
        minute_used=used(row.minute_first_seq),
        minute_limit=minute_limit,
        day_used=used(row.day_first_seq),
        day_limit=day_limit,
        minute_margin=min(row.safety_margin_per_minute, minute_limit - 1),
        day_margin=min(row.safety_margin_per_day, day_limit - 1),
        control_reserve=day_limit * row.control_share_percent // 100,
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
    The claim and its CallAttempt commit before any HTTP: two round trips on PostgreSQL (lock, then
    measure budget use and reserved slots; claim the call and record its attempt), three statements
    on SQLite. A token that TOKEN_ENCRYPTION_KEYS cannot open pauses the account instead.
    """
    with transaction.atomic():
        now = now or timezone.now()
        account = _lock_and_measure(account_id, now)
        if account is None or account.is_paused(now):
            return None
        if not account.token_readable:
            # Checked before anything is claimed or counted: the call waits in the queue.
            _pause_unreadable(account, now)
            return None
        # Slots reserved for schedule and price-plan edges about to fire go to control writes only.
        budget = _budget_from(account)
        allowed = budget.lowest_priority_allowed(getattr(account, "reserved_slots", 0) or 0)
        if allowed is None:
            _hold_until_free(account, budget, now)
            return None
        # Never earlier than the last attempt, so that seq and sent_at run in the same order even
        # when workers on different machines disagree a little about the time.
        last_sent_at: datetime | None = getattr(account, "last_sent_at", None)
        sent_at = max(now, last_sent_at) if last_sent_at else now
        call = _claim_due_call(account_id, now, allowed, sent_at, seq=(getattr(account, "last_seq", None) or 0) + 1)
        if call is None:
            return None
    call.account = account
    return call


def _hold_until_free(account: SolaxAccount, budget: Budget, now: datetime) -> None:
    """Record when the account can send again (the minute's oldest request leaves the window; a spent
    day is looked at again each minute), so that the beat sweep skips it until then."""
    until = next_free_slot(account, now) if budget.minute_free <= 0 else now + timedelta(minutes=1)
    SolaxAccount.objects.filter(pk=account.pk).update(send_not_before=until)


def _lock_and_measure(account_id: int, now: datetime) -> SolaxAccount | None:
    """Lock the account row, then read its budget use and the slots reserved for schedule and price-plan edges (the
    ORM equivalents are `_usage_subqueries` and `reserved_slots`; this hot path is
    hand-written because compiling the subqueries per call cost more than running them).

    The lock comes first and the measuring after it is granted: a PostgreSQL statement reads with the
    snapshot it started with, so a claimer that waited inside a measuring ``SELECT ... FOR UPDATE``
    would see the numbers from before the holder's claim and reuse its sequence number. On PostgreSQL
    the two statements travel in one round trip (Django's client-side binding sends them as one
    query; each statement takes its own snapshot under READ COMMITTED). SQLite's IMMEDIATE
    transaction holds the write lock from BEGIN, so one statement measures after the lock there.
    """
    ops = connection.ops
    accounts = ops.quote_name(SolaxAccount._meta.db_table)
    attempts = ops.quote_name(CallAttempt._meta.db_table)
    schedules = ops.quote_name(Schedule._meta.db_table)
    plan_edges = ops.quote_name(PlanEdge._meta.db_table)
    measure = (  # only the models' own quoted table names are interpolated
        f"SELECT a.*, "  # noqa: S608
        f"(SELECT seq FROM {attempts} WHERE account_id = a.id ORDER BY seq DESC LIMIT 1) AS last_seq, "
        f"(SELECT sent_at FROM {attempts} WHERE account_id = a.id ORDER BY seq DESC LIMIT 1) AS last_sent_at, "
        f"(SELECT seq FROM {attempts} WHERE account_id = a.id AND sent_at > %s ORDER BY sent_at LIMIT 1) "
        f"AS day_first_seq, "
        f"(SELECT seq FROM {attempts} WHERE account_id = a.id AND sent_at > %s ORDER BY sent_at LIMIT 1) "
        f"AS minute_first_seq, "
        f"((SELECT COALESCE(SUM(calls_per_edge), 0) FROM {schedules} WHERE account_id = a.id AND enabled = %s "
        f"AND next_edge_at > %s AND next_edge_at <= %s) + "
        f"(SELECT COALESCE(SUM(calls), 0) FROM {plan_edges} WHERE account_id = a.id AND state = %s "
        f"AND due_at > %s AND due_at <= %s)) AS reserved_slots "
        f"FROM {accounts} a WHERE a.id = %s"
    )
    early, ahead = ops.adapt_datetimefield_value(now - grace()), ops.adapt_datetimefield_value(now + RESERVE_AHEAD)
    params = [ops.adapt_datetimefield_value(now - DAY), ops.adapt_datetimefield_value(now - minute_window()),
              True, early, ahead, PlanEdgeState.PENDING, early, ahead, account_id]
    if connection.features.has_select_for_update:
        account = _lock_then_measure(f"SELECT id FROM {accounts} WHERE id = %s FOR UPDATE", measure,  # noqa: S608
                                     [account_id], params)
    else:
        rows = list(SolaxAccount.objects.raw(measure, params))
        account = rows[0] if rows else None
    if account is None:
        return None
    last_sent = getattr(account, "last_sent_at", None)
    # SQLite hands back a subquery's datetime as UTC text or as a naive datetime
    if isinstance(last_sent, str):
        last_sent = datetime.fromisoformat(last_sent)
    if last_sent is not None and last_sent.tzinfo is None:
        last_sent = last_sent.replace(tzinfo=UTC)
    account.last_sent_at = last_sent  # type: ignore[attr-defined]
    return account


_MEASURED = ("last_seq", "last_sent_at", "day_first_seq", "minute_first_seq", "reserved_slots")


def _lock_then_measure(lock: str, measure: str, lock_params: list[Any], params: list[Any]) -> SolaxAccount | None:
    """Run the locking statement, then the measuring one (PostgreSQL); return the account annotated
    with the measured figures, or None if it is gone."""
    with connection.cursor() as cursor:
        if connection.settings_dict.get("OPTIONS", {}).get("server_side_binding"):
            cursor.execute(lock, lock_params)  # a prepared statement holds one command: two round trips
            cursor.execute(measure, params)
        else:
            cursor.execute(f"{lock}; {measure}", [*lock_params, *params])
            cursor.nextset()
        row = cursor.fetchone()
        if row is None:
            return None
        values = dict(zip((column.name for column in cursor.description), row, strict=True))
    fields = SolaxAccount._meta.concrete_fields
    account = SolaxAccount.from_db(connection.alias, [f.attname for f in fields], [values[f.column] for f in fields])
    for name in _MEASURED:
        setattr(account, name, values[name])
    return account


def _pause_unreadable(account: SolaxAccount, now: datetime) -> None:
    """Pause an account whose stored token TOKEN_ENCRYPTION_KEYS cannot open (never sent, never counted)."""
    SolaxAccount.objects.filter(pk=account.pk).update(paused_until=now + TOKEN_UNREADABLE_PAUSE,
                                                      pause_reason=TOKEN_UNREADABLE_REASON)
    log.error("account %s paused: its token cannot be decrypted with TOKEN_ENCRYPTION_KEYS", account.pk)
    events.send(events.account_paused, SolaxAccount, account=account, until=now + TOKEN_UNREADABLE_PAUSE,
                reason=TOKEN_UNREADABLE_REASON, cause="token_unreadable")


def resume_readable_tokens(now: datetime | None = None) -> int:
    """Lift the pause of every account paused for an unreadable token that now opens (the keys were
    fixed). Returns how many resumed. Touches only accounts paused for that reason."""
    now = now or timezone.now()
    resumed = 0
    for account in SolaxAccount.objects.filter(pause_reason=TOKEN_UNREADABLE_REASON, paused_until__gt=now).only(
            "pk", "token_ciphertext"):
        if account.token_readable and SolaxAccount.objects.filter(
                pk=account.pk, pause_reason=TOKEN_UNREADABLE_REASON).update(paused_until=None, pause_reason="") == 1:
            log.warning("account %s resumed: its token opens with TOKEN_ENCRYPTION_KEYS again", account.pk)
            resumed += 1
    return resumed


def _claim_due_call(account_id: int, now: datetime, allowed: int, sent_at: datetime, seq: int) -> ApiCall | None:
    """Mark the first due call SENDING, record its attempt `seq`, and return the call.

    The first due call is the highest priority, except that a result poll due for longer than
    COMMAND_POLL_AGING_SECONDS goes before the control sends: while a fleet is being sent batch after
    batch, the results of the batches already sent still come in (each poll ages in once, so the sends
    keep most of every minute). Both probes are index seeks on call_due.

    One UPDATE ... RETURNING (SQLite 3.35+ and PostgreSQL alike); on PostgreSQL the attempt's INSERT
    rides in the same statement as a data-modifying CTE, which SQLite does not have.
    """
    ops = connection.ops
    table = ops.quote_name(ApiCall._meta.db_table)
    attempts = ops.quote_name(CallAttempt._meta.db_table)
    # Only the models' own quoted table names are interpolated; every value is a parameter.
    first_due = (f"(SELECT id FROM {table} WHERE account_id = %s AND state = %s "  # noqa: S608
                 f"AND not_before <= %s AND priority <= %s ORDER BY priority, not_before, id LIMIT 1)")
    due_params: list[Any] = [account_id, CallState.QUEUED, ops.adapt_datetimefield_value(now), allowed]
    if allowed >= Priority.POLL:
        aged = now - timedelta(seconds=settings.COMMAND_POLL_AGING_SECONDS)
        first_due = (f"COALESCE((SELECT id FROM {table} WHERE account_id = %s AND state = %s "  # noqa: S608
                     f"AND priority = %s AND not_before <= %s ORDER BY not_before, id LIMIT 1), {first_due})")
        due_params = [account_id, CallState.QUEUED, Priority.POLL, ops.adapt_datetimefield_value(aged),
                      *due_params]
    update = (
        f"UPDATE {table} SET state = %s, sent_at = %s, attempts = attempts + 1 "  # noqa: S608
        f"WHERE state = %s AND id = {first_due} RETURNING *"
    )
    params: list[Any] = [CallState.SENDING, ops.adapt_datetimefield_value(sent_at), CallState.QUEUED, *due_params]
    with_attempt = connection.vendor == "postgresql"
    if with_attempt:
        update = (
            f"WITH claimed AS ({update}), attempt AS (INSERT INTO {attempts} (account_id, call_id, seq, sent_at) "  # noqa: S608
            f"SELECT %s, id, %s, %s FROM claimed) SELECT * FROM claimed"
        )
        params += [account_id, seq, ops.adapt_datetimefield_value(sent_at)]
    claimed = list(ApiCall.objects.raw(update, params))
    if not claimed:
        return None
    if not with_attempt:
        CallAttempt.objects.create(account_id=account_id, call_id=claimed[0].pk, seq=seq, sent_at=sent_at)
    return claimed[0]



def prune_attempts(now: datetime | None = None) -> int:
    """Delete budget rows older than two days (the budget looks back one); the ApiCall ledger stays.
    Returns how many were deleted."""
    now = now or timezone.now()
    deleted, _ = CallAttempt.objects.filter(sent_at__lt=now - 2 * DAY).delete()
    return deleted



# Reporting ------------------------------------------------------------------------------------

def queue_depth(account: SolaxAccount) -> dict[int, int]:
    """Return {priority: queued calls} for the account."""
    rows = (ApiCall.objects.filter(account=account, state=CallState.QUEUED)
            .values("priority").annotate(n=Count("id")).order_by())
    return {row["priority"]: row["n"] for row in rows}


def reserved_slots(account_id: int, now: datetime) -> int:
    """Return the minute slots to keep for control calls of edges due now or within RESERVE_AHEAD:
    schedules' next edges and the pending edges of accepted price plans (two queries, each an index
    range on schedule_next_edge and plan_edge_reserve). The call pipeline lets only control writes use them."""
    schedules = Schedule.objects.filter(
        account_id=account_id, enabled=True, next_edge_at__gt=now - grace(), next_edge_at__lte=now + RESERVE_AHEAD,
    ).aggregate(n=Sum("calls_per_edge"))["n"]
    plans = PlanEdge.objects.filter(
        account_id=account_id, state=PlanEdgeState.PENDING, due_at__gt=now - grace(), due_at__lte=now + RESERVE_AHEAD,
    ).aggregate(n=Sum("calls"))["n"]
    return int(schedules or 0) + int(plans or 0)
