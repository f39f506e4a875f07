"""Control commands: validate a target and an action, plan their cost, send them in the fewest calls,
and follow every device to its answer.

A command becomes one control call per CommandBatch: a group is one group_control, a selection is
batch_control calls of at most 100 SNs, one inverter is a single_control, EV chargers are pile_cmd
calls of at most 100. The handlers below follow each batch: the command id, then query_command for the
task id, then query_result polled with backoff until every device answered or the command expired.
EV chargers answer through callbacks (``fleet.commands.callbacks``); when those stay away, ``tick`` spends one
getPileInfo per pending charger to find out.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fleet import events
from fleet.commands import rollout, safety
from fleet.commands.actions import Action, CommandError, build_action
from fleet.commands.deciders import name_of, same_asker
from fleet.commands.rollout import RolloutSpec
from fleet.commands.sending import enqueue_batch
from fleet.commands.targets import GROUP_KINDS, Batch, ResolvedTarget, Target, cover, describe, resolve_target
from fleet.commands.tracking import cancel_unsent, first_result_delay, refresh
from fleet.models import (
    ApiCall,
    ApiKey,
    CallAttempt,
    CallState,
    Command,
    CommandBatch,
    CommandKind,
    CommandState,
    DeviceResult,
    DeviceState,
    Group,
    Inverter,
    Priority,
    Resolution,
    RolloutStage,
    Schedule,
    SolaxAccount,
    TargetKind,
)
from fleet.models.commands import ACTIVE_COMMAND_STATES
from fleet.pipeline import ledger

log = logging.getLogger("fleet.commands")


POLLS_PER_BATCH_ESTIMATE = 4  # one query_command and about three result polls, until the account has a history
POLLS_LEARNED_FROM = 50  # the account's most recent settled inverter batches the estimate averages
POLLS_LEARNED_MIN = 3  # fewer settled batches than this: the constant


@dataclass(frozen=True)
class PollEstimate:
    per_batch: float
    batches_seen: int  # 0: the constant, nothing learned yet


def poll_estimate(account: SolaxAccount) -> PollEstimate:
    """How many polls (query_command + query_result) one control call of this account took lately:
    the mean over its last settled inverter batches (their own poll counters), else the constant.
    One query: the account's recent commands come from the command_history index."""
    recent = (Command.objects.filter(account=account, kind=CommandKind.INVERTER_CONTROL)
              .exclude(state__in=ACTIVE_COMMAND_STATES).order_by("-created").values("id")[:POLLS_LEARNED_FROM])
    polls = list(CommandBatch.objects.filter(command_id__in=recent, polls__gt=0)
                 .order_by("-id").values_list("polls", flat=True)[:POLLS_LEARNED_FROM])
    if len(polls) < POLLS_LEARNED_MIN:
        return PollEstimate(float(POLLS_PER_BATCH_ESTIMATE), 0)
    return PollEstimate(sum(polls) / len(polls), len(polls))


@dataclass(frozen=True)
class CostPlan:
    """What a command will cost: its calls, when its first and last batch leave at the current budget
    and queue, when every result is expected, the share of today's budget, and what to beware of."""

    endpoint: str  # the endpoint of most sends ("batch_control", "group_control", ...)
    devices: int
    sends: int
    polls: int
    queued_ahead: int
    goes_out_at: datetime  # the first batch
    day_free: int
    day_limit: int
    label: str
    batches: list[Batch] = field(default_factory=list)
    max_sns_per_call: int = 100
    needs_approval: bool = False  # over the safety envelope's size threshold: a second operator approves
    last_leaves_at: datetime | None = None
    results_by: datetime | None = None  # the last batch's sends plus the learned result delay
    per_minute: int = 9  # calls a minute this account may send (its limit less the margin)
    control_reserve: int = 0
    canary_devices: int = 0  # a staged rollout: the canary's devices and calls
    canary_sends: int = 0
    canary_results_by: datetime | None = None
    result_delay_seconds: float = 0.0  # learned per account (else the default)
    warnings: list[str] = field(default_factory=list)
    polls_per_batch: float = POLLS_PER_BATCH_ESTIMATE
    polls_learned_from: int = 0  # settled batches of this account the estimate comes from (0: the constant)

    @property
    def group_calls(self) -> int:
        return sum(1 for batch in self.batches if batch.group is not None)

    @property
    def calls(self) -> int:
        return self.sends + self.polls

    @property
    def day_share_percent(self) -> float:
        return round(100.0 * self.calls / max(1, self.day_limit), 2)

    @property
    def fits_today(self) -> bool:
        return self.calls <= self.day_free

    @property
    def wait_seconds(self) -> int:
        return max(0, int((self.goes_out_at - timezone.now()).total_seconds()))

    @property
    def last_wait_seconds(self) -> int:
        return max(0, int(((self.last_leaves_at or self.goes_out_at) - timezone.now()).total_seconds()))


