"""Following a command to each device's answer: command id -> task id -> per-device results, EV
callbacks' fallback, expiry. The call pipeline runs these handlers when each call's outcome is known.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from fleet import events
from fleet.commands import rollout
from fleet.commands.actions import PILE_MODE_LABELS
from fleet.commands.sending import enqueue_batch
from fleet.models import (
    ApiCall,
    CallState,
    Command,
    CommandBatch,
    CommandKind,
    CommandState,
    DeviceResult,
    DeviceState,
    Inverter,
    Priority,
    RolloutStage,
)
from fleet.pipeline import handlers, queue
from solax import endpoints
from solax.errors import ListTooLongError, SolaxError
from solax.parsing import parse_envelope

log = logging.getLogger("fleet.commands")

FINAL_STATES = (CommandState.SUCCEEDED, CommandState.PARTIAL, CommandState.FAILED, CommandState.EXPIRED,
                CommandState.CANCELLED)


# Following ------------------------------------------------------------------------------------

def _poll_delay(polls: int) -> timedelta:
    return timedelta(seconds=min(settings.COMMAND_POLL_CAP_SECONDS, settings.COMMAND_POLL_BASE_SECONDS * 2 ** polls))


def _batch_of(call: ApiCall) -> CommandBatch | None:
    batch_id = (call.context or {}).get("batch")
    if not isinstance(batch_id, int):
        log.warning("call %s names no batch", call.code)
        return None
    batch = (CommandBatch.objects.select_for_update(of=("self", "command", "command__account"))
             .select_related("command", "command__account", "call").filter(pk=batch_id).first())
    if batch is None:
        log.warning("call %s names batch %s, which is gone", call.code, batch_id)
    return batch


def _poll(batch: CommandBatch, endpoint: str, params: dict[str, Any], handler: str, *,
          delay: timedelta | None = None, final: bool = False, seen: bool = False, late: bool = False) -> None:
    """Queue the batch's next poll after ``delay`` (else its backoff), but never after the batch's
    deadline (counted from its own send); ``final`` marks the one last look just before it."""
    command = batch.command
    at = timezone.now() + (_poll_delay(batch.polls) if delay is None else delay)
    deadline = batch.deadline or command.expires_at
    if deadline and (final or at > deadline - _final_margin()):
        # the last look: whatever it finds, the batch is settled after it (no burst of polls before
        # the deadline)
        at, final = max(timezone.now(), deadline - _final_margin()), True
    batch.polls += 1
    batch.next_poll_at = at
    batch.save(update_fields=["polls", "next_poll_at", "state", "vendor_command_id", "task_id"])
    context: dict[str, Any] = {"batch": batch.pk, **({"final": True} if final else {}),
                               **({"seen": True} if seen else {}), **({"late": True} if late else {})}
    queue.enqueue(command.account, endpoint, params, purpose=f"follow {command.label}"[:200], handler=handler,
                  context=context, origin_kind="command", origin_code=command.code,
                  priority=Priority.POLL, not_before=at)


def _final_margin() -> timedelta:
    """How long before a batch's deadline its final look goes out (time for a busy queue to send it)."""
    return timedelta(seconds=min(60.0, settings.COMMAND_EXPIRY_SECONDS * 0.1))


def first_result_delay(account: Any) -> timedelta:
    """When to look for results first: the delay this account's devices were seen to need (learned
    from its recent batches), else COMMAND_FIRST_RESULT_SECONDS."""
    seconds = account.result_delay_seconds or settings.COMMAND_FIRST_RESULT_SECONDS
    return timedelta(seconds=seconds)


def _first_look_delay(batch: CommandBatch) -> timedelta:
    """How long from now until the batch's first result poll is due (negative: due since then).

    The devices' delay counts from the batch's send, not from its queryCommand's answer: a
    queryCommand that waited behind a fleet's sends has often used all of it. Then the look is due
    since its first queryCommand was, so it has aged already and the result poll goes next, before
    the queryCommands of later batches: one look ages once, and the first results arrive in the
    minute the first task ids do, not a minute later."""
    delay = first_result_delay(batch.command.account)
    sent_at = batch.call.sent_at if batch.call is not None else None
    if sent_at is None:
        return delay
    now = timezone.now()
    due = sent_at + delay
    if due <= now:
        due = min(due, sent_at + _poll_delay(0))  # when on_sent's queryCommand was due
    return due - now


