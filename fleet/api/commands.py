"""Commands: a dry-run plan, sending (once per ``Idempotency-Key``), the history, one command with its
progress, and its per-device results. The same target resolver, action builder, safety envelope and
cost plan as the new-command page (``fleet.commands.service``)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

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
from fleet.api.actor import actor_of, changed
from fleet.api.core import DEFAULT_LIMIT, MAX_LIMIT, Invalid, Problem, keyset
from fleet.api.resources import PROBLEMS, Paging, account_of
from fleet.commands import service
from fleet.commands.targets import Target
from fleet.models import Command, CommandState, DeviceState, SolaxAccount, TargetKind
from fleet.shapes import responses, serialize

router = Router(tags=["commands"])
IDEMPOTENCY_PURPOSE = "command"


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