@dataclass(frozen=True)
class _Resolved:
    kind: str  # CommandKind
    params: dict[str, Any]  # the action part of the vendor parameters (control) or the mode
    devices: list[tuple[str, str]]  # (sn, dongle sn)
    batches: list[Batch]
    label: str
    single: bool = False  # one inverter: singleControl
    canary_batches: int = 0  # a staged rollout: the first batches are its canary
    canary_devices: int = 0

    def endpoint_of(self, batch: Batch) -> str:
        if self.kind == CommandKind.CHARGER_MODE:
            return "pile_cmd"
        if batch.group is not None:
            return "group_control"
        return "single_control" if self.single else "batch_control"

    @property
    def endpoint(self) -> str:
        names = [self.endpoint_of(batch) for batch in self.batches]
        return max(set(names), key=names.count)


# Validation -----------------------------------------------------------------------------------

def _resolve(account: SolaxAccount, target: Target, action: dict[str, Any],
             staged: RolloutSpec | None = None) -> _Resolved:
    """Return the validated command, or raise CommandError naming every bad field of the target,
    the action and the staged rollout at once."""
    errors: dict[str, str] = {}
    devices: list[tuple[str, str]] = []
    built: Action | None = None
    try:
        devices = resolve_target(account, target).devices
    except CommandError as exc:
        errors.update(exc.errors)
    try:
        built = build_action(target.kind, action)
    except CommandError as exc:
        errors.update(exc.errors)
    if not errors and built is not None:
        try:
            safety.check(account, built.kind, built.params, [sn for sn, _ in devices])
        except CommandError as exc:
            errors.update(exc.errors)
    canary = 0
    if staged is not None and not errors:
        try:
            canary = rollout.check(staged, len(devices), chargers=target.kind == TargetKind.CHARGERS)
        except CommandError as exc:
            errors.update(exc.errors)
    if errors or built is None:
        raise CommandError(errors)
    label = f"{built.label} to {describe(target, devices)}"[:200]
    if canary:
        return _staged(account, target, built, devices, canary, label)
    resolved = ResolvedTarget(target, devices)
    return _Resolved(kind=built.kind, params=built.params, devices=devices, batches=cover(account, resolved),
                     label=label, single=target.kind == TargetKind.INVERTER)


def _staged(account: SolaxAccount, target: Target, built: Action, devices: list[tuple[str, str]], canary: int,
            label: str) -> _Resolved:
    """A staged rollout's calls: batches of the canary's SNs first, then the fewest calls for the rest
    (whole groups only where no canary device is in them: a group call would control it again)."""
    canary_sns, rest_sns = rollout.pick_canary([sn for sn, _ in devices], canary)
    cap = account.max_sns_per_call  # the canary is spread over the groups: batches of its SNs
    canary_batches = [Batch(None, canary_sns[i:i + cap]) for i in range(0, len(canary_sns), cap)]
    rest_target = target if target.kind in (TargetKind.GROUPS, TargetKind.FLEET) else Target(
        TargetKind.SELECTION, sns=tuple(rest_sns))
    rest = set(rest_sns)
    rest_batches = cover(account, ResolvedTarget(rest_target, [d for d in devices if d[0] in rest]))
    return _Resolved(kind=built.kind, params=built.params, devices=devices, batches=canary_batches + rest_batches,
                     label=label, canary_batches=len(canary_batches), canary_devices=canary)


# Planning -------------------------------------------------------------------------------------

def plan_command(account: SolaxAccount, target: Target, action: dict[str, Any], *,
                 staged: RolloutSpec | None = None, start_by: datetime | None = None) -> CostPlan:
    """Return the calls the command needs (send + estimated polls), when its first and last batch
    would leave given the queue and the budget, when its results are expected, its share of today's
    budget and its warnings. Raises CommandError."""
    resolved = _resolve(account, target, action, staged)
    return _plan(account, resolved, start_by=start_by)