def _adjust_delay(account: Any, factor: float) -> None:
    """Learn when to look first: lengthen the account's delay when answers came after the first look
    (it was too early), shorten it a little when everything had answered by then (try earlier)."""
    current = account.result_delay_seconds or settings.COMMAND_FIRST_RESULT_SECONDS
    cap = settings.COMMAND_EXPIRY_SECONDS / 2
    learned = round(min(cap, max(settings.COMMAND_POLL_BASE_SECONDS, current * factor)), 3)
    type(account).objects.filter(pk=account.pk).update(result_delay_seconds=learned)
    account.result_delay_seconds = learned


def _read(call: ApiCall, outcome: handlers.Outcome) -> Any:
    """Return the parsed result of a succeeded call; raise SolaxError if it cannot be read."""
    envelope = outcome.envelope or parse_envelope(call.response)
    return endpoints.RESULT_PARSERS[call.endpoint](envelope)


def _error_text(call: ApiCall, outcome: handlers.Outcome) -> str:
    if outcome.error is not None:
        return str(outcome.error)[:500]
    return (call.error or "failed")[:500]


@handlers.register("commands.sent")
def on_sent(call: ApiCall, outcome: handlers.Outcome) -> None:
    """The control call of a batch finished: start following it, or settle its devices."""
    batch = _batch_of(call)
    if batch is None:
        return
    command = batch.command
    results = DeviceResult.objects.filter(batch=batch, state=DeviceState.PENDING)
    now = timezone.now()
    if outcome.state == CallState.CANCELLED:  # it never left (see cancel_unsent)
        batch.state = CommandState.CANCELLED
        batch.save(update_fields=["state"])
        results.update(state=DeviceState.NOT_SENT, answer="not sent: cancelled", answered_at=now)
        refresh(command)
        return
    if outcome.state == CallState.SUCCEEDED:
        try:
            vendor_id = _read(call, outcome)
        except SolaxError as exc:
            outcome = handlers.Outcome(state=CallState.UNKNOWN, error=exc)  # it arrived, but no id to follow
        else:
            _start_deadline(batch, call.sent_at or now)
            if call.endpoint == "pile_cmd":
                batch.task_id = vendor_id
                batch.state = CommandState.RUNNING
                batch.next_poll_at = now + timedelta(seconds=settings.COMMAND_CALLBACK_GRACE_SECONDS)
                batch.save(update_fields=["task_id", "state", "next_poll_at", "deadline"])
            else:
                batch.vendor_command_id = vendor_id
                batch.state = CommandState.ACCEPTED
                batch.save(update_fields=["deadline"])
                _poll(batch, "query_command", endpoints.query_command_params(vendor_id), "commands.task")
            refresh(command)
            return
    if (outcome.state == CallState.FAILED and isinstance(outcome.error, ListTooLongError)
            and batch.group_id is None and len(batch.sns) > 1):
        _split(batch, outcome.error, now)
        refresh(command)
        return
    state = DeviceState.UNKNOWN if outcome.state == CallState.UNKNOWN else DeviceState.FAILED
    batch.state = CommandState.UNKNOWN if state == DeviceState.UNKNOWN else CommandState.FAILED
    batch.save(update_fields=["state"])
    text = _error_text(call, outcome)
    if state == DeviceState.UNKNOWN:
        text = f"delivery unknown: {text}"
    results.update(state=state, answer=text[:500], answered_at=now)
    refresh(command)


