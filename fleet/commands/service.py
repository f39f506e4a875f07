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

from fleet.commands import safety
from fleet.commands.actions import Action, CommandError, build_action
from fleet.commands.targets import GROUP_KINDS, Batch, ResolvedTarget, Target, cover, describe, resolve_target
from fleet.commands.tracking import cancel_unsent, refresh
from fleet.models import (
    ApiCall,
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
    SolaxAccount,
    TargetKind,
)
from fleet.models.commands import ACTIVE_COMMAND_STATES
from fleet.pipeline import ledger, queue
from solax import endpoints

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
    """What a command will cost: its calls, when they go out, and the share of today's budget."""

    endpoint: str  # the endpoint of most sends ("batch_control", "group_control", ...)
    devices: int
    sends: int
    polls: int
    queued_ahead: int
    goes_out_at: datetime
    day_free: int
    day_limit: int
    label: str
    batches: list[Batch] = field(default_factory=list)
    max_sns_per_call: int = 100
    needs_approval: bool = False  # over the safety envelope's size threshold: a second operator approves
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


@dataclass(frozen=True)
class _Resolved:
    kind: str  # CommandKind
    params: dict[str, Any]  # the action part of the vendor parameters (control) or the mode
    devices: list[tuple[str, str]]  # (sn, dongle sn)
    batches: list[Batch]
    label: str
    single: bool = False  # one inverter: singleControl

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

def _resolve(account: SolaxAccount, target: Target, action: dict[str, Any]) -> _Resolved:
    """Return the validated command, or raise CommandError naming every bad field of the target
    and the action at once."""
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
    if errors or built is None:
        raise CommandError(errors)
    resolved = ResolvedTarget(target, devices)
    return _Resolved(kind=built.kind, params=built.params, devices=devices, batches=cover(account, resolved),
                     label=f"{built.label} to {describe(target, devices)}"[:200],
                     single=target.kind == TargetKind.INVERTER)


# Planning -------------------------------------------------------------------------------------

def plan_command(account: SolaxAccount, target: Target, action: dict[str, Any]) -> CostPlan:
    """Return the calls the command needs (send + estimated polls), when it would go out given the
    queue and the budget, and its share of today's budget. Raises CommandError."""
    resolved = _resolve(account, target, action)
    return _plan(account, resolved)


def _plan(account: SolaxAccount, resolved: _Resolved) -> CostPlan:
    now = timezone.now()
    sends = len(resolved.batches)
    estimate = PollEstimate(0.0, 0) if resolved.kind == CommandKind.CHARGER_MODE else poll_estimate(account)
    polls = math.ceil(estimate.per_batch * sends)
    ahead = ApiCall.objects.filter(account=account, state=CallState.QUEUED, priority__lte=Priority.CONTROL,
                                   not_before__lte=now).count()
    budget = ledger.budget_of(account, now)
    goes_out_at = now
    if account.is_paused(now) and account.paused_until:
        goes_out_at = account.paused_until
    backlog = ahead + 1 - budget.minute_free
    if backlog > 0:
        per_minute = max(1, budget.minute_limit - budget.minute_margin)
        goes_out_at = max(goes_out_at, now + timedelta(seconds=settings.SOLAX_MINUTE_SECONDS
                                                        * math.ceil(backlog / per_minute)))
    return CostPlan(endpoint=resolved.endpoint, devices=len(resolved.devices), sends=sends, polls=polls,
                    queued_ahead=ahead, goes_out_at=goes_out_at, day_free=budget.day_free,
                    day_limit=budget.day_limit, label=resolved.label, batches=resolved.batches,
                    max_sns_per_call=account.max_sns_per_call,
                    needs_approval=safety.needs_approval(account, len(resolved.devices)),
                    polls_per_batch=round(estimate.per_batch, 1), polls_learned_from=estimate.batches_seen)


# Creating -------------------------------------------------------------------------------------