class _Slots:
    """When the n-th call from now leaves (n = 0 is the next one), by the ledger's arithmetic: this
    minute's free calls at once, then ``per_minute`` per minute window; past today's free calls, the
    rolling day frees one call as each request of the last 24 hours leaves it (one query, only then)."""

    def __init__(self, account: SolaxAccount, budget: ledger.Budget, start: datetime, now: datetime) -> None:
        self.account, self.budget, self.start, self.now = account, budget, start, now
        self.per_minute = max(1, budget.minute_limit - budget.minute_margin)
        self.window = ledger.minute_window()

    def at(self, n: int, *, start: datetime | None = None, free: int | None = None, before: int = 0) -> datetime:
        """``before``: calls of today's budget spent ahead of this phase (a rollout's canary)."""
        begin = self.start if start is None else start
        free_now = self.budget.minute_free if free is None else free
        when = begin
        if n >= free_now:
            when = begin + self.window * math.ceil((n - free_now + 1) / self.per_minute)
        if n + before >= self.budget.day_free:
            when = max(when, self._day_frees(n + before - self.budget.day_free + 1))
        return when

    def _day_frees(self, k: int) -> datetime:
        """When the rolling day has room for k more calls: the k-th oldest request of the last 24 h
        leaves it (a day from now if fewer were sent)."""
        oldest = (CallAttempt.objects.filter(account_id=self.account.pk, sent_at__gt=self.now - ledger.DAY)
                  .order_by("sent_at").values_list("sent_at", flat=True)[k - 1:k])
        found = list(oldest)
        return (found[0] if found else self.now) + ledger.DAY


def _plan(account: SolaxAccount, resolved: _Resolved, *, start_by: datetime | None = None) -> CostPlan:
    now = timezone.now()
    sends = len(resolved.batches)
    estimate = PollEstimate(0.0, 0) if resolved.kind == CommandKind.CHARGER_MODE else poll_estimate(account)
    per_batch = estimate.per_batch
    polls = math.ceil(per_batch * sends)
    # Queued calls of equal or higher priority go first (control writes; due result polls age in
    # between, counted below with this command's own).
    ahead = ApiCall.objects.filter(account=account, state=CallState.QUEUED, priority__lte=Priority.CONTROL,
                                   not_before__lte=now).count()
    budget = ledger.budget_of(account, now)
    start = account.paused_until if account.is_paused(now) and account.paused_until else now
    slots = _Slots(account, budget, start, now)
    delay = first_result_delay(account)
    first = slots.at(ahead)
    canary = resolved.canary_batches
    canary_results_by = None

    def last_of(batches: int, offset: int, begin: datetime | None = None, free: int | None = None,
                before: int = 0) -> datetime:
        # While a fleet is sent, the queryCommand and result polls of the batches already sent go
        # between the sends (a poll due for COMMAND_POLL_AGING_SECONDS goes before them), so each batch
        # after the first minute's burst costs 1 + its polls of the shared minute.
        burst = max(0, (budget.minute_free if free is None else free) - offset)
        later = max(0, batches - 1 - burst)
        return slots.at(offset + batches - 1 + math.ceil(later * per_batch), start=begin, free=free, before=before)

    if canary:
        canary_last = last_of(canary, ahead)
        canary_results_by = canary_last + delay
        rest = sends - canary
        # the rest leaves once the canary's results are in: with what is left of this minute if they come
        # within it, else with a whole minute free again
        spent = ahead + math.ceil(canary * (1 + per_batch))
        free = (max(0, budget.minute_free - spent) if canary_results_by < start + slots.window
                else slots.per_minute)
        last = last_of(rest, 0, begin=canary_results_by, free=free, before=spent) if rest else canary_last
    else:
        last = last_of(sends, ahead)
    results_by = last + delay
    plan_warnings = _warnings(account, now, last, polls + sends, budget, start_by)
    return CostPlan(endpoint=resolved.endpoint, devices=len(resolved.devices), sends=sends, polls=polls,
                    queued_ahead=ahead, goes_out_at=first, day_free=budget.day_free,
                    day_limit=budget.day_limit, label=resolved.label, batches=resolved.batches,
                    max_sns_per_call=account.max_sns_per_call,
                    needs_approval=safety.needs_approval(account, len(resolved.devices)),
                    last_leaves_at=last, results_by=results_by, per_minute=slots.per_minute,
                    control_reserve=budget.control_reserve, canary_devices=resolved.canary_devices,
                    canary_sends=canary, canary_results_by=canary_results_by, warnings=plan_warnings,
                    result_delay_seconds=delay.total_seconds(),
                    polls_per_batch=round(estimate.per_batch, 1), polls_learned_from=estimate.batches_seen)


