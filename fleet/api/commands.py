"""Commands: a dry-run plan, sending (once per ``Idempotency-Key``), the history, one command with its
progress, its per-device results, and the operators' decisions on it (cancel, approve or reject,
resolve, resume a staged rollout, retry the failed devices). The same target resolver, action builder,
safety envelope, cost plan and decisions as the command pages (``fleet.commands.service``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.utils import timezone
from ninja import Header, Query, Router, Schema, Status
from pydantic import Field

from fleet.accounts import idempotency
from fleet.accounts.access import (
    command_for_user,
    current_membership,
    group_for_user,
    require_operator,
    selection_for_user,
)
from fleet.api import schemas
from fleet.api.actor import Actor, actor_of, changed
from fleet.api.core import DEFAULT_LIMIT, MAX_LIMIT, Invalid, Problem, keyset
from fleet.api.resources import PROBLEMS, Paging, account_of
from fleet.commands import rollout, service
from fleet.commands.actions import CommandError
from fleet.commands.targets import Target
from fleet.models import Command, CommandState, DeviceState, SolaxAccount, TargetKind
from fleet.models.commands import ACTIVE_COMMAND_STATES
from fleet.shapes import responses, serialize

router = Router(tags=["commands"])
IDEMPOTENCY_PURPOSE = "command"
RETRY_PURPOSE = "command-retry"


def _target(request: HttpRequest, payload: schemas.CommandIn) -> tuple[SolaxAccount, Target]:
    """The account and the domain Target a body names; 422 naming every field that names nothing of
    the organization (the resolver then checks that it is the account's and has devices)."""
    account = account_of(request, payload.account)
    spec = payload.target
    errors: dict[str, str] = {}
    group = None
    groups: list[Any] = []
    selection = None
    if spec.kind == TargetKind.GROUP:
        if spec.group is None:
            errors["target.group"] = "choose a group (its code)"
        else:
            try:
                group = group_for_user(request, spec.group)
            except Http404:
                errors["target.group"] = "no such group in your organization"
    elif spec.kind == TargetKind.GROUPS:
        if not spec.groups:
            errors["target.groups"] = "choose one or more groups (their codes)"
        for code in spec.groups:
            try:
                groups.append(group_for_user(request, code))
            except Http404:
                errors["target.groups"] = f"no such group in your organization: {code}"
    elif spec.kind == TargetKind.SAVED:
        if spec.selection is None:
            errors["target.selection"] = "choose a saved selection (its code)"
        else:
            try:
                selection = selection_for_user(request, spec.selection)
            except Http404:
                errors["target.selection"] = "no such saved selection in your organization"
    elif spec.kind in (TargetKind.INVERTER, TargetKind.SELECTION, TargetKind.CHARGERS) and not spec.sns:
        errors["target.sns"] = "enter at least one SN"
    if errors:
        raise Invalid(errors)
    return account, Target(spec.kind, group=group, sns=tuple(spec.sns), groups=tuple(groups), selection=selection)


def _plan(plan: service.CostPlan) -> dict[str, Any]:
    return {"label": plan.label, "endpoint": plan.endpoint, "devices": plan.devices, "sends": plan.sends,
            "polls": plan.polls, "calls": plan.calls, "group_calls": plan.group_calls,
            "max_sns_per_call": plan.max_sns_per_call, "queued_ahead": plan.queued_ahead,
            "goes_out_at": plan.goes_out_at, "day_free": plan.day_free, "day_limit": plan.day_limit,
            "day_share_percent": plan.day_share_percent, "fits_today": plan.fits_today,
            "needs_approval": plan.needs_approval,
            "batches": [{"group": b.group.code if b.group else None, "sns": len(b.sns)} for b in plan.batches]}


@router.post("/commands/plan", response={200: responses.PlanOut, **PROBLEMS}, url_name="command-plan")
def command_plan(request: HttpRequest, payload: schemas.CommandIn) -> dict[str, Any]:
    """A dry run: the calls the command would need, when it would go out, its share of today's budget and
    whether a second operator must approve it. Nothing is queued. Needs an operate key, as sending does."""
    require_operator(request)
    account, target = _target(request, payload)
    return _plan(service.plan_command(account, target, dict(payload.action)))


def _command(code: uuid.UUID) -> Command:
    return serialize.command_rows().get(code=code)


@router.post("/commands", response={200: responses.CommandOut, 201: responses.CommandOut, 409: responses.ProblemOut,
                                    **PROBLEMS}, url_name="commands-create")
def command_create(request: HttpRequest, payload: schemas.CommandIn,
                   idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=200)) \
        -> Status:
    """Send a command: 201 with the command (state queued, or approval when a second operator must
    approve it). With an ``Idempotency-Key`` header (any string of up to 200 characters, unique per
    request) a retry with the same key and body within 24 h returns the same command with 200, and
    the same key with another body is 409; nothing is sent twice."""
    require_operator(request)
    account, target = _target(request, payload)
    actor = actor_of(request)
    start_by = (timezone.now() + timedelta(minutes=payload.start_within_minutes)
                if payload.start_within_minutes else None)

    def create() -> Command:
        return service.create_command(account, target, dict(payload.action), ip=actor.ip, source="api",
                                      start_by=start_by, api_key=actor.key)

    if not idempotency_key:
        command = create()
    else:
        body = payload.model_dump(mode="json", exclude={"account"})
        body["account"] = str(account.code)
        digest = idempotency.body_hash(body)
        try:
            with idempotency.once_per_key(account.organization, IDEMPOTENCY_PURPOSE, idempotency_key, digest,
                                          api_key=actor.key) as slot:
                command = create()
                slot.done(command.code)
        except idempotency.Replay as replay:
            return Status(200, serialize.command(_command(replay.code)))
        except idempotency.Conflict:
            raise Problem(409, "This Idempotency-Key was used with another body: use a new key for a new "
                               "request.") from None
    changed(request, "command.create", "command", command.code, after={"label": command.label,
                                                                      "state": command.state})
    return Status(201, serialize.command(_command(command.code)))


