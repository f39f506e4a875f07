"""Control commands: validate a target and an action, plan their cost, send them in the fewest calls,
and follow every device to its answer.

A command becomes one control call per CommandBatch: a group is one group_control, a selection is
batch_control calls of at most 100 SNs, one inverter is a single_control, EV chargers are pile_cmd
calls of at most 100. The handlers below follow each batch: the command id, then query_command for the
task id, then query_result polled with backoff until every device answered or the command expired.
EV chargers answer through callbacks (``fleet.callbacks``); when those stay away, ``tick`` spends one
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

from fleet import calls
from fleet.models import (
    ApiCall,
    CallState,
    Charger,
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
from solax import endpoints
from solax.control import MAX_SNS_PER_CALL, MODES, SUPER_TYPES, PileMode, build_control_params, clean_sns
from solax.errors import ControlValidationError, RequestValidationError

log = logging.getLogger("fleet.commands")

# Following a command to its results lives in fleet.command_tracking.
from fleet.command_tracking import PILE_MODE_LABELS, refresh  # noqa: E402

POLLS_PER_BATCH_ESTIMATE = 4  # one query_command and about three result polls


class CommandError(Exception):
    """A command that cannot be sent; ``errors`` maps each bad field to its problem."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Target:
    kind: str  # TargetKind
    group: Group | None = None
    sns: tuple[str, ...] = ()


@dataclass(frozen=True)
class CostPlan:
    """What a command will cost: its calls, when they go out, and the share of today's budget."""

    endpoint: str
    devices: int
    sends: int
    polls: int
    queued_ahead: int
    goes_out_at: datetime
    day_free: int
    day_limit: int
    label: str
    batches: list[list[str]] = field(default_factory=list)

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
    endpoint: str
    params: dict[str, Any]  # the action part of the vendor parameters (control) or the mode
    devices: list[tuple[str, str]]  # (sn, dongle sn)
    batches: list[list[str]]
    label: str


# Validation -----------------------------------------------------------------------------------

def _resolve(account: SolaxAccount, target: Target, action: dict[str, Any]) -> _Resolved:
    """Return the validated command, or raise CommandError naming every bad field."""
    errors: dict[str, str] = {}
    devices: list[tuple[str, str]] = []
    group = None
    if target.kind not in TargetKind.values:
        raise CommandError({"target": f"unknown target kind {target.kind!r}"})
    charger = target.kind == TargetKind.CHARGERS
    if target.kind == TargetKind.GROUP:
        group = target.group
        if group is None or group.account_id != account.pk or group.removed:
            errors["group"] = "choose a group of this account"
        else:
            devices = list(Inverter.objects.filter(group=group, removed=False).order_by("inverter_sn")
                           .values_list("inverter_sn", "dongle_sn"))
            if not devices:
                errors["group"] = f"group {group.name} has no members to control"
    else:
        devices = _known_devices(account, target, errors)
    params: dict[str, Any] = {}
    label = ""
    if charger:
        mode = action.get("chargerMode")
        if isinstance(mode, bool) or not isinstance(mode, int) or mode not in [m.value for m in PileMode]:
            errors["chargerMode"] = "choose Stop, Fast, Eco or Green"
        else:
            params = {"chargerMode": mode}
            label = f"EV mode {PILE_MODE_LABELS[mode]}"
    else:
        spec = dict(action)
        super_type = spec.pop("superType", None)
        try:
            params = build_control_params(super_type, **spec)
        except ControlValidationError as exc:
            errors.update(exc.errors)
        else:
            label = action_label(params)
    if errors:
        raise CommandError(errors)
    sns = [sn for sn, _ in devices]
    batches: list[list[str]]
    if target.kind == TargetKind.GROUP:
        assert group is not None
        endpoint, batches = "group_control", [[]]
        where = f"group {group.name}"
    elif charger:
        endpoint, batches = "pile_cmd", _chunks(sns)
        where = f"{len(sns)} charger{'s' if len(sns) != 1 else ''}" if len(sns) > 1 else sns[0]
    elif target.kind == TargetKind.INVERTER:
        endpoint, batches = "single_control", [sns]
        where = sns[0]
    else:
        endpoint, batches = "batch_control", _chunks(sns)
        where = f"{len(sns)} inverters"
    kind = CommandKind.CHARGER_MODE if charger else CommandKind.INVERTER_CONTROL
    return _Resolved(kind=kind, endpoint=endpoint, params=params, devices=devices, batches=batches,
                     label=f"{label} to {where}"[:200])


def _known_devices(account: SolaxAccount, target: Target, errors: dict[str, str]) -> list[tuple[str, str]]:
    """Return (sn, dongle sn) of the target's SNs, recording empty, malformed or foreign ones."""
    field_name = "sns"
    try:
        sns = clean_sns(list(target.sns), field_name)
    except RequestValidationError as exc:
        errors.update(exc.errors)
        return []
    if target.kind == TargetKind.INVERTER and len(sns) != 1:
        errors[field_name] = "one inverter: exactly one SN"
        return []
    if target.kind == TargetKind.CHARGERS:
        rows = dict(Charger.objects.filter(account=account, sn__in=sns).values_list("sn", "refused"))
        refused = [sn for sn in sns if rows.get(sn)]
        if refused:  # the cloud answered "no auth!" for them: a command would only fail
            errors[field_name] = f"refused by SolaX (not known or not authorised): {', '.join(refused[:10])}"
            return []
        known = dict.fromkeys(rows, "")
    else:
        known = dict(Inverter.objects.filter(account=account, removed=False, inverter_sn__in=sns)
                     .values_list("inverter_sn", "dongle_sn"))
    missing = [sn for sn in sns if sn not in known]
    if missing:
        what = "chargers" if target.kind == TargetKind.CHARGERS else "inverters"
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        errors[field_name] = f"not {what} of this account: {', '.join(missing[:10])}{more}"
        return []
    return [(sn, known[sn]) for sn in sns]