def _split(batch: CommandBatch, error: ListTooLongError, now: datetime) -> None:
    """The cloud refused the batch's SN list as too long: a definite answer, nothing executed. So this
    is not a resend of an uncertain write: the batch keeps the first half of its SNs, a new batch (of
    the same stage) takes the second, and both are queued again; a half refused again halves again.
    A command cancelled or past its "must start by" meanwhile sends neither."""
    command = batch.command
    if command.state == CommandState.CANCELLED or (command.start_by is not None and command.start_by <= now):
        batch.state = CommandState.CANCELLED
        batch.save(update_fields=["state"])
        reason = "cancelled" if command.state == CommandState.CANCELLED else "too late"
        DeviceResult.objects.filter(batch=batch, state=DeviceState.PENDING).update(
            state=DeviceState.NOT_SENT, answer=f"not sent: SolaX refused the list as too long, then {reason}",
            answered_at=now)
        return
    sns = list(batch.sns)
    half = (len(sns) + 1) // 2
    first, second = sns[:half], sns[half:]
    batch.sns, batch.call = first, None
    batch.save(update_fields=["sns", "call"])
    other = CommandBatch.objects.create(command=command, group=None, sns=second, canary=batch.canary)
    for i in range(0, len(second), 5000):
        DeviceResult.objects.filter(batch=batch, sn__in=second[i:i + 5000]).update(batch=other)
    enqueue_batch(command, batch)
    enqueue_batch(command, other)
    log.info("command %s: SolaX refused %s SNs as too long (%s); sent again as %s + %s", command.code,
             len(sns), error.limit or "no limit named", len(first), len(second))


@handlers.register("commands.task")
def on_task(call: ApiCall, outcome: handlers.Outcome) -> None:
    """query_command answered: with a task id, poll results; without one yet, ask again later."""
    batch = _batch_of(call)
    if batch is None or batch.command.state in FINAL_STATES:
        return
    task_id = None
    if outcome.state == CallState.SUCCEEDED:
        try:
            task_id = _read(call, outcome)
        except SolaxError:
            task_id = None
    if task_id:
        batch.task_id = task_id
        batch.state = CommandState.RUNNING
        _poll(batch, "query_result", endpoints.query_result_params(task_id), "commands.result",
              delay=_first_look_delay(batch))
    elif (call.context or {}).get("final") or _past_deadline(batch):
        _settle_silent(batch, timezone.now())  # no task id by the last look: nothing will be followed
    else:
        _poll(batch, "query_command", endpoints.query_command_params(batch.vendor_command_id), "commands.task")
    refresh(batch.command)


@handlers.register("commands.result")
def on_result(call: ApiCall, outcome: handlers.Outcome) -> None:
    """getQueryResult answered (per dongle SN): record each device's answer; poll again while some
    are pending (ours, or devices the cloud lists that the mirror does not know) and the command has
    not expired."""
    batch = _batch_of(call)
    if batch is None or (batch.command.state in FINAL_STATES and batch.state != CommandState.RUNNING):
        return
    answers: dict[str, str | None] = {}
    if outcome.state == CallState.SUCCEEDED:
        try:
            answers = _read(call, outcome)
        except SolaxError:
            answers = {}
    now = timezone.now()
    pending = list(DeviceResult.objects.filter(batch=batch, state=DeviceState.PENDING))
    learned = _learn_dongles(batch, pending)
    changed = []
    for result in pending:
        answer = answers.get(result.dongle_sn) if result.dongle_sn else None
        if answer is None:
            answer = answers.get(result.sn)
        if answer is None:
            continue
        result.state = DeviceState.SUCCEEDED if answer.strip().lower() == "success" else DeviceState.FAILED
        result.answer = answer[:500]
        result.answered_at = now
        changed.append(result)
    _record_unmatched(batch, answers, changed)
    _save_answers(changed, learned, now)
    # The cloud lists every device it controlled: one it still reports pending keeps the batch polled,
    # even when it is not one of ours, so that its answer is recorded too.
    done = len(changed) == len(pending) and all(text is not None for text in answers.values())
    context = call.context or {}
    first, final = not context.get("seen"), bool(context.get("final"))
    account = batch.command.account
    if not first and changed and not context.get("late"):
        _adjust_delay(account, 1.5)  # answers after the first look: it came too early
    if done:
        if first:
            _adjust_delay(account, 0.95)
        batch.state = CommandState.SUCCEEDED
        batch.save(update_fields=["state"])
    elif final or _past_deadline(batch):
        _settle_silent(batch, now)
    else:
        total = DeviceResult.objects.filter(batch=batch).count()
        _follow_results(batch, changed=len(changed), answered_share=1 - (len(pending) - len(changed)) / max(1, total),
                        first=first, late=(not first and bool(changed)) or bool(context.get("late")))
    refresh(batch.command)


