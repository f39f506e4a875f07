"""Staged rollout: a command is sent to a canary share of its devices first; the rest of its batches
are held (written, no call queued) until every canary device has answered (or is settled as failed,
no answer or unknown). Then, if the canary's failure share is under the threshold, the rest is queued
(automatically, or when an operator clicks "continue"); otherwise the rollout halts and says why. An
operator may resume a halted rollout or cancel it (``fleet.commands.service.cancel_command``).

The stage lives on the Command (``rollout_stage``); the canary batches are ``CommandBatch.canary``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from fleet.commands.actions import CommandError
from fleet.commands.deciders import name_of
from fleet.commands.sending import enqueue_batch
from fleet.models import ApiKey, Command, CommandBatch, CommandState, DeviceResult, DeviceState, RolloutStage

log = logging.getLogger("fleet.commands")

PERCENT, DEVICES = "percent", "devices"
WAITING = (RolloutStage.CANARY, RolloutStage.PASSED, RolloutStage.HALTED)  # the rest is still held
# A canary device that did not succeed counts against the rollout: failed, no answer, delivery unknown.
CANARY_FAILED = (DeviceState.FAILED, DeviceState.NO_ANSWER, DeviceState.UNKNOWN, DeviceState.NOT_SENT)


@dataclass(frozen=True)
class RolloutSpec:
    """What the operator asked: a canary of ``size`` percent or devices, halting at ``threshold`` %
    failed canary devices, continuing by itself (``auto``) or on a click."""

    size: int
    unit: str  # PERCENT or DEVICES
    threshold: int  # percent, 1-100
    auto: bool = True

    @property
    def asked(self) -> str:
        return f"{self.size} %" if self.unit == PERCENT else f"{self.size} device{'s' if self.size != 1 else ''}"

    def canary_of(self, total: int) -> int:
        if self.unit == PERCENT:
            return max(1, math.ceil(total * self.size / 100))
        return self.size


def check(spec: RolloutSpec, total: int, *, chargers: bool) -> int:
    """Return the canary's size in devices; raise CommandError naming the field that is wrong."""
    errors: dict[str, str] = {}
    if chargers:
        errors["rollout"] = "a staged rollout is for inverter commands, not EV chargers"
    if spec.unit not in (PERCENT, DEVICES):
        errors["canary_unit"] = "choose percent or devices"
    elif spec.unit == PERCENT and not 1 <= spec.size <= 99:
        errors["canary_size"] = "a canary share is 1 to 99 %"
    elif spec.unit == DEVICES and spec.size < 1:
        errors["canary_size"] = "a canary has at least one device"
    if not 1 <= spec.threshold <= 100:
        errors["failure_threshold"] = "a failure threshold is 1 to 100 %"
    if errors:
        raise CommandError(errors)
    if total < 2:
        raise CommandError({"rollout": "a staged rollout needs at least 2 devices"})
    canary = spec.canary_of(total)
    if canary >= total:
        raise CommandError({"canary_size": f"the canary must be smaller than the target ({total} devices), "
                                           f"not {canary}"})
    return canary


def pick_canary(sns: list[str], canary: int) -> tuple[list[str], list[str]]:
    """Split the target's SNs into the canary and the rest: evenly spread over the SN order (so that a
    canary of a fleet touches many groups), deterministic."""
    total = len(sns)
    chosen = {int(i * total / canary) for i in range(canary)}
    return [sn for i, sn in enumerate(sns) if i in chosen], [sn for i, sn in enumerate(sns) if i not in chosen]


def _share(failed: int, total: int) -> str:
    return f"{round(100.0 * failed / max(1, total), 1):g}"