def _warnings(account: SolaxAccount, now: datetime, last: datetime, calls: int, budget: ledger.Budget,
              start_by: datetime | None) -> list[str]:
    """What the operator should know before sending: the last batch after "must start by" or after the
    next scheduled window; a command that eats the day's control reserve."""
    found = []
    zone = account.tzinfo

    def shown(when: datetime) -> str:
        return f"{timezone.localtime(when, zone):%H:%M:%S %Z}"

    if start_by is not None and last > start_by:
        found.append(f"The last batch would leave at {shown(last)}, after \"must start by\" {shown(start_by)}: "
                     "the batches still unsent then are cancelled, not sent.")
    edge = (Schedule.objects.filter(account=account, enabled=True, next_edge_at__gt=now)
            .order_by("next_edge_at").only("name", "next_edge_at").first())
    if edge is not None and edge.next_edge_at is not None and last > edge.next_edge_at:
        found.append(f"The last batch would leave at {shown(last)}, after the next scheduled window "
                     f"(schedule {edge.name} at {shown(edge.next_edge_at)}): its calls queue with this "
                     "command's.")
    left = budget.day_free - calls
    if budget.control_reserve and left < budget.control_reserve:
        found.append(f"This command's {calls} calls would eat into the day's control reserve "
                     f"({budget.control_reserve} calls kept for control writes): {max(0, left)} would be left "
                     "today, and result polls do not go out within the reserve.")
    return found


# Creating -------------------------------------------------------------------------------------

def create_command(account: SolaxAccount, target: Target, action: dict[str, Any], *, user: Any = None,
                   ip: str | None = None, source: str = "manual", retry_of: Command | None = None,
                   start_by: datetime | None = None, staged: RolloutSpec | None = None,
                   api_key: ApiKey | None = None) -> Command:
    """Validate (CommandError on any bad field, nothing written), then write the Command, its
    DeviceResults, CommandBatches and control ApiCalls in one transaction and return the Command.
    Batches still unsent at ``start_by`` are cancelled, never sent late. With ``staged``, only the
    canary's calls are queued; the rest wait for its results (``fleet.commands.rollout``).
    ``api_key`` is the REST API's key that asks (recorded as who, with ``ip`` as from where)."""
    resolved = _resolve(account, target, action, staged)
    if retry_of is not None and retry_of.account_id != account.pk:
        raise CommandError({"retry_of": "not a command of this account"})
    now = timezone.now()
    # Schedules and price plans are approved when made: an edge that waited for a second operator would miss its time.
    approval = source not in ("schedule", "prices") and safety.needs_approval(account, len(resolved.devices))
    with transaction.atomic():
        command = Command.objects.create(
            account=account, kind=resolved.kind, target_kind=target.kind,
            group=target.group if target.kind == TargetKind.GROUP else None, selection=target.selection,
            sns=[] if target.kind in GROUP_KINDS else [sn for sn, _ in resolved.devices], start_by=start_by,
            action=resolved.params, label=resolved.label, created=now,
            state=CommandState.APPROVAL if approval else CommandState.QUEUED,
            created_by=user if user is not None and user.is_authenticated else None, created_from=ip,
            source=source, retry_of=retry_of, api_key=api_key, devices_total=len(resolved.devices),
            expires_at=now + timedelta(seconds=settings.COMMAND_EXPIRY_SECONDS),
            **_rollout_fields(staged, resolved),
        )
        if target.kind == TargetKind.GROUPS:
            command.groups.set(target.groups)
        dongles = dict(resolved.devices)
        group_members = _members_of([b.group for b in resolved.batches if b.group is not None], set(dongles))
        for index, spec in enumerate(resolved.batches):
            members = group_members.get(spec.group.pk, []) if spec.group is not None else spec.sns
            canary = index < resolved.canary_batches
            batch = CommandBatch.objects.create(command=command, group=spec.group, sns=spec.sns, canary=canary)
            DeviceResult.objects.bulk_create(
                (DeviceResult(command=command, batch=batch, sn=sn, dongle_sn=dongles.get(sn, "")) for sn in members),
                batch_size=2000)
            if not approval and (canary or not resolved.canary_batches):
                enqueue_batch(command, batch)
    log.info("command %s %s: %s (%s devices, %s call(s))", command.code, "awaits approval" if approval else "queued",
             command.label, command.devices_total, len(resolved.batches))
    return command