ANSWER_CHUNK = 500


def _save_answers(changed: list[DeviceResult], learned: list[DeviceResult], now: datetime) -> None:
    """Write the new answers: one UPDATE per distinct answer text (a batch's answers are a handful of
    texts: "success", "fail", ...) and chunk of ANSWER_CHUNK ids, instead of bulk_update's CASE per
    row, whose cost grew with the square of the batch (4 s for a 1,000-device answer on SQLite);
    then the dongle SNs learned, if any."""
    by_answer: dict[tuple[str, str], list[int]] = defaultdict(list)
    for result in changed:
        by_answer[(result.state, result.answer)].append(result.pk)
    for (state, answer), pks in by_answer.items():
        for start in range(0, len(pks), ANSWER_CHUNK):
            DeviceResult.objects.filter(pk__in=pks[start:start + ANSWER_CHUNK]).update(
                state=state, answer=answer, answered_at=now)
    if learned:
        DeviceResult.objects.bulk_update(learned, ["dongle_sn"], batch_size=100)


def _follow_results(batch: CommandBatch, *, first: bool, changed: int, answered_share: float, late: bool) -> None:
    """Poll economy. The first look goes out after the account's learned delay. While fewer than half
    the devices have answered, the looks came too early: poll again with backoff; after the first
    look, also while new answers keep arriving. Otherwise one final look just before the deadline;
    the devices still silent then are "no answer" with no further call."""
    params = endpoints.query_result_params(batch.task_id)
    soon = answered_share < 0.5 or (not first and changed > 0)
    _poll(batch, "query_result", params, "commands.result", final=not soon, seen=True, late=late)


def _settle_silent(batch: CommandBatch, now: datetime) -> None:
    """The final look found devices still silent: they are "no answer" now, with no further call."""
    DeviceResult.objects.filter(batch=batch, state=DeviceState.PENDING).update(
        state=DeviceState.NO_ANSWER, answer=f"no answer by the final look at {now:%H:%M:%S} UTC (offline?)",
        answered_at=now)
    batch.state = CommandState.EXPIRED
    batch.save(update_fields=["state"])


def _learn_dongles(batch: CommandBatch, pending: list[DeviceResult]) -> list[DeviceResult]:
    """Give results without a dongle SN the one the mirror knows now (a member added from a page gets
    it from the re-read of its group, possibly after the command was planned). One query; returns the
    results that learned one."""
    missing = {result.sn for result in pending if not result.dongle_sn}
    if not missing:
        return []
    known = dict(Inverter.objects.filter(account_id=batch.command.account_id, inverter_sn__in=missing,
                                         removed=False).exclude(dongle_sn="").values_list("inverter_sn", "dongle_sn"))
    learned = []
    for result in pending:
        if not result.dongle_sn and result.sn in known:
            result.dongle_sn = known[result.sn]
            learned.append(result)
    return learned


def _record_unmatched(batch: CommandBatch, answers: dict[str, str | None], matched: list[DeviceResult]) -> None:
    """Keep the answers for SNs that none of the command's results names (neither as dongle nor as
    inverter SN): the cloud controlled a device the mirror does not know. Never dropped; shown on the
    command page as "answered, not in the mirror"."""
    names = {r.sn for r in matched} | {r.dongle_sn for r in matched if r.dongle_sn}
    given = {sn: text for sn, text in answers.items() if sn not in names}
    if not given:
        return
    for sn, dongle in DeviceResult.objects.filter(command=batch.command).filter(
            Q(sn__in=list(given)) | Q(dongle_sn__in=list(given))).values_list("sn", "dongle_sn"):
        names.add(sn)
        if dongle:
            names.add(dongle)
    unmatched = {sn: (text[:200] if text is not None else None) for sn, text in given.items() if sn not in names}
    if unmatched and any(batch.unmatched.get(sn) != text for sn, text in unmatched.items()):
        batch.unmatched = {**batch.unmatched, **unmatched}
        CommandBatch.objects.filter(pk=batch.pk).update(unmatched=batch.unmatched)