class CommandFilters(Paging):
    account: uuid.UUID | None = None
    state: CommandState | None = None


@router.get("/commands", response={200: responses.CommandPage, **PROBLEMS}, url_name="commands")
def commands(request: HttpRequest, filters: Query[CommandFilters]) -> dict[str, Any]:
    """The history, newest first."""
    rows = Command.objects.filter(account__organization=current_membership(request).organization).select_related(
        "account", "group", "created_by", "api_key")
    if filters.account is not None:
        rows = rows.filter(account=account_of(request, filters.account))
    if filters.state is not None:
        rows = rows.filter(state=filters.state)
    return keyset(request, rows, ("-created", "-pk"), cursor=filters.cursor, limit=filters.limit,
                  salt="commands", serialize=serialize.command)


@router.get("/commands/{uuid:code}", response={200: responses.CommandDetailOut, **PROBLEMS}, url_name="command")
def command(request: HttpRequest, code: uuid.UUID) -> dict[str, Any]:
    """One command and its progress: calls sent of total, devices answered; the devices are at ``results``."""
    return serialize.command_detail(_command(command_for_user(request, code).code))


class ResultFilters(Schema):
    cursor: str | None = Field(None, max_length=2000)
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    state: DeviceState | None = None
    sn: str = Field("", max_length=40)


@router.get("/commands/{uuid:code}/results", response={200: responses.ResultPage, **PROBLEMS},
            url_name="command-results")
def command_results(request: HttpRequest, code: uuid.UUID, filters: Query[ResultFilters]) -> dict[str, Any]:
    """Each device's result, by SN; ``state`` and ``sn`` (part of it) filter."""
    row = command_for_user(request, code)
    rows = row.results.all()
    if filters.state is not None:
        rows = rows.filter(state=filters.state)
    if filters.sn.strip():
        rows = rows.filter(sn__icontains=filters.sn.strip())
    return keyset(request, rows, ("sn", "pk"), cursor=filters.cursor, limit=filters.limit,
                  salt=f"results:{row.code}", serialize=_result)