def create_command(account: SolaxAccount, target: Target, action: dict[str, Any], *, user: Any = None,
                   ip: str | None = None, source: str = "manual", retry_of: Command | None = None,
                   start_by: datetime | None = None) -> Command:
    """Validate (CommandError on any bad field, nothing written), then write the Command, its
    DeviceResults, CommandBatches and control ApiCalls in one transaction and return the Command.
    Batches still unsent at ``start_by`` are cancelled, never sent late."""
    resolved = _resolve(account, target, action)
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
            source=source, retry_of=retry_of, devices_total=len(resolved.devices),
            expires_at=now + timedelta(seconds=settings.COMMAND_EXPIRY_SECONDS),
        )
        if target.kind == TargetKind.GROUPS:
            command.groups.set(target.groups)
        dongles = dict(resolved.devices)
        group_members = _members_of([b.group for b in resolved.batches if b.group is not None], set(dongles))
        for spec in resolved.batches:
            members = group_members.get(spec.group.pk, []) if spec.group is not None else spec.sns
            batch = CommandBatch.objects.create(command=command, group=spec.group, sns=spec.sns)
            DeviceResult.objects.bulk_create(
                (DeviceResult(command=command, batch=batch, sn=sn, dongle_sn=dongles.get(sn, "")) for sn in members),
                batch_size=2000)
            if not approval:
                _enqueue(command, batch, resolved.endpoint_of(spec), _send_params(account, resolved, spec))
    log.info("command %s %s: %s (%s devices, %s call(s))", command.code, "awaits approval" if approval else "queued",
             command.label, command.devices_total, len(resolved.batches))
    return command


def _enqueue(command: Command, batch: CommandBatch, endpoint: str, params: dict[str, Any]) -> None:
    batch.call = queue.enqueue(command.account, endpoint, params, purpose=command.label, handler="commands.sent",
                               context={"batch": batch.pk}, origin_kind="command", origin_code=command.code)
    batch.save(update_fields=["call"])


def _members_of(groups: list[Group], wanted: set[str]) -> dict[int, list[str]]:
    """The target's devices in each group that a group call reaches (one query)."""
    members: dict[int, list[str]] = {}
    for group_id, sn in Inverter.objects.filter(group__in=groups, removed=False).values_list("group_id", "inverter_sn"):
        if sn in wanted:
            members.setdefault(group_id, []).append(sn)
    return members


def _send_params(account: SolaxAccount, resolved: _Resolved, batch: Batch) -> dict[str, Any]:
    endpoint = resolved.endpoint_of(batch)
    if endpoint == "pile_cmd":
        # Built with the real callback URL so that it is validated; the pipeline adds it again at send
        # time, as it is a secret and must not sit in the ledger.
        params = endpoints.pile_cmd_params(batch.sns, resolved.params["chargerMode"], account.callback_url)
        params.pop("callbackUrl")
        return params
    spec = dict(resolved.params)
    if endpoint == "group_control":
        assert batch.group is not None
        return endpoints.group_control_params(batch.group.remote_id, spec)
    if endpoint == "single_control":
        return endpoints.single_control_params(batch.sns[0], spec)
    return endpoints.batch_control_params(batch.sns, spec)


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


def resolve_unknown(command: Command, resolution: str, *, user: Any, ip: str | None = None) -> Command | None:
    """Record an operator's decision on an UNKNOWN command. "sent again" also creates the new command
    (returned) for the devices whose delivery was unknown. Raises CommandError if it is not UNKNOWN."""
    if resolution not in Resolution.values:
        raise CommandError({"resolution": "choose delivered, not delivered or send again"})
    with transaction.atomic():
        locked = Command.objects.select_for_update().get(pk=command.pk)
        if locked.state != CommandState.UNKNOWN or locked.resolution:
            raise CommandError({"resolution": "this command does not wait for a decision"})
        unknown = list(locked.results.filter(state=DeviceState.UNKNOWN).values_list("sn", flat=True))
        name = getattr(user, "username", "an operator")
        if resolution == Resolution.DELIVERED:
            new_state, text = DeviceState.SUCCEEDED, f"marked delivered by {name}"
        else:
            new_state, text = DeviceState.FAILED, f"marked not delivered by {name}"
        locked.results.filter(state=DeviceState.UNKNOWN).update(state=new_state, answer=text)
        locked.resolution = resolution
        locked.resolved_by = user
        locked.resolved_at = timezone.now()
        locked.save(update_fields=["resolution", "resolved_by", "resolved_at"])
        refresh(locked)
        again = None
        if resolution == Resolution.SENT_AGAIN and unknown:
            kind = TargetKind.CHARGERS if locked.kind == CommandKind.CHARGER_MODE else (
                TargetKind.INVERTER if len(unknown) == 1 else TargetKind.SELECTION)
            target = Target(kind, sns=tuple(unknown))
            if locked.target_kind == TargetKind.GROUP and locked.group and not locked.group.removed:
                target = Target(TargetKind.GROUP, group=locked.group)
            again = create_command(locked.account, target, stored_action(locked), user=user, ip=ip,
                                   source="resend", retry_of=locked)
    command.refresh_from_db()
    return again