def unmatched_answers(command: Command) -> list[tuple[str, str | None]]:
    """Return (SN, answer) for every device the cloud controlled for the command that the mirror does
    not know; the answer is None while the cloud reports it pending."""
    found: dict[str, str | None] = {}
    for unmatched in CommandBatch.objects.filter(command=command).exclude(unmatched={}).values_list(
            "unmatched", flat=True):
        found.update(unmatched or {})
    return sorted(found.items())


@handlers.register("commands.pile_info")
def on_pile_info(call: ApiCall, outcome: handlers.Outcome) -> None:
    """A getPileInfo check of a charger whose callback never came: the mode it reports tells."""
    result_id = (call.context or {}).get("result")
    result = (DeviceResult.objects.select_related("command").filter(pk=result_id).first()
              if isinstance(result_id, int) else None)
    if result is None or result.state != DeviceState.PENDING or outcome.state != CallState.SUCCEEDED:
        return
    try:
        info = _read(call, outcome)
    except SolaxError:
        return
    wanted = result.command.action.get("chargerMode")
    if info.mode == wanted:
        result.state = DeviceState.SUCCEEDED
        result.answer = f"no callback; getPileInfo reports mode {PILE_MODE_LABELS.get(info.mode, info.mode)}"
    else:
        result.state = DeviceState.FAILED
        shown = PILE_MODE_LABELS.get(info.mode, info.mode) if info.mode is not None else "unknown"
        result.answer = f"no callback; getPileInfo reports mode {shown}, status {info.status}"
    result.answered_at = timezone.now()
    result.save(update_fields=["state", "answer", "answered_at"])
    refresh(result.command)


def _start_deadline(batch: CommandBatch, sent_at: datetime) -> None:
    """A batch's results are waited for COMMAND_EXPIRY_SECONDS from its own send, not from the
    command's creation: a fleet sent over an hour gives its last batch as long as its first. The
    command's expires_at follows its latest batch."""
    batch.deadline = sent_at + timedelta(seconds=settings.COMMAND_EXPIRY_SECONDS)
    Command.objects.filter(pk=batch.command_id).filter(
        Q(expires_at__isnull=True) | Q(expires_at__lt=batch.deadline)).update(expires_at=batch.deadline)


def _past_deadline(batch: CommandBatch) -> bool:
    deadline = batch.deadline or batch.command.expires_at
    return deadline is not None and timezone.now() >= deadline


@dataclass(frozen=True)
class Progress:
    """What a command's progress line says: "60 of 63 answered · 3 silent (offline?) · final look at 19:01"."""

    total: int
    answered: int  # a device's own answer: succeeded, failed or unknown
    silent: int  # running and not answered yet, or nothing by the final look ("no answer")
    waiting: int  # not sent yet, or sent and its task not known yet
    not_sent: int
    final_look_at: datetime | None
    final_look_done: bool


SILENT_STATES = (DeviceState.PENDING, DeviceState.NO_ANSWER)


def progress(command: Command) -> Progress:
    """Count the command's devices by state (one grouped count on the (command, state) index) and say
    when its final look goes out: the latest batch deadline less the final margin."""
    counts = dict(DeviceResult.objects.filter(command=command).values_list("state").annotate(n=Count("id"))
                  .order_by())
    pending = counts.get(DeviceState.PENDING, 0)
    running = command.state == CommandState.RUNNING
    final_at = None
    if command.kind != CommandKind.CHARGER_MODE and command.expires_at is not None:
        final_at = command.expires_at - _final_margin()
    return Progress(
        total=command.devices_total,
        answered=sum(counts.get(s, 0) for s in (DeviceState.SUCCEEDED, DeviceState.FAILED, DeviceState.UNKNOWN)),
        silent=counts.get(DeviceState.NO_ANSWER, 0) + (pending if running else 0),
        waiting=0 if running else pending,
        not_sent=counts.get(DeviceState.NOT_SENT, 0),
        final_look_at=final_at,
        final_look_done=final_at is not None and (command.state in FINAL_STATES or final_at <= timezone.now()))