def _result(row: Any) -> dict[str, Any]:
    return {"sn": row.sn, "dongle_sn": row.dongle_sn, "state": row.state, "answer": row.answer,
            "answered_at": row.answered_at}



# Operators' decisions ---------------------------------------------------------------------------------
# The decisions of the command's page and the approvals page (fleet.views.commands, fleet.views.approvals),
# through the same services, each under the command's row lock: of two decisions at once exactly one takes
# effect. A decision that does not apply to the command as it is now is a 409 problem saying why, and so
# is a repeated one (a second cancel, a second approve): a decision is never replayed as a success, the
# command as it is now is at its url. Each decision is written to the audit log with the key as its actor.

DECISION: dict[int, Any] = {200: responses.CommandOut, 409: responses.ProblemOut, **PROBLEMS}


def _decision(request: HttpRequest, code: uuid.UUID) -> tuple[Command, Actor]:
    """The command an operate key decides about (403 for a read key, 404 for another organization's)."""
    require_operator(request)
    return command_for_user(request, code), actor_of(request)


def _refused(exc: CommandError) -> Problem:
    return Problem(409, "; ".join(exc.errors.values()) + ".")


def _decide(request: HttpRequest, code: uuid.UUID, audit: str, field: str,
            act: Callable[[Command, Actor], dict[str, Any] | None]) -> dict[str, Any]:
    """One decision: ``act`` on the command (a refusal is 409), then the audit entry with ``field`` before
    and after (and what ``act`` adds), and the command as it is now."""
    row, actor = _decision(request, code)
    before = getattr(row, field)
    try:
        extra = act(row, actor) or {}
    except CommandError as exc:
        raise _refused(exc) from None
    row = _command(row.code)
    name = field.replace("_", " ")
    changed(request, audit, "command", row.code, before={"label": row.label, name: before},
            after={"label": row.label, name: getattr(row, field), **extra})
    return serialize.command(row)


@router.post("/commands/{uuid:code}/cancel", response=DECISION, url_name="command-cancel")
def command_cancel(request: HttpRequest, code: uuid.UUID) -> dict[str, Any]:
    """Cancel what of the command has not been sent yet: its queued calls, and the batches a staged rollout
    holds back (they are never sent; their devices read "not sent"). What was sent is still followed to its
    results. 409 when nothing is left to cancel (also for a second cancel) or when the command awaits
    approval (reject it instead)."""
    return _decide(request, code, "command.cancel", "state", lambda row, actor: {
        "batches cancelled": service.cancel_command(row, api_key=actor.key)})


@router.post("/commands/{uuid:code}/approve", response=DECISION, url_name="command-approve")
def command_approve(request: HttpRequest, code: uuid.UUID) -> dict[str, Any]:
    """Approve a command that awaits a second operator (four eyes): its calls are queued now (a staged
    rollout's canary first). The approver must not be who asked. An API key counts as itself and as the
    person who made it: it may approve only a command asked by another person or through another person's
    key, never one it sent itself, one its maker sent on the pages, or one sent through another key of its
    maker's (403). 409 when the command does not await approval (approved or rejected already: a second
    approve too) or can no longer be sent as it is (too late for its "start within", a group gone, the
    safety envelope refuses it now)."""

    def approve(row: Command, actor: Actor) -> None:
        try:
            service.approve_command(row, api_key=actor.key)
        except service.NotSecondOperator as exc:
            raise PermissionDenied("; ".join(exc.errors.values()) + ": an API key counts as the person who "
                                   "made it.") from None

    return _decide(request, code, "command.approve", "state", approve)


@router.post("/commands/{uuid:code}/reject", response=DECISION, url_name="command-reject")
def command_reject(request: HttpRequest, code: uuid.UUID) -> dict[str, Any]:
    """Refuse a command that awaits approval: nothing is sent, its devices read "not sent", it is
    cancelled. Anyone with an operate key may reject, the one who asked too. 409 when it does not await
    approval."""

    def reject(row: Command, actor: Actor) -> None:
        service.reject_command(row, api_key=actor.key)

    return _decide(request, code, "command.reject", "state", reject)