def _chunks(sns: list[str]) -> list[list[str]]:
    return [sns[i:i + MAX_SNS_PER_CALL] for i in range(0, len(sns), MAX_SNS_PER_CALL)]


def action_label(params: dict[str, Any]) -> str:
    """Return a short human description of validated control parameters."""
    st = int(params["superType"])
    if st == 1:
        return "System on" if params.get("systemSwitch") == "1" else "System off"
    mode = int(params["mode"])
    name = MODES[st][mode]
    if st == 2 and mode == 3:
        name = {0: "Manual stop", 1: "Forced charge", 2: "Forced discharge"}[int(params["manualMode"])]
    if "activePower" in params:
        name += f" {params['activePower']} W"
    elif "targetSoc" in params:
        name += f" to {params['targetSoc']} %"
    elif "targetEnergy" in params:
        name += f" {params['targetEnergy']} Wh"
    return name if st == 2 else f"{SUPER_TYPES[st]}: {name}"


# Planning -------------------------------------------------------------------------------------

def plan_command(account: SolaxAccount, target: Target, action: dict[str, Any]) -> CostPlan:
    """Return the calls the command needs (send + estimated polls), when it would go out given the
    queue and the budget, and its share of today's budget. Raises CommandError."""
    resolved = _resolve(account, target, action)
    return _plan(account, resolved)


def _plan(account: SolaxAccount, resolved: _Resolved) -> CostPlan:
    now = timezone.now()
    sends = len(resolved.batches)
    polls = 0 if resolved.kind == CommandKind.CHARGER_MODE else POLLS_PER_BATCH_ESTIMATE * sends
    ahead = ApiCall.objects.filter(account=account, state=CallState.QUEUED, priority__lte=Priority.CONTROL,
                                   not_before__lte=now).count()
    budget = calls.budget_of(account, now)
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
                    day_limit=budget.day_limit, label=resolved.label, batches=resolved.batches)


# Creating -------------------------------------------------------------------------------------

def create_command(account: SolaxAccount, target: Target, action: dict[str, Any], *, user: Any = None,
                   ip: str | None = None, source: str = "manual", retry_of: Command | None = None) -> Command:
    """Validate (CommandError on any bad field, nothing written), then write the Command, its
    DeviceResults, CommandBatches and control ApiCalls in one transaction and return the Command."""
    resolved = _resolve(account, target, action)
    if retry_of is not None and retry_of.account_id != account.pk:
        raise CommandError({"retry_of": "not a command of this account"})
    now = timezone.now()
    with transaction.atomic():
        command = Command.objects.create(
            account=account, kind=resolved.kind, target_kind=target.kind,
            group=target.group if target.kind == TargetKind.GROUP else None,
            sns=[] if target.kind == TargetKind.GROUP else [sn for sn, _ in resolved.devices],
            action=resolved.params, label=resolved.label, state=CommandState.QUEUED, created=now,
            created_by=user if user is not None and user.is_authenticated else None, created_from=ip,
            source=source, retry_of=retry_of, devices_total=len(resolved.devices),
            expires_at=now + timedelta(seconds=settings.COMMAND_EXPIRY_SECONDS),
        )
        dongles = dict(resolved.devices)
        for chunk in resolved.batches:
            members = chunk or [sn for sn, _ in resolved.devices]
            batch = CommandBatch.objects.create(command=command, sns=chunk)
            DeviceResult.objects.bulk_create(
                DeviceResult(command=command, batch=batch, sn=sn, dongle_sn=dongles.get(sn, "")) for sn in members)
            call = calls.enqueue(account, resolved.endpoint, _send_params(account, command, resolved, chunk),
                                 purpose=command.label, handler="commands.sent", context={"batch": batch.pk},
                                 origin_kind="command", origin_code=command.code)
            batch.call = call
            batch.save(update_fields=["call"])
    log.info("command %s queued: %s (%s devices, %s call(s))", command.code, command.label,
             command.devices_total, len(resolved.batches))
    return command


def _send_params(account: SolaxAccount, command: Command, resolved: _Resolved, chunk: list[str]) -> dict[str, Any]:
    if resolved.endpoint == "pile_cmd":
        # Built with the real callback URL so that it is validated; the pipeline adds it again at send
        # time, as it is a secret and must not sit in the ledger.
        params = endpoints.pile_cmd_params(chunk, resolved.params["chargerMode"], calls.callback_url(account))
        params.pop("callbackUrl")
        return params
    spec = dict(resolved.params)
    if resolved.endpoint == "group_control":
        assert command.group is not None
        return endpoints.group_control_params(command.group.remote_id, spec)
    if resolved.endpoint == "single_control":
        return endpoints.single_control_params(chunk[0], spec)
    return endpoints.batch_control_params(chunk, spec)


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