def refresh(command: Command) -> Command:
    """Recount the command's device results and derive its state (one aggregate, one update)."""
    counts = DeviceResult.objects.filter(command=command).aggregate(
        answered=Count("id", filter=~Q(state=DeviceState.PENDING)),
        succeeded=Count("id", filter=Q(state=DeviceState.SUCCEEDED)),
        failed=Count("id", filter=Q(state__in=[DeviceState.FAILED, DeviceState.NO_ANSWER, DeviceState.NOT_SENT])),
        unknown=Count("id", filter=Q(state=DeviceState.UNKNOWN)),
        not_sent=Count("id", filter=Q(state=DeviceState.NOT_SENT)),
    )
    command.devices_answered = counts["answered"]
    command.devices_succeeded = counts["succeeded"]
    command.devices_failed = counts["failed"]
    state = _derive_state(command, counts["unknown"], counts["not_sent"])
    previous = command.state
    fields = ["devices_answered", "devices_succeeded", "devices_failed", "state"]
    if state in FINAL_STATES and command.finished_at is None:
        command.finished_at = timezone.now()
        fields.append("finished_at")
    command.state = state
    Command.objects.filter(pk=command.pk).update(**{name: getattr(command, name) for name in fields})
    if state != previous or command.resolution:
        events.send(events.command_state_changed, Command, command=command, previous=previous)
    if command.rollout_stage == RolloutStage.CANARY and state not in (CommandState.APPROVAL, CommandState.CANCELLED):
        rollout.evaluate(command)  # after the UPDATE: this row lock orders two workers' recounts
    return command


def _derive_state(command: Command, unknown: int, not_sent: int = 0) -> str:
    if command.state == CommandState.APPROVAL:
        return command.state
    if command.state == CommandState.CANCELLED or (command.devices_total and not_sent == command.devices_total):
        return CommandState.CANCELLED
    if unknown and not command.resolution:
        return CommandState.UNKNOWN
    total = command.devices_total
    if command.devices_answered < total:
        batches = set(CommandBatch.objects.filter(command=command).values_list("state", flat=True))
        if batches <= {CommandState.QUEUED}:
            return CommandState.QUEUED
        if CommandState.RUNNING in batches or command.devices_answered:
            return CommandState.RUNNING
        return CommandState.ACCEPTED
    if command.devices_succeeded == total:
        return CommandState.SUCCEEDED
    if command.devices_succeeded == 0:
        no_answer = DeviceResult.objects.filter(command=command, state=DeviceState.NO_ANSWER).count()
        return CommandState.EXPIRED if no_answer == total else CommandState.FAILED
    return CommandState.PARTIAL


# Expiry, missing callbacks --------------------------------------------------------------------

def expire_due(now: datetime | None = None) -> int:
    """Settle batches past their deadline (counted from their own send): pending devices get "no
    answer" and the batch's queued polls are cancelled. Returns how many commands changed."""
    now = now or timezone.now()
    active = [CommandState.ACCEPTED, CommandState.RUNNING]
    due = (CommandBatch.objects.filter(state__in=active).exclude(command__state=CommandState.UNKNOWN)
           .filter(Q(deadline__lte=now) | Q(deadline__isnull=True, command__expires_at__lte=now))
           .order_by("deadline", "pk").values_list("pk", "command_id"))
    touched: set[int] = set()
    for batch_id, command_id in list(due[:500]):
        with transaction.atomic():
            batch = CommandBatch.objects.select_for_update().select_related("command").filter(pk=batch_id).first()
            if batch is None or batch.state not in active or batch.command.state == CommandState.UNKNOWN:
                continue
            for call in ApiCall.objects.filter(origin_code=batch.command.code, state=CallState.QUEUED,
                                               priority__gte=Priority.POLL, context__batch=batch.pk):
                queue.cancel(call)
            DeviceResult.objects.filter(batch=batch, state=DeviceState.PENDING).update(
                state=DeviceState.NO_ANSWER, answer="no answer before the batch's deadline", answered_at=now)
            batch.state = CommandState.EXPIRED
            batch.save(update_fields=["state"])
            refresh(batch.command)
            touched.add(command_id)
    return len(touched)