@router.post("/commands/{uuid:code}/resolve", response={200: responses.ResolveOut, 409: responses.ProblemOut,
                                                       **PROBLEMS}, url_name="command-resolve")
def command_resolve(request: HttpRequest, code: uuid.UUID, payload: schemas.ResolveIn) -> dict[str, Any]:
    """The operator's word on a command whose delivery is unknown (state unknown): its devices of unknown
    delivery were ``delivered`` (they count as succeeded) or ``not_delivered`` (failed), or are to be sent
    again (``sent_again``: a new command to them, at ``sent_again``). Decided once: 409 when the command
    is not unknown or was resolved already."""
    row, actor = _decision(request, code)
    before = row.resolution
    try:
        again = service.resolve_unknown(row, payload.resolution, ip=actor.ip, api_key=actor.key)
    except CommandError as exc:
        raise _refused(exc) from None
    row = _command(row.code)
    after: dict[str, Any] = {"label": row.label, "resolution": row.resolution}
    if again is not None:
        after["sent again as"] = str(again.code)
    changed(request, "command.resolve", "command", row.code, before={"label": row.label, "resolution": before},
            after=after)
    return {**serialize.command(row), "sent_again": serialize.command(_command(again.code)) if again else None}


@router.post("/commands/{uuid:code}/resume", response=DECISION, url_name="command-resume")
def command_resume(request: HttpRequest, code: uuid.UUID) -> dict[str, Any]:
    """Continue a staged rollout that halted (its canary failed too often) or passed and waits for an
    operator: the rest of its devices' calls are queued now. 409 when the rollout does not wait for an
    operator (it continued already, by whom, or the command has no staged rollout) or it is past its
    "start within"."""

    def resume(row: Command, actor: Actor) -> None:
        rollout.resume(row, api_key=actor.key)

    return _decide(request, code, "command.continue", "rollout_stage", resume)


@router.post("/commands/{uuid:code}/retry", response={200: responses.CommandOut, 201: responses.CommandOut,
                                                     409: responses.ProblemOut, **PROBLEMS},
             url_name="command-retry")
def command_retry(request: HttpRequest, code: uuid.UUID,
                  idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=200)) -> Status:
    """Send the command's action again to its devices that failed or never answered: 201 with the new
    command (source ``retry``), awaiting approval when it is big enough, like any command. 409 while the
    command is still active, when none of its devices failed, or when the new command cannot be sent (the
    safety envelope, a device gone: the detail says which). Each call is a new command; with an
    ``Idempotency-Key`` a retried request within 24 h returns the same new command with 200 (the same key
    for another command's retry is 409)."""
    row, actor = _decision(request, code)
    if row.state in ACTIVE_COMMAND_STATES:
        raise Problem(409, f"This command is {row.get_state_display()}: retry its failed devices once it finished.")

    def create() -> Command:
        return service.create_command(row.account, service.retry_target(row), service.stored_action(row),
                                      ip=actor.ip, source="retry", retry_of=row, api_key=actor.key)

    try:
        if not idempotency_key:
            command = create()
        else:
            digest = idempotency.body_hash({"retry_of": str(row.code)})
            with idempotency.once_per_key(row.account.organization, RETRY_PURPOSE, idempotency_key, digest,
                                          api_key=actor.key) as slot:
                command = create()
                slot.done(command.code)
    except idempotency.Replay as replay:
        return Status(200, serialize.command(_command(replay.code)))
    except idempotency.Conflict:
        raise Problem(409, "This Idempotency-Key was used to retry another command: use a new key for a new "
                           "request.") from None
    except CommandError as exc:
        raise _refused(exc) from None
    changed(request, "command.create", "command", command.code,
            after={"label": command.label, "state": command.state, "retry_of": str(row.code)})
    return Status(201, serialize.command(_command(command.code)))