def _rollout_fields(staged: RolloutSpec | None, resolved: _Resolved) -> dict[str, Any]:
    if staged is None or not resolved.canary_batches:
        return {}
    return {"rollout_stage": RolloutStage.CANARY, "rollout_canary_asked": staged.asked,
            "rollout_canary": resolved.canary_devices, "rollout_threshold": staged.threshold,
            "rollout_auto": staged.auto}


def _members_of(groups: list[Group], wanted: set[str]) -> dict[int, list[str]]:
    """The target's devices in each group that a group call reaches (one query)."""
    members: dict[int, list[str]] = {}
    for group_id, sn in Inverter.objects.filter(group__in=groups, removed=False).values_list("group_id", "inverter_sn"):
        if sn in wanted:
            members.setdefault(group_id, []).append(sn)
    return members


# Operators' decisions -------------------------------------------------------------------------

def retry_target(command: Command) -> Target:
    """Return the target of "retry failed devices only": the devices that failed or never answered.
    Raises CommandError when every device succeeded."""
    sns = tuple(command.results.filter(state__in=[DeviceState.FAILED, DeviceState.NO_ANSWER])
                .values_list("sn", flat=True))
    if not sns:
        raise CommandError({"target": "no device of this command failed"})
    if command.kind == CommandKind.CHARGER_MODE:
        return Target(TargetKind.CHARGERS, sns=sns)
    return Target(TargetKind.INVERTER if len(sns) == 1 else TargetKind.SELECTION, sns=sns)


def stored_action(command: Command) -> dict[str, Any]:
    """Return the command's action in the form create_command takes (ints)."""
    return {key: int(value) for key, value in command.action.items()}


def resolve_unknown(command: Command, resolution: str, *, user: Any = None, ip: str | None = None,
                    api_key: ApiKey | None = None) -> Command | None:
    """Record an operator's decision on an UNKNOWN command (a person's, or an API key's). "sent again"
    also creates the new command (returned) for the devices whose delivery was unknown. Raises
    CommandError if it is not UNKNOWN or was resolved already."""
    if resolution not in Resolution.values:
        raise CommandError({"resolution": "choose delivered, not delivered or send again"})
    with transaction.atomic():
        locked = Command.objects.select_for_update().get(pk=command.pk)
        if locked.state != CommandState.UNKNOWN or locked.resolution:
            raise CommandError({"resolution": "this command does not wait for a decision"})
        unknown = list(locked.results.filter(state=DeviceState.UNKNOWN).values_list("sn", flat=True))
        name = name_of(user, api_key)
        if resolution == Resolution.DELIVERED:
            new_state, text = DeviceState.SUCCEEDED, f"marked delivered by {name}"
        else:
            new_state, text = DeviceState.FAILED, f"marked not delivered by {name}"
        locked.results.filter(state=DeviceState.UNKNOWN).update(state=new_state, answer=text)
        locked.resolution = resolution
        locked.resolved_by, locked.resolved_by_key = user, api_key
        locked.resolved_at = timezone.now()
        locked.save(update_fields=["resolution", "resolved_by", "resolved_by_key", "resolved_at"])
        refresh(locked)
        again = None
        if resolution == Resolution.SENT_AGAIN and unknown:
            kind = TargetKind.CHARGERS if locked.kind == CommandKind.CHARGER_MODE else (
                TargetKind.INVERTER if len(unknown) == 1 else TargetKind.SELECTION)
            target = Target(kind, sns=tuple(unknown))
            if locked.target_kind == TargetKind.GROUP and locked.group and not locked.group.removed:
                target = Target(TargetKind.GROUP, group=locked.group)
            again = create_command(locked.account, target, stored_action(locked), user=user, ip=ip,
                                   source="resend", retry_of=locked, api_key=api_key)
    command.refresh_from_db()
    return again