def cancel_command(command: Command, *, user: Any) -> int:
    """Cancel the batches of a command that have not been sent (they never will be); batches already
    sent are still followed to their results. Returns how many were cancelled; raises CommandError
    when nothing is left to cancel."""
    with transaction.atomic():
        locked = Command.objects.select_for_update().get(pk=command.pk)
        cancelled = cancel_unsent(locked, f"cancelled by {getattr(user, 'username', 'an operator')}")
    if not cancelled:
        raise CommandError({"cancel": "every batch of this command has been sent already"})
    log.info("command %s: %s unsent batch(es) cancelled by %s", command.code, cancelled, user)
    return cancelled


# Four eyes -------------------------------------------------------------------------------------

def approve_command(command: Command, *, user: Any) -> Command:
    """A second operator approves a command awaiting approval: its calls are queued now. Raises
    CommandError when it does not wait for approval or the approver is the one who asked."""
    with transaction.atomic():
        locked = Command.objects.select_for_update().select_related("account").get(pk=command.pk)
        if locked.state != CommandState.APPROVAL:
            raise CommandError({"approval": "this command does not wait for an approval"})
        if locked.created_by_id is not None and locked.created_by_id == getattr(user, "pk", None):
            raise CommandError({"approval": "a second operator must approve: not the one who asked"})
        if locked.start_by is not None and locked.start_by <= timezone.now():
            raise CommandError({"approval": "too late: it had to start by "
                                            f"{locked.start_by:%H:%M:%S %Z}; reject it and send it again"})
        batches = list(locked.batches.select_related("group").order_by("pk"))
        if any(batch.group_id is None and not batch.sns for batch in batches):
            raise CommandError({"approval": "a group of this command is gone; reject it and send it again"})
        # the envelope (writes per device today, a tightened limit) may have changed while it waited
        safety.check(locked.account, locked.kind, locked.action,
                     list(locked.results.values_list("sn", flat=True)))
        resolved = _Resolved(kind=locked.kind, params=locked.action, label=locked.label, devices=[], batches=[],
                             single=locked.target_kind == TargetKind.INVERTER)
        for batch in batches:
            spec = Batch(batch.group, list(batch.sns))
            _enqueue(locked, batch, resolved.endpoint_of(spec), _send_params(locked.account, resolved, spec))
        locked.state, locked.approved_by, locked.approved_at = CommandState.QUEUED, user, timezone.now()
        locked.save(update_fields=["state", "approved_by", "approved_at"])
    log.info("command %s approved by %s", command.code, user)
    return locked


def reject_command(command: Command, *, user: Any) -> Command:
    """Refuse a command awaiting approval: nothing is sent, its devices read "not sent"."""
    with transaction.atomic():
        locked = Command.objects.select_for_update().get(pk=command.pk)
        if locked.state != CommandState.APPROVAL:
            raise CommandError({"approval": "this command does not wait for an approval"})
        name = getattr(user, "username", "an operator")
        locked.results.filter(state=DeviceState.PENDING).update(
            state=DeviceState.NOT_SENT, answer=f"not sent: rejected by {name}", answered_at=timezone.now())
        locked.batches.update(state=CommandState.CANCELLED)
        locked.state, locked.approved_by, locked.approved_at = CommandState.CANCELLED, user, timezone.now()
        locked.finished_at = locked.approved_at
        locked.save(update_fields=["state", "approved_by", "approved_at", "finished_at"])
        refresh(locked)
    return locked