def cancel_unsent(command: Command, reason: str) -> int:
    """Cancel the command's batches that have not left (their control call is still queued): never
    sent, their devices "not sent". A call already being sent is left to finish. Returns how many."""
    cancelled = 0
    now = timezone.now()
    for batch in CommandBatch.objects.filter(command=command, state=CommandState.QUEUED).select_related("call"):
        if batch.call is None:
            if command.state == CommandState.APPROVAL:
                continue  # not queued until approved; a rejection settles it
            # held by a staged rollout: never queued, so cancelled here
            batch.state = CommandState.CANCELLED
            batch.save(update_fields=["state"])
            DeviceResult.objects.filter(batch=batch, state=DeviceState.PENDING).update(
                state=DeviceState.NOT_SENT, answer=f"not sent: {reason}"[:500], answered_at=now)
            cancelled += 1
            continue
        if not queue.cancel(batch.call):  # its handler marks it cancelled
            continue
        DeviceResult.objects.filter(batch=batch, state=DeviceState.NOT_SENT).update(
            answer=f"not sent: {reason}"[:500])
        cancelled += 1
    if cancelled:
        rollout.cancelled(command, reason)
        refresh(command)
    return cancelled


def cancel_late(now: datetime | None = None) -> int:
    """Cancel the unsent batches of commands past their operator's "must start by". Returns how many."""
    now = now or timezone.now()
    # UNKNOWN too: one batch of uncertain delivery must not let the rest go out late
    late = Command.objects.filter(state__in=[CommandState.QUEUED, CommandState.ACCEPTED, CommandState.RUNNING,
                                             CommandState.UNKNOWN],
                                  start_by__lte=now, batches__state=CommandState.QUEUED).distinct()
    cancelled = 0
    for command in late[:200]:
        with transaction.atomic():
            locked = Command.objects.select_for_update().get(pk=command.pk)
            cancelled += cancel_unsent(locked, f"too late (must start by {locked.start_by:%H:%M:%S %Z})")
    return cancelled


def check_missing_callbacks(now: datetime | None = None) -> int:
    """Queue one getPileInfo per charger still pending once a batch's callback grace has passed (at
    most one check per charger and command: a budgeted fallback, not a poll loop). Returns how many."""
    now = now or timezone.now()
    queued = 0
    batches = (CommandBatch.objects.filter(state=CommandState.RUNNING, command__kind=CommandKind.CHARGER_MODE,
                                           next_poll_at__lte=now, polls=0)
               .select_related("command", "command__account"))
    for batch in batches[:200]:
        with transaction.atomic():
            if CommandBatch.objects.filter(pk=batch.pk, polls=0).update(polls=1) != 1:
                continue
            for result in DeviceResult.objects.filter(batch=batch, state=DeviceState.PENDING):
                queue.enqueue(batch.command.account, "pile_info", endpoints.pile_info_params(result.sn),
                              purpose=f"no callback from {result.sn}", priority=Priority.POLL,
                              handler="commands.pile_info", context={"result": result.pk},
                              origin_kind="command", origin_code=batch.command.code)
                queued += 1
    return queued


def tick() -> dict[str, int]:
    """The beat tick of commands: expire batches past their deadline, cancel batches that would go
    out after their command's "must start by", check chargers whose callbacks stayed away."""
    return {"expired": expire_due(), "too_late": cancel_late(), "pile_checks": check_missing_callbacks(),
            "rollouts": rollout.tick()}