def cancel_command(command: Command, *, user: Any = None, api_key: ApiKey | None = None) -> int:
    """Cancel the batches of a command that have not been sent (they never will be); batches already
    sent are still followed to their results. Returns how many were cancelled; raises CommandError
    when nothing is left to cancel (under the row lock: of two cancels at once, one cancels) or the
    command awaits approval (rejecting it is the decision that sends nothing)."""
    name = name_of(user, api_key)
    with transaction.atomic():
        locked = Command.objects.select_for_update().get(pk=command.pk)
        if locked.state == CommandState.APPROVAL:
            raise CommandError({"cancel": "this command awaits approval: reject it to send nothing"})
        cancelled = cancel_unsent(locked, f"cancelled by {name}")
    if not cancelled:
        raise CommandError({"cancel": "every batch of this command has been sent or cancelled already"})
    log.info("command %s: %s unsent batch(es) cancelled by %s", command.code, cancelled, name)
    return cancelled


# Four eyes -------------------------------------------------------------------------------------

class NotSecondOperator(CommandError):
    """The approver is the one who asked: four eyes need another person (or another person's key)."""


def approve_command(command: Command, *, user: Any = None, api_key: ApiKey | None = None) -> Command:
    """A second operator (a person, or an API key) approves a command awaiting approval: its calls are
    queued now. Raises CommandError when it does not wait for approval or the approver is the one who
    asked (``fleet.commands.deciders.same_asker``: a key counts as itself and as the person who made it)."""
    with transaction.atomic():
        locked = Command.objects.select_for_update().select_related("account").get(pk=command.pk)
        if locked.state != CommandState.APPROVAL:
            raise CommandError({"approval": "this command does not wait for an approval"})
        if same_asker(locked, user, api_key):
            raise NotSecondOperator({"approval": "a second operator must approve: not the one who asked"})
        if locked.start_by is not None and locked.start_by <= timezone.now():
            raise CommandError({"approval": "too late: it had to start by "
                                            f"{locked.start_by:%H:%M:%S %Z}; reject it and send it again"})
        batches = list(locked.batches.select_related("group").order_by("pk"))
        if any(batch.group_id is None and not batch.sns for batch in batches):
            raise CommandError({"approval": "a group of this command is gone; reject it and send it again"})
        # the envelope (writes per device today, a tightened limit) may have changed while it waited
        safety.check(locked.account, locked.kind, locked.action,
                     list(locked.results.values_list("sn", flat=True)))
        staged = bool(locked.rollout_stage)
        for batch in batches:
            if batch.canary or not staged:  # a staged rollout's other batches wait for the canary
                enqueue_batch(locked, batch)
        locked.state, locked.approved_by, locked.approved_at = CommandState.QUEUED, user, timezone.now()
        locked.approved_by_key = api_key
        locked.save(update_fields=["state", "approved_by", "approved_by_key", "approved_at"])
    log.info("command %s approved by %s", command.code, name_of(user, api_key))
    return locked


def reject_command(command: Command, *, user: Any = None, api_key: ApiKey | None = None) -> Command:
    """Refuse a command awaiting approval: nothing is sent, its devices read "not sent". Anyone who may
    operate may reject, the asker too (it sends nothing)."""
    with transaction.atomic():
        locked = Command.objects.select_for_update().get(pk=command.pk)
        if locked.state != CommandState.APPROVAL:
            raise CommandError({"approval": "this command does not wait for an approval"})
        name = name_of(user, api_key)
        locked.results.filter(state=DeviceState.PENDING).update(
            state=DeviceState.NOT_SENT, answer=f"not sent: rejected by {name}", answered_at=timezone.now())
        locked.batches.update(state=CommandState.CANCELLED)
        locked.state, locked.approved_by, locked.approved_at = CommandState.CANCELLED, user, timezone.now()
        locked.finished_at, locked.approved_by_key = locked.approved_at, api_key
        locked.save(update_fields=["state", "approved_by", "approved_by_key", "approved_at", "finished_at"])
        refresh(locked)
        # refresh saw it cancelled already (set above, since the approval state derives to itself):
        # tell the receivers that it left APPROVAL, so its channels hear it finished.
        events.send(events.command_state_changed, Command, command=locked, previous=CommandState.APPROVAL)
    return locked