def evaluate(command: Command) -> str | None:
    """Once every canary device is settled, decide: continue (queue the held batches), wait for a click,
    or halt. Called after each recount of a command in its canary stage (and by the tick). Returns the
    new stage, or None while canary devices are still pending."""
    locked = (Command.objects.select_for_update(of=("self",)).select_related("account")
              .filter(pk=command.pk, rollout_stage=RolloutStage.CANARY).first())
    if locked is None or locked.state in (CommandState.CANCELLED, CommandState.APPROVAL):
        return None
    counts = DeviceResult.objects.filter(command=locked, batch__canary=True).aggregate(
        total=Count("id"), pending=Count("id", filter=Q(state=DeviceState.PENDING)),
        failed=Count("id", filter=Q(state__in=CANARY_FAILED)))
    total, failed = counts["total"], counts["failed"]
    if counts["pending"] or not total:
        return None
    share = 100.0 * failed / total
    said = f"{failed} of {total} canary devices failed ({_share(failed, total)} %"
    if share >= locked.rollout_threshold:
        sign = ">" if share > locked.rollout_threshold else "≥"
        locked.rollout_stage = RolloutStage.HALTED
        locked.rollout_note = f"halted: {said} {sign} {locked.rollout_threshold} %)"
    elif locked.rollout_auto:
        queued = _release(locked)
        locked.rollout_stage = RolloutStage.CONTINUED
        locked.rollout_note = (f"canary passed: {said} < {locked.rollout_threshold} %); "
                               f"continued automatically ({queued} more call{'s' if queued != 1 else ''})")
    else:
        locked.rollout_stage = RolloutStage.PASSED
        locked.rollout_note = (f"canary passed: {said} < {locked.rollout_threshold} %); "
                               "waiting for an operator to continue")
    locked.save(update_fields=["rollout_stage", "rollout_note"])
    command.rollout_stage, command.rollout_note = locked.rollout_stage, locked.rollout_note
    log.info("command %s: %s", locked.code, locked.rollout_note)
    return locked.rollout_stage


def held_batches(command: Command) -> Any:
    """The batches a rollout holds back: not canary, unsent, no call queued."""
    return CommandBatch.objects.filter(command=command, canary=False, state=CommandState.QUEUED,
                                       call__isnull=True).select_related("group")


def _release(command: Command) -> int:
    batches = list(held_batches(command).order_by("pk"))
    for batch in batches:
        enqueue_batch(command, batch)
    return len(batches)


def resume(command: Command, *, user: Any = None, api_key: ApiKey | None = None) -> Command:
    """An operator (a person, or an API key) continues a rollout that halted or passed and waits for a
    click: the held batches are queued now. Runs under the command's row lock, so two operators clicking
    at once continue it once (the second is told who did). Raises CommandError."""
    with transaction.atomic():
        return _resume(command, user, api_key)


def _resume(command: Command, user: Any, api_key: ApiKey | None) -> Command:
    name = name_of(user, api_key)
    locked = Command.objects.select_for_update(of=("self",)).select_related("account").get(pk=command.pk)
    if locked.rollout_stage == RolloutStage.CONTINUED:
        decider, key = locked.rollout_decided_by, locked.rollout_decided_by_key
        who = (f"by {decider.username}" if decider is not None else
               f"by API key {key.name}" if key is not None else "automatically")
        raise CommandError({"rollout": f"this rollout has already continued ({who})"})
    if locked.rollout_stage not in (RolloutStage.HALTED, RolloutStage.PASSED):
        raise CommandError({"rollout": "this rollout does not wait for an operator"})
    if locked.start_by is not None and locked.start_by <= timezone.now():
        raise CommandError({"rollout": f"too late: it had to start by {locked.start_by:%H:%M:%S %Z}"})
    queued = _release(locked)
    was = locked.get_rollout_stage_display()
    locked.rollout_stage = RolloutStage.CONTINUED
    locked.rollout_note = f"{locked.rollout_note} · {'resumed' if was == 'halted' else 'continued'} by {name}"[:200]
    locked.rollout_decided_by, locked.rollout_decided_at = user, timezone.now()
    locked.rollout_decided_by_key = api_key
    locked.save(update_fields=["rollout_stage", "rollout_note", "rollout_decided_by", "rollout_decided_by_key",
                               "rollout_decided_at"])
    log.info("command %s: rollout continued by %s (%s call(s))", locked.code, name, queued)
    return locked


def cancelled(command: Command, reason: str) -> None:
    """The command's unsent batches were cancelled: a rollout still holding some is over."""
    Command.objects.filter(pk=command.pk, rollout_stage__in=WAITING).update(
        rollout_stage=RolloutStage.CANCELLED, rollout_note=f"cancelled: {reason}"[:200])


def tick() -> int:
    """Decide the canary of rollouts whose last canary device settled without a recount that saw it
    (a missed race between two workers). Returns how many changed stage."""
    changed = 0
    for command in Command.objects.filter(rollout_stage=RolloutStage.CANARY).exclude(
            state__in=[CommandState.APPROVAL, CommandState.CANCELLED]).only("pk")[:200]:
        if not DeviceResult.objects.filter(command=command, batch__canary=True, state=DeviceState.PENDING).exists():
            with transaction.atomic():
                changed += evaluate(command) is not None
    return changed
